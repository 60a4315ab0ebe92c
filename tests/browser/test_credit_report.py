"""Deciding a loan on what the bureau said, in Chromium: the officer opens an application whose
three parties consented (the bureau emulator's reports fetched), sees each party's summary
beside the risk hits, opens the guarantor's full report with a reason, goes back and
approves; the view is recorded."""

from __future__ import annotations

from sqlalchemy import select

from emulators import serve_in_thread
from sunshine.db import unit_of_work
from sunshine.models import LoanApplication, ReportView
from tests.unit.test_report_views import reported  # noqa: F401  the fixture: reports in for every party
from webhooks import create_app


def test_the_officer_reads_a_party_s_report_with_a_reason_and_approves(
    launch_chromium,
    reported,  # noqa: F811
    tmp_path,
):
    settings, app_id, state = reported
    guarantor = next(r for r in state["reports"].values() if r["subject"]["name"] == "王春华")
    with serve_in_thread(create_app(settings)) as base:
        page = launch_chromium().new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{base}/console/applications/{app_id}")
        page.fill("input[name=username]", "officer01")
        page.fill("input[name=password]", "sunshine-demo")
        page.click("button[type=submit]")
        page.wait_for_selector("#credit-reports")
        summary = page.text_content('#credit-reports tr[data-party="guarantor"]')
        assert "王春华" in summary and f"近6个月{guarantor['summary']['queries_last_6m']}次" in summary
        assert page.locator("#credit-reports tr[data-party]").count() == 3
        assert "风险提示" in page.text_content("main")  # the rule hits (none for these parties) just above
        page.screenshot(path=str(tmp_path / "application-with-reports.png"), full_page=True)

        # no reason picked: the browser does not send the form
        page.click('#credit-reports tr[data-party="guarantor"] button')
        assert page.url.endswith(f"/console/applications/{app_id}")
        page.select_option('#credit-reports tr[data-party="guarantor"] select', "loan_approval")
        page.click('#credit-reports tr[data-party="guarantor"] button')
        page.wait_for_selector("#view-record")
        assert "查阅原因：贷款审批" in page.text_content("#view-record")
        assert guarantor["report_id"] in page.text_content("main")
        assert page.locator("#queries tr").count() == len(guarantor["queries"]) + (1 if guarantor["queries"] else 0)
        page.screenshot(path=str(tmp_path / "guarantor-report.png"), full_page=True)

        page.click("#view-record a")
        page.wait_for_selector("#report-views")
        assert "已查看" in page.text_content("#report-views")
        page.fill("#decision textarea", "已核对三方征信，担保人经营稳定")
        page.click("#decision button[value=approve]")
        page.wait_for_selector(".flash.ok")
        assert "已审批通过" in page.text_content(".flash.ok")
    with unit_of_work(settings.database_url) as s:
        assert s.get(LoanApplication, app_id).status == "approved"
        view = s.scalar(select(ReportView))
        assert (view.officer.username, view.party_role, view.reason, view.outcome, view.report_id) == (
            "officer01",
            "guarantor",
            "loan_approval",
            "shown",
            guarantor["report_id"],
        )
