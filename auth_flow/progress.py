"""Where an application's authorizations stand: which parties have consented, which not yet."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from lending.applications import named_parties
from lending.reports import parties
from sunshine.models import Authorization, LoanApplication


def missing_consents(session: Session, application: LoanApplication) -> list[str]:
    consented = set(
        session.scalars(
            select(Authorization.party_role).where(
                Authorization.application_id == application.id, Authorization.status == "consented"
            )
        )
    )
    return [role for role in parties(session, application) if role not in consented]


def progress_text(session: Session, application: LoanApplication) -> str:
    """For the applicant: who has authorized and who not yet."""
    missing = missing_consents(session, application)
    people = parties(session, application)
    done = named_parties(people, [r for r in people if r not in missing])
    text = f"征信授权进度（申请编号{application.id}）：已授权：{done or '暂无'}"
    if missing:
        return text + f"；还需授权：{named_parties(people, missing)}。"
    return text + "。全部授权完成，正在查询征信报告。"
