"""The records that must not be lost: customers, credit lines, products,
applications, authorizations, hand-offs, officers and the audit log.

Money is kept in whole yuan (integers). ID numbers and phones are never
stored in plain text: a keyed fingerprint for look-up, a sealed copy where
the bank must read them back, and a masked form for display.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, declarative_base, relationship

from sunshine.clock import utcnow

Base = declarative_base()


class Officer(Base):
    """A loan officer (客户经理) or supervisor who uses the console."""

    __tablename__ = "officers"
    id = Column(Integer, primary_key=True)
    username = Column(String(64), unique=True, nullable=False)
    display_name = Column(String(64), nullable=False)
    password_hash = Column(String(255), nullable=False)
    role = Column(String(16), nullable=False, default="officer")  # officer | supervisor
    wecom_userid = Column(String(64))
    active = Column(Boolean, nullable=False, default=True)
    created_at = Column(DateTime, nullable=False, default=utcnow)


class Customer(Base):
    """A person known to the bank: household head, merchant or civil servant."""

    __tablename__ = "customers"
    id = Column(Integer, primary_key=True)
    name = Column(String(64), nullable=False)
    id_fingerprint = Column(String(64), unique=True, nullable=False)
    id_sealed = Column(Text, nullable=False)
    id_masked = Column(String(32), nullable=False)
    phone_fingerprint = Column(String(64), index=True)
    phone_sealed = Column(Text)
    phone_masked = Column(String(16))
    customer_type = Column(String(16), nullable=False, default="farmer")  # farmer | merchant | civil_servant
    village = Column(String(64))
    wechat_openid = Column(String(64), unique=True)
    officer_id = Column(Integer, ForeignKey("officers.id"))
    created_at = Column(DateTime, nullable=False, default=utcnow)

    officer: Mapped[Officer | None] = relationship("Officer")
    credit_lines: Mapped[list[CreditLine]] = relationship("CreditLine", back_populates="customer")


class FamilyMember(Base):
    """A relation between two customers of one household (spouse, child, ...)."""

    __tablename__ = "family_members"
    id = Column(Integer, primary_key=True)
    customer_id = Column(Integer, ForeignKey("customers.id"), nullable=False, index=True)
    member_id = Column(Integer, ForeignKey("customers.id"), nullable=False, index=True)
    role = Column(String(16), nullable=False)

    member: Mapped[Customer] = relationship("Customer", foreign_keys=[member_id])
    __table_args__ = (UniqueConstraint("customer_id", "member_id"),)


class CreditLine(Base):
    """A pre-granted line from the village credit file (整村授信)."""

    __tablename__ = "credit_lines"
    id = Column(Integer, primary_key=True)
    customer_id = Column(Integer, ForeignKey("customers.id"), nullable=False, index=True)
    amount = Column(Integer, nullable=False)
    used_amount = Column(Integer, nullable=False, default=0)
    valid_until = Column(Date, nullable=False)
    source = Column(String(32), nullable=False, default="whole_village")
    tags = Column(JSON, nullable=False, default=dict)
    updated_at = Column(DateTime, nullable=False, default=utcnow, onupdate=utcnow)

    customer: Mapped[Customer] = relationship("Customer", back_populates="credit_lines")


class LoanProduct(Base):
    """A loan product, synchronised from lending/products.yml."""

    __tablename__ = "loan_products"
    code = Column(String(32), primary_key=True)
    name = Column(String(64), nullable=False)
    customer_types = Column(JSON, nullable=False)
    min_amount = Column(Integer, nullable=False)
    max_amount = Column(Integer, nullable=False)
    terms_months = Column(JSON, nullable=False)
    annual_rate_bp = Column(Integer, nullable=False)  # basis points: 435 = 4.35% a year
    needs_guarantor = Column(Boolean, nullable=False, default=False)
    authorizing_parties = Column(JSON, nullable=False)
    description = Column(Text, nullable=False, default="")
    needs_collateral = Column(Boolean, nullable=False, default=False)
    # Applications up to this amount, with no risk-rule hit, are approved automatically (0: never).
    auto_approval_limit = Column(Integer, nullable=False, default=0)


# Statuses after which an application is no longer live (see lending.applications).
FINAL_APPLICATION_STATUSES = ("rejected", "withdrawn", "disbursed")


class LoanApplication(Base):
    """A loan application; lending.applications moves it through its statuses."""

    __tablename__ = "loan_applications"
    id = Column(Integer, primary_key=True)
    customer_id = Column(Integer, ForeignKey("customers.id"), nullable=False, index=True)
    product_code = Column(String(32), ForeignKey("loan_products.code"), nullable=False)
    amount = Column(Integer, nullable=False)
    term_months = Column(Integer, nullable=False)
    purpose = Column(String(200), nullable=False, default="")
    status = Column(String(32), nullable=False, default="draft")
    idempotency_key = Column(String(64), unique=True)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    updated_at = Column(DateTime, nullable=False, default=utcnow, onupdate=utcnow)
    guarantor_id = Column(Integer, ForeignKey("customers.id"))
    review_mode = Column(String(16))  # auto | officer, once under review
    review_deadline = Column(DateTime)  # by when an officer must decide
    escalated_at = Column(DateTime)  # the deadline passed and supervisors were alerted
    risk_hits = Column(JSON, nullable=False, default=list)  # [{code, outcome, description, stage}]
    loan_account = Column(String(32))  # the loan account opened at disbursement

    customer: Mapped[Customer] = relationship("Customer", foreign_keys=[customer_id])
    guarantor: Mapped[Customer | None] = relationship("Customer", foreign_keys=[guarantor_id])
    product: Mapped[LoanProduct] = relationship("LoanProduct")
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
    id = Column(Integer, primary_key=True)
    application_id = Column(Integer, ForeignKey("loan_applications.id"), nullable=False, index=True)
    at = Column(DateTime, nullable=False, default=utcnow)
    actor = Column(String(64), nullable=False)  # customer | auto | risk_rules | officer:<username> | system
    action = Column(String(32), nullable=False)
    from_status = Column(String(32))
    to_status = Column(String(32), nullable=False)
    reason = Column(Text, nullable=False, default="")
    detail = Column(JSON, nullable=False, default=dict)

    application: Mapped[LoanApplication] = relationship("LoanApplication", back_populates="events")


class WatchListEntry(Base):
    """A person the bank watches (关注名单): applications are intercepted by the risk rules."""

    __tablename__ = "watch_list"
    id = Column(Integer, primary_key=True)
    id_fingerprint = Column(String(64), unique=True, nullable=False)
    id_masked = Column(String(32), nullable=False)
    reason = Column(String(200), nullable=False)
    added_by = Column(String(64), nullable=False)
    added_at = Column(DateTime, nullable=False, default=utcnow)


class Authorization(Base):
    """One party's consent to a credit-report query, reached by a QR token."""

    __tablename__ = "authorizations"
    id = Column(Integer, primary_key=True)
    application_id = Column(Integer, ForeignKey("loan_applications.id"), index=True)
    customer_id = Column(Integer, ForeignKey("customers.id"), nullable=False, index=True)
    party_role = Column(String(16), nullable=False)  # applicant | spouse | guarantor
    party_name = Column(String(64), nullable=False)
    party_id_masked = Column(String(32), nullable=False)
    purpose = Column(String(200), nullable=False)
    requested_by = Column(String(64), nullable=False)
    token_hash = Column(String(64), unique=True, nullable=False)
    status = Column(String(16), nullable=False, default="pending")
    expires_at = Column(DateTime, nullable=False)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    consented_at = Column(DateTime)
    # auth_flow (migration 0005): whose report, and how far the party has come.
    party_customer_id = Column(Integer, ForeignKey("customers.id"))
    party_phone_masked = Column(String(16))
    attempts = Column(Integer, nullable=False, default=0)
    identity_checked_at = Column(DateTime)
    biometric_consent_at = Column(DateTime)
    face_verified_at = Column(DateTime)
    # auth_flow (migration 0006): the SMS code of a party without a bound WeChat (HMAC, never the code).
    sms_code_hash = Column(String(64))
    sms_code_expires_at = Column(DateTime)
    sms_sends = Column(Integer, nullable=False, default=0)


