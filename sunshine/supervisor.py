"""The launcher's process supervisor: honcho's Manager, except that a service
that dies while the stack is running is started again instead of stopping
everything, as a production supervisor (systemd, supervisord) would.

- Each restart waits a back-off: `backoff_s`, doubled for every consecutive
  run shorter than `STABLE_RUN_S`, at most `MAX_BACKOFF_S`.
- A service that dies `MAX_QUICK_FAILURES` times in a row, each time within
  `STABLE_RUN_S` of its start, is broken (bad configuration, port taken):
  everything stops, as before, with its return code.
- Ctrl-C / SIGTERM stop everything and restart nothing.
- Every restart is printed and counted (`on_restart(name)`, e.g. into /metrics).
- A process can be given a readiness check: the processes after it start
  only once it answers, and on the way down it is stopped only after them
  (the private Redis, which the others use until they have stopped).
- `loop(prepare)` starts the processes added with `before_prepare` (those
  that do not need what it prepares: Rasa loading its model), runs
  `prepare()`, then starts the others; when it raises, everything started
  is stopped and the exception goes up to the caller.
- A service has died when its own process has exited, even if children it
  forked still hold its output open (RQ's scheduler process); what it leaves
  behind in its process group is killed with it, as systemd does with a
  unit's control group.
"""

from __future__ import annotations

import datetime
import multiprocessing
import os
import queue
import signal
import threading
import time
from collections.abc import Callable

from honcho.manager import KILL_WAIT, SIGNALS, Manager
from honcho.process import Process

STABLE_RUN_S = 30.0
MAX_BACKOFF_S = 30.0
MAX_QUICK_FAILURES = 5
READY_WAIT_S = 30.0


class ServiceProcess(Process):
    """honcho's Process, except that it reports the stop when the service's own process exits."""

    def run(self, events=None, ignore_signals=False):
        self._events = events
        self._child = self._child_ctor(self.cmd, env=self.env, cwd=self.cwd)
        self._send_message({"pid": self._child.pid}, type="start")
        if ignore_signals:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        output = threading.Thread(target=self._relay_output, daemon=True)
        output.start()
        self._child.wait()
        try:  # the service's own process group: what it forked goes with it
            os.killpg(self._child.pid, signal.SIGKILL)
        except OSError:
            pass
        output.join(2)
        self._send_message({"returncode": self._child.returncode}, type="stop")

    def _relay_output(self):
        for line in iter(self._child.stdout.readline, b""):
            if not self.quiet:
                self._send_message(line)
        self._child.stdout.close()


