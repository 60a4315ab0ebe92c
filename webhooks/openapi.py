"""The OpenAPI document of the JSON API, served at /api/openapi.json."""

from typing import Any

_ERROR = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
    "required": ["error", "message"],
}
_JSON_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}
_TOKEN = {
    "name": "token",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[A-Za-z0-9_-]+$"},
}

_E = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
_TOO_MANY = {
    "description": "Too many unknown tokens (or face uploads) from this client; `Retry-After` says "
    "when to try again",
    **_E,
}


def _json(properties: dict, required: list[str]) -> dict:
    return {"application/json": {"schema": {"type": "object", "properties": properties, "required": required}}}


_STEP_RESPONSES = {
    "200": {"description": "Step done", "content": {"application/json": {"schema": {"type": "object"}}}},
    "400": {"description": "Malformed request (not JSON, missing fields, no frames)", **_E},
    "404": {"description": "Unknown, expired, used, superseded or locked token", **_E},
    "409": {"description": "Step out of order, declined, or no reference face enrolled", **_E},
    "413": {"description": "Upload larger than AUTH_UPLOAD_MAX_BYTES", **_E},
    "422": {
        "description": "Check failed (identity, no face, several faces, not a JPEG/PNG or over 4 "
        "megapixels, not matched or sent to review, not live; or a frame to retake, too dark/bright/"
        "blurred/small, which uses no attempt); `attempts_left` and `locked` say what remains. "
        "`review: true`: an officer checks the frame (no attempt used); the page polls the request "
        "(`face_review`) until `steps.face` or a rejection",
        **_E,
    },
    "429": _TOO_MANY,
}

# The authorization's steps, each posted to /api/authorizations/{token}/<step>.
_STEPS: dict[str, dict[str, Any]] = {
    "identity": {
        "summary": "Step 1: the party's name and last 6 ID digits with the bank mini-program's session "
        "(`Authorization: Bearer`, /api/mp/login), or the WeChat identity of "
        "the session (web authorization), or `sms_code`; or a mini-program wx.login code. Passing binds "
        "steps 2-4 to this client: an HttpOnly SameSite=Strict cookie `auth_step_...`, or for `wx_code` "
        "the body's `step_session`, sent back as the `X-Step-Session` header. Steps 2-4 from another "
        "session: 409 with `restart: true`",
        "requestBody": {
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string"},
                            "id_digits": {"type": "string"},
                            "sms_code": {"type": "string"},
                            "wx_code": {"type": "string"},
                        },
                    }
                }
            }
        },
        "responses": {
            **_STEP_RESPONSES,
            "401": {"description": "A forged or expired mini-program bearer token (`session_invalid`)", **_E},
        },
    },
    "sms-code": {"summary": "Text a 6-digit code (5 minutes) to the phone on file of a party without a bound WeChat"},
    "biometric-consent": {
        "summary": "Step 2: the separate consent to face processing",
        "requestBody": {
            "content": {
                "application/json": {"schema": {"type": "object", "properties": {"agree": {"type": "boolean"}}}}
            }
        },
    },
    "face-challenge": {
        "summary": "Step 3 begins: a new random liveness challenge (`nonce`, `steps` with their "
        "Chinese `prompt`, `frames_per_step`, `expires_in` seconds), usable once",
    },
    "face": {
        "summary": "Step 3: 3-16 camera frames (multipart `frames`, JPEG or PNG, at most 4 megapixels "
        "each and 16 together) taken while the party does the challenge's steps, each with its step "
        "index (`steps`, one per frame), and the challenge's `nonce`",
        "requestBody": {
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "frames": {"type": "array", "items": {"type": "string", "format": "binary"}},
                            "steps": {"type": "array", "items": {"type": "integer"}},
                            "nonce": {"type": "string"},
                        },
                    }
                }
            }
        },
    },
    "consent": {
        "summary": "Step 4: consent (or refuse) to the credit-report query; the last consent "
        "of an application queues the reports' query",
        "requestBody": {
            "content": {
                "application/json": {"schema": {"type": "object", "properties": {"agree": {"type": "boolean"}}}}
            }
        },
    },
}