class HandOff(Base):
    """A conversation handed from the bot to a loan officer."""

    __tablename__ = "hand_offs"
    id = Column(Integer, primary_key=True)
    openid = Column(String(64), nullable=False, index=True)
    customer_id = Column(Integer, ForeignKey("customers.id"))
    officer_id = Column(Integer, ForeignKey("officers.id"))
    application_id = Column(Integer, ForeignKey("loan_applications.id"))
    reason = Column(String(32), nullable=False)
    summary = Column(JSON, nullable=False, default=dict)
    priority = Column(Integer, nullable=False, default=0)
    status = Column(String(16), nullable=False, default="open")  # open | claimed | closed
    deadline = Column(DateTime, nullable=False)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    closed_at = Column(DateTime)

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
    id = Column(Integer, primary_key=True)
    code = Column(String(32), unique=True, nullable=False)
    name = Column(String(64), nullable=False)
    village = Column(String(64), nullable=False)
    officer_id = Column(Integer, ForeignKey("officers.id"))

    officer: Mapped[Officer | None] = relationship("Officer")


class Follower(Base):
    """A WeChat user of the Official Account, customer of the bank or not."""

    __tablename__ = "wechat_followers"
    openid = Column(String(64), primary_key=True)
    subscribed = Column(Boolean, nullable=False, default=True)
    station_id = Column(Integer, ForeignKey("service_stations.id"))
    subscribed_at = Column(DateTime)
    unsubscribed_at = Column(DateTime)

    station: Mapped[ServiceStation | None] = relationship("ServiceStation")


