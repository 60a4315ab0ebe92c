"""The loan contract's page in Debian's Chromium: the borrower opens the approval notice's link
in their WeChat (web authorization, emulated), reads the contract, signs it and downloads the PDF;
above CONTRACT_FACE_ABOVE they first do the server's face challenge in front of Chromium's fake
camera (a y4m file, as the authorization page's test)."""

from __future__ import annotations

from dataclasses import replace

import requests

from auth_flow import liveness
from auth_flow.enrolment import enroll_reference
from emulators import serve_in_thread
from emulators.wechat.api import create_app as wechat_app
from lending.customers import by_openid
from sunshine.db import unit_of_work
from sunshine.demo import FPS, write_y4m
from sunshine.models import ConsentEvidence, LoanApplication, LoanContract
from tests.browser.test_auth_page import challenge_video
from tests.conftest import TEST_SECRET, free_port
from tests.unit import auth_media as media
from tests.unit.contract_helpers import ZHANG, Disbursals, approved
from webhooks import create_app


def test_the_borrower_reads_and_signs_the_contract_in_the_page(launch_chromium, demo_settings, tmp_path):
    _, _, app_id, token = approved(demo_settings.database_url)
    jobs = Disbursals()
    browser = launch_chromium()
    port = free_port()
    with serve_in_thread(wechat_app(demo_settings)) as wx:
        requests.post(f"{wx}/_emulator/oauth_user", json={"openid": ZHANG})
        settings = replace(
            demo_settings, wechat_api_base=wx, wechat_open_base=wx, public_base_url=f"http://127.0.0.1:{port}"
        )
        with serve_in_thread(create_app(settings, jobs), port=port) as base:  # type: ignore[arg-type]
            context = browser.new_context(viewport={"width": 390, "height": 844}, accept_downloads=True)
            page = context.new_page()
            console: list[str] = []
            page.on("console", lambda m: console.append(m.text))
            page.goto(f"{base}/contract/{token}")
            assert page.title() == "借款合同" and page.url.split("#")[0] == f"{base}/contract/{token}"
            assert "伍万元整" in page.inner_text("#contract-text")
            page.screenshot(path=str(tmp_path / "contract-offered.png"), full_page=True)
            page.click("#sign-go")  # not ticked yet
            assert "请先阅读合同" in page.inner_text("#message")
            page.check("#agree")
            page.click("#sign-go")
            page.wait_for_selector("#signed:not([hidden])")
            assert "签署成功" in page.inner_text("#message") and page.is_hidden("#sign-step")
            page.screenshot(path=str(tmp_path / "contract-signed.png"), full_page=True)
            with page.expect_download() as download:
                page.click("#pdf-link")
            download.value.save_as(tmp_path / "contract.pdf")
            pdf = (tmp_path / "contract.pdf").read_bytes()
            assert pdf.startswith(b"%PDF")
            assert not [m for m in console if "Content Security Policy" in m], console
    assert jobs.queued == [app_id]
    with unit_of_work(demo_settings.database_url) as s:
        assert s.get(LoanApplication, app_id).status == "signed"


def test_above_the_limit_the_borrower_passes_the_face_challenge_then_signs(
    launch_chromium, demo_settings, tmp_path, monkeypatch
):
    _, _, app_id, token = approved(demo_settings.database_url, amount=80_000)
    with unit_of_work(demo_settings.database_url) as s:
        enroll_reference(s, TEST_SECRET, by_openid(s, ZHANG), media.reference(), "officer01")
    monkeypatch.setattr(liveness, "_random", media.FixedChallenge("left", "right", "mouth"))
    video = tmp_path / "camera.y4m"
    write_y4m(video, challenge_video(["left", "right", "mouth"]), FPS)
    browser = launch_chromium(
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-video-capture={video}",
    )
    jobs = Disbursals()
    port = free_port()
    with serve_in_thread(wechat_app(demo_settings)) as wx:
        requests.post(f"{wx}/_emulator/oauth_user", json={"openid": ZHANG})
        settings = replace(
            demo_settings, wechat_api_base=wx, wechat_open_base=wx, public_base_url=f"http://127.0.0.1:{port}"
        )
        with serve_in_thread(create_app(settings, jobs), port=port) as base:  # type: ignore[arg-type]
            context = browser.new_context(viewport={"width": 390, "height": 844}, permissions=["camera"])
            page = context.new_page()
            console: list[str] = []
            page.on("console", lambda m: console.append(m.text))
            page.goto(f"{base}/contract/{token}")
            assert "捌万元整" in page.inner_text("#contract-text")
            assert page.is_visible("#step-face") and page.is_hidden("#sign-step")  # the camera before the button
            page.wait_for_function("() => document.getElementById('camera').readyState >= 2", timeout=15000)
            page.click("#face-go")
            page.wait_for_function(
                "() => ['人脸核验通过', '再试', '锁定', '人工核验'].some(function (t) {"
                " return document.getElementById('message').textContent.includes(t); })",
                timeout=60000,
            )
            assert "人脸核验通过" in page.inner_text("#message"), page.inner_text("#message")
            assert page.is_hidden("#step-face") and page.is_visible("#sign-step")
            page.screenshot(path=str(tmp_path / "contract-face-passed.png"), full_page=True)
            page.check("#agree")
            page.click("#sign-go")
            page.wait_for_selector("#signed:not([hidden])")
            assert "签署成功" in page.inner_text("#message")
            assert not [m for m in console if "Content Security Policy" in m], console
    assert jobs.queued == [app_id]
    with unit_of_work(demo_settings.database_url) as s:
        contract = s.query(LoanContract).filter_by(application_id=app_id).one()
        passed = s.query(ConsentEvidence).filter_by(contract_id=contract.id, event="face_passed").one()
        assert contract.status == "signed" and s.get(ConsentEvidence, contract.evidence_id).face["decision"] == "pass"
    assert passed.detail["challenge"]["actions"] == ["left", "right", "mouth"]
