"""The credit bureau's personal credit-report API (JSON over HTTP).

    client = BureauClient(settings.bureau_url, timeout=10)
    report = client.query_report(id_number, name, authorization_id, purpose="loan_approval")
    if report.has_current_overdue: ...

Every query is billable and leaves a hard-query record on the person's
report, so the client never retries on its own (each request carries the
authorization id as its `Idempotency-Key`, so a caller's retry after a timeout
is the same query): a timeout or a 5xx raises
`BureauUnavailable` and the caller decides. A request the bureau refuses
(4xx) raises `BureauRejected` with the bureau's error code. Consent is the
caller's business (auth_flow): the bureau only needs the authorization id.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import requests

PURPOSES = ("loan_approval", "post_loan_management", "guarantee_review", "credit_card_approval", "spouse_joint_review")


class BureauError(Exception):
    """The credit report could not be had."""


class BureauUnavailable(BureauError):
    """The bureau did not answer in time, could not be reached, or failed (5xx)."""


class BureauRejected(BureauError):
    """The bureau refused the request (4xx): `code` says why (invalid_id_number, invalid_purpose, ...)."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"bureau refused the query ({status} {code}): {message}")
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class CreditReport:
    report_id: str
    issued_at: str
    subject: dict
    summary: dict
    loans: list = field(default_factory=list)
    credit_cards: list = field(default_factory=list)
    overdue_records: list = field(default_factory=list)
    queries: list = field(default_factory=list)
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict) -> CreditReport:
        return cls(
            report_id=data["report_id"],
            issued_at=data["issued_at"],
            subject=data["subject"],
            summary=data["summary"],
            loans=data.get("loans", []),
            credit_cards=data.get("credit_cards", []),
            overdue_records=data.get("overdue_records", []),
            queries=data.get("queries", []),
            raw=data,
        )

    @property
    def has_overdue_records(self) -> bool:
        return bool(self.overdue_records)

    @property
    def has_current_overdue(self) -> bool:
        return any(loan.get("status") == "overdue" for loan in self.loans) or bool(
            self.summary.get("current_overdue_amount")
        )

    @property
    def total_loan_balance(self) -> float:
        return float(self.summary.get("total_loan_balance", 0))


class BureauClient:
    def __init__(self, base_url: str, timeout: float = 10.0, http: requests.Session | None = None):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.http = http or requests.Session()

    @classmethod
    def from_settings(cls, settings, timeout: float = 10.0) -> BureauClient:
        return cls(settings.bureau_url, timeout=timeout)

    def query_report(
        self, id_number: str, name: str, authorization_id: str, purpose: str = "loan_approval"
    ) -> CreditReport:
        """Query the personal credit report of `id_number` under the consent `authorization_id`."""
        if purpose not in PURPOSES:
            raise ValueError(f"purpose must be one of {PURPOSES}")
        url = f"{self.base_url}/v1/reports"
        try:
            resp = self.http.post(
                url,
                json={"id_number": id_number, "name": name, "authorization_id": authorization_id, "purpose": purpose},
                headers={"Idempotency-Key": authorization_id},
                timeout=self.timeout,
            )
        except requests.Timeout as exc:
            raise BureauUnavailable(
                f"credit bureau at {self.base_url} did not answer within " f"{self.timeout:g} s"
            ) from exc
        except requests.RequestException as exc:
            raise BureauUnavailable(f"credit bureau at {self.base_url} unreachable: {type(exc).__name__}") from exc
        if resp.status_code >= 500:
            raise BureauUnavailable(f"credit bureau at {self.base_url} failed: HTTP {resp.status_code}")
        try:
            data = resp.json()
        except ValueError as exc:
            raise BureauUnavailable(f"credit bureau answered HTTP {resp.status_code} with no JSON") from exc
        if resp.status_code >= 400:
            err = (data or {}).get("error") or {}
            raise BureauRejected(resp.status_code, err.get("code", "unknown"), err.get("message", resp.text[:200]))
        try:
            return CreditReport.from_json(data)
        except (KeyError, TypeError) as exc:
            raise BureauUnavailable(f"credit bureau answered an unreadable report: missing {exc}") from exc
