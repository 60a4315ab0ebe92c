"""Secrets come only from settings: no code outside sunshine/settings.py reads them from the
environment (the launcher only hands its environment to the processes it starts)."""

import re

from sunshine.settings import ROOT

# Files that may touch os.environ, and why: settings reads it; the launcher and the local test
# stack pass it on to child processes; a benchmark pins its BLAS threads; the clock reads
# SUNSHINE_CLOCK (a moment, no secret) before any settings exist; the mini-program bench passes it
# on to the gunicorn it starts.
ALLOWED = {
    "bench/mp_api.py",
    "sunshine/settings.py",
    "sunshine/launcher.py",
    "sunshine/local_stack.py",
    "bench/auth.py",
    "sunshine/clock.py",
}
SECRET_WORDS = re.compile(r"SECRET|TOKEN|KEY|PASSWORD|AES", re.I)


def project_files():
    folders = [
        d
        for d in ROOT.iterdir()
        if d.is_dir() and not d.name.startswith(".") and d.name not in ("var", "tests", "node_modules")
    ]
    for path in [p for d in folders for p in d.rglob("*.py")]:
        yield path.relative_to(ROOT).as_posix(), path.read_text(encoding="utf-8")


def test_only_settings_reads_the_environment():
    readers = {rel for rel, text in project_files() if re.search(r"os\.environ|os\.getenv|environ\.get", text)}
    assert readers and readers <= ALLOWED, readers - ALLOWED


def test_no_secret_is_read_from_the_environment_outside_settings():
    for rel, text in project_files():
        if rel == "sunshine/settings.py":
            continue
        for match in re.finditer(r"(?:os\.environ(?:\.get)?|os\.getenv)\s*[\(\[]\s*[\"']([A-Z_]+)", text):
            assert not SECRET_WORDS.search(match.group(1)), f"{rel} reads {match.group(1)} itself"
