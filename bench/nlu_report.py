"""`make nlu-report`: how well the assistant understands customers, on data it did not train on.

1. Rasa's own cross-validation over the training data (nlu_data/, FOLDS folds).
2. The held-out set tests/nlu/heldout.yml, written apart from the training
   data, parsed by the trained model (var/models/sunshine.tar.gz, trained on
   nlu_data/ only).

Per-intent precision/recall/F1 of both go into the README between the
`nlu-report` markers; the cross-validated weighted F1 is the figure
`nlu_intent_f1` (and the held-out one `nlu_heldout_f1`) in var/bench/results.json.
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
MODEL = ROOT / "var" / "models" / "sunshine.tar.gz"
RASA = str(Path(sys.executable).with_name("rasa"))
BEGIN, END = "<!-- nlu-report:begin -->", "<!-- nlu-report:end -->"
TARGET_OVERALL, TARGET_INTENT = 0.95, 0.90


def _rasa_test(*args: str) -> None:
    subprocess.run([RASA, "test", "nlu", "--config", "bot/config.yml", "--domain", "bot/domain.yml",  # noqa: S603  our own fixed argv (rasa test), no shell
                    "--no-plot", "--quiet", *args], cwd=ROOT, check=True)


def cross_validation(folds: int) -> dict:
    out = OUT / "cross-validation"
    _rasa_test("--nlu", "nlu_data", "--cross-validation", "--folds", str(folds), "--out", str(out))
    return json.loads((out / "intent_report.json").read_text(encoding="utf-8"))


def held_out() -> dict:
    out = OUT / "held-out"
    _rasa_test("--nlu", str(HELDOUT), "--model", str(MODEL), "--out", str(out))
    report = json.loads((out / "intent_report.json").read_text(encoding="utf-8"))
    responses = out / "response_selection_report.json"
    if responses.exists():  # faq/* are scored by the ResponseSelector
        report["faq (response selection)"] = json.loads(responses.read_text(encoding="utf-8"))["weighted avg"]
    return report


def intents(report: dict) -> dict:
    return {k: v for k, v in report.items()
            if isinstance(v, dict) and "f1-score" in v and not k.endswith(" avg") and k != "accuracy"}


def table(cv: dict, heldout: dict) -> str:
    names = sorted(set(intents(cv)) | set(intents(heldout)))
    rows = ["| intent | CV precision | CV recall | CV F1 | held-out precision | held-out recall | held-out F1 | held-out n |",
            "|---|---|---|---|---|---|---|---|"]

    def cells(report: dict, name: str) -> list[str]:
        r = report.get(name)
        return [f"{r['precision']:.3f}", f"{r['recall']:.3f}", f"{r['f1-score']:.3f}"] if r else ["–"] * 3

    for name in names + ["weighted avg"]:
        n = heldout.get(name, {}).get("support", "")
        label = f"**{name}**" if name == "weighted avg" else name
        rows.append(f"| {label} | " + " | ".join(cells(cv, name) + cells(heldout, name) + [str(n)]) + " |")
    return "\n".join(rows)


def verdict(report: dict, label: str) -> list[str]:
    problems = []
    overall = report["weighted avg"]["f1-score"]
    if overall < TARGET_OVERALL:
        problems.append(f"{label}: weighted intent F1 {overall:.3f} < {TARGET_OVERALL}")
    problems += [f"{label}: {name} F1 {r['f1-score']:.3f} < {TARGET_INTENT}"
                 for name, r in intents(report).items() if r["f1-score"] < TARGET_INTENT]
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
    parser.add_argument("--folds", type=int, default=3)
    args = parser.parse_args()
    started = time.monotonic()
    cv = cross_validation(args.folds)
    heldout = held_out()
    cv_f1, heldout_f1 = cv["weighted avg"]["f1-score"], heldout["weighted avg"]["f1-score"]
    problems = verdict(cv, "cross-validation") + verdict(heldout, "held-out")
    summary = (f"Command: `make nlu-report` ({args.folds}-fold cross-validation of nlu_data/, then the "
               f"held-out set tests/nlu/heldout.yml on the trained model), {time.strftime('%Y-%m-%d')}, "
               f"{time.monotonic() - started:.0f} s. Weighted intent F1: cross-validated **{cv_f1:.3f}**, "
               f"held-out **{heldout_f1:.3f}** (targets ≥ {TARGET_OVERALL} overall, ≥ {TARGET_INTENT} per intent"
               + (f"; below target: {'; '.join(problems)}" if problems else "; all met") + ").\n\n")
    write_readme(summary + table(cv, heldout))
    record({"nlu_intent_f1": (round(cv_f1, 4), "F1", None), "nlu_heldout_f1": (round(heldout_f1, 4), "F1", None)})
    print(summary)
    print(table(cv, heldout))
    return 0


if __name__ == "__main__":
    sys.exit(main())
