"""JSON API and H5 pages for the mini-program / H5 audience: the parties who
open an authorization link. Routes parse, call auth_flow, render."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from flask import Blueprint, Response, abort, current_app, jsonify, redirect, render_template, request, session
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge, TooManyRequests
from werkzeug.formparser import parse_form_data

from auth_flow.consent import check_face, face_challenge, give_biometric_consent, give_consent, public_view
from auth_flow.evidence import Client
from auth_flow.face_engines import engine_from_settings
from auth_flow.identity import check_identity, check_identity_wxa, send_sms_code
from auth_flow.liveness import Challenges
from auth_flow.progress import missing_consents, progress_text
from auth_flow.qr import authorization_url, png, wechat_code
from auth_flow.tokens import (
    AuthorizationError,
    Browser,
    CheckResult,
    OtherSession,
    StepRefused,
    UnknownToken,
    find_by_token,
)
from clients.sms import SmsClient
from clients.wechat import WeChatApi, WeChatApiError
from lending.customers import remember_wechat
from lending.notify import WeChatNotifier
from sunshine.db import unit_of_work
from sunshine.jobs import Jobs
from sunshine.models import LoanApplication
from sunshine.protect import constant_time_equal
from sunshine.ratelimit import (
    DEAD_TOKEN_STEPS,
    DEAD_TOKEN_STEPS_BY_CLIENT,
    FACE_ATTEMPTS,
    TOKEN_LOOKUPS,
    Limit,
    Limiter,
)
from sunshine.redis import connect
from webhooks.mp import current_session
from webhooks.openapi import SPEC
from webhooks.private import no_store

bp = Blueprint("api", __name__)
bp.after_request(no_store)  # the authorization page and its API show a party's (masked) data


def _settings():
    return current_app.config["SETTINGS"]


def _client(token: str | None = None) -> Client:
    """The client's address as the trusted proxies (TRUSTED_PROXIES, werkzeug's ProxyFix) report it;
    with `token`, also the step session this browser holds for it (its cookie, or from the
    mini-program, which keeps no cookies, the STEP_SESSION_HEADER)."""
    ip, agent = request.remote_addr or "", request.headers.get("User-Agent", "")
    if token is None:
        return Client(ip=ip, user_agent=agent)
    held = request.cookies.get(_step_cookie(token)) or request.headers.get(STEP_SESSION_HEADER, "")
    return Browser(ip=ip, user_agent=agent, step_session=held[:128])


STEP_SESSION_HEADER = "X-Step-Session"


def _step_cookie(token: str) -> str:
    """One cookie per authorization, named by its token's hash (never the token)."""
    return "auth_step_" + hashlib.sha256(token.encode()).hexdigest()[:16]


def _keep_step_session(response: Response, token: str, step_session: str) -> Response:
    """The browser keeps the step session the later steps are bound to: HttpOnly, Secure over
    HTTPS, SameSite=Strict (only this site's own requests carry it), for the token's lifetime."""
    s = _settings()
    response.set_cookie(
        _step_cookie(token),
        step_session,
        max_age=s.authorization_ttl_s,
        httponly=True,
        secure=request.is_secure or s.public_base_url.startswith("https://"),
        samesite="Strict",
    )
    return response


def _limit(limit: Limit, count: bool = False, who: str | None = None) -> None:
    """429 with Retry-After when this client (or `who`) is over `limit`; `count` counts this request first."""
    limiter, who = Limiter(_settings().redis_url), who or _client().ip
    wait = limiter.hit(limit, who) if count else limiter.retry_after(limit, who)
    if wait:
        current_app.logger.info("rate limit %s reached by a client", limit.name)
        raise TooManyRequests(description=limit.message, retry_after=wait)


def _unknown_token() -> None:
    """A client trying tokens that open nothing is stopped after TOKEN_LOOKUPS of them."""
    Limiter(_settings().redis_url).add(TOKEN_LOOKUPS, _client().ip)


def _token_key() -> str:
    """The rate-limit name of the token in this request's URL: its SHA-256, never the token."""
    return hashlib.sha256(str((request.view_args or {}).get("token", "")).encode()).hexdigest()


def _dead_token() -> None:
    """A step refused because the token is dead was recorded as evidence: count it against the
    token and the client, so that posting to a dead token cannot fill the evidence table."""
    limiter = Limiter(_settings().redis_url)
    limiter.add(DEAD_TOKEN_STEPS, _token_key())
    limiter.add(DEAD_TOKEN_STEPS_BY_CLIENT, _client().ip)


