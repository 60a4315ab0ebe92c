"""The bank core's open API, emulated (the wire format is in clients/corebank.py).

Accounts: every customer has a settlement (deposit) account, found by ID number and
opened on first look-up, its number and opening balance derived from the ID number
(the same every run: 6230 58.. with 1,000-50,000 yuan). A loan account is opened with
the schedule the channel sends; its disbursement credits the settlement account;
a repayment debits it and pays the instalments in order (overdue and due ones first,
interest before principal); an instalment unpaid after its due date is overdue, by
the emulator's "today" (the project's clock unless set). State is kept in memory.

Requests are checked as a core checks them: the channel and its HMAC signature, the
timestamp, and the Idempotency-Key of every request that moves money or opens an
account (the same key again gets the first answer and carries out nothing; another
request under it gets E0301).

Control endpoints:
    POST /_emulator/faults {"mode": "fail" | "slow" | "refuse", "count": 1, "delay": 3.0,
                            "code": "E0202", "message": "...", "path": "disbursements"}
         the next `count` requests whose path contains `path` (any, if empty): "fail" answers
         503 E9999 and does nothing; "refuse" answers 422 with `code`/`message` and does
         nothing; "slow" carries the request out, then answers after `delay` s (the
         booking is made, the answer is late: the case an Idempotency-Key is for)
    GET  /_emulator/faults, DELETE /_emulator/faults
    GET  /_emulator/today, POST /_emulator/today {"date": "2027-02-10" | null}
    GET  /_emulator/accounts, POST /_emulator/accounts/<account_no> {"status", "balance_fen"}
    GET  /_emulator/disbursements   every disbursement carried out, oldest first
    GET  /_emulator/requests        requests received (method, path, key, code), oldest first
    POST /_emulator/reset
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import asdict, dataclass
from datetime import date

from flask import Flask, Response, request

from clients.corebank import MAX_CLOCK_SKEW_S, SUCCESS, signature
from sunshine import clock

FAULT_MODES = ("fail", "slow", "refuse")
METHODS = ("equal_instalments", "interest_monthly", "revolving")
LOAN_FIELDS = (
    "contract_no",
    "id_number",
    "name",
    "product_code",
    "principal_fen",
    "annual_rate_bp",
    "term_months",
    "repayment_method",
    "settlement_account",
    "schedule",
)
MESSAGES = {
    SUCCESS: "交易成功",
    "E0001": "请求报文不合法",
    "E0101": "渠道认证失败",
    "E0102": "请求时间戳超出允许范围",
    "E0201": "账户不存在",
    "E0202": "结算账户状态异常（冻结），不能入账",
    "E0203": "借据不存在",
    "E0204": "结算账户余额不足",
    "E0301": "业务流水号重复，且请求内容不一致",
    "E0302": "借据状态不允许该交易",
    "E9999": "系统繁忙，请稍后再试",
}
STATUS = {"E0001": 400, "E0101": 401, "E0102": 401, "E0201": 404, "E0203": 404, "E0301": 409, "E9999": 503}


class Refusal(Exception):
    def __init__(self, code: str, message: str = ""):
        super().__init__(code)
        self.code = code
        self.message = message or MESSAGES[code]


@dataclass
class Fault:
    mode: str = "fail"
    count: int = 1
    delay: float = 3.0
    code: str = "E0202"
    message: str = ""
    path: str = ""


def settlement_account_for(id_number: str) -> tuple[str, int]:
    """The settlement account number and opening balance (fen) of a customer, by ID number."""
    digest = hashlib.sha256(f"settlement:{id_number}".encode()).digest()
    number = "623058" + str(int.from_bytes(digest[:8], "big"))[-13:].zfill(13)
    balance_fen = (1000 + int.from_bytes(digest[8:10], "big") % 49_001) * 100
    return number, balance_fen


def _answer(code: str, data=None, message: str = "", request_id: str = "") -> Response:
    body = {"code": code, "message": message or MESSAGES[code], "request_id": request_id, "data": data}
    status = 200 if code == SUCCESS else STATUS.get(code, 422)
    return Response(json.dumps(body, ensure_ascii=False), status=status, content_type="application/json; charset=utf-8")


def _plain(obj, status: int = 200) -> Response:
    return Response(json.dumps(obj, ensure_ascii=False), status=status, content_type="application/json; charset=utf-8")


def create_app(channel_id: str, secret: str) -> Flask:
    app = Flask("emulators.corebank")
    lock = threading.Lock()
    state: dict = {}

    def reset() -> None:
        state.update(
            faults=[], accounts={}, by_id_number={}, loans={}, keys={}, disbursements=[], requests=[], today=None
        )

    reset()
    app.extensions["corebank_emulator"] = state

    def today() -> date:
        return state["today"] or clock.today()

    # --- the bank's books ----------------------------------------------------------------

    def account(account_no: str) -> dict:
        found = state["accounts"].get(account_no)
        if found is None:
            raise Refusal("E0201")
        return found

    def loan_of(loan_no: str) -> dict:
        found = state["loans"].get(loan_no)
        if found is None:
            raise Refusal("E0203")
        return found

    def unpaid(i: dict) -> int:
        return i["principal_fen"] + i["interest_fen"] - i["paid_fen"]

    def loan_view(loan: dict) -> dict:
        on = today()
        instalments = []
        for i in loan["instalments"]:
            due = date.fromisoformat(i["due_date"])
            status = "paid" if unpaid(i) == 0 else ("overdue" if due < on and loan["disbursed_on"] else "scheduled")
            instalments.append({**i, "status": status})
        overdue = [i for i in instalments if i["status"] == "overdue"]
        paid_principal = sum(max(i["paid_fen"] - i["interest_fen"], 0) for i in loan["instalments"])
        if not loan["disbursed_on"]:
            status = "opened"
        elif all(i["status"] == "paid" for i in instalments):
            status = "closed"
        else:
            status = "overdue" if overdue else "active"
        return {
            "loan_no": loan["loan_no"],
            "contract_no": loan["contract_no"],
            "status": status,
            "product_code": loan["product_code"],
            "principal_fen": loan["principal_fen"],
            "annual_rate_bp": loan["annual_rate_bp"],
            "repayment_method": loan["repayment_method"],
            "principal_outstanding_fen": loan["principal_fen"] - paid_principal if loan["disbursed_on"] else 0,
            "overdue_fen": sum(unpaid(i) for i in overdue),
            "overdue_days": (on - date.fromisoformat(overdue[0]["due_date"])).days if overdue else 0,
            "settlement_account": loan["settlement_account"],
            "disbursed_on": loan["disbursed_on"],
            "instalments": instalments,
        }

    def posted(kind: str, loan_no: str, amount_fen: int, account_no: str) -> dict:
        return {
            "serial_no": f"{kind}{today():%Y%m%d}{secrets.token_hex(5).upper()}",
            "loan_no": loan_no,
            "amount_fen": amount_fen,
            "account_no": account_no,
            "value_date": today().isoformat(),
            "posted_at": clock.utcnow().isoformat(timespec="seconds") + "Z",
        }

    def find_settlement_account(body: dict) -> dict:
        id_number, name = str(body.get("id_number") or ""), str(body.get("name") or "")
        if len(id_number) != 18 or not name:
            raise Refusal("E0001", "id_number（18位）和name必填")
        number = state["by_id_number"].get(id_number)
        if number is None:
            number, balance = settlement_account_for(id_number)
            state["accounts"][number] = {
                "account_no": number,
                "account_name": name,
                "status": "normal",
                "balance_fen": balance,
            }
            state["by_id_number"][id_number] = number
        return deposit_view(state["accounts"][number])

    def deposit_view(acc: dict) -> dict:
        available = acc["balance_fen"] if acc["status"] == "normal" else 0
        return {**acc, "available_fen": available}

    def open_loan(body: dict) -> dict:
        missing = [k for k in LOAN_FIELDS if k not in body]
        if missing:
            raise Refusal("E0001", f"缺少字段：{', '.join(missing)}")
        if body["repayment_method"] not in METHODS:
            raise Refusal("E0001", "还款方式不支持")
        schedule = body["schedule"]
        if (
            not isinstance(schedule, list)
            or len(schedule) != body["term_months"]
            or sum(int(i["principal_fen"]) for i in schedule) != body["principal_fen"]
        ):
            raise Refusal("E0001", "还款计划的期数或本金合计与借据不符")
        if state["by_id_number"].get(body["id_number"]) != body["settlement_account"]:
            raise Refusal("E0201", "结算账户不属于该客户")
        loan_no = f"LN{today():%Y%m%d}{len(state['loans']) + 1:06d}"
        state["loans"][loan_no] = {
            "loan_no": loan_no,
            "contract_no": body["contract_no"],
            "product_code": body["product_code"],
            "principal_fen": int(body["principal_fen"]),
            "annual_rate_bp": int(body["annual_rate_bp"]),
            "repayment_method": body["repayment_method"],
            "settlement_account": body["settlement_account"],
            "disbursed_on": None,
            "instalments": [
                {
                    "number": int(i["number"]),
                    "due_date": date.fromisoformat(i["due_date"]).isoformat(),
                    "principal_fen": int(i["principal_fen"]),
                    "interest_fen": int(i["interest_fen"]),
                    "paid_fen": 0,
                }
                for i in schedule
            ],
            "repayments": [],
        }
        return loan_view(state["loans"][loan_no])

    def disburse(loan_no: str, body: dict) -> dict:
        loan = loan_of(loan_no)
        if loan["disbursed_on"]:
            raise Refusal("E0302", "该借据已放款")
        if (body.get("amount_fen"), body.get("settlement_account")) != (
            loan["principal_fen"],
            loan["settlement_account"],
        ):
            raise Refusal("E0001", "放款金额或入账账户与借据不符")
        acc = account(loan["settlement_account"])
        if acc["status"] != "normal":
            raise Refusal("E0202")
        acc["balance_fen"] += loan["principal_fen"]
        loan["disbursed_on"] = today().isoformat()
        payment = posted("D", loan_no, loan["principal_fen"], acc["account_no"])
        state["disbursements"].append(payment)
        return payment

    def repay(loan_no: str, body: dict) -> dict:
        loan = loan_of(loan_no)
        amount = body.get("amount_fen")
        if not isinstance(amount, int) or amount <= 0:
            raise Refusal("E0001", "还款金额须为正整数（分）")
        if not loan["disbursed_on"]:
            raise Refusal("E0302", "借据尚未放款")
        if amount > sum(unpaid(i) for i in loan["instalments"]):
            raise Refusal("E0001", "还款金额超过剩余应还金额")
        acc = account(loan["settlement_account"])
        if acc["status"] != "normal" or acc["balance_fen"] < amount:
            raise Refusal("E0204")
        acc["balance_fen"] -= amount
        left = amount
        for i in loan["instalments"]:
            part = min(left, unpaid(i))
            i["paid_fen"] += part
            left -= part
        payment = posted("R", loan_no, amount, acc["account_no"])
        loan["repayments"].append(payment)
        return payment

    # --- the channel's requests ----------------------------------------------------------

    def authenticate(raw: bytes) -> None:
        h = request.headers
        if h.get("X-Channel-Id") != channel_id:
            raise Refusal("E0101", "渠道号未登记")
        try:
            skew = abs(time.time() - int(h.get("X-Timestamp", "")))
        except ValueError:
            raise Refusal("E0102") from None
        if skew > MAX_CLOCK_SKEW_S:
            raise Refusal("E0102")
        expected = signature(
            secret,
            request.method,
            request.path,
            h.get("X-Timestamp", ""),
            h.get("X-Request-Id", ""),
            h.get("Idempotency-Key", ""),
            raw,
        )
        if not hmac.compare_digest(expected, h.get("X-Signature", "")):
            raise Refusal("E0101", "签名校验失败")

    def take_fault() -> Fault | None:
        for fault in state["faults"]:
            if fault.path in request.path:
                fault.count -= 1
                if fault.count <= 0:
                    state["faults"].remove(fault)
                return fault
        return None

    def handle(work, needs_key: bool = False):
        """Authenticate, apply a fault, and carry out `work(body)` once per Idempotency-Key."""
        raw = request.get_data()
        request_id = request.headers.get("X-Request-Id", "")
        key = request.headers.get("Idempotency-Key", "")
        delay = 0.0
        try:
            authenticate(raw)
            body = json.loads(raw or b"{}")
            if not isinstance(body, dict):
                raise Refusal("E0001", "报文须为JSON对象")
            if needs_key and not key:
                raise Refusal("E0001", "缺少业务流水号（Idempotency-Key）")
            fingerprint = hashlib.sha256(request.method.encode() + request.path.encode() + raw).hexdigest()
            with lock:
                fault = take_fault()
                if fault and fault.mode == "fail":
                    raise Refusal("E9999")
                if fault and fault.mode == "refuse":
                    raise Refusal(fault.code, fault.message or MESSAGES.get(fault.code, "交易被拒绝"))
                delay = fault.delay if fault else 0.0
                earlier = state["keys"].get(key) if key else None
                if earlier is not None and earlier[0] != fingerprint:
                    raise Refusal("E0301")
                if earlier is not None:
                    code, data, message = earlier[1]
                else:
                    try:
                        code, data, message = SUCCESS, work(body), ""
                    except Refusal as refusal:
                        code, data, message = refusal.code, None, refusal.message
                    if key and code != "E9999":
                        state["keys"][key] = (fingerprint, (code, data, message))
        except Refusal as refusal:
            code, data, message = refusal.code, None, refusal.message
        except ValueError:
            code, data, message = "E0001", None, "报文不是合法的JSON"
        with lock:
            state["requests"].append({"method": request.method, "path": request.path, "key": key, "code": code})
        if delay:
            time.sleep(delay)
        return _answer(code, data, message, request_id)

    @app.get("/healthz")
    def healthz():
        return _plain({"ok": True})

    @app.post("/open/v1/customers/settlement-account")
    def settlement_account():
        return handle(find_settlement_account)

    @app.get("/open/v1/deposit-accounts/<account_no>")
    def deposit_account(account_no: str):
        return handle(lambda _: deposit_view(account(account_no)))

    @app.post("/open/v1/loans")
    def loans():
        return handle(open_loan, needs_key=True)

    @app.get("/open/v1/loans/<loan_no>")
    def loan(loan_no: str):
        return handle(lambda _: loan_view(loan_of(loan_no)))

    @app.post("/open/v1/loans/<loan_no>/disbursements")
    def disbursements(loan_no: str):
        return handle(lambda body: disburse(loan_no, body), needs_key=True)

    @app.route("/open/v1/loans/<loan_no>/repayments", methods=["GET", "POST"])
    def repayments(loan_no: str):
        if request.method == "GET":
            return handle(lambda _: list(loan_of(loan_no)["repayments"]))
        return handle(lambda body: repay(loan_no, body), needs_key=True)

    # --- control -------------------------------------------------------------------------

    @app.route("/_emulator/faults", methods=["GET", "POST", "DELETE"])
    def faults():
        if request.method == "POST":
            spec = request.get_json(force=True, silent=True)
            if not isinstance(spec, dict) or spec.get("mode", "fail") not in FAULT_MODES:
                return _plain({"error": 'body must be {"mode": "fail"|"slow"|"refuse", "count", "delay", ...}'}, 400)
            try:
                fault = Fault(
                    mode=spec.get("mode", "fail"),
                    count=int(spec.get("count", 1)),
                    delay=float(spec.get("delay", 3.0)),
                    code=str(spec.get("code", "E0202")),
                    message=str(spec.get("message", "")),
                    path=str(spec.get("path", "")),
                )
            except (TypeError, ValueError):
                return _plain({"error": "count must be an integer, delay a number"}, 400)
            with lock:
                state["faults"].append(fault)
        elif request.method == "DELETE":
            with lock:
                state["faults"].clear()
        with lock:
            return _plain({"ok": True, "pending": [asdict(f) for f in state["faults"]]})

    @app.route("/_emulator/today", methods=["GET", "POST"])
    def emulator_today():
        if request.method == "POST":
            spec = request.get_json(force=True, silent=True) or {}
            try:
                state["today"] = date.fromisoformat(spec["date"]) if spec.get("date") else None
            except (TypeError, ValueError):
                return _plain({"error": 'body must be {"date": "YYYY-MM-DD"} or {"date": null}'}, 400)
        return _plain({"today": today().isoformat(), "set": state["today"] is not None})

    @app.get("/_emulator/accounts")
    def accounts():
        with lock:
            return _plain([deposit_view(a) for a in state["accounts"].values()])

    @app.post("/_emulator/accounts/<account_no>")
    def set_account(account_no: str):
        spec = request.get_json(force=True, silent=True) or {}
        with lock:
            acc = state["accounts"].get(account_no)
            if acc is None:
                return _plain({"error": "no such account"}, 404)
            if spec.get("status") in ("normal", "frozen"):
                acc["status"] = spec["status"]
            if isinstance(spec.get("balance_fen"), int):
                acc["balance_fen"] = spec["balance_fen"]
            return _plain(deposit_view(acc))

    @app.get("/_emulator/disbursements")
    def disbursed():
        with lock:
            return _plain(list(state["disbursements"]))

    @app.get("/_emulator/requests")
    def requests_received():
        with lock:
            return _plain(list(state["requests"]))

    @app.post("/_emulator/reset")
    def emulator_reset():
        with lock:
            reset()
        return _plain({"ok": True})

    return app
