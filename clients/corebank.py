"""The bank core's open API (核心系统开放接口, JSON over HTTP): deposit and loan accounts.

    core = CoreBankingClient.from_settings(settings)
    account = core.settlement_account(id_number, name)
    loan = core.open_loan(contract_no, ..., idempotency_key="sunshine-disburse-7:open")
    paid = core.disburse(loan.loan_no, amount_fen, account.account_no, idempotency_key="sunshine-disburse-7")
    loan = core.loan(loan.loan_no)  # balances, schedule, what is paid and overdue

Wire format (the core's, spoken by emulators.corebank as well). Every request carries

    X-Channel-Id     the channel the core knows this system by (CORE_BANKING_CHANNEL_ID)
    X-Request-Id     a fresh id per HTTP request (for tracing; a retry gets a new one)
    X-Timestamp      Unix seconds; the core refuses one more than 300 s off its clock
    Idempotency-Key  on requests that move money or open accounts: the business serial
                     number (业务流水号). The core carries out a key once; the same key
                     again gets the first answer, a different request under it E0301.
    X-Signature      hex HMAC-SHA256 with CORE_BANKING_SECRET of the lines
                     METHOD, PATH, X-Timestamp, X-Request-Id, Idempotency-Key (or empty),
                     and the hex SHA-256 of the body

and every answer is `{"code", "message", "request_id", "data"}`, code "000000" for success.
Amounts are in fen (分), dates ISO (Beijing dates). Endpoints:

    POST /open/v1/customers/settlement-account  {id_number, name}   the customer's settlement account
    GET  /open/v1/deposit-accounts/<account_no>                      a deposit account's balance
    POST /open/v1/loans                     (key) open a loan account with its schedule
    POST /open/v1/loans/<loan_no>/disbursements  (key) pay the principal into the settlement account
    GET  /open/v1/loans/<loan_no>                                    balances, schedule, overdue status
    POST /open/v1/loans/<loan_no>/repayments     (key) repay from the settlement account
    GET  /open/v1/loans/<loan_no>/repayments                         the repayments, oldest first

Error codes: E0001 invalid request, E0101 bad signature or unknown channel, E0102 stale
timestamp, E0201 no such account, E0202 account frozen, E0203 no such loan, E0204
insufficient balance, E0301 idempotency key reused for another request, E0302 loan not in
a state for this, E9999 system busy (503).

The client never retries on its own: a timeout, a connection failure or a 5xx raises
`CoreBankingUnavailable` (the request may or may not have been carried out: retry with the
same Idempotency-Key); a refusal raises `CoreBankingRejected` with the core's code and message.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import date

import requests

SUCCESS = "000000"
MAX_CLOCK_SKEW_S = 300


class CoreBankingError(Exception):
    """The core-banking request did not succeed."""


class CoreBankingUnavailable(CoreBankingError):
    """The core did not answer in time, could not be reached, or failed (5xx): the request may
    have been carried out; retry it under the same Idempotency-Key."""


class CoreBankingRejected(CoreBankingError):
    """The core refused the request: `code` and `message` (the core's, in Chinese) say why."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"core banking refused ({status} {code}): {message}")
        self.status = status
        self.code = code
        self.message = message


def signature(secret: str, method: str, path: str, timestamp: str, request_id: str, key: str, body: bytes) -> str:
    """The X-Signature of a request (the core computes the same to check it)."""
    text = "\n".join([method.upper(), path, timestamp, request_id, key, hashlib.sha256(body).hexdigest()])
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class DepositAccount:
    account_no: str
    account_name: str
    status: str  # normal | frozen
    balance_fen: int
    available_fen: int

    @classmethod
    def from_json(cls, data: dict) -> DepositAccount:
        return cls(data["account_no"], data["account_name"], data["status"], data["balance_fen"], data["available_fen"])


@dataclass(frozen=True)
class CoreInstalment:
    number: int
    due_date: date
    principal_fen: int
    interest_fen: int
    paid_fen: int
    status: str  # scheduled | paid | overdue

    @classmethod
    def from_json(cls, data: dict) -> CoreInstalment:
        return cls(
            data["number"],
            date.fromisoformat(data["due_date"]),
            data["principal_fen"],
            data["interest_fen"],
            data["paid_fen"],
            data["status"],
        )


@dataclass(frozen=True)
class CoreLoan:
    """A loan account as the core keeps it."""

    loan_no: str
    contract_no: str
    status: str  # opened (not yet paid out) | active | overdue | closed
    principal_fen: int
    principal_outstanding_fen: int
    overdue_fen: int
    overdue_days: int
    settlement_account: str
    disbursed_on: date | None
    instalments: list[CoreInstalment] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: dict) -> CoreLoan:
        return cls(
            loan_no=data["loan_no"],
            contract_no=data["contract_no"],
            status=data["status"],
            principal_fen=data["principal_fen"],
            principal_outstanding_fen=data["principal_outstanding_fen"],
            overdue_fen=data["overdue_fen"],
            overdue_days=data["overdue_days"],
            settlement_account=data["settlement_account"],
            disbursed_on=date.fromisoformat(data["disbursed_on"]) if data.get("disbursed_on") else None,
            instalments=[CoreInstalment.from_json(i) for i in data["instalments"]],
        )


