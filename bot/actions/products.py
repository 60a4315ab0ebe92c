"""Loan products and their rates, from the product catalogue in the database."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.actions.common import (
    BankAction,
    amount_asked,
    database,
    openid_of,
    percent,
    slot_or_entity,
    yuan,
)
from lending.catalog import CUSTOMER_TYPE_LABELS, products_for, products_offered
from lending.customers import by_openid
from lending.parties import LABELS
from sunshine.models import LoanProduct


def _chosen_products(session: Session, tracker: Tracker) -> tuple[list[LoanProduct], str | None]:
    """The product just named, else those for the type named, else those offered to the customer
    (by type and tags), else all; and the type."""
    code = slot_or_entity(tracker, "product")
    if code:
        product = session.get(LoanProduct, code)
        if product is not None:
            return [product], None
    customer_type = slot_or_entity(tracker, "customer_type")
    if customer_type not in CUSTOMER_TYPE_LABELS:
        customer = by_openid(session, openid_of(tracker))
        if customer is not None:
            return products_offered(session, customer), customer.customer_type
    if customer_type in CUSTOMER_TYPE_LABELS:
        return products_for(session, customer_type), customer_type
    return list(session.scalars(select(LoanProduct).order_by(LoanProduct.min_amount, LoanProduct.code))), None


def _terms(months: list[int]) -> str:
    months = sorted(months)
    if not months:
        return ""
    if len(months) == 1:
        return f"期限{months[0]}个月"
    return f"期限{months[0]}到{months[-1]}个月"


class ActionProducts(BankAction):
    """ask_products: what the bank lends, for whom."""

    def name(self) -> str:
        return "action_products"

    def answer(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        with database() as session:
            products, customer_type = _chosen_products(session, tracker)
            if not products:
                dispatcher.utter_message(text="暂时没有可以在线办理的贷款产品，回复“转人工”问问客户经理。")
                return []
            if len(products) == 1:
                p = products[0]
                parties = "、".join(LABELS.get(x, x) for x in p.authorizing_parties)
                text = (
                    f"{p.name}：{p.description}额度{yuan(p.min_amount)}到{yuan(p.max_amount)}，"
                    f"{_terms(p.terms_months)}，年利率{percent(p.annual_rate_bp)}。"
                    f"{'需要一名担保人。' if p.needs_guarantor else '不用担保人。'}"
                    f"办理时需要{parties}授权查询征信。"
                )
            else:
                head = (
                    f"适合{CUSTOMER_TYPE_LABELS[customer_type]}的贷款有："
                    if customer_type
                    else "我们线上能办的贷款有："
                )
                lines = [
                    f"· {p.name}：{p.description}额度最高{yuan(p.max_amount)}，" f"年利率{percent(p.annual_rate_bp)}。"
                    for p in products
                ]
                text = head + "\n" + "\n".join(lines)
        dispatcher.utter_message(text=text + "\n想知道自己能贷多少，回复“查额度”。")
        return []


class ActionInterestRate(BankAction):
    """ask_interest_rate: the rates, with the interest on the amount asked about."""

    def name(self) -> str:
        return "action_interest_rate"

    def answer(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        with database() as session:
            products, _ = _chosen_products(session, tracker)
            rates = [(p.name, p.annual_rate_bp) for p in products]
        if not rates:
            dispatcher.utter_message(text="暂时查不到利率，回复“转人工”问问客户经理。")
            return []
        lines = "\n".join(f"· {name}：年利率{percent(bp)}" for name, bp in rates)
        wanted, problem = amount_asked(tracker)
        amount = wanted or 10_000
        note = problem + "\n" if problem else ""
        name, bp = rates[0]
        interest = (Decimal(amount) * bp / 10_000).quantize(Decimal(1))
        example = (
            f"举个例子：{name}借{yuan(amount)}，用满一年利息约{interest}元；"
            "提前还款、分期还本，利息会更少。实际利率以审批结果为准。"
        )
        dispatcher.utter_message(text=f"{lines}\n{note}{example}")
        return []
