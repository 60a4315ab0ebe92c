"""The annual inspection in Chromium: the officer opens the on-site task, writes the findings,
picks a conclusion, adds a photo and submits; the result shows locked, with the photo's
SHA-256. A running batch's progress bar follows the batch without a reload."""

from __future__ import annotations

import hashlib

from sqlalchemy import select

from emulators import serve_in_thread
from sunshine import clock
from sunshine.db import unit_of_work
from sunshine.models import InspectionBatch, LineInspection
from tests.unit.test_inspection import jpeg
from tests.web.test_console_inspections import task  # noqa: F401  the fixture: 陈立新's on-site task
from webhooks import create_app


def test_an_inspection_from_task_to_locked_result(launch_chromium, demo_settings, task):  # noqa: F811
    photo = jpeg()
    with serve_in_thread(create_app(demo_settings)) as base:
        page = launch_chromium().new_page()
        page.goto(f"{base}/console/inspections")
        page.fill("input[name=username]", "officer01")
        page.fill("input[name=password]", "sunshine-demo")
        page.click("button[type=submit]")
        page.click("#tasks a:has-text('陈立新')")
        page.wait_for_selector("#inspection-form")
        assert "户主在关注名单上" in page.text_content("#judged")
        page.fill("textarea[name=findings]", "已回村，大棚正常经营，邻里反映良好")
        page.check("input[name=conclusion][value=pass]")
        page.set_input_files(
            "input[name=photos]", files=[{"name": "site.jpg", "mimeType": "image/jpeg", "buffer": photo}]
        )
        page.click("button[value=submit]")
        page.wait_for_selector("#locked")
        assert "已提交，年检结果已锁定" in page.text_content(".flash.ok")
        assert "已回村，大棚正常经营" in page.text_content("#locked")
        assert hashlib.sha256(photo).hexdigest() in page.text_content("#photos")
        assert page.query_selector("#inspection-form") is None  # locked: no form to edit

        with unit_of_work(demo_settings.database_url) as s:
            assert s.get(LineInspection, task).submitted_at is not None
            batch = InspectionBatch(village="黄桥村", run_on=clock.today(), started_by="test", total=10, done=3)
            s.add(batch)
            s.flush()
            batch_id = batch.id
        page.goto(f"{base}/console/inspections/batches/{batch_id}")
        assert page.get_attribute("#batch-progress progress", "value") == "3"
        with unit_of_work(demo_settings.database_url) as s:
            running = s.get(InspectionBatch, batch_id)
            running.done, running.kept, running.on_site, running.status = 10, 9, 1, "done"
        page.wait_for_selector("[data-count=status_label]:text-is('已完成')", timeout=10000)
        assert page.eval_on_selector("#batch-progress progress", "bar => [bar.value, bar.max]") == [10, 10]
        assert page.text_content("[data-count=passed]") == "9"
    with unit_of_work(demo_settings.database_url) as s:
        assert s.scalar(select(LineInspection.conclusion).where(LineInspection.id == task)) == "pass"
