"""The loan contract's H5 page and JSON API: the borrower opens the link of the approval
notice, reads the contract, passes the face check above CONTRACT_FACE_ABOVE, signs it
(auth_flow.signing) and downloads the signed PDF; an expired link is renewed.
Routes parse, call the service, render; refusals answer {"error", "code", "message"}."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, render_template, request, session
from werkzeug.exceptions import HTTPException, TooManyRequests

from auth_flow import signing
from auth_flow.face_step import FaceCheck
from auth_flow.signing import Proof, Terms
from auth_flow.tokens import CheckResult, StepRefused
from clients.sms import SmsClient
from lending.applications import Applications
from lending.contracts import ContractError, contract_number, find_by_token
from sunshine.db import unit_of_work
from sunshine.models import LoanContract
from sunshine.ratelimit import DEAD_TOKEN_STEPS, DEAD_TOKEN_STEPS_BY_CLIENT, TOKEN_LOOKUPS
from webhooks.api import (
    OPENID_KEY,
    FaceUpload,
    _client,
    _dead_token,
    _limit,
    _token_key,
    _unknown_token,
    face_upload,
    wechat_identity,
)
from webhooks.private import no_store

bp = Blueprint("contracts", __name__)
bp.after_request(no_store)  # the contract names the borrower

# HTTP status of each refusal code.
STATUS = {
    "bad_request": 400,
    "unknown_token": 404,
    "other_person": 403,
    "wrong_code": 422,
    "text_changed": 422,
    "face_failed": 422,
    "too_large": 413,
    "too_many_attempts": 429,
    "renewal_limit": 429,
    "not_signed": 409,
    "pdf_altered": 500,
}
_NAMES = {
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    413: "Payload Too Large",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
}


def _settings():
    return current_app.config["SETTINGS"]


def _proof(sms_code: str | None = None) -> Proof:
    """The WeChat this browser session went through web authorization as, and a typed code."""
    return Proof(wechat_openid=session.get(OPENID_KEY), sms_code=sms_code)


def _refusal(code: str, message: str, **extra):
    status = STATUS.get(code, 409)
    return jsonify(error=_NAMES[status], code=code, message=message, **extra), status


def _with_contract(token: str, step: Callable[[Any, LoanContract], Any]) -> tuple[Any, tuple[str, str] | None]:
    """Run `step(session, contract)` in a unit of work that commits even when the step is refused
    (the refusal is evidence); returns (result, None) or (None, (code, message))."""
    _limit(TOKEN_LOOKUPS)
    _limit(DEAD_TOKEN_STEPS, who=_token_key())
    _limit(DEAD_TOKEN_STEPS_BY_CLIENT)
    refused: tuple[str, str] | None = None
    with unit_of_work(_settings().database_url) as db:
        try:
            result = step(db, find_by_token(db, token, lock=request.method == "POST"))
        except ContractError as exc:
            refused = (exc.code, exc.message)
        except StepRefused as exc:
            refused = ("refused", str(exc))
    if refused is None:
        return result, None
    if refused[0] == "unknown_token":
        _unknown_token()
    elif refused[0] in ("other_person", "wrong_code", "text_changed", "face_required", "renewal_limit"):
        _dead_token()  # recorded as evidence: bounded per link and per client
    return None, refused


@bp.get("/api/contracts/<token>")
def contract(token: str):
    """The contract's text (its hash to sign with), terms and status."""
    terms = Terms.from_settings(_settings())
    view, refused = _with_contract(token, lambda db, c: signing.read(db, c, terms, _proof(), _client()))
    return _refusal(*refused) if refused else jsonify(view)


@bp.post("/api/contracts/<token>/sms-code")
def contract_sms_code(token: str):
    """Text a signing code to a borrower without a bound WeChat."""
    s = _settings()
    terms, sms = Terms.from_settings(s), SmsClient.from_settings(s)
    phone, refused = _with_contract(token, lambda db, c: signing.send_code(db, c, terms, sms, _proof(), _client()))
    return _refusal(*refused) if refused else jsonify(ok=True, message=f"验证码已发送到{phone}，5分钟内有效")