class Supervisor(Manager):
    def __init__(self, backoff_s: float = 1.0, on_restart: Callable[[str], None] | None = None, printer=None):
        super().__init__(printer)
        self._process_ctor = ServiceProcess
        self.backoff_s = backoff_s
        self.on_restart = on_restart or (lambda name: None)
        self.restarts: dict[str, int] = {}
        self._ready: dict[str, Callable[[], bool]] = {}
        self._started_at: dict[str, float] = {}
        self._quick_failures: dict[str, int] = {}
        self._due: dict[str, float] = {}  # name -> monotonic time of its pending restart
        self._before_prepare: set[str] = set()

    def add_process(
        self,
        name,
        cmd,
        quiet=False,
        env=None,
        cwd=None,
        ready: Callable[[], bool] | None = None,
        before_prepare: bool = False,
    ):
        proc = super().add_process(name, cmd, quiet=quiet, env=env, cwd=cwd)
        if ready is not None:
            self._ready[name] = ready
        if before_prepare:
            self._before_prepare.add(name)
        return proc

    # -- starting -------------------------------------------------------------
    def _spawn(self, name: str) -> None:
        p = self._processes[name]
        p.pop("returncode", None)
        p["process"] = multiprocessing.Process(name=name, target=p["obj"].run, args=(self.events, True))
        p["process"].start()
        self._started_at[name] = time.monotonic()

    def _start(self, prepare: Callable[[], None] | None = None) -> None:
        first = [n for n in self._processes if prepare is None or n in self._before_prepare]
        self._start_in_order(first)
        if prepare is not None:
            prepare()
            self._start_in_order([n for n in self._processes if n not in first])

    def _start_in_order(self, names: list[str]) -> None:
        for name in names:
            if self._terminating:  # Ctrl-C during the start, or the preparation failed
                return
            self._spawn(name)
            if name in self._ready:
                self._wait_ready(name)

    def _wait_ready(self, name: str) -> None:
        deadline = time.monotonic() + READY_WAIT_S
        while time.monotonic() < deadline and not self._terminating:
            if self._ready[name]():
                return
            time.sleep(0.05)
        self._system_print(f"{name} not ready after {READY_WAIT_S:.0f} s\n")

    # -- the loop -------------------------------------------------------------
    def loop(self, prepare: Callable[[], None] | None = None) -> None:
        def _terminate(signum, frame):
            self._system_print(f"{SIGNALS[signum]['name']} received\n")
            self.returncode = SIGNALS[signum]["rc"]
            self._due.clear()
            self.terminate()

        signal.signal(signal.SIGTERM, _terminate)
        signal.signal(signal.SIGINT, _terminate)
        failed: BaseException | None = None
        try:
            self._start(prepare)
        except Exception as exc:  # the preparation failed: stop what started, then say why
            failed = exc
            self.terminate()
        exit_start = None
        while True:
            try:
                msg = self.events.get(timeout=0.1)
            except queue.Empty:
                msg = None
            if msg is not None:
                self._handle(msg)
            now = time.monotonic()
            for name in [n for n, at in self._due.items() if at <= now and not self._terminating]:
                del self._due[name]
                self._restart(name)
            if self._terminating:
                if exit_start is None:
                    exit_start = self._clock.now()
                self._killall()  # the dependencies, once the others have stopped
                if self._all_stopped() and msg is None:
                    break
                if self._clock.now() - exit_start > datetime.timedelta(seconds=KILL_WAIT):
                    self.kill()
        if failed is not None:
            raise failed

    def _handle(self, msg) -> None:
        if msg.type == "line":
            self._printer.write(msg)
        elif msg.type == "start":
            self._processes[msg.name]["pid"] = msg.data["pid"]
            self._system_print(f"{msg.name} started (pid={msg.data['pid']})\n")
        elif msg.type == "stop":
            rc = msg.data["returncode"]
            self._processes[msg.name]["returncode"] = rc
            self._system_print(f"{msg.name} stopped (rc={rc})\n")
            if not self._terminating:
                self._schedule_restart(msg.name, rc)

    def _schedule_restart(self, name: str, rc: int) -> None:
        ran_s = time.monotonic() - self._started_at.get(name, 0)
        quick = self._quick_failures[name] = self._quick_failures.get(name, 0) + 1 if ran_s < STABLE_RUN_S else 0
        if quick >= MAX_QUICK_FAILURES:
            self._system_print(
                f"{name} failed {quick} times within {STABLE_RUN_S:.0f} s of starting: " "stopping everything\n"
            )
            self.returncode = rc
            self.terminate()
            return
        delay = min(MAX_BACKOFF_S, self.backoff_s * 2 ** max(0, quick - 1))
        self._system_print(f"restarting {name} in {delay:g} s\n")
        self._due[name] = time.monotonic() + delay

    def _restart(self, name: str) -> None:
        self.restarts[name] = self.restarts.get(name, 0) + 1
        self._spawn(name)
        if name in self._ready:
            self._wait_ready(name)
        self._system_print(f"{name} restarted (restart #{self.restarts[name]})\n")
        try:
            self.on_restart(name)
        except Exception as exc:  # counting must never stop the supervisor
            self._system_print(f"restart of {name} not counted: {exc}\n")

    def _all_stopped(self):
        return all(p.get("returncode") is not None or "process" not in p for p in self._processes.values())

    def _killall(self, force=False):
        others_stopped = all(
            "returncode" in p or "process" not in p for n, p in self._processes.items() if n not in self._ready
        )
        sent = "killed" if force else "signalled"
        for n, p in self._processes.items():
            if n in self._ready and not (force or others_stopped):
                continue  # a dependency stops after the processes that use it
            if "returncode" not in p and p.get("pid") and not p.get(sent):
                p[sent] = True
                signame = "SIGKILL" if force else "SIGTERM"
                self._system_print(f"sending {signame} to {n} (pid {p['pid']})\n")
                if force:
                    self._procmgr.kill(p["pid"])
                else:
                    self._procmgr.terminate(p["pid"])
