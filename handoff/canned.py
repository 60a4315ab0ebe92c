"""Canned replies (常用回复): common answers an officer picks in a conversation and may edit
before sending, kept as data in canned_replies.yml and checked when the web app starts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from handoff.service import REPLY_MAX_BYTES
from sunshine.yaml_files import read_yaml

CANNED_REPLIES_FILE = Path(__file__).with_name("canned_replies.yml")


class CannedRepliesError(ValueError):
    """canned_replies.yml cannot be used; the message names the group and reply."""


@dataclass(frozen=True)
class CannedReply:
    title: str
    text: str


@dataclass(frozen=True)
class CannedGroup:
    title: str
    replies: tuple[CannedReply, ...]


def _text(value: object, where: str, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise CannedRepliesError(f"{where}: {field} must be a non-empty text")
    return value.strip()


def _reply(raw: object, group: str, number: int) -> CannedReply:
    where = f"group {group!r}, reply {number}"
    if not isinstance(raw, dict) or set(raw) != {"title", "text"}:
        raise CannedRepliesError(f"{where}: needs exactly title and text")
    reply = CannedReply(_text(raw["title"], where, "title"), _text(raw["text"], where, "text"))
    if len(reply.text.encode("utf-8")) > REPLY_MAX_BYTES:
        raise CannedRepliesError(f"{where} ({reply.title}): longer than one WeChat message ({REPLY_MAX_BYTES} bytes)")
    return reply


def _group(raw: object, number: int) -> CannedGroup:
    if not isinstance(raw, dict) or set(raw) != {"group", "replies"}:
        raise CannedRepliesError(f"group {number}: needs exactly group and replies")
    title = _text(raw["group"], f"group {number}", "group")
    if not isinstance(raw["replies"], list) or not raw["replies"]:
        raise CannedRepliesError(f"group {title!r}: replies must be a non-empty list")
    replies = tuple(_reply(r, title, i) for i, r in enumerate(raw["replies"], 1))
    titles = [r.title for r in replies]
    if len(set(titles)) != len(titles):
        raise CannedRepliesError(f"group {title!r}: reply titles repeat")
    return CannedGroup(title, replies)


def load_canned_replies(path: Path | None = None) -> tuple[CannedGroup, ...]:
    """The groups of canned replies in the file (by default CANNED_REPLIES_FILE), checked;
    CannedRepliesError says what is wrong."""
    path = path or CANNED_REPLIES_FILE
    try:
        raw = read_yaml(path)
    except (OSError, yaml.YAMLError) as exc:
        raise CannedRepliesError(f"{path.name}: cannot be read: {exc}") from None
    if not isinstance(raw, list) or not raw:
        raise CannedRepliesError(f"{path.name}: must be a non-empty list of groups")
    groups = tuple(_group(g, i) for i, g in enumerate(raw, 1))
    titles = [g.title for g in groups]
    if len(set(titles)) != len(titles):
        raise CannedRepliesError(f"{path.name}: group titles repeat")
    return groups
