"""What a face check verifies (its subject): an authorization (a party's consent to a credit-report
query) or the signing of a loan contract above CONTRACT_FACE_ABOVE. The face step
(auth_flow.face_step) and an officer's review of it (auth_flow.face_review) are written once
against `FaceSubject`: whose face, the challenge's key, the step session, the face reviews of it,
counting a failed attempt (and locking at the limit), and telling the officer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import Boolean

from auth_flow import evidence
from auth_flow.evidence import Client
from auth_flow.tokens import CheckResult, failed_check, party_of, tell_officer
from handoff.service import request_hand_off
from lending.contracts import LOCKED
from sunshine.clock import utcnow
from sunshine.models import (
    FINAL_APPLICATION_STATUSES,
    Authorization,
    Customer,
    FaceReview,
    LoanApplication,
    LoanContract,
    audit,
)
from sunshine.protect import mask_name


@dataclass(frozen=True)
class FaceSubject:
    """An authorization or a loan contract, as the face step sees it."""

    row: Authorization | LoanContract

    @classmethod
    def of_review(cls, session: Session, review: FaceReview) -> FaceSubject:
        if review.contract_id is not None:
            return cls(session.get(LoanContract, review.contract_id))  # type: ignore[arg-type]
        return cls(session.get(Authorization, review.authorization_id))  # type: ignore[arg-type]

    @property
    def contract(self) -> bool:
        return isinstance(self.row, LoanContract)

    @property
    def kind(self) -> str:
        """The audit log's name of the row."""
        return "loan_contract" if self.contract else "authorization"

    @property
    def challenge_key(self) -> int | str:
        """What a liveness challenge is bound to (an authorization keeps its id, as before)."""
        return f"contract:{self.row.id}" if self.contract else self.row.id

    @property
    def step_session_hash(self) -> str | None:
        """The step session the face step is bound to (a contract's signer is bound by their
        WeChat or code instead: none)."""
        return None if isinstance(self.row, LoanContract) else self.row.step_session_hash

    @property
    def application_id(self) -> int | None:
        return self.row.application_id

    @property
    def applicant_id(self) -> int:
        """The customer whose request it is (whose officer decides)."""
        if isinstance(self.row, LoanContract):
            return self.row.application.customer_id
        return self.row.customer_id

    def party(self, session: Session) -> Customer:
        """Whose face it is."""
        return self.row.application.customer if isinstance(self.row, LoanContract) else party_of(session, self.row)

    def reviews(self) -> ColumnElement[Boolean]:
        """The face reviews of this subject (a WHERE clause)."""
        if self.contract:
            return FaceReview.contract_id == self.row.id
        return FaceReview.authorization_id == self.row.id

    def review_link(self) -> dict[str, Any]:
        return {"contract_id": self.row.id} if self.contract else {"authorization_id": self.row.id}

    def open_for_face(self, session: Session) -> bool:
        """Whether it still takes a face check (pending or offered, not expired, the application live)."""
        row = self.row
        if row.expires_at < utcnow():
            return False
        if isinstance(row, LoanContract):
            return row.status == "offered" and row.application.status == "approved"
        application = session.get(LoanApplication, row.application_id) if row.application_id else None
        return row.status == "pending" and not (application and application.status in FINAL_APPLICATION_STATUSES)

    def fail(
        self, session: Session, message: str, max_attempts: int, client: Client, face: dict | None = None
    ) -> CheckResult:
        """Count a failed face check; the last allowed one locks the authorization or the contract."""
        row = self.row
        if isinstance(row, LoanContract):
            return failed_check(
                session, row, message, max_attempts, client, face, lock=lambda: lock_contract(session, row, client)
            )
        return failed_check(session, row, message, max_attempts, client, face)

    def tell_officer(self, session: Session, reason: str, **summary) -> None:
        """A hand-off (`reason`) in the applicant's officer's queue."""
        row = self.row
        if not isinstance(row, LoanContract):
            tell_officer(session, row, reason, **summary)
            return
        applicant = row.application.customer
        request_hand_off(
            session,
            applicant.wechat_openid or f"customer:{applicant.id}",
            reason,
            {
                "contract_id": row.id,
                "application_id": row.application_id,
                "party_role": row.party_role,
                "party": mask_name(row.party_name),
                **summary,
            },
        )


def lock_contract(session: Session, contract: LoanContract, client: Client) -> str:
    """Too many failed face checks: the contract cannot be signed online until an officer renews
    its link (lending's `renew`, from the console); the officer gets a hand-off."""
    contract.status = "locked"
    evidence.append(session, contract, "locked", client, attempts=contract.attempts)
    audit(session, "h5", "contract.locked", "loan_contract", contract.id, attempts=contract.attempts)
    FaceSubject(contract).tell_officer(session, "contract_locked")
    return LOCKED
