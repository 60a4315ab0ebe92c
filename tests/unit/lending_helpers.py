"""Helpers for the lending tests: a service with a recording notifier and a fixed clock,
credit reports from the bureau emulator's generator, and small village files."""

from __future__ import annotations

from datetime import datetime

from clients.bureau import CreditReport
from emulators.bureau.api import build_report, with_check_digit
from lending.applications import Applications
from lending.contracts import for_application
from lending.village_file import import_file
from tests import TEST_SECRET

T0 = datetime(2026, 12, 1, 2, 0)  # 10:00 in Beijing
HEADER = "village,household_head,id_number,phone,customer_type,credit_line,valid_until,members,tags\n"


class Recorder:
    """A notifier that keeps what the customers were told."""

    def __init__(self):
        self.sent: list[tuple[str, str]] = []
        self.details: list[dict] = []  # each notice's kind, application and fields

    def __call__(self, openid: str, text: str, **details) -> None:
        self.sent.append((openid, text))
        self.details.append(details)


def service(clock=lambda: T0, **kwargs) -> tuple[Applications, Recorder]:
    notify = Recorder()
    return Applications(TEST_SECRET, notify, clock=clock, **kwargs), notify


def sign(session, svc: Applications, application_id: int) -> None:
    """Sign the contract offered at the approval (what auth_flow.signing does once the borrower's proof passes)."""
    svc.sign(session, application_id, for_application(session, application_id).id)


def person_id(birth: str, risk_digit: int = 1, seq: int = 1) -> str:
    """A valid ID number born `birth` (YYYYMMDD) whose bureau report is clean (0-5),
    past overdue (6-8) or seriously overdue (9), by the emulator's rule."""
    return with_check_digit(f"321283{birth}{seq % 10}{risk_digit}{seq % 10}")


def report(id_number: str, name: str = "某人") -> CreditReport:
    return CreditReport.from_json(
        {"report_id": f"R{id_number[-6:]}", "issued_at": "2026-12-01T10:00:00+08:00", **build_report(id_number, name)}
    )


def import_village(session, tmp_path, rows: list[str], name: str = "village.csv"):
    """Import CSV rows (without header) as a village credit file."""
    path = tmp_path / name
    path.write_text(HEADER + "".join(r + "\n" for r in rows), encoding="utf-8")
    return import_file(session, TEST_SECRET, path)
