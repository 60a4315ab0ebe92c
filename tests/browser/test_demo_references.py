"""What `make run` gives a new user: the launcher loaded the demo villagers' reference faces and,
with the demo switch, fixed the face challenge to the demo order (FACE_CHALLENGE_DEMO_ORDER; the
shared stack starts as `make run` does), so 张建国 gets his authorization link from the bot and
finishes it in Chromium whose fake camera plays `python -m auth_flow demo-camera`'s file. Nobody
enrols anything here. Without the demo order the challenge is random (tests/unit/test_liveness.py)
and a recording of another order is refused (tests/browser/test_auth_page.py)."""

from __future__ import annotations

import re
import subprocess
import sys

import requests

from auth_flow.enrolment import reference_of
from auth_flow.tokens import find_by_token
from lending.applications import Applications
from lending.customers import by_openid
from sunshine.db import unit_of_work
from sunshine.models import Authorization, ConsentEvidence
from sunshine.settings import ROOT
from tests.browser.test_auth_page import fill_and_check
from tests.integration.test_stack import converse

OPENID = "o_demo_zhangjianguo"


def open_link_with_the_demo_camera(stack, launch_chromium, tmp_path):
    """Apply for 张建国, ask the bot for the authorization link, write the demo-camera video and open
    the link in Chromium with it as the camera; returns (page, application id, authorization id)."""
    db = stack.env["DATABASE_URL"]
    with unit_of_work(db) as s:
        zhang = by_openid(s, OPENID)
        assert reference_of(s, zhang.id) is not None  # enrolled by the launcher, from the shared photos
        app_id = (
            Applications(stack.env["SECRET_KEY"], notify=lambda *_, **__: None)
            .apply(s, zhang.id, "sunshine_e_loan", 30_000, 12, "demo-references", purpose="买化肥")
            .id
        )
    answers = "".join(converse(stack, OPENID, "征信授权怎么弄"))
    tokens = re.findall(r"/auth/([A-Za-z0-9_-]{20,})", answers)
    with unit_of_work(db) as s:
        auth = next(a for a in (find_by_token(s, t) for t in tokens) if a.party_role == "applicant")
        auth_id, token = auth.id, next(t for t in tokens if find_by_token(s, t).id == auth.id)
    camera = tmp_path / "camera.y4m"
    env = {k: v for k, v in stack.env.items() if k not in ("SUNSHINE_DEMO", "FACE_CHALLENGE_DEMO_ORDER")}
    made = subprocess.run(  # as a new user types it, without the stack's settings
        [sys.executable, "-m", "auth_flow", "demo-camera", str(camera)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    assert "left,right,mouth" in made.stdout and f"--use-file-for-fake-video-capture={camera}" in made.stdout
    browser = launch_chromium(
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-video-capture={camera}",
    )
    requests.post(f"{stack.wechat_api}/_emulator/oauth_user", json={"openid": OPENID}, timeout=5)
    page = browser.new_context(viewport={"width": 390, "height": 844}, permissions=["camera"]).new_page()
    page.goto(f"{stack.web}/auth/{token}")
    return page, app_id, auth_id


def face_evidence(db: str, auth_id: int) -> ConsentEvidence:
    with unit_of_work(db) as s:
        return (
            s.query(ConsentEvidence)
            .filter(
                ConsentEvidence.authorization_id == auth_id, ConsentEvidence.event.in_(("face_passed", "face_failed"))
            )
            .order_by(ConsentEvidence.id.desc())
            .first()
        )


def test_a_new_user_authorizes_with_the_demo_reference_and_the_fake_camera(stack, launch_chromium, tmp_path):
    db = stack.env["DATABASE_URL"]
    page, app_id, auth_id = open_link_with_the_demo_camera(stack, launch_chromium, tmp_path)

    def consent(page):
        assert "人脸核验通过" in page.text_content("#message"), page.text_content("#message")
        page.click("#consent-go")
        page.wait_for_function("() => document.getElementById('message').dataset.result === 'consented'", timeout=30000)

    fill_and_check(page, "张建国", "120119", consent)
    with unit_of_work(db) as s:
        assert (
            s.query(Authorization).filter_by(party_role="applicant", application_id=app_id).one().status == "consented"
        )
    passed = face_evidence(db, auth_id)
    assert passed.event == "face_passed"
    # the evidence says this consent answered the fixed demo order, not a random challenge
    assert passed.detail["challenge"]["order"] == "fixed_demo_order"
    assert passed.detail["challenge"]["actions"] == ["left", "right", "mouth"]