def _authorization(token: str) -> dict:
    _limit(TOKEN_LOOKUPS)
    with unit_of_work(_settings().database_url) as session:
        try:
            auth = find_by_token(session, token)
        except AuthorizationError as exc:
            if isinstance(exc, UnknownToken):
                _unknown_token()
            abort(404, description=str(exc))
        return public_view(session, auth, _client(token), _settings().face_review_minutes)


def _error(status: int, message: str, **extra):
    return jsonify(error=_NAMES[status], message=message, **extra), status


_NAMES = {400: "Bad Request", 404: "Not Found", 409: "Conflict", 413: "Payload Too Large", 422: "Unprocessable Entity"}


def _step(fn, *args):
    """Run one step in a unit of work that commits even when the step is refused
    (the refusal is evidence); map the outcome to a JSON response."""
    _limit(TOKEN_LOOKUPS)
    _limit(DEAD_TOKEN_STEPS, who=_token_key())
    _limit(DEAD_TOKEN_STEPS_BY_CLIENT)
    error: tuple | None = None
    with unit_of_work(_settings().database_url) as session:
        try:
            result = fn(session, *args)
        except AuthorizationError as exc:
            if isinstance(exc, UnknownToken):
                _unknown_token()
            else:
                _dead_token()
            error = (404, str(exc))
        except OtherSession as exc:  # the page starts over at identity
            error = (409, str(exc), {"restart": True})
        except StepRefused as exc:
            error = (409, str(exc))
    if error:
        return None, _error(error[0], error[1], **(error[2] if len(error) > 2 else {}))
    if isinstance(result, CheckResult) and not result.ok:
        return result, _error(
            422, result.message, attempts_left=result.attempts_left, locked=result.locked, review=result.review
        )
    return result, None


def _json_body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(400, description="请求内容应为JSON对象")
    return body


@bp.get("/api/openapi.json")
def openapi():
    return jsonify(SPEC)


@bp.get("/api/authorizations/<token>")
def authorization(token: str):
    return jsonify(_authorization(token))


@bp.get("/api/authorizations/<token>/qr.png")
def authorization_qr(token: str):
    _authorization(token)
    return Response(
        png(authorization_url(_settings().public_base_url, token)),
        mimetype="image/png",
        headers={"Cache-Control": "no-store"},
    )


@bp.get("/api/authorizations/<token>/wechat-code.png")
def authorization_wechat_code(token: str):
    """The Official Account parametric QR code or the mini-program code, as AUTH_WECHAT_CODE says."""
    details = _authorization(token)
    s = _settings()
    if s.auth_wechat_code == "none":
        abort(404, description="未启用微信码，请使用二维码链接")
    try:
        image = wechat_code(WeChatApi.from_settings(s), s, token, details["expires_at"], connect(s.redis_url))
    except WeChatApiError as exc:
        current_app.logger.warning("WeChat code for an authorization failed: %s", exc)
        abort(502, description="微信服务暂时不可用，请使用二维码链接")
    return Response(image, mimetype="image/png", headers={"Cache-Control": "no-store"})


@bp.post("/api/authorizations/<token>/identity")
def authorization_identity(token: str):
    """Name and ID digits, with the bank mini-program's session (`Authorization: Bearer`, from
    /api/mp/login), or the WeChat identity of this browser session (web authorization), or
    `sms_code`; or, from the mini-program, `wx_code` (wx.login). Passing binds the later steps
    to this browser (its step-session cookie; the mini-program gets it in the body)."""
    body, s = _json_body(), _settings()
    mp_session = current_session()  # 401 for a forged or expired bearer token
    mini_program = bool(body.get("wx_code")) or mp_session is not None
    if body.get("wx_code"):
        result, failure = _step(
            check_identity_wxa,
            WeChatApi.from_settings(s),
            token,
            str(body["wx_code"]),
            _client(token),
            s.auth_max_attempts,
        )
    else:
        name, digits, code = body.get("name"), body.get("id_digits"), body.get("sms_code")
        if not isinstance(name, str) or not isinstance(digits, str) or not name.strip() or not digits.strip():
            return _error(400, "请填写姓名和身份证号后6位")
        if code is not None and not isinstance(code, str):
            return _error(400, "短信验证码应为6位数字")
        result, failure = _step(
            check_identity,
            s.secret_key,
            token,
            name,
            digits,
            _client(token),
            s.auth_max_attempts,
            session.get(OPENID_KEY),
            code,
            session.get(UNIONID_KEY),
            (mp_session.openid, mp_session.unionid) if mp_session is not None else None,
        )
    if failure:
        return failure
    step_session = result.step_session if result is not None else None
    if not step_session:  # a passed identity check always binds a session
        raise RuntimeError("identity passed without a step session")
    extra = {"step_session": step_session} if mini_program else {}
    return _keep_step_session(jsonify(ok=True, message="身份核对通过", **extra), token, step_session)


