"""The authorization page in Debian's Chromium, its camera fed by Chromium's fake
capture device from a y4m file: a face doing the server's challenge goes from the QR
link to consent; a recording of another order and a still image of the same face fail
the liveness check."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import requests

from auth_flow import liveness
from emulators import serve_in_thread
from emulators.wechat.api import create_app as wechat_app
from sunshine import demo
from sunshine.db import unit_of_work
from sunshine.demo import FPS, write_y4m
from sunshine.models import Authorization, ConsentEvidence
from tests.conftest import free_port
from tests.unit import auth_media as media
from webhooks import create_app


def challenge_video(actions) -> list[np.ndarray]:
    return demo.challenge_video(media.clip_frames(), actions)


def run_page(launch_chromium, settings, tmp_path, token, frames, name, digits, then, fps=30):
    """Open the link in 张建国's WeChat (through WeChat's web authorization, emulated), go through
    the page up to the face check, then call `then(page)` while the servers run."""
    video = tmp_path / "camera.y4m"
    write_y4m(video, frames, fps)
    browser = launch_chromium(
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-video-capture={video}",
    )
    port = free_port()
    with serve_in_thread(wechat_app(settings)) as wx:
        requests.post(f"{wx}/_emulator/oauth_user", json={"openid": "o_demo_zhangjianguo"})
        settings = replace(
            settings, wechat_api_base=wx, wechat_open_base=wx, public_base_url=f"http://127.0.0.1:{port}"
        )
        with serve_in_thread(create_app(settings), port=port) as base:
            context = browser.new_context(viewport={"width": 390, "height": 844}, permissions=["camera"])
            page = context.new_page()
            visited, console = [], []
            page.on("request", lambda r: visited.append(r.url) if r.is_navigation_request() else None)
            page.on("console", lambda m: console.append(m.text))
            page.goto(f"{base}/auth/{token}")
            assert "征信查询授权" in page.title()
            assert any(u.startswith(f"{wx}/connect/oauth2/authorize?") for u in visited), visited
            assert any(u.startswith(f"{base}/auth/wechat-callback?code=") for u in visited), visited
            fill_and_check(page, name, digits, then)
            assert not [m for m in console if "Content Security Policy" in m], console  # the CSP blocked nothing


def fill_and_check(page, name, digits, then):
    # before identity the page shows nothing the check asks: a masked name, the ID's first 4
    assert page.text_content("#party-name") == name[0] + "*" + name[-1]
    assert page.text_content("#party-id").endswith("*" * 14)
    assert "阳光信贷助手" in page.text_content("#requested-by") or "客户经理" in page.text_content("#requested-by")
    page.fill("#name", name)
    page.fill("#id-digits", digits)
    page.click("#identity-go")
    page.wait_for_selector("#step-biometric:not([hidden])")
    assert page.text_content("#party-name") == name  # this session passed: the consent names the party
    assert name in page.text_content("#consent-text")
    assert page.is_visible("#biometric-no")  # declining is as visible as agreeing
    page.click("#biometric-go")
    # Predicates as functions, not strings: the page's CSP forbids evaluating strings.
    page.wait_for_function("() => document.getElementById('camera').readyState >= 2", timeout=15000)
    assert "matrix(-1" in page.eval_on_selector("#camera", "v => getComputedStyle(v).transform")  # mirrored
    page.click("#face-go")
    page.wait_for_function(
        "() => ['人脸核验通过', '再试', '锁定', '人工核验'].some(function (t) {"
        " return document.getElementById('message').textContent.includes(t); })",
        timeout=60000,
    )
    then(page)


@pytest.fixture
def applicant(demo_settings, application):
    from sunshine.models import Customer
    from sunshine.protect import unseal
    from tests.conftest import TEST_SECRET

    _, tokens, names = application
    with unit_of_work(demo_settings.database_url) as s:
        auth = s.query(Authorization).filter_by(party_role="applicant").one()
        digits = unseal(TEST_SECRET, s.get(Customer, auth.party_customer_id).id_sealed)[-6:]
    return tokens["applicant"], names["applicant"], digits


def test_the_asked_actions_in_order_go_from_the_link_to_consent(
    launch_chromium, demo_settings, applicant, tmp_path, monkeypatch
):
    token, name, digits = applicant
    monkeypatch.setattr(liveness, "_random", media.FixedChallenge("left", "right", "mouth"))

    def consent(page):
        assert "人脸核验通过" in page.text_content("#message"), page.text_content("#message")
        page.click("#consent-go")
        page.wait_for_function("() => document.getElementById('message').dataset.result === 'consented'", timeout=30000)
        assert "授权成功" in page.text_content("#message")
        assert page.is_visible("#done") and "接下来会怎样" in page.text_content("#done")

    run_page(
        launch_chromium, demo_settings, tmp_path, token, challenge_video(["left", "right", "mouth"]), name, digits,
        consent, fps=FPS,
    )  # fmt: skip
    with unit_of_work(demo_settings.database_url) as s:
        assert s.query(Authorization).filter_by(party_role="applicant").one().status == "consented"
        passed = s.query(ConsentEvidence).filter_by(event="face_passed").one()
    steps = passed.detail["actions"]["steps"]
    assert [(step["asked"], step["shown"]) for step in steps] == [("left", True), ("right", True), ("mouth", True)]
    assert all(step["frames"] >= 2 for step in steps)  # 3 taken per step (one blurred mid-turn may show no face)


def test_a_recording_of_another_order_is_refused(launch_chromium, demo_settings, applicant, tmp_path, monkeypatch):
    """The recording of an attempt that turned left first, replayed when the server asks for right first."""
    token, name, digits = applicant
    monkeypatch.setattr(liveness, "_random", media.FixedChallenge("right", "left", "mouth"))

    def refused(page):
        message = page.text_content("#message")
        assert "按提示的顺序" in message and "还可以再试4次" in message, message
        assert page.is_hidden("#step-consent") and page.is_visible("#face-go")

    run_page(
        launch_chromium, demo_settings, tmp_path, token, challenge_video(["left", "right", "mouth"]), name, digits,
        refused, fps=FPS,
    )  # fmt: skip
    with unit_of_work(demo_settings.database_url) as s:
        assert s.query(Authorization).filter_by(party_role="applicant").one().status == "pending"
        failed = s.query(ConsentEvidence).filter_by(event="face_failed").one()
    assert failed.detail["challenge"]["actions"] == ["right", "left", "mouth"]
    assert [step["shown"] for step in failed.detail["actions"]["steps"]] == [False, False, True]


def test_a_still_image_fails_the_liveness_check(launch_chromium, demo_settings, applicant, tmp_path):
    token, name, digits = applicant
    still = [media.clip_frames()[150]] * 30

    def refused(page):
        assert "真人动作" in page.text_content("#message") and "还可以再试" in page.text_content("#message")
        assert page.is_hidden("#step-consent")

    run_page(launch_chromium, demo_settings, tmp_path, token, still, name, digits, refused)
    with unit_of_work(demo_settings.database_url) as s:
        assert s.query(Authorization).filter_by(party_role="applicant").one().status == "pending"


def test_a_review_waits_on_the_page_until_the_officer_approves(
    launch_chromium, demo_settings, applicant, tmp_path, monkeypatch
):
    from sqlalchemy import select

    from auth_flow import face_review
    from auth_flow.evidence import Client
    from sunshine.models import FaceReview, Officer

    token, name, digits = applicant
    monkeypatch.setattr(liveness, "_random", media.FixedChallenge("left", "right", "mouth"))
    # The clip's frames match at 0.3-0.5: passing at <= 0.2 and reviewing up to 0.6, an officer decides.
    settings = replace(demo_settings, face_tolerance=0.2, face_review_distance=0.6, face_review_minutes=10)

    def waits_then_continues(page):
        page.wait_for_selector("#step-face-review:not([hidden])", timeout=15000)
        assert "已请客户经理人工核验，一般10分钟内完成" in page.text_content("#face-review-text")
        assert page.is_hidden("#step-face") and page.is_hidden("#step-consent")
        with unit_of_work(settings.database_url) as s:
            officer = s.scalar(select(Officer).where(Officer.username == "officer01"))
            review_id = s.scalar(select(FaceReview.id).where(FaceReview.status == "pending"))
            face_review.decide(s, review_id, officer, True, Client("10.1.0.2", "console"), settings.auth_max_attempts)
        page.wait_for_selector("#step-consent:not([hidden])", timeout=15000)  # the page polls every 5 s
        assert "客户经理已核验通过" in page.text_content("#message")
        page.click("#consent-go")
        page.wait_for_function("() => document.getElementById('message').dataset.result === 'consented'", timeout=30000)

    run_page(
        launch_chromium, settings, tmp_path, token, challenge_video(["left", "right", "mouth"]), name, digits,
        waits_then_continues, fps=FPS,
    )  # fmt: skip
    with unit_of_work(demo_settings.database_url) as s:
        auth = s.query(Authorization).filter_by(party_role="applicant").one()
        assert auth.status == "consented" and auth.attempts == 0