_CONTRACT_ERROR = {
    "application/json": {
        "schema": {
            "type": "object",
            "properties": {"error": {"type": "string"}, "code": {"type": "string"}, "message": {"type": "string"}},
            "required": ["error", "code", "message"],
        }
    }
}


def _refusals(**described: str) -> dict:
    """A contract operation's refusals: {"error", "code" (for machines), "message" (for the borrower)}."""
    return {
        status.removeprefix("r"): {"description": text, "content": _CONTRACT_ERROR}
        for status, text in described.items()
    }


_CONTRACT_COMMON = dict(
    r403="`other_person`: the borrower has a bound WeChat and this session's WeChat is someone else's",
    r404="`unknown_token`: no contract has this link",
    r429="Too many unknown tokens, or refusals recorded as evidence, from this client or on this link",
)
# The loan contract's API (webhooks/contracts.py): the link of the approval notice, /contract/{token}.
_CONTRACT_PATHS: dict[str, dict[str, Any]] = {
    "/api/contracts/{token}": {
        "get": {
            "summary": "The loan contract: its text made now, `text_sha256` (sign with it), version, terms, "
            "status; how it is signed (`factor`: wechat or sms, `face_required`); once signed, when and how. "
            "Showing an offered text records its hash",
            "parameters": [_TOKEN],
            "responses": {
                "200": {
                    "description": "The contract",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Contract"}}},
                },
                **_refusals(
                    **_CONTRACT_COMMON,
                    r409="`refused`: the borrower has a bound WeChat and this session has no WeChat identity "
                    "(open the link in WeChat)",
                ),
            },
        }
    },
    "/api/contracts/{token}/sms-code": {
        "post": {
            "summary": "Text a signing code (valid 5 minutes, resent after 60 s, at most 5) to the phone on "
            "file of a borrower without a bound WeChat",
            "parameters": [_TOKEN],
            "responses": {
                "200": {
                    "description": "Sent",
                    "content": _json({"ok": {"type": "boolean"}, "message": {"type": "string"}}, ["ok", "message"]),
                },
                **_refusals(
                    **_CONTRACT_COMMON,
                    r409="Not signable now (`already_signed`, `withdrawn`, `not_approved`, `expired`) or no code "
                    "possible (`refused`: WeChat bound, no phone on file, resent too soon, too many, gateway down)",
                ),
            },
        }
    },
    "/api/contracts/{token}/sign": {
        "post": {
            "summary": "Sign the contract whose text has SHA-256 `text_sha256` (from the read), with this "
            "session's WeChat (web authorization) or `sms_code`. Recorded in the evidence chain; the PDF is "
            "made and kept; the application moves to `signed` and the disbursement is queued",
            "parameters": [_TOKEN],
            "requestBody": {
                "content": _json(
                    {
                        "text_sha256": {"type": "string", "minLength": 64, "maxLength": 64},
                        "sms_code": {"type": "string", "pattern": "^[0-9]{6}$"},
                    },
                    ["text_sha256"],
                )
            },
            "responses": {
                "200": {
                    "description": "Signed",
                    "content": _json(
                        {
                            "ok": {"type": "boolean"},
                            "status": {"type": "string", "enum": ["signed"]},
                            "message": {"type": "string"},
                            "pdf_sha256": {"type": "string"},
                        },
                        ["ok", "status", "message", "pdf_sha256"],
                    ),
                },
                **_refusals(
                    **_CONTRACT_COMMON,
                    r400="`bad_request`: not a JSON object with `text_sha256`, or `sms_code` not a string",
                    r409="`already_signed`, `withdrawn`, `not_approved`, `expired`, `face_required` (above "
                    "CONTRACT_FACE_ABOVE), or `refused` (open it in WeChat; ask for a code first)",
                    r422="`text_changed` (合同内容已更新，请重新阅读后再签署) or `wrong_code` (wrong or expired; "
                    "the code is used up either way)",
                ),
            },
        }
    },
    "/api/contracts/{token}/face-challenge": {
        "post": {
            "summary": "Above CONTRACT_FACE_ABOVE, before signing: a new random liveness challenge for the "
            "borrower's face check (`nonce`, `steps` with their Chinese `prompt`, `frames_per_step`, "
            "`expires_in`), usable once, as the authorization's face step",
            "parameters": [_TOKEN],
            "responses": {
                "200": {"description": "The challenge", "content": _json({"ok": {"type": "boolean"}}, ["ok"])},
                **_refusals(
                    **_CONTRACT_COMMON,
                    r409="Not signable now (`already_signed`, `withdrawn`, `not_approved`, `expired`, `locked`), "
                    "or `refused` (at or below the limit: no face step; already passed; open it in WeChat)",
                ),
            },
        }
    },
    "/api/contracts/{token}/face": {
        "post": {
            "summary": "The borrower's face attempt: 3-16 frames (multipart `frames`) taken while doing the "
            "challenge's steps, each with its step index (`steps`), and the challenge's `nonce`; matched with "
            "the borrower's enrolled reference (or the certified service), live, the actions in order. A pass "
            "lets them sign; a match in the review band waits for an officer (`review`: nothing counted); "
            "AUTH_MAX_ATTEMPTS failures lock the contract until an officer renews its link",
            "parameters": [_TOKEN],
            "requestBody": _STEPS["face"]["requestBody"],
            "responses": {
                "200": {
                    "description": "Passed",
                    "content": _json(
                        {"ok": {"type": "boolean"}, "message": {"type": "string"}, "face": {"type": "object"}},
                        ["ok", "message"],
                    ),
                },
                **_refusals(
                    **{
                        **_CONTRACT_COMMON,
                        "r429": "`too_many_attempts`: FACE_ATTEMPTS uploads on this link; or too many unknown "
                        "tokens or recorded refusals from this client or on this link",
                    },
                    r400="`bad_request`: no frames, or steps that are not integers",
                    r409="As the challenge's refusals",
                    r413="`too_large`: the upload is larger than AUTH_UPLOAD_MAX_BYTES",
                    r422="`face_failed`: not passed (with `attempts_left`, `locked`, and `review` when an officer "
                    "decides); a frame to retake counts nothing",
                ),
            },
        }
    },
    "/api/contracts/{token}/renew": {
        "post": {
            "summary": "A new signing link for an expired one, by its borrower (as its reader): the old link "
            "stops working, the new one is valid CONTRACT_TTL_HOURS and is also sent to the borrower's WeChat; "
            "at most CONTRACT_RENEWALS_PER_DAY renewals in 24 hours (an officer's from the console included)",
            "parameters": [_TOKEN],
            "responses": {
                "200": {
                    "description": "Renewed",
                    "content": _json(
                        {"ok": {"type": "boolean"}, "link": {"type": "string"}, "message": {"type": "string"}},
                        ["ok", "link", "message"],
                    ),
                },
                **_refusals(
                    **{
                        **_CONTRACT_COMMON,
                        "r429": "`renewal_limit`: CONTRACT_RENEWALS_PER_DAY reached; or too many unknown tokens "
                        "or recorded refusals from this client or on this link",
                    },
                    r409="`not_expired` (sign with it), `locked` (an officer renews it), `already_signed`, "
                    "`withdrawn`, `not_approved`, or `refused` (open it in WeChat)",
                ),
            },
        }
    },
    "/api/contracts/{token}/pdf": {
        "get": {
            "summary": "The signed contract's PDF (its stored SHA-256 checked first)",
            "parameters": [_TOKEN],
            "responses": {
                "200": {"description": "The PDF", "content": {"application/pdf": {}}},
                **_refusals(
                    **_CONTRACT_COMMON,
                    r409="`not_signed`: nothing signed yet; or `refused`: opened outside WeChat",
                    r500="`pdf_altered`: the kept PDF does not match its hash",
                ),
            },
        }
    },
}

