"""The import contracts of pyproject.toml ([tool.importlinter]): entry points -> domain ->
infrastructure, no cycle. A forbidden import fails this test (and `lint-imports` says which)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sunshine.settings import ROOT

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def test_imports_run_one_way():
    # Its own process: import-linter builds the import graph with threads of its own, which should
    # not share a process (and its excepthook) with the rest of the suite.
    done = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