@bp.post("/api/authorizations/<token>/sms-code")
def authorization_sms_code(token: str):
    """Text a code to the phone on file of a party without a bound WeChat."""
    s = _settings()
    phone, failure = _step(send_sms_code, s.secret_key, token, SmsClient.from_settings(s), _client(token))
    return failure or jsonify(ok=True, message=f"验证码已发送到{phone}，5分钟内有效")


@bp.post("/api/authorizations/<token>/biometric-consent")
def authorization_biometric_consent(token: str):
    agree = _json_body().get("agree")
    _, failure = _step(give_biometric_consent, token, agree, _client(token))
    return failure or jsonify(ok=True, message="已同意人脸核验")


def _challenges(s) -> Challenges:
    return Challenges.from_settings(s)


@bp.post("/api/authorizations/<token>/face-challenge")
def authorization_face_challenge(token: str):
    """A new random challenge for one face attempt: the nonce and the steps the page asks for."""
    s = _settings()
    challenge, failure = _step(face_challenge, token, _client(token), _challenges(s))
    return failure or jsonify(ok=True, **challenge)


@bp.post("/api/authorizations/<token>/face")
def authorization_face(token: str):
    """Frames (multipart field `frames`, JPEG or PNG) taken while the party does the challenge's
    actions, with `nonce` and, per frame, its step index (`steps`)."""
    s = _settings()
    attempt = face_upload(token)
    if not isinstance(attempt, FaceUpload):
        return attempt
    result, failure = _step(
        check_face,
        token,
        attempt.frames,
        _client(token),
        s.auth_max_attempts,
        engine_from_settings(s),
        s.face_liveness_min_motion,
        _challenges(s),
        attempt.nonce,
        attempt.steps,
        s.face_review_minutes,
    )
    return failure or jsonify(ok=True, message=result.message, face=result.face)


@dataclass(frozen=True)
class FaceUpload:
    frames: list[bytes]
    nonce: str
    steps: list[int] | None


def face_upload(token: str, refuse=None) -> FaceUpload | tuple[Response, int]:
    """One face attempt's upload (an authorization's or a contract's): the frames (multipart
    `frames`), the challenge's `nonce` and each frame's step (`steps`); or the error response
    (`refuse(status, message)`, default the authorization API's).
    Attempts are counted per link (FACE_ATTEMPTS), not per address: a village station's Wi-Fi is one address."""
    s, refuse = _settings(), refuse or _error
    _limit(FACE_ATTEMPTS, count=True, who="token:" + hashlib.sha256(token.encode()).hexdigest()[:32])
    if (request.content_length or 0) > s.auth_upload_max_bytes:
        return refuse(413, "照片太大，请重新拍摄（单次上传不超过8MB）")
    try:
        _, form, files = parse_form_data(
            request.environ, max_content_length=s.auth_upload_max_bytes, max_form_memory_size=s.auth_upload_max_bytes
        )
    except RequestEntityTooLarge:
        return refuse(413, "照片太大，请重新拍摄（单次上传不超过8MB）")
    uploads = [f.read() for f in files.getlist("frames")]
    if not uploads:
        return refuse(400, "没有收到照片，请允许使用摄像头后重新拍摄")
    try:
        steps = [int(v) for v in form.getlist("steps")] or None
    except ValueError:
        return refuse(400, "动作步骤应为整数，请重新刷脸")
    return FaceUpload(uploads, form.get("nonce", ""), steps)


@bp.post("/api/authorizations/<token>/consent")
def authorization_consent(token: str):
    """The party consents (or refuses); when the last party consents the reports are fetched."""
    s = _settings()
    auth, failure = _step(give_consent, token, _json_body().get("agree"), _client(token))
    if failure:
        return failure
    if auth.status != "consented":
        return jsonify(ok=True, status=auth.status, message=REFUSED_MESSAGE)
    queued = False
    if auth.application_id:
        queued = _after_consent(s, auth.application_id)
    return jsonify(ok=True, status="consented", message=CONSENTED_MESSAGE, reports="queued" if queued else None)


