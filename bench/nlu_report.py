"""`make nlu-report`: how well the assistant understands customers, on data it did not train on.

1. Rasa's own cross-validation over the training data (nlu_data/, FOLDS folds).
2. The held-out set tests/nlu/heldout.yml, written apart from the training
   data, parsed by the trained model (var/models/sunshine.tar.gz, trained on
   nlu_data/ only). It was read during development to find weak spots.
3. The blind sets tests/nlu/blind.yml and tests/nlu/blind2.yml, written
   without reading the training data (the second: one-word replies,
   negations, run-on voice text, dialect) and never used to choose examples
   or settings: the fairest figures for customers the assistant has not seen.

Targets: each blind set ≥ TARGET_BLIND weighted intent F1 and every intent
≥ TARGET_INTENT; the held-out set ≥ TARGET_HELDOUT; cross-validation over the
hard-case-weighted training data is reported, not targeted. Per-intent
figures go into the README between the `nlu-report` markers; the weighted
F1s are the figures `nlu_intent_f1` (cross-validated), `nlu_heldout_f1`,
`nlu_blind1_f1`, `nlu_blind2_f1` and `nlu_blind_f1` (the lower blind one) in
var/bench/results.json. `--folds 0` skips the cross-validation (half an hour
on 2 CPUs) and keeps its last figures out of the table.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

from bench.results import record

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "var" / "nlu-report"
README = ROOT / "README.md"
HELDOUT = ROOT / "tests" / "nlu" / "heldout.yml"
BLIND = ROOT / "tests" / "nlu" / "blind.yml"
BLIND2 = ROOT / "tests" / "nlu" / "blind2.yml"
MODEL = ROOT / "var" / "models" / "sunshine.tar.gz"
RASA = str(Path(sys.executable).with_name("rasa"))
BEGIN, END = "<!-- nlu-report:begin -->", "<!-- nlu-report:end -->"
TARGET_HELDOUT, TARGET_BLIND, TARGET_INTENT = 0.95, 0.97, 0.90


def _rasa_test(*args: str) -> None:
    subprocess.run(
        [
            RASA,
            "test",
            "nlu",
            "--config",
            "bot/config.yml",
            "--domain",
            "bot/domain.yml",  # noqa: S603  our own fixed argv (rasa test), no shell
            "--no-plot",
            "--quiet",
            *args,
        ],
        cwd=ROOT,
        check=True,
    )


def cross_validation(folds: int) -> dict:
    out = OUT / "cross-validation"
    _rasa_test("--nlu", "nlu_data", "--cross-validation", "--folds", str(folds), "--out", str(out))
    return json.loads((out / "intent_report.json").read_text(encoding="utf-8"))


def test_set(path: Path, model: Path = MODEL) -> dict:
    """The trained model's intent report on a set it was not trained on."""
    out = OUT / path.stem
    _rasa_test("--nlu", str(path), "--model", str(model), "--out", str(out))
    report = json.loads((out / "intent_report.json").read_text(encoding="utf-8"))
    responses = out / "response_selection_report.json"
    if responses.exists():  # faq/* are scored by the ResponseSelector
        report["faq (response selection)"] = json.loads(responses.read_text(encoding="utf-8"))["weighted avg"]
    return report


def test_sets(model: Path = MODEL) -> dict[str, dict]:
    """The intent reports of the held-out and both blind sets."""
    return {"held-out": test_set(HELDOUT, model), "blind": test_set(BLIND, model), "blind 2": test_set(BLIND2, model)}


def figures(reports: dict[str, dict]) -> dict[str, tuple[float, str, float | None]]:
    """The weighted intent F1s for var/bench/results.json; nlu_blind_f1 is the lower blind set's."""
    f1 = {label: round(report["weighted avg"]["f1-score"], 4) for label, report in reports.items()}
    found: dict[str, tuple[float, str, float | None]] = {
        "nlu_heldout_f1": (f1["held-out"], "F1", None),
        "nlu_blind1_f1": (f1["blind"], "F1", None),
        "nlu_blind2_f1": (f1["blind 2"], "F1", None),
        "nlu_blind_f1": (min(f1["blind"], f1["blind 2"]), "F1", None),
    }
    if "CV" in f1:
        found["nlu_intent_f1"] = (f1["CV"], "F1", None)
    return found


