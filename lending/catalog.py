"""Loan products, kept as data in products.yml and synchronised into the database."""
from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from sunshine.models import LoanProduct

PRODUCTS_FILE = Path(__file__).with_name("products.yml")
_FIELDS = ("name", "customer_types", "min_amount", "max_amount", "terms_months", "annual_rate_bp",
           "needs_guarantor", "authorizing_parties", "description")


def read_products(path: Path = PRODUCTS_FILE) -> list[dict]:
    rows = yaml.safe_load(path.read_text(encoding="utf-8"))
    for row in rows:
        row["annual_rate_bp"] = int((Decimal(str(row.pop("annual_rate"))) * 10000).to_integral_value())
    return rows


def sync_products(session: Session, path: Path = PRODUCTS_FILE) -> int:
    """Insert or update every product from the file; returns how many changed."""
    changed = 0
    existing = {p.code: p for p in session.scalars(select(LoanProduct))}
    for row in read_products(path):
        product = existing.get(row["code"])
        if product is None:
            session.add(LoanProduct(code=row["code"], **{k: row[k] for k in _FIELDS}))
            changed += 1
            continue
        for key in _FIELDS:
            if getattr(product, key) != row[key]:
                setattr(product, key, row[key])
                changed += 1
    return changed


def products_for(session: Session, customer_type: str) -> list[LoanProduct]:
    """Products that serve this customer type, smallest entry amount first."""
    products = session.scalars(select(LoanProduct).order_by(LoanProduct.min_amount, LoanProduct.code))
    return [p for p in products if customer_type in p.customer_types]
