"""`make nlu-report`: how well the assistant understands customers, on data it did not train on.

1. Rasa's own cross-validation over the training data (nlu_data/, FOLDS folds).
2. The held-out set tests/nlu/heldout.yml, written apart from the training
   data, parsed by the trained model (var/models/sunshine.tar.gz, trained on
   nlu_data/ only). It was read during development to find weak spots.
3. The blind set tests/nlu/blind.yml, written without reading the training
   data or the held-out set and never used to choose examples or settings:
   the fairest figure for customers the assistant has not seen.

Per-intent precision/recall/F1 of both go into the README between the
`nlu-report` markers; the cross-validated weighted F1 is the figure
`nlu_intent_f1` (the held-out and blind ones `nlu_heldout_f1`, `nlu_blind_f1`)
in var/bench/results.json.
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
MODEL = ROOT / "var" / "models" / "sunshine.tar.gz"
RASA = str(Path(sys.executable).with_name("rasa"))
BEGIN, END = "<!-- nlu-report:begin -->", "<!-- nlu-report:end -->"
TARGET_OVERALL, TARGET_INTENT = 0.95, 0.90


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


def test_set(path: Path) -> dict:
    """The trained model's intent report on a set it was not trained on."""
    out = OUT / path.stem
    _rasa_test("--nlu", str(path), "--model", str(MODEL), "--out", str(out))
    report = json.loads((out / "intent_report.json").read_text(encoding="utf-8"))
    responses = out / "response_selection_report.json"
    if responses.exists():  # faq/* are scored by the ResponseSelector
        report["faq (response selection)"] = json.loads(responses.read_text(encoding="utf-8"))["weighted avg"]
    return report


def intents(report: dict) -> dict:
    return {
        k: v
        for k, v in report.items()
        if isinstance(v, dict) and "f1-score" in v and not k.endswith(" avg") and k != "accuracy"
    }


def table(cv: dict, heldout: dict, blind: dict) -> str:
    names = sorted(set(intents(cv)) | set(intents(heldout)) | set(intents(blind)))
    rows = [
        "| intent | CV precision | CV recall | CV F1 | held-out F1 | held-out n "
        "| blind precision | blind recall | blind F1 | blind n |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]

    def cells(report: dict, name: str, keys=("precision", "recall", "f1-score")) -> list[str]:
        r = report.get(name)
        return [f"{r[k]:.3f}" for k in keys] if r else ["–"] * len(keys)

    def support(report: dict, name: str) -> list[str]:
        return [str(report.get(name, {}).get("support", ""))]

    for name in names + ["weighted avg"]:
        label = f"**{name}**" if name == "weighted avg" else name
        row = (
            cells(cv, name)
            + cells(heldout, name, ("f1-score",))
            + support(heldout, name)
            + cells(blind, name)
            + support(blind, name)
        )
        rows.append(f"| {label} | " + " | ".join(row) + " |")
    return "\n".join(rows)


def verdict(report: dict, label: str) -> list[str]:
    problems = []
    overall = report["weighted avg"]["f1-score"]
    if overall < TARGET_OVERALL:
        problems.append(f"{label}: weighted intent F1 {overall:.3f} < {TARGET_OVERALL}")
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
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    started = time.monotonic()
    cv = cross_validation(args.folds)
    heldout, blind = test_set(HELDOUT), test_set(BLIND)
    f1 = {
        label: report["weighted avg"]["f1-score"]
        for label, report in (("cross-validated", cv), ("held-out", heldout), ("blind", blind))
    }
    problems = verdict(cv, "cross-validation") + verdict(heldout, "held-out") + verdict(blind, "blind")
    summary = (
        f"Command: `make nlu-report` ({args.folds}-fold cross-validation of nlu_data/, then the "
        f"held-out set tests/nlu/heldout.yml and the blind set tests/nlu/blind.yml on the trained model), "
        f"{time.strftime('%Y-%m-%d')}, {time.monotonic() - started:.0f} s. Weighted intent F1: "
        + ", ".join(f"{label} **{value:.3f}**" for label, value in f1.items())
        + f" (targets ≥ {TARGET_OVERALL} overall, ≥ {TARGET_INTENT} per intent"
        + (f"; below target: {'; '.join(problems)}" if problems else "; all met")
        + ").\n\n"
    )
    write_readme(summary + table(cv, heldout, blind))
    record(
        {
            "nlu_intent_f1": (round(f1["cross-validated"], 4), "F1", None),
            "nlu_heldout_f1": (round(f1["held-out"], 4), "F1", None),
            "nlu_blind_f1": (round(f1["blind"], 4), "F1", None),
        }
    )
    print(summary)
    print(table(cv, heldout, blind))
    return 0


if __name__ == "__main__":
    sys.exit(main())
