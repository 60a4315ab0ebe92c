"""`make bench`'s NLU figures: the held-out and both blind sets parsed by the trained model
(nlu_heldout_f1, nlu_blind1_f1, nlu_blind2_f1 and nlu_blind_f1, the lower blind one). The
cross-validation and the README's per-intent tables are `make nlu-report`'s (bench/nlu_report.py)."""

from __future__ import annotations

import sys

from bench.nlu_report import figures, test_sets
from bench.results import record


def main() -> int:
    found = figures(test_sets())
    record(found)
    for name, (value, unit, _) in found.items():
        print(f"{name}: {value:.4f} {unit}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
