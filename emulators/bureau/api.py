"""The credit bureau's personal-report API, emulated (JSON over HTTP).

    POST /v1/reports  {"id_number", "name", "authorization_id", "purpose"}
      201 -> a personal credit report (see `build_report`)
      400 -> {"error": {"code": "invalid_request" | "invalid_id_number" | "invalid_purpose", "message"}}
    GET  /v1/reports/<report_id>  -> the report issued earlier (404 when unknown)
    GET  /healthz

The report's content is deterministic per ID number (seeded by its SHA-256),
dated relative to the current month. Which ID numbers carry negative items
(the rule tests and demos rely on):

    the 16th character (the middle digit of the 3-digit sequence code, just
    before the sex digit) decides:
      0-5  clean: no overdue records
      6-8  past overdue: 1-3 short (1-month) overdue records on a closed or
           current loan, all repaid; nothing overdue now
      9    serious: a loan currently overdue (3+ months, five-class 次级),
           overdue records on it, and many recent hard queries

(The sex digit itself is not used: it would make every man a bad borrower.)
Consent is not checked here: that is auth_flow's job. The bureau only
requires an authorization_id and a known purpose. A request with an
`Idempotency-Key` header (clients.bureau sends the authorization id) that
repeats one already answered (a client retrying after a timeout) gets the same
report back (200) and leaves no second query record.

Control endpoints:
    POST /_emulator/faults {"mode": "fail" | "slow", "count": 1, "status": 503, "delay": 3.0}
         the next `count` report requests fail with HTTP `status`, or answer after `delay` s
    GET  /_emulator/faults, DELETE /_emulator/faults
    GET  /_emulator/queries   report requests received, oldest first
    POST /_emulator/reset
"""

from __future__ import annotations

import hashlib
import json
import random
import secrets
import threading
import time
from dataclasses import asdict, dataclass
from datetime import date, timezone

from flask import Flask, Response, request

from sunshine import clock

PURPOSES = {
    "loan_approval": "贷款审批",
    "post_loan_management": "贷后管理",
    "guarantee_review": "担保资格审查",
    "credit_card_approval": "信用卡审批",
    "spouse_joint_review": "贷款审批（配偶共同借款人）",
}
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
INSTITUTIONS = [
    "阳光农村商业银行",
    "中国农业银行",
    "中国邮政储蓄银行",
    "中国建设银行",
    "江苏银行",
    "中国工商银行",
    "微众银行",
    "招商银行",
]
LOAN_TYPES = [
    ("个人经营性贷款", 50000, 500000),
    ("农户生产经营贷款", 20000, 300000),
    ("个人消费贷款", 10000, 100000),
    ("个人汽车贷款", 50000, 200000),
    ("个人住房贷款", 200000, 800000),
]
QUERY_REASONS = ["贷款审批", "信用卡审批", "贷后管理", "担保资格审查"]


def id_number_valid(id_number: str) -> bool:
    """An 18-character resident ID number with a correct ISO 7064 check character."""
    if len(id_number) != 18 or not id_number[:17].isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(id_number[:17], _WEIGHTS, strict=False))
    return _CHECK[total % 11] == id_number[17].upper()


def with_check_digit(first17: str) -> str:
    """The full ID number for 17 digits (for tests and demos that need a particular rule)."""
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=False))
    return first17 + _CHECK[total % 11]


def risk_class(id_number: str) -> str:
    """ "clean", "past_overdue" or "serious", by the rule in the module docstring."""
    digit = int(id_number[15])
    if digit == 9:
        return "serious"
    if digit >= 6:
        return "past_overdue"
    return "clean"


def _month_add(d: date, months: int) -> date:
    y, m = divmod(d.month - 1 + months, 12)
    return date(d.year + y, m + 1, 1)


def _yuan(x: float) -> float:
    return round(x, 2)


