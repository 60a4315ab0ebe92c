"""Canned replies (handoff/canned_replies.yml): the shipped file is valid, and a broken one is
refused with a message naming the group and the reply (the web app then does not start)."""

from __future__ import annotations

import pytest

from handoff.canned import CannedRepliesError, load_canned_replies
from handoff.service import REPLY_MAX_BYTES
from webhooks import create_app


def test_the_shipped_replies_are_grouped_titled_and_fit_one_message():
    groups = load_canned_replies()
    assert [g.title for g in groups] == ["问候与结束", "贷款申请", "征信授权", "还款"]
    for group in groups:
        assert group.replies and len({r.title for r in group.replies}) == len(group.replies)
        assert all(r.text and len(r.text.encode()) <= REPLY_MAX_BYTES for r in group.replies)


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "must be a non-empty list of groups"),
        ("- group: 问候\n", "group 1: needs exactly group and replies"),
        ("- group: 问候\n  replies: []\n", "group '问候': replies must be a non-empty list"),
        ("- group: 问候\n  replies:\n    - title: 你好\n", "group '问候', reply 1: needs exactly title and text"),
        ("- group: 问候\n  replies:\n    - {title: 你好, text: '  '}\n", "reply 1: text must be a non-empty text"),
        (
            "- group: 问候\n  replies:\n    - {title: 你好, text: 您好}\n    - {title: 你好, text: 您好呀}\n",
            "group '问候': reply titles repeat",
        ),
        (f"- group: 长\n  replies:\n    - {{title: 长, text: {'很' * 700}}}\n", "longer than one WeChat message"),
        (
            "- {group: 甲, replies: [{title: a, text: b}]}\n- {group: 甲, replies: [{title: a, text: b}]}\n",
            "group titles repeat",
        ),
        ("- group: [\n", "cannot be read"),
    ],
)
def test_a_broken_file_is_refused_saying_where(tmp_path, text, message):
    path = tmp_path / "canned_replies.yml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CannedRepliesError, match=message.replace("(", r"\(").replace("[", r"\[")):
        load_canned_replies(path)


def test_the_web_app_does_not_start_with_a_broken_file(tmp_path, monkeypatch, settings):
    path = tmp_path / "canned_replies.yml"
    path.write_text("- group: 问候\n", encoding="utf-8")
    monkeypatch.setattr("handoff.canned.CANNED_REPLIES_FILE", path)
    with pytest.raises(CannedRepliesError, match="group 1"):
        create_app(settings)
