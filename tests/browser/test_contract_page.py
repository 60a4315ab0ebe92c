"""The loan contract's page in Debian's Chromium: the borrower opens the approval notice's link
in their WeChat (web authorization, emulated), reads the contract, signs it and downloads the PDF."""

from __future__ import annotations

from dataclasses import replace

import requests

from emulators import serve_in_thread
from emulators.wechat.api import create_app as wechat_app
from sunshine.db import unit_of_work
from sunshine.models import LoanApplication
from tests.conftest import free_port
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