# -- the mini-program API (webhooks/mp.py): `Authorization: Bearer <token>` from /api/mp/login --
_MP_ERROR = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "code": {"type": "string"}, "message": {"type": "string"}},
    "required": ["error", "code", "message"],
}
_MP_E = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/MpError"}}}}
_MP_401 = {"description": "No, forged or expired bearer token (`login_required`, `session_invalid`)", **_MP_E}
_NOT_BOUND = "Not bound to a customer yet (`not_bound`), or another person's record (`not_yours`)"
_MP_429 = {"description": "Rate limit (`rate_limited`); `Retry-After` says when to try again", **_MP_E}
_MP_OBJECT = {"application/json": {"schema": {"type": "object"}}}


def _mp(summary: str, ok: str = "200", body: dict | None = None, **errors: str) -> dict:
    """One mini-program operation: its answer, its request body and its refusals (status: description)."""
    responses: dict[str, Any] = {ok: {"description": "Done", "content": _MP_OBJECT}, "401": _MP_401, "429": _MP_429}
    responses |= {status.lstrip("_"): {"description": why, **_MP_E} for status, why in errors.items()}
    op: dict[str, Any] = {"summary": summary, "security": [{"mpBearer": []}], "responses": responses}
    if body is not None:
        op["requestBody"] = {"content": {"application/json": {"schema": {"type": "object", "properties": body}}}}
    return op


