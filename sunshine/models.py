"""The records that must not be lost: customers, credit lines, products,
applications, authorizations, hand-offs, officers and the audit log.

Money is kept in whole yuan (integers). ID numbers and phones are never
stored in plain text: a keyed fingerprint for look-up, a sealed copy where
the bank must read them back, and a masked form for display.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, declarative_base, deferred, relationship

from sunshine.clock import utcnow

Base = declarative_base()


class Officer(Base):
    """A loan officer (客户经理) or supervisor who uses the console."""

    __tablename__ = "officers"
    id: Mapped[int] = Column(Integer, primary_key=True)
    username: Mapped[str] = Column(String(64), unique=True, nullable=False)
    display_name: Mapped[str] = Column(String(64), nullable=False)
    password_hash: Mapped[str] = Column(String(255), nullable=False)
    role: Mapped[str] = Column(String(16), nullable=False, default="officer")  # officer | supervisor
    wecom_userid: Mapped[str | None] = Column(String(64))
    active: Mapped[bool] = Column(Boolean, nullable=False, default=True)
    created_at: Mapped[datetime] = Column(DateTime, nullable=False, default=utcnow)
    # An officer given an initial password must choose their own before anything else (migration 0015).
    must_change_password: Mapped[bool] = Column(Boolean, nullable=False, default=True)
    password_changed_at: Mapped[datetime | None] = Column(DateTime)


class OfficerSession(Base):
    """One console login: the cookie carries a random id whose SHA-256 is kept here, so a
    session ends on the server (logout, password change, lifetime, idle time) and a copied
    cookie stops working with it."""

    __tablename__ = "officer_sessions"
    id: Mapped[int] = Column(Integer, primary_key=True)
    token_hash: Mapped[str] = Column(String(64), unique=True, nullable=False)
    officer_id: Mapped[int] = Column(Integer, ForeignKey("officers.id"), nullable=False, index=True)
    created_at: Mapped[datetime] = Column(DateTime, nullable=False, default=utcnow)
    last_seen_at: Mapped[datetime] = Column(DateTime, nullable=False, default=utcnow)
    ended_at: Mapped[datetime | None] = Column(DateTime)
    # logout | password_changed | expired | idle | deactivated
    end_reason: Mapped[str | None] = Column(String(32))
    client_ip: Mapped[str] = Column(String(64), nullable=False, default="")

    officer: Mapped[Officer] = relationship("Officer")


class Customer(Base):
    """A person known to the bank: household head, merchant or civil servant."""

    __tablename__ = "customers"
    id: Mapped[int] = Column(Integer, primary_key=True)
    name: Mapped[str] = Column(String(64), nullable=False)
    id_fingerprint: Mapped[str] = Column(String(64), unique=True, nullable=False)
    id_sealed: Mapped[str] = Column(Text, nullable=False)
    id_masked: Mapped[str] = Column(String(32), nullable=False)
    phone_fingerprint: Mapped[str | None] = Column(String(64), index=True)
    phone_sealed: Mapped[str | None] = Column(Text)
    phone_masked: Mapped[str | None] = Column(String(16))
    customer_type: Mapped[str] = Column(
        String(16), nullable=False, default="farmer"
    )  # farmer | merchant | civil_servant
    village: Mapped[str | None] = Column(String(64), index=True)  # the branch's figures by village (migration 0028)
    wechat_openid: Mapped[str | None] = Column(String(64), unique=True)  # in the Official Account
    # The same person in the bank's mini-program (another AppID, another openid) and, linking the two
    # under the bank's WeChat Open Platform account, their UnionID.
    mp_openid: Mapped[str | None] = Column(String(64), unique=True)
    unionid: Mapped[str | None] = Column(String(64), unique=True)
    officer_id: Mapped[int | None] = Column(Integer, ForeignKey("officers.id"))
    created_at: Mapped[datetime] = Column(DateTime, nullable=False, default=utcnow)
    # What the console searches by (migration 0024; lending.customers.search_keys): the name as
    # typed without spaces, and the last four characters of the ID number and of the phone.
    # The name's indexes are narrow: a search by part of a name reads them, not the table.
    name_norm: Mapped[str | None] = Column(String(64), index=True)
    id_last4: Mapped[str | None] = Column(String(4), index=True)
    phone_last4: Mapped[str | None] = Column(String(4), index=True)

    officer: Mapped[Officer | None] = relationship("Officer")
    credit_lines: Mapped[list[CreditLine]] = relationship("CreditLine", back_populates="customer")

    __table_args__ = (Index("ix_customers_officer_id_name_norm", "officer_id", "name_norm"),)


class FamilyMember(Base):
    """A relation between two customers of one household (spouse, child, ...)."""

    __tablename__ = "family_members"
    id: Mapped[int] = Column(Integer, primary_key=True)
    customer_id: Mapped[int] = Column(Integer, ForeignKey("customers.id"), nullable=False, index=True)
    member_id: Mapped[int] = Column(Integer, ForeignKey("customers.id"), nullable=False, index=True)
    role: Mapped[str] = Column(String(16), nullable=False)

    member: Mapped[Customer] = relationship("Customer", foreign_keys=[member_id])
    __table_args__ = (UniqueConstraint("customer_id", "member_id"),)


def _granted_baseline(context) -> dict[str, Any]:
    """A new line's baseline when its inserter gives none: its amount as granted (the village file
    gives the household's tags too, lending.inspection.granted_baseline)."""
    row = context.get_current_parameters()
    return {"amount": row["amount"], "tags": {}, "on": utcnow().date().isoformat()}


