"""`python -m auth_flow evaluate-faces DIR`: the face decision's false accepts and false
rejects per group, on a folder laid out DIR/GROUP/PERSON/IMAGE (every image in a PERSON
folder shows that person; different folders are different people).

Each image is enrolled as a reference and compared with every other image of its group
through the live check's own code, for one frame and without liveness: the selfie's
encoding with its quality gates (`face_engines.probe_encoding`) and `face_match.decide`.
Images refused before matching (not an image, no face, several faces, poor quality) are
counted apart. The cohort of a pair is every other person of the whole set, leaving the
two compared people out (in production: the bank's other customers' references).

A false reject is a same-person pair that does not pass (review included: the person was
not let through); a false accept is a different-person pair that passes. Encodings are
cached by image SHA-256 (and the encoder's version) in a JSON file.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from auth_flow import face_match, faces

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


@dataclass(frozen=True)
class Sample:
    group: str
    person: str
    name: str
    encoding: np.ndarray | None
    refused: str | None


def _images(root: Path) -> list[tuple[str, str, Path]]:
    out = []
    for group in sorted(p for p in root.iterdir() if p.is_dir()):
        for person in sorted(p for p in group.iterdir() if p.is_dir()):
            out += [
                (group.name, person.name, image)
                for image in sorted(person.iterdir())
                if image.is_file() and image.suffix.lower() in IMAGE_SUFFIXES
            ]
    return out


def load_samples(
    root: Path,
    cache_path: Path | None,
    encode: Callable[[bytes], np.ndarray],
    progress: Callable[[str], None] | None = None,
) -> list[Sample]:
    """Every image's probe encoding (or why it was refused), from the cache when it has it."""
    cache: dict = {}
    if cache_path is not None and cache_path.is_file():
        cache = json.loads(cache_path.read_text())
    samples, changed = [], False
    images = _images(root)
    for n, (group, person, path) in enumerate(images, 1):
        data = path.read_bytes()
        key = f"{faces.sha256(data)}:{faces.ENCODER_VERSION}"
        if key not in cache:
            if progress is not None and n % 25 == 0:
                progress(f"encoding {n}/{len(images)}")
            try:
                cache[key] = {"encoding": [float(x) for x in encode(data)]}
            except faces.FaceError as exc:
                cache[key] = {"refused": f"{type(exc).__name__}: {exc}"}
            changed = True
        entry = cache[key]
        encoding = np.array(entry["encoding"]) if "encoding" in entry else None
        samples.append(Sample(group, person, path.name, encoding, entry.get("refused")))
    if cache_path is not None and changed:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        written = cache_path.with_name(f".{cache_path.name}.{os.getpid()}")
        written.write_text(json.dumps(cache))
        written.replace(cache_path)  # whole or not at all: another process may be reading it
    return samples


def _stats(values: list[float]) -> dict | None:
    if not values:
        return None
    return {"min": round(min(values), 4), "median": round(float(np.median(values)), 4), "max": round(max(values), 4)}


def _rate(n: int, total: int) -> float | None:
    return round(n / total, 5) if total else None


def evaluate(samples: list[Sample], policy: face_match.Policy) -> tuple[dict, dict]:
    """The per-group figures, and the raw pairs (same?, distance, score) per group for the plot."""
    usable = [s for s in samples if s.encoding is not None]
    matrix = np.stack([np.asarray(s.encoding) for s in usable]) if usable else np.empty((0, 128))
    people = np.array([f"{s.group}/{s.person}" for s in usable])
    cohorts: dict[tuple[str, str], np.ndarray] = {}
    groups, pairs = {}, {}
    for group in sorted({s.group for s in samples}):
        members = [i for i, s in enumerate(usable) if s.group == group]
        rows = []
        for i in members:
            for j in members:
                if i == j:
                    continue
                key = (people[i], people[j])
                if key not in cohorts:
                    cohorts[key] = matrix[(people != people[i]) & (people != people[j])]
                decision = face_match.decide(matrix[i], matrix[j], cohorts[key], policy)
                rows.append((people[i] == people[j], float(decision.distance or 0.0), decision.score, decision.outcome))
        same = [r for r in rows if r[0]]
        diff = [r for r in rows if not r[0]]
        refused = [f"{s.person}/{s.name}: {s.refused}" for s in samples if s.group == group and s.refused]
        false_rejects = sum(r[3] != "pass" for r in same)
        false_accepts = sum(r[3] == "pass" for r in diff)
        groups[group] = {
            "images": sum(s.group == group for s in samples),
            "people": len({s.person for s in samples if s.group == group}),
            "same_pairs": len(same),
            "false_rejects": false_rejects,
            "frr": _rate(false_rejects, len(same)),
            "same_reviews": sum(r[3] == "review" for r in same),
            "same_fails": sum(r[3] == "fail" for r in same),
            "diff_pairs": len(diff),
            "false_accepts": false_accepts,
            "far": _rate(false_accepts, len(diff)),
            "diff_reviews": sum(r[3] == "review" for r in diff),
            "refused_images": len(refused),
            "refused": refused,
            "same_distance": _stats([r[1] for r in same]),
            "diff_distance": _stats([r[1] for r in diff]),
            "same_score": _stats([r[2] for r in same]),
            "diff_score": _stats([r[2] for r in diff]),
        }
        pairs[group] = np.array([(r[0], r[1], r[2]) for r in rows], dtype=float).reshape(-1, 3)
    return groups, pairs