_S = {"type": "string"}
_MP_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}
_MP_TOPIC = {
    "name": "topic",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "enum": ["hospital-payment", "housing-lottery", "hanshan-park"]},
}
_IDEMPOTENCY_KEY = {"name": "Idempotency-Key", "in": "header", "required": True, "schema": {"type": "string"}}
_MP_PATHS: dict[str, dict[str, Any]] = {
    "/api/mp/login": {
        "post": {
            **_mp(
                "wx.login's code → a bearer token (MP_SESSION_TTL_S); `bound`: recognised as a customer "
                "(by the mini-program openid or the UnionID)",
                body={"code": _S},
                _400="No code (`bad_request`)",
                _502="WeChat unavailable (`wechat_unavailable`)",
            ),
            "security": [],
        }
    },
    "/api/mp/logout": {"post": _mp("End this bearer token")},
    "/api/mp/me": {"get": _mp("Who am I: bound or not, the masked name")},
    "/api/mp/binding": {
        "post": _mp(
            "Name and ID number: a code to the phone on file (the chat's binding and its limits)",
            body={"name": _S, "id_number": _S},
            _400="Missing or malformed name/ID (`bad_request`, `identification_failed`)",
            _409="Already bound, or today's guesses used up (`binding_refused`)",
        )
    },
    "/api/mp/binding/confirm": {
        "post": _mp(
            "The texted code: binds this WeChat (the mini-program openid and the UnionID)",
            body={"code": _S},
            _400="No code (`bad_request`)",
            _409="Wrong, expired or used-up code (`binding_refused`)",
        )
    },
    "/api/mp/credit-line": {"get": _mp("My pre-granted line: amount, used, held, left, expiry", _403=_NOT_BOUND)},
    "/api/mp/products": {"get": _mp("Products for me (all of them before binding)")},
    "/api/mp/applications": {
        "get": _mp("My applications with their timelines", _403=_NOT_BOUND),
        "post": {
            **_mp(
                "Apply (the bot's form rules); the parties' credit-report requests are issued at once",
                "201",
                body={
                    "product": _S,
                    "amount": {"type": "integer"},
                    "term_months": {"type": "integer"},
                    "purpose": _S,
                    "guarantor": {"type": "object", "properties": {"name": _S, "id_number": _S}},
                },
                _200="The application this Idempotency-Key made before",
                _400="Malformed body or key (`bad_request`)",
                _403=_NOT_BOUND,
                _409="The Idempotency-Key was used for another request (`idempotency_key_reused`)",
                _422="Refused by the lending rules (`application_refused`), guarantor not identified "
                "(`guarantor_not_identified`)",
                _428="No Idempotency-Key header (`idempotency_key_required`)",
            ),
            "parameters": [_IDEMPOTENCY_KEY],
        },
    },
    "/api/mp/applications/{id}/withdraw": {
        "post": {
            **_mp(
                "Withdraw my application",
                _403=_NOT_BOUND,
                _404="No such application (`not_found`)",
                _409="Cannot be withdrawn now (`not_withdrawable`)",
            ),
            "parameters": [_MP_ID],
        }
    },
    "/api/mp/applications/{id}/contract": {
        "get": {
            **_mp(
                "My application's loan contract: number, status, dates, and the link to its page and API "
                "(/contract/{token}, /api/contracts/{token}), where it is read and signed",
                _403=_NOT_BOUND,
                _404="No such application (`not_found`) or no contract yet (`no_contract`)",
            ),
            "parameters": [_MP_ID],
        }
    },
    "/api/mp/loans": {
        "get": _mp(
            "My loans (借据), newest first: status, balances in fen, the next instalment due (`next_due`), "
            "as last synchronised with core banking (`synced_at`)",
            _403=_NOT_BOUND,
        )
    },
    "/api/mp/loans/{id}": {
        "get": {
            **_mp(
                "My loan with its schedule (each instalment's due date, principal, interest, paid, owed, "
                "status) and `early_repayment`: what repaying it all today costs (null once closed)",
                _403=_NOT_BOUND,
                _404="No such loan (`not_found`)",
            ),
            "parameters": [_MP_ID],
        }
    },
    "/api/mp/authorizations": {
        "get": _mp(
            "Credit-report requests where I am the party (applicant, spouse or guarantor)",
            _403=_NOT_BOUND,
        )
    },
    "/api/mp/authorizations/{id}/open": {
        "post": {
            **_mp(
                "A fresh token for my request (its earlier link stops working; AUTH_REISSUES_PER_DAY): the "
                "steps are /api/authorizations/{token}/..., whose identity step takes this bearer token as "
                "the second factor",
                _403=_NOT_BOUND,
                _404="No such request (`not_found`)",
                _409="Done, superseded or over the daily limit (`not_open`)",
            ),
            "parameters": [_MP_ID],
        }
    },
    "/api/mp/hand-off": {"get": _mp("My conversation with my officer", _403=_NOT_BOUND)},
    "/api/mp/hand-off/messages": {
        "post": _mp(
            "Write to my officer while the hand-off is open (an optional Idempotency-Key makes a retry one message)",
            "201",
            body={"text": _S},
            _200="A retry of a message kept before",
            _400="Empty or too long (`bad_request`)",
            _403=_NOT_BOUND,
            _409="No open hand-off (`hand_off_closed`): nothing was kept",
        )
    },
    "/api/mp/services/{topic}": {
        "get": {
            "summary": "The scenario services' answers (the bot's own, conversation/content/scenarios.yml)",
            "parameters": [_MP_TOPIC],
            "responses": {
                "200": {"description": "The answer", "content": _MP_OBJECT},
                "404": {"description": "Unknown topic (`unknown_topic`)", **_MP_E},
            },
        }
    },
}

