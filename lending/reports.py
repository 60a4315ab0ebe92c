"""Credit reports for an application: whose are needed, and fetching them from the bureau."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from clients.bureau import BureauClient, CreditReport
from lending.customers import spouse_of
from sunshine.models import Authorization, Customer, LoanApplication
from sunshine.protect import unseal


def parties(session: Session, application: LoanApplication) -> dict[str, Customer]:
    """The people whose credit report the product requires, by role (a customer without a spouse has none)."""
    people = {"applicant": application.customer, "spouse": spouse_of(session, application.customer),
              "guarantor": application.guarantor}
    return {role: people[role] for role in application.product.authorizing_parties if people[role] is not None}


def query_reports(session: Session, secret_key: str, application: LoanApplication,
                  bureau: BureauClient) -> dict[str, CreditReport]:
    """Query each party's report under their consented authorization; raises KeyError naming a party
    who has not consented yet. Bureau errors (clients.bureau.BureauError) pass to the caller."""
    consents = {a.party_role: a for a in session.scalars(select(Authorization).where(
        Authorization.application_id == application.id, Authorization.status == "consented"))}
    reports = {}
    for role, person in parties(session, application).items():
        if role not in consents:
            raise KeyError(f"{role} has not consented to the credit-report query of application {application.id}")
        reports[role] = bureau.query_report(unseal(secret_key, person.id_sealed), person.name,
                                            str(consents[role].id))
    return reports
