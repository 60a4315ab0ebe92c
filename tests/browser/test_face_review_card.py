"""The officer's review card in Chromium: the live frame and the reference are shown (the images
load under the console's CSP), 通过 passes the face step and the images are gone."""

from __future__ import annotations

from sqlalchemy import select

from emulators import serve_in_thread
from sunshine.db import unit_of_work
from sunshine.models import Authorization, FaceReview
from tests.unit.test_face_review import held  # noqa: F401  the fixture: a face check awaiting review
from webhooks import create_app


def test_the_officer_sees_both_photos_and_approves(launch_chromium, demo_settings, application, held):  # noqa: F811
    db, _, _, review_id = held
    with serve_in_thread(create_app(demo_settings)) as base:
        page = launch_chromium().new_page()
        page.goto(f"{base}/console/applications/{application[0]}")
        page.fill("input[name=username]", "officer01")
        page.fill("input[name=password]", "sunshine-demo")
        page.click("button[type=submit]")
        page.wait_for_selector(f"#face-review-{review_id}")
        images = f"#face-review-{review_id} img"
        page.wait_for_function(
            "(sel) => Array.from(document.querySelectorAll(sel)).every(function (i) {"
            " return i.complete && i.naturalWidth > 0; })",
            arg=images,
            timeout=10000,
        )
        assert page.eval_on_selector_all(images, "imgs => imgs.map(i => i.alt)") == ["刷脸照片", "登记照片"]
        assert "得分" in page.text_content(f"#face-review-{review_id}")
        page.click(f"#face-review-{review_id} button[value=approve]")
        page.wait_for_selector(".flash.ok")
        assert "已确认是本人" in page.text_content(".flash.ok")
        assert page.query_selector(f"#face-review-{review_id}") is None  # decided: the card and its photos go
    with unit_of_work(db) as s:
        review = s.get(FaceReview, review_id)
        assert review.status == "approved" and review.frames_sealed is None
        assert s.scalar(select(Authorization.face_verified_at).where(Authorization.id == review.authorization_id))