SPEC = {
    "openapi": "3.0.3",
    "info": {
        "title": "阳光信贷助手 API",
        "version": "0.1.0",
        "description": "JSON API for the authorization H5 page / mini-program and the officer console.",
    },
    "paths": {
        "/api/authorizations/{token}": {
            "get": {
                "summary": "The credit-report authorization request a token opens",
                "parameters": [_TOKEN],
                "responses": {
                    "200": {
                        "description": "The request, with the party's ID number masked",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Authorization"}}},
                    },
                    "404": {
                        "description": "Unknown, used or expired token",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                    },
                    "429": _TOO_MANY,
                },
            }
        },
        "/api/authorizations/{token}/qr.png": {
            "get": {
                "summary": "QR code (PNG) of the authorization link",
                "parameters": [_TOKEN],
                "responses": {
                    "200": {"description": "PNG image", "content": {"image/png": {}}},
                    "404": {
                        "description": "Unknown, used or expired token",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                    },
                    "429": _TOO_MANY,
                },
            }
        },
        **{
            f"/api/authorizations/{{token}}/{step}": {
                "post": {"responses": _STEP_RESPONSES, **op, "parameters": [_TOKEN]}
            }
            for step, op in _STEPS.items()
        },
        "/api/authorizations/{token}/wechat-code.png": {
            "get": {
                "summary": "The WeChat code (Official Account parametric QR code or mini-program code, "
                "AUTH_WECHAT_CODE) of the authorization",
                "parameters": [_TOKEN],
                "responses": {
                    "200": {"description": "PNG image", "content": {"image/png": {}}},
                    "404": {
                        "description": "Unknown, used or expired token, or no WeChat code configured",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                    },
                    "429": _TOO_MANY,
                    "502": {
                        "description": "WeChat unavailable",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                    },
                },
            }
        },
        # -- the officer console (session cookie from /console/login; POSTs need X-CSRF-Token;
        #    a session ends at logout, password change, CONSOLE_SESSION_MAX_S or CONSOLE_SESSION_IDLE_S) --
        **_CONTRACT_PATHS,
        **_MP_PATHS,
        "/api/console/changes": {
            "get": {
                "summary": "A version that changes whenever a hand-off, message or application changes",
                "responses": {
                    "200": {
                        "description": "The version",
                        "content": _json({"version": {"type": "string"}}, ["version"]),
                    },
                    "401": {"description": "Not logged in (or the session ended)", "content": _JSON_ERROR},
                    "403": {
                        "description": "The officer must change their initial password first",
                        "content": _JSON_ERROR,
                    },
                },
            }
        },
        "/api/console/queue": {
            "get": {
                "summary": "Open hand-offs the officer sees (own and branch queue; supervisors all) and "
                "applications awaiting review, most urgent first",
                "parameters": [
                    {
                        "name": "officer",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer"},
                        "description": "supervisors: one officer's queue",
                    }
                ],
                "responses": {
                    "200": {
                        "description": "The queue",
                        "content": _json(
                            {"hand_offs": {"type": "array"}, "applications": {"type": "array"}},
                            ["hand_offs", "applications"],
                        ),
                    },
                    "401": {"description": "Not logged in (or the session ended)", "content": _JSON_ERROR},
                    "403": {
                        "description": "The officer must change their initial password first",
                        "content": _JSON_ERROR,
                    },
                },
            }
        },
        "/api/console/inspections/batches/{id}": {
            "get": {
                "summary": "An annual inspection batch's status and counts (its summary page polls it while it runs)",
                "parameters": [_ID],
                "responses": {
                    "200": {
                        "description": "The batch",
                        "content": _json(
                            {
                                "status": {"type": "string", "enum": ["running", "done", "failed"]},
                                **{
                                    name: {"type": "integer"}
                                    for name in (
                                        "total",
                                        "done",
                                        "passed",
                                        "kept",
                                        "raised",
                                        "lowered",
                                        "on_site",
                                        "on_site_done",
                                        "failed",
                                    )
                                },
                            },
                            ["status", "total", "done"],
                        ),
                    },
                    "401": {"description": "Not logged in (or the session ended)", "content": _JSON_ERROR},
                    "403": {
                        "description": "The officer must change their initial password first",
                        "content": _JSON_ERROR,
                    },
                    "404": {"description": "No such batch", "content": _JSON_ERROR},
                },
            }
        },
        "/api/console/hand-offs/{id}/messages": {
            "get": {
                "summary": "The customer's messages kept for officers, and officers' replies with their delivery",
                "parameters": [_ID],
                "responses": {
                    "200": {
                        "description": "The conversation",
                        "content": _json(
                            {
                                "status": {"type": "string"},
                                "status_label": {"type": "string"},
                                "officer": {"type": ["string", "null"]},
                                "messages": {"type": "array"},
                            },
                            ["status", "messages"],
                        ),
                    },
                    "401": {"description": "Not logged in", "content": _JSON_ERROR},
                    "403": {
                        "description": "Another officer's conversation, or the officer must change their "
                        "initial password first",
                        "content": _JSON_ERROR,
                    },
                    "404": {"description": "No such hand-off", "content": _JSON_ERROR},
                },
            }
        },
        "/api/console/hand-offs/{id}/replies": {
            "post": {
                "summary": "Reply to the customer (sent through the customer-service message API by a worker)",
                "parameters": [_ID],
                "requestBody": {
                    "content": {
                        "application/x-www-form-urlencoded": {
                            "schema": {
                                "type": "object",
                                "properties": {"text": {"type": "string"}, "csrf": {"type": "string"}},
                                "required": ["text"],
                            }
                        }
                    }
                },
                "responses": {
                    "201": {
                        "description": "The stored reply, status queued",
                        "content": _json(
                            {"id": {"type": "integer"}, "status": {"type": "string"}, "body": {"type": "string"}},
                            ["id", "status", "body"],
                        ),
                    },
                    "400": {"description": "Missing or forged CSRF token", "content": _JSON_ERROR},
                    "401": {"description": "Not logged in", "content": _JSON_ERROR},
                    "403": {
                        "description": "Another officer's conversation, or the officer must change their "
                        "initial password first",
                        "content": _JSON_ERROR,
                    },
                    "404": {"description": "No such hand-off", "content": _JSON_ERROR},
                    "409": {"description": "Closed hand-off, empty or too long reply", "content": _JSON_ERROR},
                },
            }
        },
    },
    "components": {
        "securitySchemes": {"mpBearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Error": _ERROR,
            "MpError": _MP_ERROR,
            "Contract": {
                "type": "object",
                "properties": {
                    "contract_number": {"type": "string", "example": "YGJK00000012"},
                    "status": {"type": "string", "enum": ["offered", "signed", "locked"]},
                    "expired": {"type": "boolean", "description": "Offered, its link expired: renew it"},
                    "application_status": {"type": "string"},
                    "bank": {"type": "string"},
                    "product": {"type": "string"},
                    "amount": {"type": "integer"},
                    "term_months": {"type": "integer"},
                    "annual_rate": {"type": "string", "example": "4.35%"},
                    "repayment_method": {"type": "string", "example": "等额本息"},
                    "text": {"type": "string"},
                    "text_sha256": {"type": "string"},
                    "version": {"type": "string"},
                    "factor": {"type": "string", "enum": ["wechat", "sms"]},
                    "face_required": {"type": "boolean", "description": "Above CONTRACT_FACE_ABOVE"},
                    "face_verified": {"type": "boolean", "description": "The face check passed: sign now"},
                    "face_review": {
                        "type": "object",
                        "description": "The face check awaiting an officer, rejected by one, or none",
                        "properties": {
                            "status": {"type": "string", "enum": ["none", "pending", "rejected"]},
                            "message": {"type": "string"},
                        },
                    },
                    "signed_at": {"type": ["string", "null"], "format": "date-time"},
                    "signed_with": {"type": "string"},
                    "pdf_sha256": {"type": ["string", "null"]},
                },
                "required": ["contract_number", "status", "text", "text_sha256", "version"],
            },
            "Authorization": {
                "type": "object",
                "properties": {
                    "party_name": {"type": "string"},
                    "party_role": {"type": "string", "enum": ["applicant", "spouse", "guarantor"]},
                    "party_role_name": {"type": "string"},
                    "party_id_masked": {"type": "string", "example": "3212********0119"},
                    "purpose": {"type": "string"},
                    "requested_by": {"type": "string"},
                    "expires_at": {"type": "string", "format": "date-time"},
                    "status": {"type": "string"},
                    "face_review": {
                        "type": "object",
                        "description": "This session's face check awaiting an officer, rejected by one, or none",
                        "properties": {
                            "status": {"type": "string", "enum": ["none", "pending", "rejected"]},
                            "message": {"type": "string"},
                        },
                    },
                },
            },
        },
    },
}
