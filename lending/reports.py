"""Credit reports for an application: whose are needed (auth_flow.reports queries them)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from lending.customers import spouse_of
from sunshine.models import Customer, LoanApplication


def parties(session: Session, application: LoanApplication) -> dict[str, Customer]:
    """The people whose credit report the product requires, by role (a customer without a spouse has none)."""
    people = {
        "applicant": application.customer,
        "spouse": spouse_of(session, application.customer),
        "guarantor": application.guarantor,
    }
    return {role: person for role in application.product.authorizing_parties if (person := people[role]) is not None}
