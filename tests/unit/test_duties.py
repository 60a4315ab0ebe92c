"""The duties process (`python -m duties`): a node's periodic duties in one process, each in a
thread, stopping with the first that stops (the supervisor then starts it again)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

import duties
from sunshine.launcher import DUTY_ROLES
from sunshine.leases import PREFIX
from sunshine.redis import connect
from sunshine.settings import ROOT
from tests import TEST_SECRET


def test_the_duties_are_the_launchers_duty_roles():
    assert list(duties.DUTIES) == list(DUTY_ROLES)


@pytest.mark.parametrize(
    ("last", "status"),
    [
        (lambda s: 2, 2),  # its command's exit status (a configuration problem, say)
        (lambda s: 0, 1),  # a duty never ends on its own: the process must be started again
        (lambda s: 1 / 0, 1),  # what its own process would have died of
    ],
)
def test_the_process_stops_with_the_first_duty_that_stops(monkeypatch, caplog, last, status):
    never = threading.Event()
    monkeypatch.setattr(duties, "DUTIES", {"steady": lambda s: never.wait() and 0, "last": last})
    with caplog.at_level(logging.ERROR, "duties"):
        assert duties.run(None, ["steady", "last"]) == status
    assert "duty last stopped" in caplog.text


def test_every_duty_runs_its_first_round_in_one_process(demo_settings, tmp_path):
    """`python -m duties` as the launcher starts it: every duty claims its period in Redis (its first
    round ran) and the checkpointer writes the evidence chain's head."""
    points = tmp_path / "points"
    env = dict(
        os.environ,
        DATABASE_URL=demo_settings.database_url,
        REDIS_URL=demo_settings.redis_url,
        SECRET_KEY=TEST_SECRET,
        EVIDENCE_CHECKPOINT_DIR=str(points),
        PYTHONPATH=str(ROOT),
    )
    proc = subprocess.Popen([sys.executable, "-m", "duties"], env=env, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    redis = connect(demo_settings.redis_url)
    try:
        deadline = time.monotonic() + 60
        while not (points.is_dir() and all(redis.exists(f"{PREFIX}:duty:{d}:last") for d in DUTY_ROLES)):
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, [d for d in DUTY_ROLES if not redis.exists(f"{PREFIX}:duty:{d}:last")]
            time.sleep(0.1)
        assert len(list(points.glob("*.json"))) == 1
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        assert proc.wait(10) == 0


def test_an_unknown_duty_is_refused():
    done = subprocess.run(
        [sys.executable, "-m", "duties", "watcher", "cleaner"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "unknown duty cleaner; the duties: escalator, reminder" in done.stderr
