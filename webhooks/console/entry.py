"""录入申请: an officer enters a loan application for a customer (at a service station or on a
visit) through the lending service the chat and the mini-program use (same rules, same
idempotency: a key carried in the form), then pushes the parties' credit-report requests: each
to their own WeChat, and all on the printable page of QR codes (applications.push_codes).

`/console/apply` finds the applicant by ID number; `/console/customers/<id>/apply` is the form.
An officer may enter applications for their own customers and those without an officer; a
supervisor for anyone. A refusal is in the audit log; bad input re-shows the form as typed.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, replace

from flask import abort, flash, g, make_response, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from handoff import service as handoffs
from lending.amounts import AmountError, format_amount, parse_amount
from lending.applications import Applications, LendingError
from lending.catalog import CUSTOMER_TYPE_LABELS, products_offered
from lending.credit_lines import current_line
from lending.customers import by_id_number, spouse_of
from lending.identity import InvalidIdNumber
from lending.purposes import EXAMPLES, MAX_PURPOSE
from sunshine.models import Customer, LoanApplication, LoanProduct, audit
from sunshine.protect import mask_id_number, mask_name
from webhooks.console import bp
from webhooks.console.applications import push_codes
from webhooks.console.auth import login_required
from webhooks.console.common import profile, settings

CHANNEL = "console"  # how the application's history names this way of applying
KEY_MAX = 64


class EntryRefused(ValueError):
    """The form cannot be submitted as filled in; the message is for the officer."""


@dataclass(frozen=True)
class EntryForm:
    """What the officer typed, kept as typed to show the form again."""

    key: str = ""
    product: str = ""
    amount: str = ""
    term: str = ""
    purpose: str = ""
    guarantor: str = ""
    over_line: bool = False

    @classmethod
    def posted(cls) -> EntryForm:
        f = request.form
        return cls(
            key=f.get("key", "").strip(),
            product=f.get("product", "").strip(),
            amount=f.get("amount", "").strip()[:32],
            term=f.get("term", "").strip(),
            purpose=f.get("purpose", "").strip(),
            guarantor=f.get("guarantor", "").strip()[:32],
            over_line=f.get("over_line") == "1",
        )


def _may_enter(customer: Customer) -> bool:
    return g.officer.role == handoffs.SUPERVISOR or customer.officer_id in (None, g.officer.id)


def _customer(customer_id: int, lock: bool = False) -> Customer:
    """The applicant, when this officer may enter an application for them: another officer's
    customer is refused (403) and the refusal kept in the audit log. `lock`: the row is locked
    until the transaction ends, so that one form sent twice at once (a double click) is entered
    once: the second request waits, then finds the first's application by its key."""
    customer = g.db.get(Customer, customer_id, with_for_update=True if lock else None)
    if customer is None:
        abort(404, description="没有这位客户")
    if not _may_enter(customer):
        audit(
            g.db,
            handoffs.actor_of(g.officer),
            "application.entry_refused",
            "customer",
            customer.id,
            reason="other_officer",
            method=request.method,
        )
        g.db.commit()  # the refusal is kept: the page below is raised, which rolls back what follows
        message = "这是其他客户经理的客户，只有主管可以为他录入贷款申请"
        abort(make_response(render_template("console/refused.html", message=message), 403))
    return customer


def _stored_key(customer_id: int, key: str) -> str:
    """The key the application is stored under: this customer's form's own."""
    return f"{CHANNEL}:" + hashlib.sha256(f"{customer_id}:{key}".encode()).hexdigest()[:48]


def _form_page(customer: Customer, form: EntryForm, error: str | None = None, status: int = 200) -> ResponseReturnValue:
    spouse = spouse_of(g.db, customer)
    products = products_offered(g.db, customer)
    page = render_template(
        "console/apply.html",
        c=customer,
        form=form,
        error=error,
        products=products,
        terms=sorted({m for p in products for m in p.terms_months}),
        type_label=CUSTOMER_TYPE_LABELS.get(customer.customer_type, customer.customer_type),
        line=current_line(g.db, customer),
        spouse=spouse,
        spouse_name=mask_name(spouse.name) if spouse else "",
        examples=EXAMPLES.get(customer.customer_type, ()),
        max_purpose=MAX_PURPOSE,
        profile=profile(customer),
    )
    return page, status


def _guarantor(customer: Customer, product: LoanProduct, typed: str) -> int | None:
    """The guarantor's customer id for a product that needs one (by ID number), else None."""
    if not product.needs_guarantor:
        return None
    if not typed:
        raise EntryRefused(f"{product.name}需要一名担保人：请填写担保人的身份证号")
    try:
        guarantor = by_id_number(g.db, settings().secret_key, typed)
    except InvalidIdNumber as exc:
        raise EntryRefused(f"担保人的{exc}") from None
    if guarantor is None:
        raise EntryRefused(f"没有找到身份证号为{mask_id_number(typed)}的客户：担保人要是本行已建档的客户，请核对号码")
    if guarantor.id == customer.id:
        raise EntryRefused("担保人不能是借款人本人，请换一位担保人")
    return guarantor.id