class ConversationMessage(Base):
    """A message the bot did not carry: a customer's words for an officer, an
    officer's reply, or an answer WeChat refused to deliver."""

    __tablename__ = "conversation_messages"
    id = Column(Integer, primary_key=True)
    openid = Column(String(64), nullable=False, index=True)
    hand_off_id = Column(Integer, ForeignKey("hand_offs.id"), index=True)
    direction = Column(String(8), nullable=False)  # inbound | outbound
    author = Column(String(64), nullable=False)  # customer | bot | officer:<username>
    body = Column(Text, nullable=False)
    # WeChat's MsgId (or openid:CreateTime), so that a retried delivery is stored once.
    wechat_msg_key = Column(String(96), unique=True)
    status = Column(String(16), nullable=False)  # received | sent | undelivered
    errcode = Column(Integer)
    created_at = Column(DateTime, nullable=False, default=utcnow)


class AuditEntry(Base):
    """Who did what to which record, when and why."""

    __tablename__ = "audit_log"
    id = Column(Integer, primary_key=True)
    at = Column(DateTime, nullable=False, default=utcnow, index=True)
    actor = Column(String(64), nullable=False)
    action = Column(String(64), nullable=False)
    subject_type = Column(String(32), nullable=False)
    subject_id = Column(String(64), nullable=False)
    detail = Column(JSON, nullable=False, default=dict)


def audit(session, actor: str, action: str, subject_type: str, subject_id, **detail) -> AuditEntry:
    """Add an audit-log entry to the session's unit of work."""
    entry = AuditEntry(actor=actor, action=action, subject_type=subject_type, subject_id=str(subject_id), detail=detail)
    session.add(entry)
    return entry


# --- remote credit-report authorization (auth_flow) -------------------------------


class FaceReference(Base):
    """A party's enrolled reference face (ID-photo-like): only its 128-d encoding, encrypted."""

    __tablename__ = "face_references"
    id = Column(Integer, primary_key=True)
    customer_id = Column(Integer, ForeignKey("customers.id"), nullable=False, index=True)
    encoding_sealed = Column(Text, nullable=False)
    image_sha256 = Column(String(64), nullable=False)
    source = Column(String(16), nullable=False)  # officer | credit_file
    enrolled_by = Column(String(64), nullable=False)
    enrolled_at = Column(DateTime, nullable=False, default=utcnow)
    active = Column(Boolean, nullable=False, default=True)


class ConsentEvidence(Base):
    """One step of a party's authorization, hashed together with the record before it
    (a tamper-evident chain an auditor can export and check)."""

    __tablename__ = "consent_evidence"
    id = Column(Integer, primary_key=True)
    authorization_id = Column(Integer, ForeignKey("authorizations.id"), nullable=False, index=True)
    at = Column(DateTime, nullable=False)
    event = Column(String(32), nullable=False)
    party_role = Column(String(16), nullable=False)
    party_name = Column(String(64), nullable=False)
    party_id_masked = Column(String(32), nullable=False)
    consent_text = Column(Text, nullable=False, default="")
    face = Column(JSON, nullable=False, default=dict)  # distance, threshold, decision, liveness
    image_sha256 = Column(JSON, nullable=False, default=list)
    client_ip = Column(String(64), nullable=False, default="")
    user_agent = Column(String(300), nullable=False, default="")
    detail = Column(JSON, nullable=False, default=dict)
    prev_hash = Column(String(64), nullable=False, unique=True)
    record_hash = Column(String(64), nullable=False, unique=True)


class CreditReportRecord(Base):
    """A credit-report query made under one consent: at most one per authorization."""

    __tablename__ = "credit_report_records"
    id = Column(Integer, primary_key=True)
    authorization_id = Column(Integer, ForeignKey("authorizations.id"), nullable=False, unique=True)
    application_id = Column(Integer, ForeignKey("loan_applications.id"), nullable=False, index=True)
    party_role = Column(String(16), nullable=False)
    status = Column(String(16), nullable=False, default="querying")  # querying | received | failed
    attempts = Column(Integer, nullable=False, default=0)
    report_id = Column(String(64))
    report_sealed = Column(Text)  # the bureau's JSON, encrypted
    error = Column(Text)
    started_at = Column(DateTime, nullable=False, default=utcnow)
    finished_at = Column(DateTime)


# -- officers: hand-off notifications and the console's queue (handoff/, webhooks/console.py) --


class OfficerNotice(Base):
    """A WeCom message to an officer about a hand-off: a new one, a deadline about to
    pass, or (to supervisors) one overdue. Stored before it is sent, once per kind."""

    __tablename__ = "officer_notices"
    id = Column(Integer, primary_key=True)
    hand_off_id = Column(Integer, ForeignKey("hand_offs.id"), nullable=False, index=True)
    officer_id = Column(Integer, ForeignKey("officers.id"), nullable=False)
    kind = Column(String(16), nullable=False)  # new | deadline | overdue
    text = Column(Text, nullable=False)
    status = Column(String(16), nullable=False, default="pending")  # pending | sent | failed
    errcode = Column(Integer)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    sent_at = Column(DateTime)

    officer: Mapped[Officer] = relationship("Officer")
    __table_args__ = (UniqueConstraint("hand_off_id", "officer_id", "kind"),)


# The console's queue: open hand-offs by officer, and by deadline.
Index("ix_hand_offs_status_deadline", HandOff.status, HandOff.deadline)
Index("ix_hand_offs_officer_status", HandOff.officer_id, HandOff.status)
