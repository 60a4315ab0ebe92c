"""`python -m bench.auth`: remote credit-report authorization figures.

- `face_verify_p50_ms`: the local engine's match of one 640x480 selfie (header
  checks, draft decode, one face exactly, quality gates, encoding, and the
  decision: distance to the reference over the closeness of a 200-reference
  cohort), p50 on one core (target under 300 ms); baseline: the bare
  face_recognition calls (face_locations + face_encodings) on the same decoded
  pixels in the same run.
- `face_overhead_ratio`: the two p50s divided (target at most 1.10).
- `face_far_east_asian_dev`, `face_frr_east_asian_dev`: the default policy's
  false-accept and false-reject rates on the East-Asian group of the development
  set (`python -m auth_flow evaluate-faces ../shared/testdata/faces-eval`, single-photo
  pairs; targets at most 0.005 and 0.15); baselines: the same set decided by the
  distance alone at the old tolerance 0.5.
- `auth_reports_s`: a three-party application (担保贷), from the last party's
  consent to the reports being in the lending service: parallel queries of the
  bureau emulator over HTTP, records, and `Applications.report_arrived`
  (target under 2 s); baseline null.
"""

from __future__ import annotations

import io
import os
import tempfile
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from bench.results import percentile, record

RUNS = 15


def _selfie() -> bytes:
    from PIL import Image

    from tests.unit.auth_media import image

    img = Image.open(io.BytesIO(image("obama-480p.jpg"))).convert("RGB").resize((640, 480))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def face_figures() -> tuple[float, float]:
    import face_recognition
    import numpy as np

    from auth_flow import face_match, faces
    from auth_flow.face_engines import COHORT_MAX, probe_encoding
    from sunshine.settings import Settings
    from tests.unit.auth_media import image

    reference = faces.encode(faces.load_image(image("obama.jpg")))
    cohort = reference + np.random.default_rng(0).normal(0, 0.05, size=(COHORT_MAX, 128))  # other customers
    policy = face_match.Policy.from_settings(Settings())
    selfie = _selfie()
    pixels = faces.load_image(selfie)
    ours, bare = [], []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        face_match.decide(reference, probe_encoding(selfie), cohort, policy)
        ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        boxes = face_recognition.face_locations(pixels)
        np.linalg.norm(face_recognition.face_encodings(pixels, boxes)[0] - reference)
        bare.append(time.perf_counter() - t0)
    return percentile(ours, 50) * 1000, percentile(bare, 50) * 1000


def face_dev_figures() -> dict[str, tuple[float, float]]:
    """(policy's rate, old rule's rate) on the dev set's East-Asian group: FAR and FRR."""
    from auth_flow import face_eval, face_match
    from auth_flow.face_engines import probe_encoding
    from sunshine.settings import VAR, Settings
    from tests.unit.auth_media import FACES

    samples = face_eval.load_samples(FACES.parent / "faces-eval", VAR / "cache" / "face-encodings.json", probe_encoding)
    policy = face_match.Policy.from_settings(Settings())
    ours = face_eval.evaluate(samples, policy)[0]["east_asian"]
    old = face_match.Policy(cohort_min=10**9, pass_distance=0.5, review_distance=0.5)
    before = face_eval.evaluate(samples, old)[0]["east_asian"]
    return {"far": (ours["far"], before["far"]), "frr": (ours["frr"], before["frr"])}


def reports_figure() -> float:
    from auth_flow import reports, tokens
    from emulators import serve_in_thread
    from emulators.bureau.api import create_app
    from lending.applications import Applications
    from lending.customers import by_openid
    from sunshine.db import unit_of_work
    from sunshine.demo import load_demo
    from sunshine.migrate import upgrade
    from sunshine.models import Authorization, LoanApplication
    from sunshine.settings import Settings

    with tempfile.TemporaryDirectory() as tmp, serve_in_thread(create_app()) as bureau_url:
        settings = replace(
            Settings(),
            database_url=f"sqlite:///{Path(tmp) / 'bench.sqlite'}",
            bureau_url=bureau_url,
            secret_key="bench-secret",  # noqa: S106  a benchmark's throw-away secret
        )
        upgrade(settings.database_url)
        svc = Applications(settings.secret_key, lambda openid, text: None)
        with unit_of_work(settings.database_url) as s:
            load_demo(s, settings.secret_key)
            head, guarantor = by_openid(s, "o_demo_zhangjianguo"), by_openid(s, "o_demo_wangchunhua")
            app = svc.apply(
                s, head.id, "guaranteed_farm_loan", 100_000, 24, idempotency_key="bench", guarantor_id=guarantor.id
            )
            tokens.issue_for_application(s, app, "bench", timedelta(minutes=30))
            for auth in s.query(Authorization).filter_by(application_id=app.id):
                auth.status = "consented"  # the consents themselves are not what is measured
            app_id = app.id
        t0 = time.perf_counter()
        outcome = reports.fetch_reports(settings, app_id, applications=svc)
        elapsed = time.perf_counter() - t0
        with unit_of_work(settings.database_url) as s:
            assert outcome.state == "received" and s.get(LoanApplication, app_id).status == "under_review"  # noqa: S101  a benchmark's sanity check
    return elapsed


def main() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    except (AttributeError, OSError):
        pass
    ours, bare = face_figures()
    dev = face_dev_figures()
    seconds = reports_figure()
    record(
        {
            "face_verify_p50_ms": (ours, "ms", bare),
            "face_overhead_ratio": (ours / bare, "ratio", 1.0),
            "face_far_east_asian_dev": (dev["far"][0], "ratio", dev["far"][1]),
            "face_frr_east_asian_dev": (dev["frr"][0], "ratio", dev["frr"][1]),
            "auth_reports_s": (seconds, "s", None),
        }
    )
    print(f"face_verify_p50_ms   {ours:8.1f} ms   (bare face_recognition {bare:.1f} ms)")
    print(f"face_overhead_ratio  {ours / bare:8.3f}")
    print(f"face_far_east_asian_dev {dev['far'][0]:.4f}   (distance <= 0.5: {dev['far'][1]:.4f})")
    print(f"face_frr_east_asian_dev {dev['frr'][0]:.4f}   (distance <= 0.5: {dev['frr'][1]:.4f})")
    print(f"auth_reports_s       {seconds:8.3f} s")


if __name__ == "__main__":
    main()