def roc(same: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(FAR, FRR) when the pass threshold sweeps `score` (lower passes)."""
    thresholds = np.unique(score)
    far = np.array([(score[~same] <= t).mean() if (~same).any() else 0.0 for t in thresholds])
    frr = np.array([(score[same] > t).mean() if same.any() else 0.0 for t in thresholds])
    return far, frr


def plot(pairs: dict, groups: dict, policy: face_match.Policy, path: Path) -> None:
    """Distance and score distributions per group, and each group's ROC (score and raw distance)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(pairs), 3, figsize=(15, 4 * len(pairs)), squeeze=False)
    for row, (group, data) in enumerate(pairs.items()):
        same = data[:, 0] == 1
        for col, (values, label, marks) in enumerate(
            (
                (data[:, 1], "distance", (policy.pass_distance, policy.review_distance)),
                (data[:, 2], "score (cohort ratio)", (policy.pass_ratio, policy.review_ratio)),
            )
        ):
            ax = axes[row][col]
            bins = np.linspace(values.min(), values.max(), 40) if len(values) else 10
            ax.hist(values[same], bins=bins, alpha=0.6, density=True, label="same person")
            ax.hist(values[~same], bins=bins, alpha=0.6, density=True, label="different people")
            for m in marks:
                ax.axvline(m, color="k", linestyle="--", linewidth=0.8)
            ax.set_title(f"{group}: {label}")
            ax.legend()
        ax = axes[row][2]
        for values, label in ((data[:, 2], "cohort ratio"), (data[:, 1], "raw distance")):
            far, frr = roc(same, values)
            ax.plot(np.maximum(far, 1e-4), frr, label=label)
        g = groups[group]
        if g["far"] is not None and g["frr"] is not None:
            ax.plot([max(g["far"], 1e-4)], [g["frr"]], "ko", label=f"policy: FAR {g['far']:.2%}, FRR {g['frr']:.1%}")
        ax.set_xscale("log")
        ax.set_xlabel("false accept rate")
        ax.set_ylabel("false reject rate")
        ax.set_title(f"{group}: ROC (single-photo pairs)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def run(root: Path, policy: face_match.Policy, cache_path: Path | None, encode, progress=None) -> tuple[dict, dict]:
    """The command's JSON object and the pairs for the plot."""
    t0 = time.perf_counter()
    samples = load_samples(root, cache_path, encode, progress)
    groups, pairs = evaluate(samples, policy)
    report = {
        "policy": {"engine": "local", "encoder": faces.ENCODER_VERSION, **policy.as_dict()},
        "groups": groups,
        "seconds": round(time.perf_counter() - t0, 2),
    }
    return report, pairs


def table(report: dict) -> str:
    """The readable form of the report."""
    p = report["policy"]
    lines = [
        f"policy: pass if distance/cohort <= {p['pass_ratio']} (review <= {p['review_ratio']}, "
        f"k={p['cohort_k']}, cohort >= {p['cohort_min']}); else distance <= {p['pass_distance']} "
        f"(review <= {p['review_distance']}); encoder {p['encoder']}",
        f"{'group':12s} {'images':>6s} {'refused':>7s} {'same':>6s} {'FRR':>7s} {'review':>6s} "
        f"{'diff':>6s} {'FAR':>8s} {'review':>6s}  same dist min/med/max   diff dist min/med/max",
    ]
    for group, g in report["groups"].items():

        def pct(x, digits=1):
            return "-" if x is None else f"{x:.{digits}%}"

        def dist(s):
            return "-" if s is None else f"{s['min']:.3f}/{s['median']:.3f}/{s['max']:.3f}"

        lines.append(
            f"{group:12s} {g['images']:6d} {g['refused_images']:7d} {g['same_pairs']:6d} {pct(g['frr']):>7s} "
            f"{g['same_reviews']:6d} {g['diff_pairs']:6d} {pct(g['far'], 2):>8s} {g['diff_reviews']:6d}  "
            f"{dist(g['same_distance']):21s}  {dist(g['diff_distance'])}"
        )
    lines.append(f"({report['seconds']} s)")
    return "\n".join(lines)