class CreditLine(Base):
    """A pre-granted line from the village credit file (整村授信)."""

    __tablename__ = "credit_lines"
    id: Mapped[int] = Column(Integer, primary_key=True)
    customer_id: Mapped[int] = Column(Integer, ForeignKey("customers.id"), nullable=False, index=True)
    amount: Mapped[int] = Column(Integer, nullable=False)
    used_amount: Mapped[int] = Column(Integer, nullable=False, default=0)
    valid_until: Mapped[date] = Column(Date, nullable=False, index=True)  # the annual inspection's due date
    source: Mapped[str] = Column(String(32), nullable=False, default="whole_village")
    updated_at: Mapped[datetime] = Column(DateTime, nullable=False, default=utcnow, onupdate=utcnow)
    # Last year's snapshot for the annual inspection (lending.inspection, migration 0027): the
    # household's data when the line was granted or last passed its inspection ({amount, tags, on}).
    baseline: Mapped[dict[str, Any]] = Column(JSON, nullable=False, default=_granted_baseline)

    customer: Mapped[Customer] = relationship("Customer", back_populates="credit_lines")


class CreditLineChange(Base):
    """One change of a credit line (granted, raised, lowered, renewed), written only by
    lending.credit_lines.record_line_changes (migration 0024)."""

    __tablename__ = "credit_line_changes"
    id: Mapped[int] = Column(Integer, primary_key=True)
    credit_line_id: Mapped[int] = Column(Integer, ForeignKey("credit_lines.id"), nullable=False, index=True)
    customer_id: Mapped[int] = Column(Integer, ForeignKey("customers.id"), nullable=False, index=True)
    old_amount: Mapped[int | None] = Column(Integer)  # None: the line was granted
    new_amount: Mapped[int] = Column(Integer, nullable=False)
    old_valid_until: Mapped[date | None] = Column(Date)
    new_valid_until: Mapped[date] = Column(Date, nullable=False)
    source: Mapped[str] = Column(String(16), nullable=False)  # village_file | inspection | migration
    actor: Mapped[str] = Column(String(64), nullable=False)
    reason: Mapped[str] = Column(String(200), nullable=False, default="")
    at: Mapped[datetime] = Column(DateTime, nullable=False, default=utcnow)


class CustomerTag(Base):
    """A tag of a customer, one value of a kind in lending/tags.yml (migration 0024): from the
    village file or set by an officer, with who and when."""

    __tablename__ = "customer_tags"
    id: Mapped[int] = Column(Integer, primary_key=True)
    customer_id: Mapped[int] = Column(Integer, ForeignKey("customers.id"), nullable=False)
    kind: Mapped[str] = Column(String(32), nullable=False)
    value: Mapped[str] = Column(String(64), nullable=False)
    source: Mapped[str] = Column(String(16), nullable=False)  # village_file | officer
    set_by: Mapped[str] = Column(String(64), nullable=False)
    set_at: Mapped[datetime] = Column(DateTime, nullable=False, default=utcnow)

    __table_args__ = (
        UniqueConstraint("customer_id", "kind", "value"),
        Index("ix_customer_tags_kind_value", "kind", "value"),
    )


class LoanProduct(Base):
    """A loan product, synchronised from lending/products.yml."""

    __tablename__ = "loan_products"
    code: Mapped[str] = Column(String(32), primary_key=True)
    name: Mapped[str] = Column(String(64), nullable=False)
    customer_types: Mapped[list[str]] = Column(JSON, nullable=False)
    min_amount: Mapped[int] = Column(Integer, nullable=False)
    max_amount: Mapped[int] = Column(Integer, nullable=False)
    terms_months: Mapped[list[int]] = Column(JSON, nullable=False)
    annual_rate_bp: Mapped[int] = Column(Integer, nullable=False)  # basis points: 435 = 4.35% a year
    needs_guarantor: Mapped[bool] = Column(Boolean, nullable=False, default=False)
    authorizing_parties: Mapped[list[str]] = Column(JSON, nullable=False)
    description: Mapped[str] = Column(Text, nullable=False, default="")
    needs_collateral: Mapped[bool] = Column(Boolean, nullable=False, default=False)
    # Applications up to this amount, with no risk-rule hit, are approved automatically (0: never).
    auto_approval_limit: Mapped[int] = Column(Integer, nullable=False, default=0)
    # An officer's approval above this amount needs a supervisor's second approval (四眼原则; 0: always).
    second_approval_above: Mapped[int] = Column(Integer, nullable=False, default=0)
    # equal_instalments | interest_monthly | revolving (lending.repayment; migration 0018)
    repayment_method: Mapped[str] = Column(String(32), nullable=False, default="equal_instalments")
    # Also offered to customers with any of these tags, whatever their type ({kind: [values]}; migration 0024).
    offered_to_tags: Mapped[dict[str, list[str]]] = Column(JSON, nullable=False, default=dict)


# Statuses after which an application is no longer live (see lending.applications).
FINAL_APPLICATION_STATUSES = ("rejected", "withdrawn", "disbursed")


