"""The launcher's supervisor restarts a process that dies, gives up on one that keeps dying,
and restarts nothing on Ctrl-C."""

from __future__ import annotations

import io
import os
import shlex
import signal
import sys
import threading
import time

import psutil
import pytest

from sunshine import supervisor
from sunshine.supervisor import Supervisor

SLEEPER = f"exec {sys.executable} -c 'import time; time.sleep(60)'"


class Lines(io.StringIO):
    def flush(self):
        pass


def run_in_thread(sup: Supervisor) -> threading.Thread:
    # Signal handlers can only be set in the main thread: loop() sets them, so patch signal here.
    thread = threading.Thread(target=sup.loop, daemon=True)
    thread.start()
    return thread


def wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def quiet_signals(monkeypatch):
    monkeypatch.setattr(supervisor.signal, "signal", lambda *a: None)


def make(backoff_s=0.2):
    from honcho.printer import Printer

    out = Lines()
    restarted = []
    sup = Supervisor(backoff_s, on_restart=restarted.append, printer=Printer(out))
    return sup, out, restarted


def test_a_killed_process_is_restarted_and_counted(quiet_signals):
    sup, out, restarted = make()
    sup.add_process("sleeper", SLEEPER)
    sup.add_process("other", SLEEPER)
    thread = run_in_thread(sup)
    assert wait_for(lambda: sup._processes["sleeper"].get("pid") and sup._processes["other"].get("pid"))
    first, other = sup._processes["sleeper"]["pid"], sup._processes["other"]["pid"]
    os.kill(first, signal.SIGKILL)
    assert wait_for(lambda: sup._processes["sleeper"].get("pid") not in (None, first))
    assert wait_for(lambda: restarted == ["sleeper"])
    second = sup._processes["sleeper"]["pid"]
    assert psutil.pid_exists(second) and psutil.Process(other).is_running()  # the other one untouched
    assert sup._processes["other"]["pid"] == other and sup.restarts == {"sleeper": 1}
    sup._due.clear()
    sup.terminate()
    thread.join(15)
    assert not thread.is_alive()
    assert not psutil.pid_exists(second) or psutil.Process(second).status() == psutil.STATUS_ZOMBIE
    text = out.getvalue()
    assert "restarting sleeper in 0.2 s" in text and "sleeper restarted (restart #1)" in text
    assert sup.restarts == {"sleeper": 1}  # nothing restarted on the way down


def test_a_process_that_keeps_dying_stops_everything(quiet_signals, monkeypatch):
    monkeypatch.setattr(supervisor, "MAX_QUICK_FAILURES", 3)
    sup, out, restarted = make(backoff_s=0.05)
    sup.add_process("broken", f"exec {sys.executable} -c 'raise SystemExit(3)'")
    sup.add_process("fine", SLEEPER)
    thread = run_in_thread(sup)
    thread.join(30)
    assert not thread.is_alive()
    assert sup.returncode == 3
    assert restarted == ["broken", "broken"]
    assert "broken failed 3 times" in out.getvalue()
    fine = sup._processes["fine"]["pid"]
    assert not psutil.pid_exists(fine) or psutil.Process(fine).status() == psutil.STATUS_ZOMBIE


def test_a_readiness_check_holds_back_the_later_processes(quiet_signals, tmp_path):
    flag = tmp_path / "ready"
    sup, out, _ = make()
    code = f"import time; time.sleep(0.5); open({str(flag)!r}, 'w'); time.sleep(60)"
    sup.add_process("first", "exec " + shlex.join([sys.executable, "-c", code]), ready=flag.exists)
    sup.add_process("second", SLEEPER)
    thread = run_in_thread(sup)
    assert wait_for(lambda: sup._processes["second"].get("pid"))
    assert flag.exists()
    sup.terminate()
    thread.join(15)
    assert not thread.is_alive()


def test_a_service_whose_forked_child_holds_its_output_is_restarted_and_the_child_killed(quiet_signals):
    """RQ's worker forks its scheduler: the worker's death must be seen even though the
    scheduler still holds the output pipe, and the scheduler must not outlive it."""
    code = "import os, time; os.fork(); time.sleep(60)"
    sup, out, restarted = make()
    sup.add_process("forking", "exec " + shlex.join([sys.executable, "-c", code]))
    thread = run_in_thread(sup)
    assert wait_for(lambda: sup._processes["forking"].get("pid"))
    first = sup._processes["forking"]["pid"]
    assert wait_for(lambda: psutil.Process(first).children())
    forked = psutil.Process(first).children()[0]
    os.kill(first, signal.SIGKILL)
    assert wait_for(lambda: restarted == ["forking"])
    assert wait_for(lambda: not forked.is_running() or forked.status() == psutil.STATUS_ZOMBIE)
    sup.terminate()
    thread.join(15)
    assert not thread.is_alive()


def test_on_the_way_down_a_dependency_stops_after_the_others(quiet_signals, tmp_path):
    flag = tmp_path / "up"
    code = (
        "import signal, sys, time; signal.signal(signal.SIGTERM, lambda *a: (time.sleep(0.5), sys.exit(0))); "
        "time.sleep(60)"
    )
    sup, out, _ = make()
    sup.add_process("redis", SLEEPER, ready=lambda: flag.touch() or True)
    sup.add_process("user", "exec " + shlex.join([sys.executable, "-c", code]))
    thread = run_in_thread(sup)
    assert wait_for(lambda: sup._processes["user"].get("pid"))
    time.sleep(0.5)
    sup.terminate()
    thread.join(15)
    lines = out.getvalue().splitlines()
    order = [i for i, line in enumerate(lines) if "user stopped" in line or "sending SIGTERM to redis" in line]
    assert len(order) == 2 and "user stopped" in lines[order[0]], lines


def test_the_preparation_runs_after_the_processes_that_do_not_wait_for_it_and_before_the_others(quiet_signals):
    sup, out, _ = make()
    sup.add_process("model", SLEEPER, before_prepare=True)
    sup.add_process("web", SLEEPER)
    seen = []
    sup_loop = threading.Thread(target=sup.loop, kwargs={"prepare": lambda: seen.append(set(started(sup)))})
    sup_loop.start()
    assert wait_for(lambda: sup._processes["web"].get("pid"))
    assert seen == [{"model"}]
    sup.terminate()
    sup_loop.join(15)
    assert not sup_loop.is_alive()


def test_a_failed_preparation_stops_what_started_and_is_raised(quiet_signals):
    sup, out, _ = make()
    sup.add_process("model", SLEEPER, before_prepare=True)
    sup.add_process("web", SLEEPER)
    raised = []

    def prepare():
        assert wait_for(lambda: sup._processes["model"].get("process") is not None)
        raise RuntimeError("the migration failed")

    def loop():
        try:
            sup.loop(prepare=prepare)
        except RuntimeError as exc:
            raised.append(exc)

    thread = threading.Thread(target=loop)
    thread.start()
    thread.join(30)
    assert not thread.is_alive()
    assert [str(e) for e in raised] == ["the migration failed"]
    assert "process" not in sup._processes["web"]  # never started
    model = sup._processes["model"]
    assert model.get("returncode") is not None
    assert not psutil.pid_exists(model["pid"]) or psutil.Process(model["pid"]).status() == psutil.STATUS_ZOMBIE


def started(sup: Supervisor) -> list[str]:
    return [name for name, p in sup._processes.items() if "process" in p]
