"""`make demo`'s story on the session's shared stack (no stack of its own): a household of its
own, so that no other test's customer gets applications, loans or consents from it."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import select

from auth_flow.enrolment import enroll_reference
from demo.story import Household, StepFailed, Target, tell
from lending.customers import by_id_number
from lending.identity import check_digit
from lending.village_file import import_lines
from sunshine.db import unit_of_work
from sunshine.demo import CLIP, DEMO, clip_frame, demo_faces_dir, demo_valid_until
from sunshine.models import LoanApplication, Officer


def _id(first17: str) -> str:
    return first17 + check_digit(first17)


HEAD, SPOUSE = _id("32128319790303011"), _id("32128319810404022")
STORY = Household(
    "o_story_sundashan", "孙大山", HEAD[-6:], "马桂兰", SPOUSE[-6:], "u_story_maguilan", "o_story_maguilan"
)


@pytest.fixture
def story_household(stack):
    """孙大山 and 马桂兰 in the village credit file, bound to their WeChat, with the demo face
    (the frame of the clip 张建国's reference is) as their reference, officer01 their officer."""
    secret, db = stack.env["SECRET_KEY"], stack.env["DATABASE_URL"]
    village = (
        "village,household_head,id_number,phone,customer_type,credit_line,valid_until,members,tags\n"
        f"黄桥村,孙大山,{HEAD},13912340021,farmer,200000,{demo_valid_until()},spouse:马桂兰:{SPOUSE}:13912340022,\n"
    )
    with (DEMO / "face_references.csv").open(encoding="utf-8") as rows:
        photo = next(csv.DictReader(rows))["photo"]  # 张建国's: the clip's frame the demo camera matches
    assert photo.startswith(CLIP + "#")
    faces = demo_faces_dir()
    assert faces is not None, "the demo face photos (shared/testdata/faces) are needed"
    image = clip_frame(faces / CLIP, int(photo.split("#")[1]))
    with unit_of_work(db) as s:
        report = import_lines(s, secret, io.StringIO(village), actor="test")
        assert not report.errors, report.errors
        officer_id = s.scalar(select(Officer.id).where(Officer.username == "officer01"))
        head, spouse = by_id_number(s, secret, HEAD), by_id_number(s, secret, SPOUSE)
        head.wechat_openid, spouse.unionid = STORY.openid, STORY.spouse_unionid
        head.officer_id = spouse.officer_id = officer_id
        for person in (head, spouse):
            enroll_reference(s, secret, person, image, "test", source="demo")
        return head.id


def test_the_story_from_the_chat_to_the_money_and_the_officer(stack, story_household):
    out = io.StringIO()
    try:
        figures = tell(Target(stack.web, stack.wechat_api, stack.env["DATABASE_URL"]), STORY, out)
    except StepFailed as exc:
        pytest.fail(f"{exc}\n{out.getvalue()}")
    told = out.getvalue()
    for step in range(1, 10):
        assert f"== {step}." in told, told
    assert "俺想贷款3万买化肥" in told and "已提交" in told
    assert 0 < figures["demo_link_to_reports_s"] < figures["demo_apply_to_money_s"]
    with unit_of_work(stack.env["DATABASE_URL"]) as s:
        apps = s.scalars(
            select(LoanApplication).where(LoanApplication.customer_id == story_household).order_by(LoanApplication.id)
        ).all()
        assert [(a.amount, a.status) for a in apps] == [(30_000, "disbursed"), (120_000, "approved")]
