"""Counters kept in Redis so that every web and worker process adds to the same
figures; rendered in Prometheus text format by /metrics."""

from __future__ import annotations

import logging

import redis

PREFIX = "metrics:"
log = logging.getLogger(__name__)

HELP = {
    "wechat_messages_total": "WeChat messages and events received, by type",
    "wechat_replies_total": "Answers to WeChat messages, by how they were delivered",
    "wechat_rejected_total": "WeChat requests refused, by reason",
    "service_restarts_total": "Processes the launcher's supervisor restarted after they died, by service",
}


def count(r: redis.Redis, name: str, **labels: str) -> None:
    """Add one to a counter; never fails the request that counts."""
    label = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    try:
        r.hincrby(PREFIX + name, label, 1)
    except redis.RedisError as exc:
        log.warning("metric %s not counted: %s", name, exc)


def render(r: redis.Redis) -> str:
    lines = []
    for name, help_text in HELP.items():
        lines += [f"# HELP sunshine_{name} {help_text}", f"# TYPE sunshine_{name} counter"]
        for label, value in sorted(r.hgetall(PREFIX + name).items()):
            label = label.decode()
            lines.append(f"sunshine_{name}{{{label}}} {int(value)}" if label else f"sunshine_{name} {int(value)}")
    return "\n".join(lines) + "\n"