CONSENTED_MESSAGE = (
    "授权成功，感谢您的配合。接下来：银行会向人民银行征信中心查询一次您的信用报告，只用于这笔贷款审批；"
    "所有需要授权的人都完成后开始审批，结果会在微信里告诉申请人。您现在可以关闭本页面。"
)
REFUSED_MESSAGE = "您已拒绝授权，本次不会查询您的征信，已告知申请人和客户经理。如果改变主意，请联系申请人重新发链接。"


def _after_consent(s, application_id: int) -> bool:
    """The applicant hears in WeChat who has authorized so far; after the last consent the
    reports are queried by a worker (True). Redis down: the report sweep queries them later."""
    with unit_of_work(s.database_url) as db:
        application = db.get(LoanApplication, application_id)
        if application is None:  # no such application: no one to tell, nothing to query
            return False
        openid, text = application.customer.wechat_openid, progress_text(db, application)
        complete = not missing_consents(db, application)
    jobs: Jobs = current_app.extensions["jobs"]
    try:
        if openid:
            WeChatNotifier(jobs)(openid, text, kind="authorization_progress", application_id=application_id)
        if complete:
            jobs.fetch_reports(application_id)
    except Exception:  # the consent stands; the applicant can ask the bot, the sweep fetches the reports
        current_app.logger.exception("could not queue the notice or the reports of application %s", application_id)
        return False
    return complete


OPENID_KEY, UNIONID_KEY, STATE_KEY, NEXT_KEY = "wechat_openid", "wechat_unionid", "oauth_state", "oauth_token"


@bp.get("/auth/<token>")
def authorization_page(token: str):
    """The H5 page a party opens from the QR code or link. Without a WeChat identity in this
    browser session it first goes through WeChat's web authorization (snsapi_base, silent)."""
    try:
        details = _authorization(token)
    except HTTPException as exc:  # the 404 (or 429) raised above, shown as a friendly page
        return (
            render_template("auth_invalid.html", message=exc.description),
            exc.code,
            [h for h in exc.get_headers() if h[0] == "Retry-After"],
        )
    if not session.get(OPENID_KEY):
        return wechat_identity(f"/auth/{token}")
    return render_template("auth.html", auth=details, token=token)


def wechat_identity(back_to: str):
    """Send the browser through WeChat's web authorization (snsapi_base, silent), back to the page
    at `back_to` (a path of this site) with the user's openid in the signed session."""
    s = _settings()
    session[STATE_KEY], session[NEXT_KEY] = secrets.token_urlsafe(16), back_to
    callback = f"{s.public_base_url.rstrip('/')}/auth/wechat-callback"
    return redirect(WeChatApi.from_settings(s).oauth_authorize_url(callback, session[STATE_KEY]))


# The pages WeChat's web authorization may come back to.
WECHAT_RETURN_PATHS = ("/auth/", "/contract/")


@bp.get("/auth/wechat-callback")
def authorization_wechat_callback():
    """WeChat comes back with a code naming the user: keep their openid (and UnionID) in the signed
    session, and on the customer they are (lending.customers.remember_wechat)."""
    expected, back_to = session.pop(STATE_KEY, None), session.pop(NEXT_KEY, None)
    code, state = request.args.get("code", ""), request.args.get("state", "")
    failed = "微信身份确认失败，请关闭页面，再从微信里重新打开链接"
    if not isinstance(back_to, str) or not back_to.startswith(WECHAT_RETURN_PATHS) or "//" in back_to:
        back_to = None
    if not expected or not back_to or not code or not constant_time_equal(state, expected):
        return render_template("auth_invalid.html", message=failed), 400
    try:
        user = WeChatApi.from_settings(_settings()).oauth_user(code)
    except WeChatApiError as exc:
        current_app.logger.warning("WeChat web authorization failed: %s", exc)
        return render_template("auth_invalid.html", message=failed), 502 if exc.errcode is None else 400
    session[OPENID_KEY], session[UNIONID_KEY] = user.openid, user.unionid
    with unit_of_work(_settings().database_url) as db:
        remember_wechat(db, user.openid, user.unionid)
    return redirect(back_to)
