"""Authorization operations from the command line (DATABASE_URL, SECRET_KEY, BUREAU_URL from the settings).

python -m auth_flow enroll-face ID_NUMBER PHOTO --officer USER   enrol a reference face
python -m auth_flow enrol-references CSV PHOTO_DIR --officer USER
                                                  enrol the reference faces a CSV (id_number,photo) lists
python -m auth_flow demo-camera FILE.y4m [--order A,B,C]
                                                  the demo's face answering the demo challenge order, for
                                                  Chromium's fake camera (`make run`'s FACE_CHALLENGE_DEMO_ORDER)
python -m auth_flow export-evidence FILE.jsonl                   the consent-evidence chain
python -m auth_flow evidence-checkpoint [--every SECONDS]        sign the chain's head into EVIDENCE_CHECKPOINT_DIR
python -m auth_flow verify-evidence [--from FILE.jsonl] [--checkpoints DIR|FILE]
                                                                 check the chain (keys, rewrites, a cut tail)
python -m auth_flow retry-reports APPLICATION_ID                 query failed or stuck reports again
python -m auth_flow sweep-reports [--every SECONDS]              fetch reports whose job died or never ran, and
                                                                 delete face-review frames past their retention
                                                                 (once, or every SECONDS: `make run` does)
python -m auth_flow evaluate-faces DIR [--json] [--plot PNG]     the face decision's false accepts/rejects
                                                                 per group on DIR/GROUP/PERSON/IMAGE
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from auth_flow import evidence, face_eval, face_match, face_review, faces, reports
from auth_flow.enrolment import BadImportFile, enroll_reference, import_references, photos_in_folder
from auth_flow.face_engines import probe_encoding
from lending.customers import by_id_number
from sunshine.db import unit_of_work
from sunshine.demo import demo_faces_dir, write_demo_camera
from sunshine.models import LoanApplication
from sunshine.periodic import run_rounds, shared_duty
from sunshine.protect import configure_logging, mask_id_number
from sunshine.settings import DEMO_CHALLENGE_ORDER, VAR, demo_challenge_order, load


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m auth_flow")
    commands = parser.add_subparsers(dest="command", required=True)
    enroll = commands.add_parser("enroll-face", help="enrol a customer's reference face (ID-photo-like image)")
    enroll.add_argument("id_number")
    enroll.add_argument("photo", type=Path)
    enroll.add_argument("--officer", required=True)
    bulk = commands.add_parser(
        "enrol-references", help="enrol the reference faces listed in a CSV (columns id_number, photo)"
    )
    bulk.add_argument("csv", type=Path)
    bulk.add_argument("photo_dir", type=Path)
    bulk.add_argument("--officer", required=True)
    camera = commands.add_parser(
        "demo-camera", help="write the demo's face answering the demo challenge order, a y4m for Chromium's fake camera"
    )
    camera.add_argument("out", type=Path)
    camera.add_argument(
        "--order", help=f"the actions, e.g. {DEMO_CHALLENGE_ORDER} (default: FACE_CHALLENGE_DEMO_ORDER, else that)"
    )
    export = commands.add_parser("export-evidence", help="write the consent-evidence chain as JSON lines")
    export.add_argument("out", type=Path)
    point = commands.add_parser("evidence-checkpoint", help="write a signed checkpoint of the evidence chain's head")
    point.add_argument("--every", type=float, metavar="SECONDS", help="keep running, a checkpoint every SECONDS")
    point.add_argument("--dir", type=Path, help="where to write (default EVIDENCE_CHECKPOINT_DIR)")
    check = commands.add_parser("verify-evidence", help="verify the evidence chain against its keys and checkpoints")
    check.add_argument("--from", dest="source", type=Path, help="an export (JSON lines) instead of the database")
    check.add_argument("--checkpoints", type=Path, help="a folder or one file (default EVIDENCE_CHECKPOINT_DIR)")
    retry = commands.add_parser("retry-reports", help="query an application's failed or stuck reports again")
    retry.add_argument("application_id", type=int)
    sweep = commands.add_parser("sweep-reports", help="fetch reports whose consents are complete but not queried")
    sweep.add_argument("--every", type=float, metavar="SECONDS", help="keep running, a round every SECONDS")
    evaluate = commands.add_parser("evaluate-faces", help="false accepts/rejects of the face decision per group")
    evaluate.add_argument("dir", type=Path, help="DIR/GROUP/PERSON/IMAGE")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object (no plot)")
    evaluate.add_argument("--plot", type=Path, default=VAR / "face-eval" / "evaluate-faces.png", help="the PNG")
    evaluate.add_argument("--cache", type=Path, default=VAR / "cache" / "face-encodings.json")
    evaluate.add_argument("--no-cohort", action="store_true", help="evaluate the fallback (distance alone)")
    args = parser.parse_args(argv)
    settings = load()
    if args.command == "evaluate-faces":
        return evaluate_faces(settings, args)
    configure_logging(settings.log_level)
    if args.command == "retry-reports":
        return retry_reports(settings, args.application_id)
    if args.command == "sweep-reports":
        return sweep_reports(settings, args.every)
    if args.command == "demo-camera":
        return demo_camera(settings, args.out, args.order)
    if args.command == "enrol-references":
        return enrol_references(settings, args.csv, args.photo_dir, args.officer)
    if args.command == "evidence-checkpoint":
        return evidence_checkpoint(settings, args.dir or Path(settings.evidence_checkpoint_dir), args.every)
    if args.command == "verify-evidence":
        return verify_evidence(settings, args.source, args.checkpoints or Path(settings.evidence_checkpoint_dir))
    if args.command == "enroll-face":
        with unit_of_work(settings.database_url) as session:
            customer = by_id_number(session, settings.secret_key, args.id_number)
            if customer is None:
                print(f"error: no customer with ID number {mask_id_number(args.id_number)}", file=sys.stderr)
                return 1
            try:
                enroll_reference(session, settings.secret_key, customer, args.photo.read_bytes(), args.officer)
            except faces.FaceError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 1
        print(f"reference face enrolled for {mask_id_number(args.id_number)}")
        return 0
    with unit_of_work(settings.database_url) as session:
        records = list(evidence.export(session))
    with args.out.open("w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
    problems = evidence.verify_chain(records, evidence.Keys.from_settings(settings))
    print(
        f"{len(records)} evidence records written to {args.out}; chain "
        + ("intact" if not problems else "BROKEN:\n" + "\n".join(problems))
        + " (a cut tail shows only against checkpoints: python -m auth_flow verify-evidence)"
    )
    return 1 if problems else 0


def evaluate_faces(settings, args) -> int:
    if not args.dir.is_dir():
        print(f"error: {args.dir} is not a folder (DIR/GROUP/PERSON/IMAGE)", file=sys.stderr)
        return 2
    policy = face_match.Policy.from_settings(settings)
    if args.no_cohort:
        policy = replace(policy, cohort_min=10**9)
    report, pairs = face_eval.run(
        args.dir, policy, args.cache, probe_encoding, lambda line: print(line, file=sys.stderr, flush=True)
    )
    if not report["groups"]:
        print(f"error: no GROUP/PERSON/IMAGE under {args.dir}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report, ensure_ascii=False, sort_keys=True))
        return 0
    print(face_eval.table(report))
    face_eval.plot(pairs, report["groups"], policy, args.plot)
    print(f"distributions and ROC: {args.plot}")
    return 0


def enrol_references(settings, csv_path: Path, photo_dir: Path, officer: str) -> int:
    """Progress one line per row, then the refused rows (line, file, why); exit 1 when any was refused."""
    if not csv_path.is_file() or not photo_dir.is_dir():
        print(f"error: {csv_path if not csv_path.is_file() else photo_dir} not found", file=sys.stderr)
        return 2

    def progress(done: int, total: int, line: int, masked_id: str, outcome: str) -> None:
        print(f"[{done}/{total}] line {line} {masked_id}: {outcome}", flush=True)

    try:
        with csv_path.open(encoding="utf-8-sig", newline="") as rows, unit_of_work(settings.database_url) as session:
            report = import_references(
                session, settings.secret_key, rows, photos_in_folder(photo_dir), officer, progress=progress
            )
    except BadImportFile as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report.summary())
    for r in report.refused:
        print(f"refused: line {r.line}, file {r.photo or '-'}, {r.id_masked or '-'}: {r.reason}")
    return 1 if report.refused else 0


def evidence_checkpoint(settings, folder: Path, every_s: float | None) -> int:
    """Sign the chain's head into `folder` and print it (one JSON line: the log keeps a copy),
    once or every `every_s` seconds (the launcher's evidence-checkpointer)."""
    keys = evidence.Keys.from_settings(settings)

    def one_round(once: bool) -> None:
        with unit_of_work(settings.database_url) as session:
            point = evidence.checkpoint(session, keys)
        path = evidence.write_checkpoint(point, folder)
        print(f"evidence checkpoint {path}: {json.dumps(point, sort_keys=True)}", flush=True)

    return run_rounds(one_round, every_s, "evidence checkpoint", shared_duty(settings, "checkpointer", every_s))


def verify_evidence(settings, source: Path | None, checkpoints: Path) -> int:
    """Verify the chain (the database's, or an export) with the keys and every checkpoint."""
    points = evidence.read_checkpoints(checkpoints) if checkpoints.exists() else []
    counted = [0]

    def counting(records):
        for record in records:
            counted[0] += 1
            yield record

    keys = evidence.Keys.from_settings(settings)
    if source is not None:
        with source.open(encoding="utf-8") as lines:
            problems = evidence.verify_chain(counting(json.loads(line) for line in lines if line.strip()), keys, points)
    else:
        with unit_of_work(settings.database_url) as session:
            problems = evidence.verify_chain(counting(evidence.export(session)), keys, points)
    if problems:
        print(f"{counted[0]} evidence records; chain BROKEN:\n" + "\n".join(problems))
        return 1
    if not points:
        print(
            f"{counted[0]} evidence records intact, but no checkpoint in {checkpoints}: a cut tail cannot be "
            "detected; write them with python -m auth_flow evidence-checkpoint"
        )
        return 1
    latest = max(points, key=lambda p: (p["count"], p["at"]))
    print(
        f"{counted[0]} evidence records intact; {len(points)} checkpoint(s) hold, "
        f"the latest {latest['file']} ({latest['at']}, {latest['count']} records)"
    )
    return 0


def demo_camera(settings, out: Path, order: str | None) -> int:
    order = order or settings.face_challenge_demo_order or DEMO_CHALLENGE_ORDER
    try:
        actions = demo_challenge_order(order)
    except ValueError as exc:
        print(f"error: --order {order!r}: {exc}", file=sys.stderr)
        return 2
    folder = demo_faces_dir(settings.demo_faces_dir)
    if folder is None:
        print("error: the test photos (shared/testdata/faces) are not there; set DEMO_FACES_DIR", file=sys.stderr)
        return 2
    out.parent.mkdir(parents=True, exist_ok=True)
    frames = write_demo_camera(out, folder, actions)
    print(
        f"{frames} frames written to {out}: the face answers the challenge {','.join(actions)} (start `make run`\n"
        f"  with FACE_CHALLENGE_DEMO_ORDER={','.join(actions)}, its default); open an authorization link of 张建国 in\n"
        f"  chromium --use-fake-device-for-media-stream --use-fake-ui-for-media-stream "
        f"--use-file-for-fake-video-capture={out.resolve()}"
    )
    return 0


def retry_reports(settings, application_id: int) -> int:
    with unit_of_work(settings.database_url) as session:
        if session.get(LoanApplication, application_id) is None:
            print(f"error: no application {application_id}", file=sys.stderr)
            return 2
    outcome = reports.fetch_reports(settings, application_id, retry_failed=True)
    detail = {
        "waiting": f"consents missing: {', '.join(outcome.missing)}",
        "claimed_elsewhere": "nothing to query (reports in, or a query still running)",
        "failed": "; ".join(f"{role}: {why}" for role, why in outcome.failed.items()),
        "received": "reports handed to the lending service",
    }[outcome.state]
    print(f"application {application_id}: {outcome.state} ({detail})")
    return 0 if outcome.state == "received" else 1


def sweep_reports(settings, every_s: float | None) -> int:
    """Once, or every `every_s` seconds until stopped (the launcher runs it so)."""

    def one_round(once: bool) -> None:
        done = {
            app_id: state for app_id, state in reports.sweep_reports(settings).items() if state != "claimed_elsewhere"
        }
        if done or once:
            print(f"credit reports swept: {done or 'nothing to do'}", flush=True)
        with unit_of_work(settings.database_url) as session:
            purged = face_review.purge(session, settings.face_review_retention_hours)
        if purged or once:
            print(f"face reviews purged: {purged}", flush=True)

    return run_rounds(one_round, every_s, "report sweep", shared_duty(settings, "sweeper", every_s))


if __name__ == "__main__":
    raise SystemExit(main())