@bp.post("/api/contracts/<token>/sign")
def contract_sign(token: str):
    """Sign with `text_sha256` (the hash of the text read) and, without a bound WeChat, `sms_code`."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("text_sha256"), str):
        return _refusal("bad_request", "请求内容应为JSON对象，并带上所阅读合同的校验值text_sha256")
    code = body.get("sms_code")
    if code is not None and not isinstance(code, str):
        return _refusal("bad_request", "短信验证码应为6位数字")
    s = _settings()
    terms, applications, jobs = Terms.from_settings(s), Applications.from_settings(s), current_app.extensions["jobs"]
    signed, refused = _with_contract(
        token,
        lambda db, c: signing.sign(db, c, body["text_sha256"], terms, _proof(code), _client(), applications, jobs),
    )
    if refused:
        return _refusal(*refused)
    return jsonify(ok=True, status=signed.status, message=signing.SIGNED_MESSAGE, pdf_sha256=signed.pdf_sha256)


@bp.post("/api/contracts/<token>/face-challenge")
def contract_face_challenge(token: str):
    """A new random challenge for one face attempt (a loan above CONTRACT_FACE_ABOVE)."""
    s = _settings()
    terms, face_check = Terms.from_settings(s), FaceCheck.from_settings(s)
    challenge, refused = _with_contract(
        token, lambda db, c: signing.face_challenge(db, c, terms, _proof(), _client(), face_check)
    )
    return _refusal(*refused) if refused else jsonify(ok=True, **challenge)


_UPLOAD_CODES = {400: "bad_request", 413: "too_large"}


@bp.post("/api/contracts/<token>/face")
def contract_face(token: str):
    """Frames (multipart `frames`) taken while the borrower does the challenge's actions, with
    `nonce` and each frame's step (`steps`), as the authorization's face step takes them."""
    try:
        attempt = face_upload(token, lambda status, message: _refusal(_UPLOAD_CODES[status], message))
    except TooManyRequests as exc:  # FACE_ATTEMPTS on this link
        body, status = _refusal("too_many_attempts", exc.description or "")
        return body, status, [h for h in exc.get_headers() if h[0] == "Retry-After"]
    if not isinstance(attempt, FaceUpload):
        return attempt
    s = _settings()
    terms, face_check = Terms.from_settings(s), FaceCheck.from_settings(s)
    result, refused = _with_contract(
        token,
        lambda db, c: signing.check_face(
            db, c, terms, _proof(), _client(), face_check, attempt.frames, attempt.nonce, attempt.steps
        ),
    )
    if refused:
        return _refusal(*refused)
    checked: CheckResult = result
    if not checked.ok:
        return _refusal(
            "face_failed",
            checked.message,
            attempts_left=checked.attempts_left,
            locked=checked.locked,
            review=checked.review,
        )
    return jsonify(ok=True, message=checked.message, face=checked.face)


@bp.post("/api/contracts/<token>/renew")
def contract_renew(token: str):
    """A new signing link for an expired one (the old link stops working); answers the new link."""
    s = _settings()
    terms, applications = Terms.from_settings(s), Applications.from_settings(s)

    def step(db, c: LoanContract) -> str:
        signing.renew(db, c, terms, _proof(), _client())
        return applications.send_contract_link(db, c.application, c.renewals)

    link, refused = _with_contract(token, step)
    if refused:
        return _refusal(*refused)
    return jsonify(ok=True, link=link, message="已生成新的合同签署链接，之前的链接已失效")


@bp.get("/api/contracts/<token>/pdf")
def contract_pdf(token: str):
    """The signed contract's PDF (its SHA-256 checked first)."""
    out, refused = _with_contract(
        token, lambda db, c: (signing.pdf(db, c, _proof(), _client()), contract_number(c.application))
    )
    if refused:
        return _refusal(*refused)
    data, number = out
    return Response(
        data,
        mimetype="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="contract-{number}.pdf"'},
    )


@bp.get("/contract/<token>")
def contract_page(token: str):
    """The H5 page the approval notice links to. Without a WeChat identity in this browser session
    it first goes through WeChat's web authorization, as the authorization page does."""
    terms = Terms.from_settings(_settings())

    def step(db, c: LoanContract):
        return signing.read(db, c, terms, _proof(), _client()) if session.get(OPENID_KEY) else None

    try:
        view, refused = _with_contract(token, step)
    except HTTPException as exc:  # a rate limit (429), shown as a page
        return _invalid(exc.description or "", exc.code or 429, [h for h in exc.get_headers() if h[0] == "Retry-After"])
    if refused:
        return _invalid(refused[1], STATUS.get(refused[0], 409))
    if view is None:
        return wechat_identity(f"/contract/{token}")
    return render_template("contract.html", contract=view, token=token)


def _invalid(message: str, status: int, headers=()):
    return render_template("auth_invalid.html", heading="借款合同", message=message), status, list(headers)
