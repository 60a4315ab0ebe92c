"""`python -m auth_flow enroll-face ID_NUMBER PHOTO --officer USER` | `export-evidence FILE.jsonl`."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from auth_flow import evidence, faces, service
from lending.customers import by_id_number
from sunshine.db import unit_of_work
from sunshine.protect import mask_id_number
from sunshine.settings import load


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m auth_flow")
    commands = parser.add_subparsers(dest="command", required=True)
    enroll = commands.add_parser("enroll-face", help="enrol a customer's reference face (ID-photo-like image)")
    enroll.add_argument("id_number")
    enroll.add_argument("photo", type=Path)
    enroll.add_argument("--officer", required=True)
    export = commands.add_parser("export-evidence", help="write the consent-evidence chain as JSON lines")
    export.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    settings = load()
    if args.command == "enroll-face":
        with unit_of_work(settings.database_url) as session:
            customer = by_id_number(session, settings.secret_key, args.id_number)
            if customer is None:
                print(f"error: no customer with ID number {mask_id_number(args.id_number)}", file=sys.stderr)
                return 1
            try:
                service.enroll_reference(session, settings.secret_key, customer, args.photo.read_bytes(),
                                         args.officer)
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
    problems = evidence.verify_chain(records)
    print(f"{len(records)} evidence records written to {args.out}; chain "
          + ("intact" if not problems else "BROKEN:\n" + "\n".join(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