def intents(report: dict) -> dict:
    return {
        k: v
        for k, v in report.items()
        if isinstance(v, dict) and "f1-score" in v and not k.endswith(" avg") and k != "accuracy"
    }


def table(reports: dict[str, dict]) -> str:
    """Per intent: the cross-validation's precision, recall and F1, then F1 and n of each test set."""
    cv, sets = reports.get("CV", {}), {k: v for k, v in reports.items() if k != "CV"}
    names = sorted(set().union(*(intents(r) for r in reports.values())))
    head = ["intent", "CV precision", "CV recall", "CV F1"] + [f"{k} {c}" for k in sets for c in ("F1", "n")]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def cells(report: dict, name: str, keys=("precision", "recall", "f1-score")) -> list[str]:
        r = report.get(name)
        return [f"{r[k]:.3f}" for k in keys] if r else ["–"] * len(keys)

    for name in names + ["weighted avg"]:
        label = f"**{name}**" if name == "weighted avg" else name
        row = cells(cv, name)
        for report in sets.values():
            row += cells(report, name, ("f1-score",)) + [str(report.get(name, {}).get("support", ""))]
        rows.append(f"| {label} | " + " | ".join(row) + " |")
    return "\n".join(rows)


def verdict(report: dict, label: str, overall_target: float) -> list[str]:
    problems = []
    overall = report["weighted avg"]["f1-score"]
    if overall < overall_target:
        problems.append(f"{label}: weighted intent F1 {overall:.3f} < {overall_target}")
    problems += [
        f"{label}: {name} F1 {r['f1-score']:.3f} < {TARGET_INTENT}"
        for name, r in intents(report).items()
        if r["f1-score"] < TARGET_INTENT
    ]
    return problems


def write_readme(text: str) -> None:
    readme = README.read_text(encoding="utf-8")
    block = f"{BEGIN}\n{text}\n{END}"
    if BEGIN in readme:
        readme = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: block, readme, flags=re.S)
    else:
        readme = readme.rstrip("\n") + "\n\n" + block + "\n"
    README.write_text(readme, encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds (0: skip it)")
    parser.add_argument("--model", type=Path, default=MODEL, help="the trained model to test")
    args = parser.parse_args()
    started = time.monotonic()
    reports = {"CV": cross_validation(args.folds)} if args.folds else {}
    reports |= test_sets(args.model)
    f1 = {label: report["weighted avg"]["f1-score"] for label, report in reports.items()}
    problems = verdict(reports["held-out"], "held-out", TARGET_HELDOUT)
    problems += verdict(reports["blind"], "blind", TARGET_BLIND) + verdict(reports["blind 2"], "blind 2", TARGET_BLIND)
    summary = (
        "Command: `make nlu-report` ("
        + (f"{args.folds}-fold cross-validation of nlu_data/, then " if args.folds else "no cross-validation, ")
        + "the held-out set tests/nlu/heldout.yml and the blind sets tests/nlu/blind.yml and "
        f"tests/nlu/blind2.yml on the trained model), {time.strftime('%Y-%m-%d')}, "
        f"{time.monotonic() - started:.0f} s. Weighted intent F1: "
        + ", ".join(f"{label} **{value:.3f}**" for label, value in f1.items())
        + f" (targets: blind sets ≥ {TARGET_BLIND}, held-out ≥ {TARGET_HELDOUT}, every intent ≥ {TARGET_INTENT}; "
        "cross-validation not targeted"
        + (f"; below target: {'; '.join(problems)}" if problems else "; all met")
        + ").\n\n"
    )
    write_readme(summary + table(reports))
    record(figures(reports))
    print(summary)
    print(table(reports))
    return 0


if __name__ == "__main__":
    sys.exit(main())
