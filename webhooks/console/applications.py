"""An application awaiting review: its page (with the parties' credit-report summaries), a
party's full report opened for a reason, authorization codes for the parties still to consent
(sent to their WeChat and printable), the officer's decision, and 重新放款 after a failed
disbursement."""

from __future__ import annotations

import base64
from datetime import timedelta

from flask import Response, abort, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from auth_flow import report_views, signing
from auth_flow.evidence import Client
from auth_flow.identity import page_id
from auth_flow.notices import send_requests
from auth_flow.qr import authorization_url, png
from auth_flow.signing import FACTOR_NAMES, Proof, Terms
from auth_flow.tokens import reissue_for_application
from conversation.notices import CHANNEL_NAMES, notice_kind
from handoff import service as handoffs
from lending import disbursement, loans
from lending.applications import Applications, LendingError, awaiting_second_approval, note
from lending.contracts import ContractError, contract_number, contract_of, pdf_intact
from lending.notify import WeChatNotifier
from lending.parties import ROLE_NAMES
from sunshine.clock import utcnow
from sunshine.models import LoanApplication, NoticeDelivery, audit
from webhooks.console import bp
from webhooks.console.auth import login_required
from webhooks.console.common import jobs, profile, settings


def _application(application_id: int) -> LoanApplication:
    application = g.db.get(LoanApplication, application_id)
    if application is None:
        abort(404, description="没有这笔贷款申请")
    if g.officer.role != handoffs.SUPERVISOR and application.customer.officer_id != g.officer.id:
        abort(403, description="这是其他客户经理的客户，只有主管可以查看")
    return application


@bp.get("/applications/<int:application_id>")
@login_required
def application_page(application_id: int) -> ResponseReturnValue:
    application = _application(application_id)
    first = awaiting_second_approval(application)
    notices = g.db.scalars(
        select(NoticeDelivery).where(NoticeDelivery.application_id == application.id).order_by(NoticeDelivery.id)
    ).all()
    contract = contract_of(g.db, application.id)
    return render_template(
        "console/application.html",
        a=application,
        notices=[
            (n, notice_kind(settings(), n.kind).title, CHANNEL_NAMES.get(n.channel or "", "发送中")) for n in notices
        ],
        contract=contract,
        signed_with=FACTOR_NAMES.get(contract.proof.get("factor", ""), "") if contract else "",
        profile=profile(application.customer),
        now=utcnow(),
        first_approver=first,
        can_confirm=first is not None and g.officer.role == handoffs.SUPERVISOR and g.officer.id != first.id,
        disbursement=disbursement.record_of(g.db, application_id),
        loan=loan_schedule(application_id),
        party_reports=report_views.party_reports(g.db, settings().secret_key, application),
        report_views=report_views.views_of(g.db, application.id),
        view_reasons=report_views.VIEW_REASONS,
    )


@bp.post("/applications/<int:application_id>/reports")
@login_required
def credit_report(application_id: int) -> ResponseReturnValue:
    """One party's full credit report, opened for the reason the officer picked (the view is
    recorded; a refusal too, and the officer is told why)."""
    application = _application(application_id)
    try:
        party, view = report_views.open_report(
            g.db,
            settings().secret_key,
            application,
            g.officer,
            request.form.get("role", ""),
            request.form.get("reason", ""),
        )
    except report_views.ReportRefused as exc:
        g.db.commit()  # the refused attempt is a record
        flash(exc.message, "error")
        return redirect(url_for("console.application_page", application_id=application_id, _anchor="credit-reports"))
    g.db.commit()
    return render_template(
        "console/credit_report.html",
        a=application,
        party=party,
        view=view,
        reason=report_views.VIEW_REASONS[view.reason],
        account_status=report_views.ACCOUNT_STATUS,
    )


def loan_schedule(application_id: int) -> loans.LoanSchedule | None:
    """The disbursed loan's schedule as last synchronised from the core, if any."""
    loan = loans.loan_of_application(g.db, application_id)
    return loans.schedule_of(loan) if loan is not None else None


@bp.get("/applications/<int:application_id>/contract.pdf")
@login_required
def contract_pdf(application_id: int) -> ResponseReturnValue:
    """The signed loan contract's PDF (its SHA-256 checked); every view is in the audit log."""
    application = _application(application_id)
    contract = contract_of(g.db, application.id)
    if contract is None or contract.status != "signed":
        abort(404, description="这笔申请的借款合同还没有签署")
    try:
        data = pdf_intact(contract)
    except ContractError as exc:
        abort(500, description=exc.message)
    audit(g.db, handoffs.actor_of(g.officer), "contract.pdf_viewed", "loan_application", application.id)
    return Response(
        data,
        mimetype="application/pdf",
        headers={"Content-Disposition": f'inline; filename="contract-{contract_number(application)}.pdf"'},
    )