def _checked(customer: Customer, form: EntryForm) -> tuple[LoanProduct, int, int, int | None]:
    """Product, amount, term and guarantor read from the form; EntryRefused with what is wrong.
    The lending service checks them again with the chat's rules (range, term, guarantor)."""
    offered = {p.code: p for p in products_offered(g.db, customer)}
    if not form.product:
        raise EntryRefused("请选择贷款产品")
    product = offered.get(form.product)
    if product is None:
        kind = CUSTOMER_TYPE_LABELS.get(customer.customer_type, customer.customer_type)
        raise EntryRefused(f"这个产品不面向{kind}，请从列表里为客户选择产品")
    try:
        amount = parse_amount(form.amount)
    except AmountError as exc:
        raise EntryRefused(str(exc)) from None
    if not form.term.isdigit():
        raise EntryRefused("请选择贷款期限")
    if not form.purpose:
        raise EntryRefused("请填写贷款用途，比如：" + "、".join(EXAMPLES.get(customer.customer_type, ("买化肥种子",))))
    if len(form.purpose) > MAX_PURPOSE:
        raise EntryRefused(f"贷款用途最多{MAX_PURPOSE}个字")
    guarantor_id = _guarantor(customer, product, form.guarantor)
    line = current_line(g.db, customer)
    within_product = product.min_amount <= amount <= product.max_amount  # outside it, the service says why
    if within_product and line is not None and amount > line.available and not form.over_line:
        raise EntryRefused(
            f"金额{format_amount(amount)}超过客户剩余可用额度{format_amount(line.available)}。"
            "可以照样提交（超出额度的申请转客户经理审核），请勾选“超出可用额度也提交”；或者改小金额"
        )
    return product, amount, int(form.term), guarantor_id


# --- finding the applicant ----------------------------------------------------------------


@bp.get("/apply")
@login_required
def apply_lookup() -> ResponseReturnValue:
    return render_template("console/apply_lookup.html", id_number="", error=None)


@bp.post("/apply")
@login_required
def apply_find() -> ResponseReturnValue:
    """The applicant by ID number (POSTed: the number stays out of addresses and logs)."""
    typed = request.form.get("id_number", "").strip()[:32]
    try:
        customer = by_id_number(g.db, settings().secret_key, typed)
    except InvalidIdNumber as exc:
        return render_template("console/apply_lookup.html", id_number=typed, error=str(exc)), 422
    if customer is None:
        error = f"没有找到身份证号为{mask_id_number(typed)}的客户，请核对号码（客户要先在村级授信档案中建档）"
        return render_template("console/apply_lookup.html", id_number=typed, error=error), 404
    return redirect(url_for("console.apply_form", customer_id=customer.id), code=303)


# --- the form -----------------------------------------------------------------------------


@bp.get("/customers/<int:customer_id>/apply")
@login_required
def apply_form(customer_id: int) -> ResponseReturnValue:
    customer = _customer(customer_id)
    return _form_page(customer, EntryForm(key=secrets.token_urlsafe(24)))


@bp.post("/customers/<int:customer_id>/apply")
@login_required
def apply_submit(customer_id: int) -> ResponseReturnValue:
    """Submit through lending.applications (the chat's rules); a form submitted twice makes one
    application. Then each party's request goes to their WeChat and the QR codes are shown to print."""
    customer = _customer(customer_id, lock=True)
    form = EntryForm.posted()
    if not form.key or len(form.key) > KEY_MAX:
        fresh = replace(form, key=secrets.token_urlsafe(24))
        return _form_page(customer, fresh, "表单已过期，请核对后重新提交", 400)
    key = _stored_key(customer.id, form.key)
    done = g.db.scalar(select(LoanApplication).where(LoanApplication.idempotency_key == key))
    if done is not None:
        flash(f"这张申请表已经提交过（申请编号{done.id}），没有重复提交", "ok")
        return redirect(url_for("console.application_page", application_id=done.id), code=303)
    actor = handoffs.actor_of(g.officer)
    try:
        product, amount, term, guarantor_id = _checked(customer, form)
        application = Applications.from_settings(settings()).apply(
            g.db,
            customer.id,
            product.code,
            amount,
            term,
            idempotency_key=key,
            purpose=form.purpose,
            guarantor_id=guarantor_id,
            actor=actor,
            channel=CHANNEL,
        )
    except (EntryRefused, LendingError) as exc:
        g.db.rollback()
        return _form_page(customer, form, str(exc), 422)
    audit(
        g.db,
        actor,
        "application.entered",
        "loan_application",
        application.id,
        customer_id=customer.id,
        product=product.code,
        amount=amount,
        term_months=term,
        channel=CHANNEL,
    )
    what = f"{customer.name}的{product.name}申请（{format_amount(amount)}，{term}个月），申请编号{application.id}"
    if application.status != "awaiting_authorization":  # a rejecting rule ended it at submission
        g.db.commit()
        flash(f"已录入{what}，但没有通过风险规则：请看申请页的风险提示", "error")
        return redirect(url_for("console.application_page", application_id=application.id), code=303)
    flash(f"已录入{what}。授权请求已发到绑定了微信的人；请把二维码打印给需要当面扫码的人", "ok")
    return push_codes(application)
