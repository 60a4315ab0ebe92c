"""JSON API and H5 pages for the mini-program / H5 audience: the parties who
open an authorization link."""
from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, jsonify, render_template
from werkzeug.exceptions import HTTPException

from auth_flow.qr import authorization_url, png
from auth_flow.service import AuthorizationError, find_by_token
from sunshine.db import unit_of_work
from webhooks.openapi import SPEC

bp = Blueprint("api", __name__)
ROLE_NAMES = {"applicant": "借款人本人", "spouse": "借款人配偶", "guarantor": "担保人"}


def _authorization(token: str) -> dict:
    s = current_app.config["SETTINGS"]
    with unit_of_work(s.database_url) as session:
        try:
            auth = find_by_token(session, token)
        except AuthorizationError as exc:
            abort(404, description=str(exc))
        return {"party_name": auth.party_name, "party_role": auth.party_role,
                "party_role_name": ROLE_NAMES[auth.party_role], "party_id_masked": auth.party_id_masked,
                "purpose": auth.purpose, "requested_by": auth.requested_by,
                "expires_at": auth.expires_at.isoformat() + "Z", "status": auth.status}


@bp.get("/api/openapi.json")
def openapi():
    return jsonify(SPEC)


@bp.get("/api/authorizations/<token>")
def authorization(token: str):
    return jsonify(_authorization(token))


@bp.get("/api/authorizations/<token>/qr.png")
def authorization_qr(token: str):
    _authorization(token)
    s = current_app.config["SETTINGS"]
    return Response(png(authorization_url(s.public_base_url, token)), mimetype="image/png",
                    headers={"Cache-Control": "no-store"})


@bp.get("/auth/<token>")
def authorization_page(token: str):
    """The H5 page a party opens from the QR code or link."""
    try:
        details = _authorization(token)
    except HTTPException as exc:  # the 404 raised by abort(), shown as a friendly page
        return render_template("auth_invalid.html", message=exc.description), exc.code
    return render_template("auth.html", auth=details)
