"""`var/bench/results.json`: one object, figure name -> {"value", "unit", "baseline"}.

Each benchmark merges its own figures, so that one area can be re-measured
without losing the others'.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

RESULTS = Path(__file__).resolve().parent.parent / "var" / "bench" / "results.json"


def record(figures: dict[str, tuple[float, str, float | None]], path: Path = RESULTS) -> dict:
    """Merge `{name: (value, unit, baseline)}` into the results file; returns the whole file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    current = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    for name, (value, unit, baseline) in figures.items():
        current[name] = {
            "value": round(float(value), 4),
            "unit": unit,
            "baseline": None if baseline is None else round(float(baseline), 4),
        }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(current, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return current


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (0-100) by nearest rank; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]
