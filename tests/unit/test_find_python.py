import os
import subprocess

import pytest

from sunshine.settings import ROOT

SCRIPT = str(ROOT / "scripts" / "find-python310.sh")


def test_finds_this_python_when_pointed_at_it():
    import sys

    result = subprocess.run(
        ["sh", SCRIPT], env={**os.environ, "PYTHON310": sys.executable}, capture_output=True, text=True
    )
    assert result.returncode == 0 and result.stdout.strip()


@pytest.mark.skipif(
    os.path.exists("/usr/bin/python3.10") or os.path.exists("/usr/local/bin/python3.10"),
    reason="this machine has a system Python 3.10",
)
def test_missing_python310_says_what_to_install(tmp_path):
    result = subprocess.run(
        ["/bin/sh", SCRIPT], env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "Python 3.10 is required" in result.stderr and "pyenv install 3.10" in result.stderr