def build_report(id_number: str, name: str, today: date | None = None) -> dict:
    """The credit content for `id_number`: the same for the same ID number in the same month."""
    today = today or clock.today()
    month0 = date(today.year, today.month, 1)
    rng = random.Random(int.from_bytes(hashlib.sha256(id_number.encode()).digest()[:8], "big"))  # noqa: S311  emulator: a deterministic fake report per ID number, not a secret
    risk = risk_class(id_number)
    birth = id_number[6:14]
    account_seq = 0

    def account_id() -> str:
        nonlocal account_seq
        account_seq += 1
        return f"L{hashlib.sha1(f'{id_number}:{account_seq}'.encode()).hexdigest()[:14].upper()}"  # noqa: S324  emulator: a fake loan account number, not a security use

    def months_back(d: date) -> int:
        return (month0.year - d.year) * 12 + month0.month - d.month

    def history(opened: date, due: date) -> list[str]:
        """PBOC-style 24-month repayment status, oldest first: / not opened, N normal, C closed."""
        out = []
        for back in range(23, -1, -1):
            month = _month_add(month0, -back)
            out.append("/" if month <= opened else ("C" if month >= due else "N"))
        return out

    loans = []
    n_loans = rng.randint(0, 3) if risk == "clean" else rng.randint(1, 3)
    for _ in range(n_loans):
        kind, lo, hi = rng.choice(LOAN_TYPES)
        amount = rng.randrange(lo, hi + 1, 5000)
        term = rng.choice([12, 24, 36, 60]) if kind != "个人住房贷款" else rng.choice([120, 240, 360])
        opened = _month_add(month0, -rng.randint(3, min(term + 24, 120)))
        due = _month_add(opened, term)
        closed = due <= month0
        paid_share = months_back(opened) / term
        balance = 0.0 if closed else _yuan(amount * (1 - paid_share) * rng.uniform(0.85, 1.0))
        loans.append(
            {
                "account_id": account_id(),
                "institution": rng.choice(INSTITUTIONS),
                "type": kind,
                "currency": "CNY",
                "opened_on": opened.isoformat(),
                "due_on": due.isoformat(),
                "amount": amount,
                "balance": balance,
                "status": "closed" if closed else "normal",
                "five_class": "正常",
                "overdue_amount": 0.0,
                "overdue_months": 0,
                "repayment_24m": "".join(history(opened, due)),
            }
        )

    cards = []
    for _ in range(rng.randint(0, 3)):
        limit = rng.choice([5000, 10000, 20000, 30000, 50000])
        opened = _month_add(month0, -rng.randint(6, 96))
        cards.append(
            {
                "account_id": account_id(),
                "institution": rng.choice(INSTITUTIONS),
                "type": "贷记卡",
                "opened_on": opened.isoformat(),
                "credit_limit": limit,
                "used_amount": _yuan(limit * rng.uniform(0, 0.6)),
                "status": "normal",
                "overdue_amount": 0.0,
                "repayment_24m": "".join(history(opened, date.max)),
            }
        )

    overdue = []
    if risk == "past_overdue":
        # 1-3 one-month overdue records, repaid, in the first loan's life (the bureau keeps 5 years)
        loan = loans[0]
        opened, due = date.fromisoformat(loan["opened_on"]), date.fromisoformat(loan["due_on"])
        newest = max(months_back(due) + 1, 2) if loan["status"] == "closed" else 2
        oldest = max(min(months_back(opened) - 1, 59), newest)
        backs = sorted(rng.sample(range(newest, oldest + 1), min(rng.randint(1, 3), oldest - newest + 1)), reverse=True)
        marks = list(loan["repayment_24m"])
        for back in backs:
            overdue.append(
                {
                    "account_id": loan["account_id"],
                    "month": _month_add(month0, -back).strftime("%Y-%m"),
                    "overdue_months": 1,
                    "amount": _yuan(rng.uniform(500, 5000)),
                }
            )
            if back <= 23 and marks[23 - back] == "N":
                marks[23 - back] = "1"
        loan["repayment_24m"] = "".join(marks)
    elif risk == "serious":
        # the last loan is overdue now, for 3-6 months
        loan = loans[-1]
        months_over = rng.randint(3, 6)
        if loan["status"] == "closed":
            loan["due_on"] = _month_add(month0, 12).isoformat()
            loan["balance"] = _yuan(loan["amount"] * rng.uniform(0.3, 0.7))
        opened, due = date.fromisoformat(loan["opened_on"]), date.fromisoformat(loan["due_on"])
        term = max((due.year - opened.year) * 12 + due.month - opened.month, 12)
        monthly = loan["amount"] / term * 1.2  # principal and interest
        loan.update(
            status="overdue", five_class="次级", overdue_months=months_over, overdue_amount=_yuan(monthly * months_over)
        )
        marks = list(history(date.fromisoformat(loan["opened_on"]), date.max))
        for k in range(1, months_over + 1):
            back = months_over - k
            overdue.append(
                {
                    "account_id": loan["account_id"],
                    "month": _month_add(month0, -back).strftime("%Y-%m"),
                    "overdue_months": k,
                    "amount": _yuan(monthly * k),
                }
            )
            marks[23 - back] = str(k)
        loan["repayment_24m"] = "".join(marks)

    queries = []
    n_queries = rng.randint(0, 3) if risk != "serious" else rng.randint(6, 10)
    for _ in range(n_queries):
        day = date.fromordinal(today.toordinal() - rng.randint(1, 180 if risk != "serious" else 60))
        queries.append(
            {"date": day.isoformat(), "institution": rng.choice(INSTITUTIONS), "reason": rng.choice(QUERY_REASONS)}
        )
    queries.sort(key=lambda q: q["date"], reverse=True)

    open_loans = [loan for loan in loans if loan["status"] != "closed"]
    summary = {
        "risk_class": risk,
        "loan_accounts": len(loans),
        "open_loan_accounts": len(open_loans),
        "total_loan_amount": sum(loan["amount"] for loan in open_loans),
        "total_loan_balance": _yuan(sum(loan["balance"] for loan in open_loans)),
        "credit_cards": len(cards),
        "total_credit_limit": sum(c["credit_limit"] for c in cards),
        "total_card_used": _yuan(sum(c["used_amount"] for c in cards)),
        "overdue_accounts": len({r["account_id"] for r in overdue}),
        "overdue_records": len(overdue),
        "max_overdue_months": max((r["overdue_months"] for r in overdue), default=0),
        "current_overdue_amount": _yuan(sum(loan["overdue_amount"] for loan in loans)),
        "queries_last_1m": sum(1 for q in queries if q["date"] >= date.fromordinal(today.toordinal() - 30).isoformat()),
        "queries_last_6m": len(
            [q for q in queries if q["date"] >= date.fromordinal(today.toordinal() - 183).isoformat()]
        ),
    }
    return {
        "subject": {
            "name": name,
            "id_type": "居民身份证",
            "id_number": id_number,
            "birth_date": f"{birth[:4]}-{birth[4:6]}-{birth[6:]}",
            "gender": "男" if int(id_number[16]) % 2 else "女",
        },
        "summary": summary,
        "loans": loans,
        "credit_cards": cards,
        "overdue_records": overdue,
        "queries": queries,
        "public_records": [],
    }


