"""A node's periodic duties in one process (`python -m duties`, which `make run` starts).

Each duty runs its rounds in a thread of its own, exactly as its own command does with
`--every` (`python -m lending escalate-overdue --every 60`, `python -m handoff watch --every 2`, ...),
and on several nodes acts once per period across them (`sunshine.periodic`). One process rather
than six: each would import the whole code base again (about 1.5 s of CPU and 100 MB apiece).
When one duty stops (its own command would have exited), the process exits with its status and
the supervisor starts it again, every duty with it: rounds are safe to repeat.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from auth_flow.__main__ import evidence_checkpoint, sweep_reports
from handoff.__main__ import watch
from lending.__main__ import annual_inspection, escalate_overdue, remind_repayments
from sunshine.settings import Settings

log = logging.getLogger("duties")

# Each duty by the role that names it (`python -m sunshine.launcher run --roles`), and its rounds.
DUTIES: dict[str, Callable[[Settings], int]] = {
    "escalator": lambda s: escalate_overdue(s, every_s=60),
    "reminder": lambda s: remind_repayments(s, every_s=3600),
    "inspection": lambda s: annual_inspection(s, None, every_s=86400),
    "watcher": lambda s: watch(s, every_s=2),
    "sweeper": lambda s: sweep_reports(s, every_s=60),
    "checkpointer": lambda s: evidence_checkpoint(
        s, Path(s.evidence_checkpoint_dir), every_s=s.evidence_checkpoint_every_s
    ),
}


def run(settings: Settings, names: Sequence[str]) -> int:
    """The duties `names`, each in a thread, until the first one stops: its exit status (a duty that
    raised: 1). The others are daemon threads and end with the process."""
    stopped: queue.Queue[tuple[str, int]] = queue.Queue()

    def keep(name: str) -> None:
        try:
            code = DUTIES[name](settings)
        except Exception:  # what its own process would have died of
            log.exception("duty %s failed", name)
            code = 1
        stopped.put((name, code))

    for name in names:
        threading.Thread(target=keep, args=(name,), name=f"duty-{name}", daemon=True).start()
    name, code = stopped.get()
    log.error("duty %s stopped (exit status %d): the duties process stops", name, code)
    return code or 1
