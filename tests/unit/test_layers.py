"""The import contracts of pyproject.toml ([tool.importlinter]): entry points -> domain ->
infrastructure, no cycle. A forbidden import fails this test (and `lint-imports` says which)."""

from __future__ import annotations

import os

from importlinter.cli import lint_imports

from sunshine.settings import ROOT


def test_imports_run_one_way(capsys):
    cwd = os.getcwd()
    os.chdir(ROOT)  # import-linter reads pyproject.toml and finds the packages from here
    try:
        status = lint_imports(no_cache=True)
    finally:
        os.chdir(cwd)
    assert status == 0, capsys.readouterr().out