class LoanApplication(Base):
    """A loan application; lending.applications moves it through its statuses."""

    __tablename__ = "loan_applications"
    id: Mapped[int] = Column(Integer, primary_key=True)
    customer_id: Mapped[int] = Column(Integer, ForeignKey("customers.id"), nullable=False, index=True)
    product_code: Mapped[str] = Column(String(32), ForeignKey("loan_products.code"), nullable=False)
    amount: Mapped[int] = Column(Integer, nullable=False)
    term_months: Mapped[int] = Column(Integer, nullable=False)
    purpose: Mapped[str] = Column(String(200), nullable=False, default="")
    status: Mapped[str] = Column(String(32), nullable=False, default="draft")
    idempotency_key: Mapped[str | None] = Column(String(64), unique=True)
    created_at: Mapped[datetime] = Column(DateTime, nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = Column(DateTime, nullable=False, default=utcnow, onupdate=utcnow)
    guarantor_id: Mapped[int | None] = Column(Integer, ForeignKey("customers.id"))
    review_mode: Mapped[str | None] = Column(String(16))  # auto | officer, once under review
    review_deadline: Mapped[datetime | None] = Column(DateTime)  # by when an officer must decide
    escalated_at: Mapped[datetime | None] = Column(DateTime)  # the deadline passed and supervisors were alerted
    # [{code, outcome, description, stage}]
    risk_hits: Mapped[list[dict[str, Any]]] = Column(JSON, nullable=False, default=list)
    loan_account: Mapped[str | None] = Column(String(32))  # the loan account opened at disbursement
    # Four eyes: the officer whose approval waits for a supervisor's (待复核), and since when.
    first_approved_by: Mapped[int | None] = Column(Integer, ForeignKey("officers.id"))
    first_approved_at: Mapped[datetime | None] = Column(DateTime)

    customer: Mapped[Customer] = relationship("Customer", foreign_keys=[customer_id])
    guarantor: Mapped[Customer | None] = relationship("Customer", foreign_keys=[guarantor_id])
    product: Mapped[LoanProduct] = relationship("LoanProduct")
    first_approver: Mapped[Officer | None] = relationship("Officer")
    events: Mapped[list[ApplicationEvent]] = relationship(
        "ApplicationEvent", back_populates="application", order_by="ApplicationEvent.id"
    )

    # At most one live application per customer and product, even when two requests race.
    __table_args__ = (
        Index(
            "uq_loan_applications_live",
            "customer_id",
            "product_code",
            unique=True,
            sqlite_where=text("status NOT IN ('rejected', 'withdrawn', 'disbursed')"),
            postgresql_where=text("status NOT IN ('rejected', 'withdrawn', 'disbursed')"),
        ),
        Index("ix_loan_applications_status_deadline", "status", "review_deadline"),
    )


class ApplicationEvent(Base):
    """One step in an application's life: who moved it from which status to which, when and why."""

    __tablename__ = "application_events"
    id: Mapped[int] = Column(Integer, primary_key=True)
    application_id: Mapped[int] = Column(Integer, ForeignKey("loan_applications.id"), nullable=False, index=True)
    at: Mapped[datetime] = Column(DateTime, nullable=False, default=utcnow, index=True)  # migration 0028
    actor: Mapped[str] = Column(
        String(64), nullable=False
    )  # customer | auto | risk_rules | officer:<username> | system
    action: Mapped[str] = Column(String(32), nullable=False)
    from_status: Mapped[str | None] = Column(String(32))
    to_status: Mapped[str] = Column(String(32), nullable=False)
    reason: Mapped[str] = Column(Text, nullable=False, default="")
    detail: Mapped[dict[str, Any]] = Column(JSON, nullable=False, default=dict)

    application: Mapped[LoanApplication] = relationship("LoanApplication", back_populates="events")


class Disbursement(Base):
    """Paying out one signed application through core banking (lending.disbursement), written
    before the core is called: its keys make a retried call the same request to the core."""

    __tablename__ = "disbursements"
    id: Mapped[int] = Column(Integer, primary_key=True)
    application_id: Mapped[int] = Column(Integer, ForeignKey("loan_applications.id"), nullable=False, unique=True)
    # The core's Idempotency-Key of the disbursement (the loan account's opening adds ":open").
    idempotency_key: Mapped[str] = Column(String(64), unique=True, nullable=False)
    status: Mapped[str] = Column(String(16), nullable=False, default="pending")  # pending | paid | failed
    attempts: Mapped[int] = Column(Integer, nullable=False, default=0)
    # The schedule sent to the core at the loan account's opening: [{number, due_date, principal_fen, interest_fen}]
    schedule: Mapped[list[dict[str, Any]]] = Column(JSON, nullable=False, default=list)
    error_code: Mapped[str | None] = Column(String(32))
    error: Mapped[str | None] = Column(Text)
    created_at: Mapped[datetime] = Column(DateTime, nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = Column(DateTime, nullable=False, default=utcnow, onupdate=utcnow)


class Loan(Base):
    """A disbursed loan (借据): what the core booked, copied here and kept in sync with it."""

    __tablename__ = "loans"
    id: Mapped[int] = Column(Integer, primary_key=True)
    application_id: Mapped[int] = Column(Integer, ForeignKey("loan_applications.id"), nullable=False, unique=True)
    customer_id: Mapped[int] = Column(Integer, ForeignKey("customers.id"), nullable=False, index=True)
    account_no: Mapped[str] = Column(String(32), unique=True, nullable=False)  # the core's loan account
    settlement_account: Mapped[str] = Column(String(32), nullable=False)  # the deposit account it was paid into
    principal_fen: Mapped[int] = Column(Integer, nullable=False)
    annual_rate_bp: Mapped[int] = Column(Integer, nullable=False)
    term_months: Mapped[int] = Column(Integer, nullable=False)
    repayment_method: Mapped[str] = Column(String(32), nullable=False)
    disbursed_at: Mapped[datetime] = Column(DateTime, nullable=False)
    disbursed_on: Mapped[date] = Column(Date, nullable=False)  # the value date, in Beijing
    status: Mapped[str] = Column(String(16), nullable=False, default="active")  # active | overdue | closed
    principal_outstanding_fen: Mapped[int] = Column(Integer, nullable=False)
    overdue_fen: Mapped[int] = Column(Integer, nullable=False, default=0)
    synced_at: Mapped[datetime] = Column(DateTime, nullable=False, default=utcnow)

    application: Mapped[LoanApplication] = relationship("LoanApplication")
    instalments: Mapped[list[LoanInstalment]] = relationship(
        "LoanInstalment", back_populates="loan", order_by="LoanInstalment.number"
    )


class LoanInstalment(Base):
    """One instalment of a loan's repayment schedule, in fen, with what the core says was paid."""

    __tablename__ = "loan_instalments"
    id: Mapped[int] = Column(Integer, primary_key=True)
    loan_id: Mapped[int] = Column(Integer, ForeignKey("loans.id"), nullable=False)
    number: Mapped[int] = Column(Integer, nullable=False)
    due_date: Mapped[date] = Column(Date, nullable=False)
    principal_fen: Mapped[int] = Column(Integer, nullable=False)
    interest_fen: Mapped[int] = Column(Integer, nullable=False)
    paid_fen: Mapped[int] = Column(Integer, nullable=False, default=0)
    status: Mapped[str] = Column(String(16), nullable=False, default="scheduled")  # scheduled | paid | overdue

    loan: Mapped[Loan] = relationship("Loan", back_populates="instalments")
    __table_args__ = (UniqueConstraint("loan_id", "number"), Index("ix_loan_instalments_due", "status", "due_date"))


class RepaymentReminder(Base):
    """A repayment notice sent for one instalment (lending.reminders): `before` (REPAYMENT_REMINDER_DAYS
    ahead), `due_day` or `overdue`, each once per instalment; the row is claimed before the notice goes."""

    __tablename__ = "repayment_reminders"
    id: Mapped[int] = Column(Integer, primary_key=True)
    loan_id: Mapped[int] = Column(Integer, ForeignKey("loans.id"), nullable=False, index=True)
    instalment_id: Mapped[int] = Column(Integer, ForeignKey("loan_instalments.id"), nullable=False)
    kind: Mapped[str] = Column(String(16), nullable=False)  # before | due_day | overdue
    sent_on: Mapped[date] = Column(Date, nullable=False)  # the Beijing date of the sweep that sent it
    amount_fen: Mapped[int] = Column(Integer, nullable=False)  # what the instalment still asked for
    # wechat (queued through the notice policy) | officer (the customer has no WeChat: the officer was told)
    # | none (a reminder for a customer without WeChat: recorded, not sent)
    channel: Mapped[str] = Column(String(16), nullable=False)
    created_at: Mapped[datetime] = Column(DateTime, nullable=False, default=utcnow)
    __table_args__ = (UniqueConstraint("instalment_id", "kind"),)


class WatchListEntry(Base):
    """A person the bank watches (关注名单): applications are intercepted by the risk rules."""

    __tablename__ = "watch_list"
    id: Mapped[int] = Column(Integer, primary_key=True)
    id_fingerprint: Mapped[str] = Column(String(64), unique=True, nullable=False)
    id_masked: Mapped[str] = Column(String(32), nullable=False)
    reason: Mapped[str] = Column(String(200), nullable=False)
    added_by: Mapped[str] = Column(String(64), nullable=False)
    added_at: Mapped[datetime] = Column(DateTime, nullable=False, default=utcnow)


class Authorization(Base):
    """One party's consent to a credit-report query, reached by a QR token."""

    __tablename__ = "authorizations"
    id: Mapped[int] = Column(Integer, primary_key=True)
    application_id: Mapped[int | None] = Column(Integer, ForeignKey("loan_applications.id"), index=True)
    customer_id: Mapped[int] = Column(Integer, ForeignKey("customers.id"), nullable=False, index=True)
    party_role: Mapped[str] = Column(String(16), nullable=False)  # applicant | spouse | guarantor
    party_name: Mapped[str] = Column(String(64), nullable=False)
    party_id_masked: Mapped[str] = Column(String(32), nullable=False)
    purpose: Mapped[str] = Column(String(200), nullable=False)
    requested_by: Mapped[str] = Column(String(64), nullable=False)
    token_hash: Mapped[str] = Column(String(64), unique=True, nullable=False)
    status: Mapped[str] = Column(String(16), nullable=False, default="pending")
    expires_at: Mapped[datetime] = Column(DateTime, nullable=False)
    created_at: Mapped[datetime] = Column(DateTime, nullable=False, default=utcnow, index=True)  # migration 0028
    consented_at: Mapped[datetime | None] = Column(DateTime)
    # auth_flow (migration 0005): whose report, and how far the party has come.
    party_customer_id: Mapped[int | None] = Column(Integer, ForeignKey("customers.id"))
    party_phone_masked: Mapped[str | None] = Column(String(16))
    attempts: Mapped[int] = Column(Integer, nullable=False, default=0)
    identity_checked_at: Mapped[datetime | None] = Column(DateTime)
    biometric_consent_at: Mapped[datetime | None] = Column(DateTime)
    face_verified_at: Mapped[datetime | None] = Column(DateTime)
    # auth_flow (migration 0006): the SMS code of a party without a bound WeChat (HMAC, never the code).
    sms_code_hash: Mapped[str | None] = Column(String(64))
    sms_code_expires_at: Mapped[datetime | None] = Column(DateTime)
    sms_sends: Mapped[int] = Column(Integer, nullable=False, default=0)
    # auth_flow (migration 0009): the step session that passed identity (SHA-256 of its id);
    # the later steps are taken from it only.
    step_session_hash: Mapped[str | None] = Column(String(64))


class HandOff(Base):
    """A conversation handed from the bot to a loan officer."""

    __tablename__ = "hand_offs"
    id: Mapped[int] = Column(Integer, primary_key=True)
    openid: Mapped[str] = Column(String(64), nullable=False, index=True)
    customer_id: Mapped[int | None] = Column(Integer, ForeignKey("customers.id"))
    officer_id: Mapped[int | None] = Column(Integer, ForeignKey("officers.id"))
    application_id: Mapped[int | None] = Column(Integer, ForeignKey("loan_applications.id"))
    reason: Mapped[str] = Column(String(32), nullable=False)
    summary: Mapped[dict[str, Any]] = Column(JSON, nullable=False, default=dict)
    priority: Mapped[int] = Column(Integer, nullable=False, default=0)
    status: Mapped[str] = Column(String(16), nullable=False, default="open")  # open | claimed | closed
    deadline: Mapped[datetime] = Column(DateTime, nullable=False)
    created_at: Mapped[datetime] = Column(DateTime, nullable=False, default=utcnow, index=True)  # migration 0028
    closed_at: Mapped[datetime | None] = Column(DateTime)

    customer: Mapped[Customer | None] = relationship("Customer")
    officer: Mapped[Officer | None] = relationship("Officer")

    # At most one open hand-off per WeChat user, even when two requests race.
    __table_args__ = (
        Index(
            "uq_hand_offs_open_openid",
            "openid",
            unique=True,
            sqlite_where=text("status != 'closed'"),
            postgresql_where=text("status != 'closed'"),
        ),
    )


class ServiceStation(Base):
    """A village service station (惠农服务站); its QR code routes who scans it to its officer."""

    __tablename__ = "service_stations"
    id: Mapped[int] = Column(Integer, primary_key=True)
    code: Mapped[str] = Column(String(32), unique=True, nullable=False)
    name: Mapped[str] = Column(String(64), nullable=False)
    village: Mapped[str] = Column(String(64), nullable=False)
    officer_id: Mapped[int | None] = Column(Integer, ForeignKey("officers.id"))

    officer: Mapped[Officer | None] = relationship("Officer")


class Follower(Base):
    """A WeChat user of the Official Account, customer of the bank or not."""

    __tablename__ = "wechat_followers"
    openid: Mapped[str] = Column(String(64), primary_key=True)
    subscribed: Mapped[bool] = Column(Boolean, nullable=False, default=True)
    station_id: Mapped[int | None] = Column(Integer, ForeignKey("service_stations.id"))
    subscribed_at: Mapped[datetime | None] = Column(DateTime)
    unsubscribed_at: Mapped[datetime | None] = Column(DateTime)

    station: Mapped[ServiceStation | None] = relationship("ServiceStation")


class ConversationMessage(Base):
    """A message the bot did not carry: a customer's words for an officer, an
    officer's reply, or an answer WeChat refused to deliver."""

    __tablename__ = "conversation_messages"
    id: Mapped[int] = Column(Integer, primary_key=True)
    openid: Mapped[str] = Column(String(64), nullable=False, index=True)
    hand_off_id: Mapped[int | None] = Column(Integer, ForeignKey("hand_offs.id"), index=True)
    direction: Mapped[str] = Column(String(8), nullable=False)  # inbound | outbound
    author: Mapped[str] = Column(String(64), nullable=False)  # customer | bot | officer:<username>
    body: Mapped[str] = Column(Text, nullable=False)
    # WeChat's MsgId (or openid:CreateTime), so that a retried delivery is stored once.
    wechat_msg_key: Mapped[str | None] = Column(String(96), unique=True)
    status: Mapped[str] = Column(String(16), nullable=False)  # received | sent | undelivered
    errcode: Mapped[int | None] = Column(Integer)
    created_at: Mapped[datetime] = Column(DateTime, nullable=False, default=utcnow)


class AuditEntry(Base):
    """Who did what to which record, when and why."""

    __tablename__ = "audit_log"
    id: Mapped[int] = Column(Integer, primary_key=True)
    at: Mapped[datetime] = Column(DateTime, nullable=False, default=utcnow, index=True)
    actor: Mapped[str] = Column(String(64), nullable=False)
    action: Mapped[str] = Column(String(64), nullable=False)
    subject_type: Mapped[str] = Column(String(32), nullable=False)
    subject_id: Mapped[str] = Column(String(64), nullable=False)
    detail: Mapped[dict[str, Any]] = Column(JSON, nullable=False, default=dict)


def audit(session, actor: str, action: str, subject_type: str, subject_id, **detail) -> AuditEntry:
    """Add an audit-log entry to the session's unit of work."""
    entry = AuditEntry(actor=actor, action=action, subject_type=subject_type, subject_id=str(subject_id), detail=detail)
    session.add(entry)
    return entry


# --- remote credit-report authorization (auth_flow) -------------------------------


class FaceReference(Base):
    """A party's enrolled reference face (ID-photo-like): only its 128-d encoding, encrypted."""

    __tablename__ = "face_references"
    id: Mapped[int] = Column(Integer, primary_key=True)
    customer_id: Mapped[int] = Column(Integer, ForeignKey("customers.id"), nullable=False, index=True)
    encoding_sealed: Mapped[str] = Column(Text, nullable=False)
    image_sha256: Mapped[str] = Column(String(64), nullable=False)
    source: Mapped[str] = Column(String(16), nullable=False)  # officer | credit_file
    enrolled_by: Mapped[str] = Column(String(64), nullable=False)
    enrolled_at: Mapped[datetime] = Column(DateTime, nullable=False, default=utcnow)
    active: Mapped[bool] = Column(Boolean, nullable=False, default=True)
    # The photo (downscaled JPEG) sealed with the face-review key, for an officer's review of a
    # face check (migration 0016); dropped when the reference is replaced.
    photo_sealed: Mapped[str | None] = Column(Text)


class FaceReview(Base):
    """A face check in the band an officer decides (auth_flow.face_review): the live frame the
    decision used, sealed, kept until the officer decides or FACE_REVIEW_RETENTION_HOURS pass."""

    __tablename__ = "face_reviews"
    id: Mapped[int] = Column(Integer, primary_key=True)
    # Whose face check: an authorization's, or (migration 0022) a loan contract's signing.
    authorization_id: Mapped[int | None] = Column(Integer, ForeignKey("authorizations.id"), index=True)
    contract_id: Mapped[int | None] = Column(Integer, ForeignKey("loan_contracts.id"), index=True)
    reference_id: Mapped[int | None] = Column(Integer, ForeignKey("face_references.id"))
    # pending | approved | rejected | superseded (a later attempt) | expired (purged undecided)
    status: Mapped[str] = Column(String(16), nullable=False, default="pending")
    face: Mapped[dict[str, Any]] = Column(JSON, nullable=False, default=dict)  # engine, score, thresholds
    frames_sealed: Mapped[list[str] | None] = Column(JSON)  # None once deleted
    step_session_hash: Mapped[str | None] = Column(String(64))  # the step session that took the frames
    created_at: Mapped[datetime] = Column(DateTime, nullable=False, default=utcnow)
    decided_at: Mapped[datetime | None] = Column(DateTime)
    decided_by: Mapped[str | None] = Column(String(64))
    frames_deleted_at: Mapped[datetime | None] = Column(DateTime)


class ConsentEvidence(Base):
    """One step of a party's authorization, sealed (HMAC) together with the record before it
    (a tamper-evident chain an auditor can export and check; see auth_flow.evidence).
    Append-only: the migrations add triggers refusing UPDATE, DELETE and TRUNCATE."""

    __tablename__ = "consent_evidence"
    id: Mapped[int] = Column(Integer, primary_key=True)
    # Whose step: an authorization's, or (migration 0019) the signing of a loan contract.
    authorization_id: Mapped[int | None] = Column(Integer, ForeignKey("authorizations.id"), index=True)
    contract_id: Mapped[int | None] = Column(Integer, ForeignKey("loan_contracts.id"), index=True)
    at: Mapped[datetime] = Column(DateTime, nullable=False)
    event: Mapped[str] = Column(String(32), nullable=False)
    party_role: Mapped[str] = Column(String(16), nullable=False)
    party_name: Mapped[str] = Column(String(64), nullable=False)
    party_id_masked: Mapped[str] = Column(String(32), nullable=False)
    consent_text: Mapped[str] = Column(Text, nullable=False, default="")
    face: Mapped[dict[str, Any]] = Column(JSON, nullable=False, default=dict)  # distance, threshold, decision, liveness
    image_sha256: Mapped[list[str]] = Column(JSON, nullable=False, default=list)
    client_ip: Mapped[str] = Column(String(64), nullable=False, default="")
    user_agent: Mapped[str] = Column(String(300), nullable=False, default="")
    detail: Mapped[dict[str, Any]] = Column(JSON, nullable=False, default=dict)
    prev_hash: Mapped[str] = Column(String(64), nullable=False, unique=True)
    record_hash: Mapped[str] = Column(String(64), nullable=False, unique=True)
    # The EVIDENCE_KEYS key that sealed the record; "legacy-sha256": plain SHA-256, records from before keys.
    key_id: Mapped[str] = Column(String(32), nullable=False)


class CreditReportRecord(Base):
    """A credit-report query made under one consent: at most one per authorization."""

    __tablename__ = "credit_report_records"
    id: Mapped[int] = Column(Integer, primary_key=True)
    authorization_id: Mapped[int] = Column(Integer, ForeignKey("authorizations.id"), nullable=False, unique=True)
    application_id: Mapped[int] = Column(Integer, ForeignKey("loan_applications.id"), nullable=False, index=True)
    party_role: Mapped[str] = Column(String(16), nullable=False)
    status: Mapped[str] = Column(String(16), nullable=False, default="querying")  # querying | received | failed
    attempts: Mapped[int] = Column(Integer, nullable=False, default=0)
    report_id: Mapped[str | None] = Column(String(64))
    report_sealed: Mapped[str | None] = Column(Text)  # the bureau's JSON, encrypted
    error: Mapped[str | None] = Column(Text)
    started_at: Mapped[datetime] = Column(DateTime, nullable=False, default=utcnow)
    finished_at: Mapped[datetime | None] = Column(DateTime)


class ReportView(Base):
    """An officer opening one party's full credit report, or being refused it (auth_flow.report_views):
    who, when, whose report, why; kept for the bank's supervision. Append-only: the migration adds
    triggers refusing UPDATE, DELETE and TRUNCATE."""

    __tablename__ = "report_views"
    id: Mapped[int] = Column(Integer, primary_key=True)
    at: Mapped[datetime] = Column(DateTime, nullable=False, default=utcnow, index=True)
    officer_id: Mapped[int] = Column(Integer, ForeignKey("officers.id"), nullable=False, index=True)
    application_id: Mapped[int] = Column(Integer, ForeignKey("loan_applications.id"), nullable=False, index=True)
    party_role: Mapped[str] = Column(String(16), nullable=False)  # applicant | spouse | guarantor
    reason: Mapped[str] = Column(String(32), nullable=False)  # auth_flow.report_views.VIEW_REASONS, "" if none
    outcome: Mapped[str] = Column(String(16), nullable=False)  # shown | refused
    authorization_id: Mapped[int | None] = Column(Integer, ForeignKey("authorizations.id"))  # the consent shown under
    report_id: Mapped[str | None] = Column(String(64))  # the bureau's report shown
    refusal: Mapped[str | None] = Column(Text)  # what the officer was told when refused

    officer: Mapped[Officer] = relationship("Officer")


# -- officers: hand-off notifications and the console's queue (handoff/, webhooks/console.py) --


class OfficerNotice(Base):
    """A WeCom message to an officer about a hand-off: a new one, a deadline about to
    pass, or (to supervisors) one overdue. Stored before it is sent, once per kind."""

    __tablename__ = "officer_notices"
    id: Mapped[int] = Column(Integer, primary_key=True)
    hand_off_id: Mapped[int] = Column(Integer, ForeignKey("hand_offs.id"), nullable=False, index=True)
    officer_id: Mapped[int] = Column(Integer, ForeignKey("officers.id"), nullable=False)
    kind: Mapped[str] = Column(String(16), nullable=False)  # new | deadline | overdue
    text: Mapped[str] = Column(Text, nullable=False)
    status: Mapped[str] = Column(String(16), nullable=False, default="pending")  # pending | sent | failed
    errcode: Mapped[int | None] = Column(Integer)
    created_at: Mapped[datetime] = Column(DateTime, nullable=False, default=utcnow)
    sent_at: Mapped[datetime | None] = Column(DateTime)

    officer: Mapped[Officer] = relationship("Officer")
    __table_args__ = (UniqueConstraint("hand_off_id", "officer_id", "kind"),)


# The console's queue: open hand-offs by officer, and by deadline.
Index("ix_hand_offs_status_deadline", HandOff.status, HandOff.deadline)
Index("ix_hand_offs_officer_status", HandOff.officer_id, HandOff.status)


# -- binding a WeChat user to a customer (lending/binding.py, migration 0010) --


class EventCounter(Base):
    """A fixed-window event count under a key (e.g. name+ID guesses of one WeChat user per
    day), counted in one atomic statement (sunshine/counters.py)."""

    __tablename__ = "event_counters"
    key: Mapped[str] = Column(String(128), primary_key=True)
    window_ends: Mapped[int] = Column(Integer, nullable=False)  # Unix seconds
    count: Mapped[int] = Column(Integer, nullable=False)


class WeChatBindRequest(Base):
    """A WeChat user's request to be bound to a customer by name and ID number: a code was
    texted to the customer's phone on file (or, when the name and ID match nobody who may be
    bound, an unknowable one stands in its place, so both look alike). One is pending per
    WeChat user; a new request supersedes it."""

    __tablename__ = "wechat_bind_requests"
    id: Mapped[int] = Column(Integer, primary_key=True)
    openid: Mapped[str] = Column(String(64), nullable=False, index=True)
    id_fingerprint: Mapped[str] = Column(String(64), nullable=False)
    customer_id: Mapped[int | None] = Column(Integer, ForeignKey("customers.id"))
    code_hash: Mapped[str] = Column(String(64), nullable=False)
    wrong_codes: Mapped[int] = Column(Integer, nullable=False, default=0)
    status: Mapped[str] = Column(String(16), nullable=False, default="pending")  # pending | bound | failed | superseded
    expires_at: Mapped[datetime] = Column(DateTime, nullable=False)
    created_at: Mapped[datetime] = Column(DateTime, nullable=False, default=utcnow)


# -- notices the bank sends on its own, the mini-program's subscriptions (conversation/notices.py, migration 0020) --


class NoticeDelivery(Base):
    """One notice the bank sent on its own (an authorization request, a decision, a disbursement,
    a due date) and the channel that carried it: `customer_service` (the person wrote within 48
    hours), `subscribe` (a mini-program subscription message), `template` (an Official Account
    template message) or `officer` (every channel refused: the notice waits in a hand-off)."""

    __tablename__ = "notice_deliveries"
    id: Mapped[int] = Column(Integer, primary_key=True)
    kind: Mapped[str] = Column(String(32), nullable=False)
    openid: Mapped[str] = Column(String(64), nullable=False, index=True)  # in the Official Account
    customer_id: Mapped[int | None] = Column(Integer, ForeignKey("customers.id"))
    application_id: Mapped[int | None] = Column(Integer, ForeignKey("loan_applications.id"), index=True)
    text: Mapped[str] = Column(Text, nullable=False)
    link: Mapped[str | None] = Column(Text)
    fields: Mapped[dict[str, Any]] = Column(JSON, nullable=False, default=dict)
    status: Mapped[str] = Column(String(16), nullable=False, default="queued")  # queued | delivered | to_officer
    channel: Mapped[str | None] = Column(String(16))
    # Each channel tried, in order: [{"channel", "errcode", "reason"}].
    attempts: Mapped[list[dict[str, Any]]] = Column(JSON, nullable=False, default=list)
    created_at: Mapped[datetime] = Column(DateTime, nullable=False, default=utcnow)
    delivered_at: Mapped[datetime | None] = Column(DateTime)


class WxaSubscription(Base):
    """A person's acceptance of one subscription-message template in the mini-program: each
    one-time acceptance (一次性订阅) allows one message, so they add up and a send uses one."""

    __tablename__ = "wxa_subscriptions"
    id: Mapped[int] = Column(Integer, primary_key=True)
    mp_openid: Mapped[str] = Column(String(64), nullable=False)
    template_id: Mapped[str] = Column(String(128), nullable=False)
    status: Mapped[str] = Column(String(16), nullable=False)  # accept | reject | ban
    remaining: Mapped[int] = Column(Integer, nullable=False, default=0)
    updated_at: Mapped[datetime] = Column(DateTime, nullable=False, default=utcnow, onupdate=utcnow)

    __table_args__ = (UniqueConstraint("mp_openid", "template_id"),)


# -- the electronic loan contract (lending/contracts.py, auth_flow/signing.py, migration 0019) --


class LoanContract(Base):
    """The loan contract (借款合同) of an approved application: offered with a link when the
    application is approved, signed by the borrower with their own WeChat or an SMS code; the
    signed text, its PDF and the PDF's SHA-256 are kept (the hash is checked on every download)."""

    __tablename__ = "loan_contracts"
    id: Mapped[int] = Column(Integer, primary_key=True)
    application_id: Mapped[int] = Column(Integer, ForeignKey("loan_applications.id"), nullable=False, unique=True)
    token_hash: Mapped[str] = Column(String(64), unique=True, nullable=False)  # SHA-256 of the link's token
    # offered | signed | locked (too many failed face checks, until an officer renews the link)
    status: Mapped[str] = Column(String(16), nullable=False, default="offered")
    version: Mapped[str] = Column(String(16), nullable=False)  # the template's version
    party_name: Mapped[str] = Column(String(64), nullable=False)  # the borrower
    party_id_masked: Mapped[str] = Column(String(32), nullable=False)
    text_sha256: Mapped[str | None] = Column(String(64))  # the text last shown; once signed, the signed text
    offered_at: Mapped[datetime] = Column(DateTime, nullable=False, default=utcnow)
    expires_at: Mapped[datetime] = Column(DateTime, nullable=False)
    signed_at: Mapped[datetime | None] = Column(DateTime)
    proof: Mapped[dict[str, Any]] = Column(JSON, nullable=False, default=dict)  # the factor that signed, and how
    text: Mapped[str | None] = Column(Text)  # the signed text, exactly as shown
    pdf: Mapped[bytes | None] = Column(LargeBinary)
    pdf_sha256: Mapped[str | None] = Column(String(64))
    evidence_id: Mapped[int | None] = Column(Integer)  # the consent_evidence record of the signing
    # The SMS code of a borrower signing without their WeChat (HMAC, never the code).
    sms_code_hash: Mapped[str | None] = Column(String(64))
    sms_code_expires_at: Mapped[datetime | None] = Column(DateTime)
    sms_sends: Mapped[int] = Column(Integer, nullable=False, default=0)
    # Migration 0022: the face check above CONTRACT_FACE_ABOVE (failed attempts, when it passed),
    # and how many times the link was renewed (each renewal a new token; lending.contracts.renew).
    attempts: Mapped[int] = Column(Integer, nullable=False, default=0)
    face_verified_at: Mapped[datetime | None] = Column(DateTime)
    renewals: Mapped[int] = Column(Integer, nullable=False, default=0)

    application: Mapped[LoanApplication] = relationship("LoanApplication")

    # The evidence chain names each record's party by role: a contract's is the borrower, the applicant.
    party_role = "applicant"


# -- the annual inspection of credit lines (年检, 增持减退; lending/inspection.py, migration 0027) --


class InspectionBatch(Base):
    """One run of the annual inspection (a village's or every due line): its progress and counts."""

    __tablename__ = "inspection_batches"
    id: Mapped[int] = Column(Integer, primary_key=True)
    village: Mapped[str | None] = Column(String(64))  # None: every village
    run_on: Mapped[date] = Column(Date, nullable=False)  # the Beijing date the lines were judged for
    started_by: Mapped[str] = Column(String(64), nullable=False)
    status: Mapped[str] = Column(String(16), nullable=False, default="running")  # running | done | failed
    total: Mapped[int] = Column(Integer, nullable=False, default=0)  # lines due
    done: Mapped[int] = Column(Integer, nullable=False, default=0)  # lines judged (or failed) so far
    kept: Mapped[int] = Column(Integer, nullable=False, default=0)  # passed off-site, line kept
    raised: Mapped[int] = Column(Integer, nullable=False, default=0)
    lowered: Mapped[int] = Column(Integer, nullable=False, default=0)
    on_site: Mapped[int] = Column(Integer, nullable=False, default=0)  # sent to the officer
    failed: Mapped[int] = Column(Integer, nullable=False, default=0)  # the core did not answer: next run
    started_at: Mapped[datetime] = Column(DateTime, nullable=False, default=utcnow)
    finished_at: Mapped[datetime | None] = Column(DateTime)


class LineInspection(Base):
    """One credit line's annual inspection for one validity end (`due_on`): passed off-site, or
    an on-site task for the household's officer, locked once the officer submits it."""

    __tablename__ = "line_inspections"
    id: Mapped[int] = Column(Integer, primary_key=True)
    batch_id: Mapped[int | None] = Column(Integer, ForeignKey("inspection_batches.id"), index=True)
    credit_line_id: Mapped[int] = Column(Integer, ForeignKey("credit_lines.id"), nullable=False)
    customer_id: Mapped[int] = Column(Integer, ForeignKey("customers.id"), nullable=False, index=True)
    due_on: Mapped[date] = Column(Date, nullable=False)  # the line's valid_until this inspection is for
    mode: Mapped[str] = Column(String(16), nullable=False)  # off_site | on_site
    # kept | raised | lowered (off-site, or the officer's conclusion), withdrawn (收回); None: on-site, open
    outcome: Mapped[str | None] = Column(String(16))
    reasons: Mapped[list[dict[str, Any]]] = Column(JSON, nullable=False, default=list)  # [{code, text}]
    before: Mapped[dict[str, Any]] = Column(JSON, nullable=False, default=dict)  # last year's snapshot
    after: Mapped[dict[str, Any]] = Column(JSON, nullable=False, default=dict)  # the data judged now
    old_amount: Mapped[int] = Column(Integer, nullable=False)
    new_amount: Mapped[int | None] = Column(Integer)
    new_valid_until: Mapped[date | None] = Column(Date)
    officer_id: Mapped[int | None] = Column(Integer, ForeignKey("officers.id"), index=True)
    deadline: Mapped[date | None] = Column(Date)  # on-site: by when the officer visits (Beijing date)
    findings: Mapped[str] = Column(Text, nullable=False, default="")
    conclusion: Mapped[str | None] = Column(String(16))  # on-site: pass | lower | withdraw
    saved_at: Mapped[datetime | None] = Column(DateTime)
    submitted_at: Mapped[datetime | None] = Column(DateTime)  # set: locked
    submitted_by: Mapped[str | None] = Column(String(64))
    created_at: Mapped[datetime] = Column(DateTime, nullable=False, default=utcnow)

    customer: Mapped[Customer] = relationship("Customer")
    officer: Mapped[Officer | None] = relationship("Officer")
    photos: Mapped[list[InspectionPhoto]] = relationship(
        "InspectionPhoto", back_populates="inspection", order_by="InspectionPhoto.id"
    )
    __table_args__ = (UniqueConstraint("credit_line_id", "due_on"),)


class InspectionPhoto(Base):
    """A photo the officer took on site (JPEG or PNG), kept with its SHA-256."""

    __tablename__ = "inspection_photos"
    id: Mapped[int] = Column(Integer, primary_key=True)
    inspection_id: Mapped[int] = Column(Integer, ForeignKey("line_inspections.id"), nullable=False, index=True)
    content_type: Mapped[str] = Column(String(32), nullable=False)
    size: Mapped[int] = Column(Integer, nullable=False)
    sha256: Mapped[str] = Column(String(64), nullable=False)
    data: Mapped[bytes] = deferred(Column(LargeBinary, nullable=False))  # read only when the photo is shown
    uploaded_by: Mapped[str] = Column(String(64), nullable=False)
    uploaded_at: Mapped[datetime] = Column(DateTime, nullable=False, default=utcnow)

    inspection: Mapped[LineInspection] = relationship("LineInspection", back_populates="photos")
