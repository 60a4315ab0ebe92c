"""`make audit`'s reading of pip-audit's report: accepted findings need a reason, anything
else fails, and packages that could not be audited are a failure, not a clean result."""

import importlib.util

import pytest

from sunshine.settings import ROOT

spec = importlib.util.spec_from_file_location("audit_report", ROOT / "scripts" / "audit_report.py")
audit_report = importlib.util.module_from_spec(spec)
spec.loader.exec_module(audit_report)

VULN = {"id": "PYSEC-2024-1", "aliases": ["GHSA-aaaa"], "fix_versions": ["2.0"], "description": "x"}


def report(*deps):
    return {"dependencies": list(deps)}


def test_a_finding_fails_unless_accepted_by_id_or_alias(capsys):
    rep = report({"name": "pkg", "version": "1.0", "vulns": [VULN]}, {"name": "ok", "version": "1", "vulns": []})
    assert audit_report.check(rep, {}) == ["pkg 1.0: PYSEC-2024-1 (fixed in 2.0)"]
    assert audit_report.check(rep, {"GHSA-aaaa": "pkg: pinned by Rasa"}) == []
    out = capsys.readouterr().out
    assert "FOUND     pkg 1.0" in out and "accepted  pkg 1.0: PYSEC-2024-1 (fixed in 2.0) -- pkg: pinned by Rasa" in out


def test_packages_not_audited_fail():
    rep = report(
        {
            "name": "pkg",
            "version": "1.0",
            "skip_reason": "Dependency not found on PyPI and could not be " "audited: pkg (1.0)",
        }
    )
    [problem] = audit_report.check(rep, {})
    assert problem.startswith("1 packages not audited (Dependency not found on PyPI")


def test_the_ignore_file_needs_a_reason(tmp_path):
    path = tmp_path / "ignore.txt"
    path.write_text("# comment\nGHSA-1  tensorflow  pinned by Rasa 3.6; the model is ours\n", encoding="utf-8")
    assert audit_report.accepted(path) == {"GHSA-1": "tensorflow: pinned by Rasa 3.6; the model is ours"}
    path.write_text("GHSA-2 tensorflow\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="GHSA-2 has no reason"):
        audit_report.accepted(path)
    assert audit_report.main(str(tmp_path / "missing.json"), str(path)) == 2
