"""The local face decision: is a probe encoding the person of a reference encoding?

face_recognition's distance alone does not hold on East-Asian faces: on the development
set (README, "Face decision") different East-Asian people come as close as 0.38 while the
same person's median is 0.38, so no single tolerance gives both few false accepts and few
false rejects. What holds is the distance *relative to how close other people come*:

    score = d(reference, probe) / mean(c(probe), c(reference))

where c(x) is the mean distance of x to its `cohort_k` nearest encodings in a cohort of
other people's references (in production: the bank's other enrolled customers; in the
evaluation: every other person of the set, leaving the two compared people out). A face
that is close to everybody (a crowded region of the encoding space) needs a closer match.

Three outcomes: `pass` (score at most `pass_ratio`), `review` (up to `review_ratio`: an
officer decides, the person may retry) and `fail`. With fewer than `cohort_min` cohort
references the ratio is not trusted and the plain distance decides with a strict tolerance
(`pass_distance`), its grey band (`review_distance`) going to review. Both the live check
(auth_flow.face_engines.LocalEngine) and `python -m auth_flow evaluate-faces` call `decide`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

MAX_DISTANCE = 0.6  # face_recognition's own tolerance: never a pass beyond it, whatever the cohort says


@dataclass(frozen=True)
class Policy:
    pass_ratio: float = 0.88
    review_ratio: float = 1.0
    cohort_k: int = 5
    cohort_min: int = 100
    pass_distance: float = 0.40
    review_distance: float = 0.50

    @classmethod
    def from_settings(cls, s) -> Policy:
        return cls(
            pass_ratio=s.face_pass_ratio,
            review_ratio=s.face_review_ratio,
            cohort_k=s.face_cohort_k,
            cohort_min=s.face_cohort_min,
            pass_distance=s.face_tolerance,
            review_distance=s.face_review_distance,
        )

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Decision:
    """One engine's answer for one selfie; recorded in the evidence whatever it is."""

    engine: str  # local | certified
    method: str  # cohort_ratio | distance (local), similarity (certified)
    outcome: str  # pass | review | fail
    score: float
    threshold: float  # the score's pass threshold
    review_threshold: float
    higher_is_better: bool = False
    distance: float | None = None
    cohort_size: int | None = None
    reference_sha256: str | None = None
    request_id: str | None = None

    def as_dict(self) -> dict:
        out = {
            "engine": self.engine,
            "method": self.method,
            "outcome": self.outcome,
            "score": round(self.score, 4),
            "threshold": self.threshold,
            "review_threshold": self.review_threshold,
            "distance": None if self.distance is None else round(self.distance, 4),
        }
        extra = {"cohort_size": self.cohort_size, "reference_sha256": self.reference_sha256}
        extra["request_id"] = self.request_id
        out.update({k: v for k, v in extra.items() if v is not None})
        return out


def outcome(score: float, threshold: float, review_threshold: float, higher_is_better: bool = False) -> str:
    if higher_is_better:
        score, threshold, review_threshold = -score, -threshold, -review_threshold
    return "pass" if score <= threshold else "review" if score <= review_threshold else "fail"


def cohort_closeness(encoding: np.ndarray, cohort: np.ndarray, k: int) -> float:
    """Mean distance from `encoding` to its k nearest cohort encodings."""
    distances = np.linalg.norm(cohort - encoding, axis=1)
    k = min(k, len(distances))
    return float(np.partition(distances, k - 1)[:k].mean())


def decide(
    reference: np.ndarray,
    probe: np.ndarray,
    cohort: np.ndarray | None,
    policy: Policy,
    reference_sha256: str | None = None,
) -> Decision:
    """The decision for one probe against one reference; `cohort` holds other people's
    reference encodings (never the reference's or the probe's person), one per row."""
    d = float(np.linalg.norm(np.asarray(probe) - np.asarray(reference)))
    size = 0 if cohort is None else len(cohort)
    if cohort is not None and size >= max(policy.cohort_min, policy.cohort_k):
        k = policy.cohort_k
        scale = (cohort_closeness(probe, cohort, k) + cohort_closeness(reference, cohort, k)) / 2
        score = d / max(scale, 1e-9)
        verdict = outcome(score, policy.pass_ratio, policy.review_ratio)
        if verdict == "pass" and d > MAX_DISTANCE:
            verdict = "review"
        return Decision(
            "local", "cohort_ratio", verdict, score, policy.pass_ratio, policy.review_ratio,
            distance=d, cohort_size=size, reference_sha256=reference_sha256,
        )  # fmt: skip
    return Decision(
        "local", "distance", outcome(d, policy.pass_distance, policy.review_distance), d,
        policy.pass_distance, policy.review_distance, distance=d, cohort_size=size, reference_sha256=reference_sha256,
    )  # fmt: skip