def _json(obj, status: int = 200) -> Response:
    return Response(json.dumps(obj, ensure_ascii=False), status=status, content_type="application/json; charset=utf-8")


def _error(status: int, code: str, message: str) -> Response:
    return _json({"error": {"code": code, "message": message}}, status)


@dataclass
class Fault:
    mode: str = "fail"  # "fail" or "slow"
    count: int = 1
    status: int = 503
    delay: float = 3.0


def create_app() -> Flask:
    app = Flask("emulators.bureau")
    lock = threading.Lock()
    state = {"faults": [], "queries": [], "reports": {}, "by_authorization": {}, "requests": 0}
    app.extensions["bureau_emulator"] = state

    @app.get("/healthz")
    def healthz():
        return _json({"ok": True})

    @app.post("/v1/reports")
    def create_report():
        with lock:
            fault = state["faults"][0] if state["faults"] else None
            if fault:
                fault.count -= 1
                if fault.count <= 0:
                    state["faults"].pop(0)
        if fault and fault.mode == "slow":
            time.sleep(fault.delay)
        elif fault:
            return _error(fault.status, "unavailable", "credit reference service temporarily unavailable")
        body = request.get_json(force=True, silent=True)
        if not isinstance(body, dict):
            return _error(400, "invalid_request", "body must be a JSON object")
        missing = [k for k in ("id_number", "name", "authorization_id", "purpose") if not body.get(k)]
        if missing:
            return _error(400, "invalid_request", f"missing: {', '.join(missing)}")
        id_number = str(body["id_number"]).strip().upper()
        if not id_number_valid(id_number):
            return _error(400, "invalid_id_number", "id_number is not a valid 18-character resident ID number")
        if body["purpose"] not in PURPOSES:
            return _error(400, "invalid_purpose", f"purpose must be one of {', '.join(PURPOSES)}")
        key = request.headers.get("Idempotency-Key")
        with lock:
            earlier = state["by_authorization"].get((key, id_number)) if key else None
            state["requests"] += 1
        if earlier is not None:
            return _json(state["reports"][earlier])
        now = clock.utcnow().replace(tzinfo=timezone.utc)
        report = {
            "report_id": f"R{now:%Y%m%d%H%M%S}{secrets.token_hex(4).upper()}",
            "issued_at": now.isoformat(timespec="seconds"),
            "query": {
                "authorization_id": body["authorization_id"],
                "purpose": body["purpose"],
                "purpose_label": PURPOSES[body["purpose"]],
                "institution": "阳光农村商业银行",
            },
            **build_report(id_number, str(body["name"])),
        }
        with lock:
            state["queries"].append(
                {
                    "report_id": report["report_id"],
                    "id_number": id_number,
                    "name": body["name"],
                    "authorization_id": body["authorization_id"],
                    "purpose": body["purpose"],
                    "at": report["issued_at"],
                }
            )
            state["reports"][report["report_id"]] = report
            if key:
                state["by_authorization"][(key, id_number)] = report["report_id"]
        return _json(report, 201)

    @app.get("/v1/reports/<report_id>")
    def get_report(report_id: str):
        with lock:
            report = state["reports"].get(report_id)
        if report is None:
            return _error(404, "not_found", "no such report")
        return _json(report)

    @app.route("/_emulator/faults", methods=["GET", "POST", "DELETE"])
    def faults():
        if request.method == "POST":
            spec = request.get_json(force=True, silent=True)
            if not isinstance(spec, dict) or spec.get("mode", "fail") not in ("fail", "slow"):
                return _json({"error": 'body must be {"mode": "fail"|"slow", "count", "status", "delay"}'}, 400)
            try:
                fault = Fault(
                    mode=spec.get("mode", "fail"),
                    count=int(spec.get("count", 1)),
                    status=int(spec.get("status", 503)),
                    delay=float(spec.get("delay", 3.0)),
                )
            except (TypeError, ValueError):
                return _json({"error": "count and status must be integers, delay a number"}, 400)
            with lock:
                state["faults"].append(fault)
        elif request.method == "DELETE":
            with lock:
                state["faults"].clear()
        with lock:
            return _json({"ok": True, "pending": [asdict(f) for f in state["faults"]]})

    @app.get("/_emulator/queries")
    def queries():
        with lock:
            return _json(list(state["queries"]))

    @app.post("/_emulator/reset")
    def reset():
        with lock:
            state["faults"].clear()
            state["queries"].clear()
            state["reports"].clear()
            state["by_authorization"].clear()
            state["requests"] = 0
        return _json({"ok": True})

    return app