@bp.post("/applications/<int:application_id>/contract/renew")
@login_required
def contract_renew(application_id: int) -> ResponseReturnValue:
    """A new signing link for the contract (expired, still valid or locked: a lock's release);
    the old link stops working and the borrower is sent the new one in WeChat."""
    application = _application(application_id)
    back = redirect(url_for("console.application_page", application_id=application_id))
    contract = contract_of(g.db, application.id, lock=True)
    if contract is None:
        flash("这笔申请还没有借款合同（审批通过后才有）", "error")
        return back
    s = settings()
    client = Client(ip=request.remote_addr or "", user_agent=request.headers.get("User-Agent", ""))
    try:
        signing.renew(g.db, contract, Terms.from_settings(s), Proof(), client, by=f"officer:{g.officer.username}")
    except ContractError as exc:
        g.db.commit()  # a refusal is evidence
        flash(exc.message, "error")
        return back
    link = Applications.from_settings(s).send_contract_link(g.db, application, contract.renewals)
    g.db.commit()
    if application.customer.wechat_openid:
        flash("已生成新的合同签署链接并发到客户微信，之前的链接已失效", "ok")
    else:
        flash(f"已生成新的合同签署链接（之前的链接已失效）。客户没有绑定微信，请把链接交给客户本人：{link}", "ok")
    return back


@bp.post("/applications/<int:application_id>/authorization-codes")
@login_required
def authorization_codes(application_id: int) -> ResponseReturnValue:
    """Issue fresh authorization codes for every party still to consent (earlier links stop
    working), send each party theirs in WeChat, and show them on one printable page."""
    application = _application(application_id)
    if application.status != "awaiting_authorization":
        flash("这笔申请现在不需要征信授权", "error")
        return redirect(url_for("console.application_page", application_id=application_id))
    return push_codes(application)


def push_codes(application: LoanApplication) -> ResponseReturnValue:
    """Fresh requests for the application's parties still to consent, each sent to the party's
    WeChat once committed (as the chat sends them), and the printable page of their QR codes."""
    s = settings()
    ttl = timedelta(seconds=s.authorization_ttl_s)
    client = Client(ip=request.remote_addr or "", user_agent=request.headers.get("User-Agent", ""))
    out = reissue_for_application(g.db, application, handoffs.actor_of(g.officer), ttl, client=client)
    notify = WeChatNotifier(jobs())
    sent = send_requests(g.db, application, out.issued, notify, s.public_base_url, ttl)
    if out.issued:
        note(
            g.db,
            application.id,
            handoffs.actor_of(g.officer),
            "authorization_requests_sent",
            "生成了授权二维码（"
            + "、".join(ROLE_NAMES[i.authorization.party_role] for i in out.issued)
            + "）"
            + ("；已发到微信：" + "、".join(ROLE_NAMES[r] for r in sent) if sent else "；都没有绑定微信"),
            roles=[i.authorization.party_role for i in out.issued],
            wechat=sent,
        )
    codes = [
        {
            "role": ROLE_NAMES[i.authorization.party_role],
            "name": i.authorization.party_name,
            "id_masked": page_id(i.authorization.party_id_masked),  # printed for the party: no digits they are asked
            "expires_at": i.authorization.expires_at,
            "url": authorization_url(s.public_base_url, i.token),
            "png": base64.b64encode(png(authorization_url(s.public_base_url, i.token))).decode(),
            "wechat": i.authorization.party_role in sent,
        }
        for i in out.issued
    ]
    g.db.commit()
    return render_template(
        "console/authorization_codes.html",
        a=application,
        codes=codes,
        consented=[ROLE_NAMES[c.party_role] for c in out.consented],
        held=[h.message for h in out.held],
    )


@bp.post("/applications/<int:application_id>/decision")
@login_required
def decide(application_id: int) -> ResponseReturnValue:
    """Approve or reject with a reason, through the lending service (the customer is told after commit)."""
    _application(application_id)
    decision = request.form.get("decision")
    if decision not in ("approve", "reject"):
        abort(400, description="请选择通过或不通过")
    service = Applications.from_settings(settings())
    try:
        application = getattr(service, decision)(g.db, application_id, g.officer, request.form.get("reason", ""))
        waiting = application.status == "under_review" and application.first_approved_by is not None
        g.db.commit()
    except LendingError as exc:
        g.db.rollback()
        flash(str(exc), "error")
        return redirect(url_for("console.application_page", application_id=application_id))
    if waiting:
        flash("已审批通过，金额较大，等待另一位主管复核（待复核）", "ok")
    else:
        flash("已审批通过" if decision == "approve" else "已拒绝，客户会收到通知", "ok")
    return redirect(url_for("console.queue"))


@bp.post("/applications/<int:application_id>/disbursement")
@login_required
def retry_disbursement(application_id: int) -> ResponseReturnValue:
    """重新放款: a failed disbursement enqueued again, under the same Idempotency-Key (paid once)."""
    _application(application_id)
    try:
        disbursement.retry(g.db, application_id, handoffs.actor_of(g.officer), jobs())
        g.db.commit()
    except LendingError as exc:
        g.db.rollback()
        flash(str(exc), "error")
    else:
        flash("已重新提交放款，结果会记在申请经过里", "ok")
    return redirect(url_for("console.application_page", application_id=application_id))