@dataclass(frozen=True)
class Payment:
    """A disbursement or a repayment the core posted."""

    serial_no: str
    loan_no: str
    amount_fen: int
    account_no: str
    value_date: date
    posted_at: str

    @classmethod
    def from_json(cls, data: dict) -> Payment:
        return cls(
            data["serial_no"],
            data["loan_no"],
            data["amount_fen"],
            data["account_no"],
            date.fromisoformat(data["value_date"]),
            data["posted_at"],
        )


class CoreBankingClient:
    def __init__(
        self,
        base_url: str,
        channel_id: str,
        secret: str,
        timeout: float = 10.0,
        http: requests.Session | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.channel_id = channel_id
        self.secret = secret
        self.timeout = timeout
        self.http = http or requests.Session()

    @classmethod
    def from_settings(cls, settings) -> CoreBankingClient:
        return cls(
            settings.core_banking_url,
            settings.core_banking_channel_id,
            settings.core_banking_secret,
            timeout=settings.core_banking_timeout_s,
        )

    # --- deposit accounts ----------------------------------------------------------

    def settlement_account(self, id_number: str, name: str) -> DepositAccount:
        """The customer's settlement account (结算账户), where loans are paid and repaid."""
        data = self._call("POST", "/open/v1/customers/settlement-account", {"id_number": id_number, "name": name})
        return DepositAccount.from_json(data)

    def deposit_account(self, account_no: str) -> DepositAccount:
        """A deposit account's balance and status."""
        return DepositAccount.from_json(self._call("GET", f"/open/v1/deposit-accounts/{account_no}"))

    # --- loans -----------------------------------------------------------------------

    def open_loan(
        self,
        contract_no: str,
        id_number: str,
        name: str,
        product_code: str,
        principal_fen: int,
        annual_rate_bp: int,
        term_months: int,
        repayment_method: str,
        settlement_account: str,
        schedule: list[dict],
        idempotency_key: str,
    ) -> CoreLoan:
        """Open the loan account (借据) with its repayment schedule; nothing is paid yet."""
        body = {
            "contract_no": contract_no,
            "id_number": id_number,
            "name": name,
            "product_code": product_code,
            "principal_fen": principal_fen,
            "annual_rate_bp": annual_rate_bp,
            "term_months": term_months,
            "repayment_method": repayment_method,
            "settlement_account": settlement_account,
            "schedule": schedule,
        }
        return CoreLoan.from_json(self._call("POST", "/open/v1/loans", body, idempotency_key))

    def disburse(self, loan_no: str, amount_fen: int, settlement_account: str, idempotency_key: str) -> Payment:
        """Pay the loan's principal into the settlement account (放款), once per key."""
        body = {"amount_fen": amount_fen, "settlement_account": settlement_account}
        return Payment.from_json(self._call("POST", f"/open/v1/loans/{loan_no}/disbursements", body, idempotency_key))

    def loan(self, loan_no: str) -> CoreLoan:
        """The loan's balances, schedule with what is paid, and overdue status."""
        return CoreLoan.from_json(self._call("GET", f"/open/v1/loans/{loan_no}"))

    def repay(self, loan_no: str, amount_fen: int, idempotency_key: str) -> Payment:
        """Repay from the settlement account: overdue and due instalments first, interest before principal."""
        path = f"/open/v1/loans/{loan_no}/repayments"
        return Payment.from_json(self._call("POST", path, {"amount_fen": amount_fen}, idempotency_key))

    def repayments(self, loan_no: str) -> list[Payment]:
        return [Payment.from_json(p) for p in self._call("GET", f"/open/v1/loans/{loan_no}/repayments")]

    # --- the wire ----------------------------------------------------------------------

    def _call(self, method: str, path: str, body: dict | None = None, idempotency_key: str = ""):
        raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode() if body is not None else b""
        request_id, timestamp = uuid.uuid4().hex, str(int(time.time()))
        headers = {
            "X-Channel-Id": self.channel_id,
            "X-Request-Id": request_id,
            "X-Timestamp": timestamp,
            "X-Signature": signature(self.secret, method, path, timestamp, request_id, idempotency_key, raw),
        }
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        if body is not None:
            headers["Content-Type"] = "application/json; charset=utf-8"
        try:
            resp = self.http.request(
                method, self.base_url + path, data=raw or None, headers=headers, timeout=self.timeout
            )
        except requests.Timeout as exc:
            raise CoreBankingUnavailable(
                f"core banking at {self.base_url} did not answer {path} within {self.timeout:g} s"
            ) from exc
        except requests.RequestException as exc:
            raise CoreBankingUnavailable(f"core banking at {self.base_url} unreachable: {type(exc).__name__}") from exc
        try:
            answer = resp.json()
            code, message = str(answer["code"]), str(answer.get("message", ""))
        except (ValueError, KeyError, TypeError) as exc:
            raise CoreBankingUnavailable(
                f"core banking answered {path} with HTTP {resp.status_code} and no envelope"
            ) from exc
        if resp.status_code >= 500:
            raise CoreBankingUnavailable(f"core banking failed {path}: HTTP {resp.status_code} {code} {message}")
        if code != SUCCESS:
            raise CoreBankingRejected(resp.status_code, code, message)
        return answer.get("data")
