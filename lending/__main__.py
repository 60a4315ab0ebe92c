"""Loan operations from the command line (DATABASE_URL, SECRET_KEY, REDIS_URL from the settings).

    python -m lending import-credit-lines FILE        import a village credit file (CSV)
    python -m lending approve-village VILLAGE --officer USERNAME [--reason TEXT] [--max-amount YUAN]
                                                      approve a village's small loans waiting for an officer
    python -m lending escalate-overdue [--every SECONDS]
                                                      flag applications past their review deadline
                                                      (once, or every SECONDS: `make run` keeps it running)
    python -m lending sync-loans                      copy every live loan's balances and instalments from core banking
    python -m lending remind-repayments [--date YYYY-MM-DD] [--every SECONDS]
                                                      repayment reminders and overdue notices of the day (Beijing),
                                                      once per instalment (`make run` keeps it running)
    python -m lending annual-inspection [--village VILLAGE] [--date YYYY-MM-DD] [--rules FILE] [--every SECONDS]
                                                      the annual inspection (年检) of the lines due, with a progress
                                                      bar and a summary (`make run` runs it daily)

Exit status: 0 done, 1 done but some rows or applications were left out, 2 could not run.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

from sqlalchemy import select
from tqdm import tqdm

from lending import inspection, loans, reminders
from lending.applications import Applications
from lending.notify import WeChatNotifier
from lending.village_file import RowError, import_file
from sunshine import clock
from sunshine.clock import customer_date
from sunshine.db import unit_of_work
from sunshine.jobs import Jobs
from sunshine.models import Officer
from sunshine.periodic import run_rounds, shared_duty
from sunshine.protect import configure_logging
from sunshine.settings import Settings, load_for_command

SHOWN_ERRORS = 50


def _progress(bar: tqdm):
    """A progress(done, total) callback that moves the bar."""

    def update(done: int, total: int | None) -> None:
        if total is not None:
            bar.total = total
        bar.update(done - bar.n)

    return update


def import_credit_lines(settings: Settings, path: Path, actor: str) -> int:
    if not path.is_file():
        print(f"找不到文件：{path}", file=sys.stderr)
        return 2
    with path.open("rb") as fh:
        rows = max(sum(1 for _ in fh) - 1, 0)
    try:
        with (
            unit_of_work(settings.database_url) as session,
            tqdm(total=rows, unit="户", desc="导入授信档案", file=sys.stderr) as bar,
        ):
            report = import_file(session, settings.secret_key, path, actor=actor, progress=_progress(bar))
    except RowError as exc:  # the file as a whole (its header) is unusable
        print(f"无法导入：{exc}", file=sys.stderr)
        return 2
    if report.refused is not None:  # an unknown or stopped officer: nothing was imported
        print(f"无法导入：{report.refused}", file=sys.stderr)
        return 2
    assigned = f"，{report.officers_assigned}人换了客户经理" if report.officers_assigned else ""
    print(
        f"导入完成：新增{report.created}户，更新{report.updated}户，未变{report.unchanged}户，"
        f"有误{len(report.errors)}行{assigned}。"
    )
    for line_no, reason in report.errors[:SHOWN_ERRORS]:
        print(f"  第{line_no}行：{reason}")
    if len(report.errors) > SHOWN_ERRORS:
        print(f"  ……另有{len(report.errors) - SHOWN_ERRORS}行有误")
    return 1 if report.errors else 0


def approve_village(settings: Settings, village: str, username: str, reason: str, max_amount: int | None) -> int:
    if not settings.redis_url:
        print("REDIS_URL 未设置：审批结果无法通过微信通知客户，请先设置", file=sys.stderr)
        return 2
    service = Applications.from_settings(settings)
    with unit_of_work(settings.database_url) as session:
        officer = session.scalar(select(Officer).where(Officer.username == username))
        if officer is None:
            print(f"没有这个客户经理账号：{username}", file=sys.stderr)
            return 2
        with tqdm(total=0, unit="笔", desc=f"{village}批量审批", file=sys.stderr) as bar:
            report = service.approve_village(session, village, officer, reason, max_amount, progress=_progress(bar))
    print(
        f"{village}批量审批完成：通过{len(report.approved)}笔，"
        f"超过小额上限或需主管复核、留待逐笔审批{len(report.over_limit)}笔。"
    )
    return 1 if report.over_limit else 0


def escalate_overdue(settings: Settings, every_s: float | None = None) -> int:
    """Once, or every `every_s` seconds until stopped (the launcher runs it so)."""
    service = Applications.from_settings(settings, notify=lambda openid, text, **_: None)

    def one_round(once: bool) -> None:
        with unit_of_work(settings.database_url) as session:
            escalated = service.escalate_overdue(session)
            if escalated or once:
                print(
                    f"超过审批时限、已升级的申请：{len(escalated)}笔"
                    + (f"（编号 {', '.join(str(a.id) for a in escalated)}）" if escalated else ""),
                    flush=True,
                )

    return run_rounds(one_round, every_s, "escalation round", shared_duty(settings, "escalator", every_s))


def sync_loans(settings: Settings) -> int:
    synced = loans.sync_loans(settings)
    failed = {loan_id: state for loan_id, state in synced.items() if state.startswith("error")}
    print(f"已与核心系统同步贷款{len(synced) - len(failed)}笔，失败{len(failed)}笔。")
    for loan_id, state in failed.items():
        print(f"  贷款{loan_id}：{state}")
    return 1 if failed else 0


def remind_repayments(settings: Settings, on: date | None = None, every_s: float | None = None) -> int:
    """Once (for `on`, default today in Beijing), or every `every_s` seconds from REPAYMENT_REMINDER_HOUR."""
    notify = WeChatNotifier(Jobs(settings))
    failed = False

    def one_round(once: bool) -> None:
        nonlocal failed
        if not once and clock.in_beijing(clock.utcnow()).hour < settings.repayment_reminder_hour:
            return  # no reminders in the night: the day's round waits for the hour
        report = reminders.remind_repayments(settings, notify, on=on)
        failed = bool(report.failed)
        if once or report.sent or report.failed or report.to_officer:
            print(
                f"{customer_date(report.on)}还款提醒：同步贷款{report.synced}笔，发出提醒{len(report.sent)}条，"
                f"转客户经理{len(report.to_officer)}条，核心系统未应答{len(report.failed)}笔。",
                flush=True,
            )
            for loan_id, reason in report.failed.items():
                print(f"  贷款{loan_id}：{reason}", flush=True)

    code = run_rounds(one_round, every_s, "repayment reminder round", shared_duty(settings, "reminder", every_s))
    return 1 if code == 0 and failed and every_s is None else code


def annual_inspection(
    settings: Settings,
    village: str | None,
    on: date | None = None,
    rules_file: Path = inspection.RULES_FILE,
    every_s: float | None = None,
) -> int:
    """Once (for `on`, default today in Beijing), or every `every_s` seconds (each run inspects
    only what is newly due: a line is inspected once per validity end)."""
    try:
        rules = inspection.Rules.load(rules_file)
    except inspection.InspectionRulesError as exc:
        print(f"年检规则文件有误：{exc}", file=sys.stderr)
        return 2
    if not settings.redis_url:
        print("REDIS_URL 未设置：年检结果无法通过微信通知客户，请先设置", file=sys.stderr)
        return 2
    notify = WeChatNotifier(Jobs(settings))
    failed = False

    def one_round(once: bool) -> None:
        nonlocal failed
        where = village or "全部村"
        with tqdm(total=0, unit="户", desc=f"{where}年检", file=sys.stderr, disable=not once) as bar:
            report = inspection.run_batch(
                settings, notify, rules, today=on, village=village, actor="command", progress=_progress(bar)
            )
        failed = bool(report.failed)
        c = report.counts
        if once or report.total:
            print(
                f"{where}年检完成（批次{report.batch_id}）：到期{report.total}户，"
                f"非现场通过{c['kept'] + c['raised'] + c['lowered']}户"
                f"（维持{c['kept']}、上调{c['raised']}、调减{c['lowered']}），"
                f"转客户经理上门{c['on_site']}户，核心系统未应答、留待下次{c['failed']}户。",
                flush=True,
            )

    code = run_rounds(one_round, every_s, "annual inspection round", shared_duty(settings, "inspection", every_s))
    return 1 if code == 0 and failed and every_s is None else code


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"日期格式应为YYYY-MM-DD：{text}") from None


def main(argv: list[str] | None = None, settings: Settings | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lending", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    imp = commands.add_parser("import-credit-lines", help="import a village credit file (CSV)")
    imp.add_argument("file", type=Path)
    imp.add_argument("--actor", default="import", help="who imports, for the audit log")
    batch = commands.add_parser("approve-village", help="approve a village's small loans waiting for an officer")
    batch.add_argument("village")
    batch.add_argument("--officer", required=True, help="the approving officer's username")
    batch.add_argument("--reason", default="整村批量审批")
    batch.add_argument(
        "--max-amount", type=int, help="largest amount approved (default: each product's " "automatic-approval limit)"
    )
    esc = commands.add_parser("escalate-overdue", help="flag applications past their review deadline")
    esc.add_argument("--every", type=float, metavar="SECONDS", help="keep running, a round every SECONDS")
    commands.add_parser("sync-loans", help="copy every live loan's balances and instalments from core banking")
    remind = commands.add_parser("remind-repayments", help="repayment reminders and overdue notices of the day")
    remind.add_argument("--date", type=_date, help="the Beijing date to remind for (default: today)")
    remind.add_argument("--every", type=float, metavar="SECONDS", help="keep running, a round every SECONDS")
    yearly = commands.add_parser("annual-inspection", help="the annual inspection of the lines due (年检)")
    yearly.add_argument("--village", help="only this village (default: every village)")
    yearly.add_argument("--date", type=_date, help="the Beijing date to judge for (default: today)")
    yearly.add_argument("--rules", type=Path, default=inspection.RULES_FILE, help="the rules file")
    yearly.add_argument("--every", type=float, metavar="SECONDS", help="keep running, a round every SECONDS")
    args = parser.parse_args(argv)
    settings = settings or load_for_command()
    configure_logging(settings.log_level)
    if args.command == "import-credit-lines":
        return import_credit_lines(settings, args.file, args.actor)
    if args.command == "approve-village":
        return approve_village(settings, args.village, args.officer, args.reason, args.max_amount)
    if args.command == "sync-loans":
        return sync_loans(settings)
    if args.command == "annual-inspection":
        return annual_inspection(settings, args.village, args.date, args.rules, args.every)
    if args.command == "remind-repayments":
        return remind_repayments(settings, args.date, args.every)
    return escalate_overdue(settings, args.every)


if __name__ == "__main__":
    sys.exit(main())
