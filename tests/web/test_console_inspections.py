"""The annual inspection in the console through Flask's test client on a real database and
Redis: the officer's tasks, a task saved then submitted with photos and locked, a second
submit refused and recorded, another officer's task refused (403), bad photos refused, and a
batch's summary and progress."""

from __future__ import annotations

import hashlib
import io

import pytest
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from lending.risk import watch
from sunshine.db import unit_of_work
from sunshine.models import AuditEntry, CreditLine, InspectionBatch, LineInspection, Officer
from tests.conftest import TEST_SECRET
from tests.unit.test_inspection import CHEN_ID, ZHANG_ID, jpeg, make_due, run
from tests.web import test_console_officers

login = test_console_officers.login  # the fixture: a client logged in as a demo officer


@pytest.fixture
def task(demo_settings) -> int:
    """A batch over the demo village: 张建国 passes off-site, 陈立新 (on the watch list) is sent on site."""
    make_due(demo_settings.database_url, ZHANG_ID, {"income_band": "10-20万"})
    make_due(demo_settings.database_url, CHEN_ID, {"income_band": "10-20万"})
    with unit_of_work(demo_settings.database_url) as s:
        watch(s, TEST_SECRET, CHEN_ID, "村委反映外出", "officer01")
    run(demo_settings, village="黄桥村")
    with unit_of_work(demo_settings.database_url) as s:
        return s.scalar(select(LineInspection.id).where(LineInspection.mode == "on_site"))


def post(client, task_id, action, findings="大棚正常经营", conclusion="pass", amount="", photos=(), csrf=None):
    data = {
        "action": action,
        "findings": findings,
        "conclusion": conclusion,
        "new_amount": amount,
        "csrf": csrf or client.csrf,
        "photos": [(io.BytesIO(p), f"p{n}.jpg") for n, p in enumerate(photos)],
    }
    return client.post(f"/console/inspections/{task_id}", data=data, content_type="multipart/form-data")


def test_an_inspection_from_task_to_locked_result(login, demo_settings, task):
    client = login()
    listing = client.get("/console/inspections").get_data(as_text=True)
    assert "陈立新" in listing and "户主在关注名单上：村委反映外出" in listing and "张建国" not in listing
    page = client.get(f"/console/inspections/{task}").get_data(as_text=True)
    assert "上门核查" in page and "150,000元" in page and "提交并锁定" in page
    assert "<th>年收入档次</th><td>10-20万</td><td>10-20万</td>" in page
    photo = jpeg()
    resp = post(client, task, "save", findings="去了，", photos=[photo])
    assert resp.status_code == 303
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "已保存（提交前还可以修改）" in page and hashlib.sha256(photo).hexdigest() in page
    resp = post(client, task, "submit", findings="已回村，大棚正常经营", conclusion="lower", amount="120000")
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "已提交，年检结果已锁定" in page and "上门核查结果（已锁定）" in page and "提交并锁定" not in page
    assert "额度 120,000元" in page
    with unit_of_work(demo_settings.database_url) as s:
        photo_id = s.get(LineInspection, task).photos[0].id
    got = client.get(f"/console/inspections/{task}/photos/{photo_id}")
    assert (got.mimetype, got.data) == ("image/jpeg", photo)

    resp = post(client, task, "submit", findings="再改一下", conclusion="withdraw", photos=[jpeg()])
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "提交并锁定，不能再修改" in page
    with unit_of_work(demo_settings.database_url) as s:
        locked = s.get(LineInspection, task)
        assert (locked.conclusion, locked.findings, len(locked.photos)) == ("lower", "已回村，大棚正常经营", 1)
        assert s.get(CreditLine, locked.credit_line_id).amount == 120_000
        assert s.scalar(select(AuditEntry.actor).where(AuditEntry.action == "inspection.refused_locked")) == (
            "officer:officer01"
        )


def test_another_officers_task_is_403_without_the_supervisor_role(login, demo_settings, task):
    with unit_of_work(demo_settings.database_url) as s:
        s.add(
            Officer(
                username="officer02",
                display_name="王经理",
                password_hash=generate_password_hash("sunshine-demo"),
                role="officer",
                must_change_password=False,
            )
        )
    other = login("officer02")
    assert other.get(f"/console/inspections/{task}").status_code == 403
    assert post(other, task, "submit", photos=[jpeg()]).status_code == 403
    assert "陈立新" not in other.get("/console/inspections").get_data(as_text=True)
    with unit_of_work(demo_settings.database_url) as s:
        assert s.get(LineInspection, task).submitted_at is None
        assert (
            len(
                s.scalars(
                    select(AuditEntry).where(AuditEntry.action == "inspection.refused_other").order_by(AuditEntry.id)
                ).all()
            )
            == 2
        )
    supervisor = login("supervisor01")
    assert "陈立新" in supervisor.get("/console/inspections").get_data(as_text=True)
    assert supervisor.get(f"/console/inspections/{task}").status_code == 200


@pytest.mark.parametrize(
    "photo, message",
    [(b"GIF89a not a photo", "只能上传JPEG或PNG格式的照片"), (b"\xff\xd8\xff broken", "上传的不是照片")],
)
def test_a_file_that_is_not_a_photo_is_refused_and_nothing_is_kept(login, demo_settings, task, photo, message):
    client = login()
    resp = post(client, task, "submit", photos=[photo])
    assert resp.status_code == 422 and message in resp.get_data(as_text=True)
    with unit_of_work(demo_settings.database_url) as s:
        t = s.get(LineInspection, task)
        assert (t.findings, t.photos, t.submitted_at) == ("", [], None)


def test_a_post_without_the_csrf_token_is_refused(login, task):
    assert post(login(), task, "save", csrf="forged").status_code == 400


def test_the_batch_summary_and_its_progress(login, demo_settings, task):
    client = login()
    with unit_of_work(demo_settings.database_url) as s:
        batch_id = s.scalar(select(InspectionBatch.id))
    page = client.get(f"/console/inspections/batches/{batch_id}").get_data(as_text=True)
    assert "年检批次" in page and "已完成" in page and "陈立新" in page and 'value="2"' in page
    got = client.get(f"/api/console/inspections/batches/{batch_id}").get_json()
    assert got == {
        "status": "done",
        "total": 2,
        "done": 2,
        "passed": 1,
        "kept": 1,
        "raised": 0,
        "lowered": 0,
        "on_site": 1,
        "on_site_done": 0,
        "failed": 0,
    }
    assert client.get("/api/console/inspections/batches/999").status_code == 404
