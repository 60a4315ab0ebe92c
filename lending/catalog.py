"""Loan products, kept as data in products.yml and synchronised into the database."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from lending.parties import ROLES
from lending.repayment import METHODS
from lending.tags import TagFileError, check_tag_map, pairs_of
from sunshine.models import Customer, LoanProduct
from sunshine.yaml_files import read_yaml

PRODUCTS_FILE = Path(__file__).with_name("products.yml")
_FIELDS = (
    "name",
    "customer_types",
    "min_amount",
    "max_amount",
    "terms_months",
    "annual_rate_bp",
    "needs_guarantor",
    "needs_collateral",
    "auto_approval_limit",
    "second_approval_above",
    "authorizing_parties",
    "description",
    "repayment_method",
    "offered_to_tags",
)
OPTIONAL = {"offered_to_tags": dict}  # fields a product may leave out, and their empty value
# The kinds of customer the products are for, and how customers and officers read them.
CUSTOMER_TYPE_LABELS = {"farmer": "农户", "merchant": "个体工商户", "civil_servant": "公职人员"}
CUSTOMER_TYPES = tuple(CUSTOMER_TYPE_LABELS)


class ProductFileError(ValueError):
    """products.yml cannot be used; the message names the product and the field."""


def _check(row: dict) -> None:
    code = row.get("code", "?")
    missing = [
        k for k in ("code", "annual_rate", *_FIELDS) if k not in row and k != "annual_rate_bp" and k not in OPTIONAL
    ]
    if missing:
        raise ProductFileError(f"product {code}: missing {', '.join(missing)}")
    if not set(row["customer_types"]) <= set(CUSTOMER_TYPES):
        raise ProductFileError(f"product {code}: customer_types must be among {', '.join(CUSTOMER_TYPES)}")
    if not set(row["authorizing_parties"]) <= set(ROLES) or "applicant" not in row["authorizing_parties"]:
        raise ProductFileError(f"product {code}: authorizing_parties must include applicant, among {ROLES}")
    if row["needs_guarantor"] != ("guarantor" in row["authorizing_parties"]):
        raise ProductFileError(f"product {code}: a guarantor must authorize exactly when needs_guarantor")
    if not 0 < row["min_amount"] <= row["max_amount"] or not 0 <= row["auto_approval_limit"] <= row["max_amount"]:
        raise ProductFileError(
            f"product {code}: need 0 < min_amount <= max_amount and " "0 <= auto_approval_limit <= max_amount"
        )
    if not row["auto_approval_limit"] <= row["second_approval_above"] <= row["max_amount"]:
        raise ProductFileError(f"product {code}: need auto_approval_limit <= second_approval_above <= max_amount")
    if row["repayment_method"] not in METHODS:
        raise ProductFileError(f"product {code}: repayment_method must be one of {', '.join(METHODS)}")
    if not row["terms_months"] or not all(isinstance(t, int) and t > 0 for t in row["terms_months"]):
        raise ProductFileError(f"product {code}: terms_months must be a list of whole months")
    try:
        check_tag_map(f"product {code}: offered_to_tags", row.get("offered_to_tags", {}))
    except TagFileError as exc:
        raise ProductFileError(str(exc)) from None


def read_products(path: Path = PRODUCTS_FILE) -> list[dict]:
    """The products in the file, validated; rates converted to basis points."""
    rows = read_yaml(path)
    for row in rows:
        _check(row)
        row.update({k: empty() for k, empty in OPTIONAL.items() if k not in row})
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


def products_for(session: Session, customer_type: str, tags: frozenset | set = frozenset()) -> list[LoanProduct]:
    """Products that serve this customer type or are offered to one of these tags
    ((kind, value) pairs), smallest entry amount first."""
    products = session.scalars(select(LoanProduct).order_by(LoanProduct.min_amount, LoanProduct.code))
    return [p for p in products if offered(p, customer_type, tags)]


def offered(product: LoanProduct, customer_type: str, tags: frozenset | set = frozenset()) -> bool:
    """Whether the product is for this customer type, or offered to one of these tags."""
    return customer_type in product.customer_types or any(
        (kind, value) in tags for kind, values in (product.offered_to_tags or {}).items() for value in values
    )


def products_offered(session: Session, customer: Customer) -> list[LoanProduct]:
    """The products offered to this customer (by type and by tag): the one list the chat, the
    mini-program, the console and the application's check follow."""
    return products_for(session, customer.customer_type, pairs_of(session, customer.id))
