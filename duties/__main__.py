"""`python -m duties [DUTY ...]`: the node's periodic duties in one process (without DUTY, every one).

The package's docstring says how they run. Exit status 2: could not start."""

from __future__ import annotations

import argparse
import sys

from duties import DUTIES, run
from sunshine.protect import configure_logging
from sunshine.settings import load_for_command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m duties", description=__doc__.splitlines()[0])
    parser.add_argument("duty", nargs="*", help=f"of {', '.join(DUTIES)} (default: every one)")
    args = parser.parse_args(argv)
    unknown = [name for name in args.duty if name not in DUTIES]
    if unknown:
        parser.error(f"unknown duty {', '.join(unknown)}; the duties: {', '.join(DUTIES)}")
    settings = load_for_command()
    configure_logging(settings.log_level)
    try:
        return run(settings, args.duty or list(DUTIES))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
