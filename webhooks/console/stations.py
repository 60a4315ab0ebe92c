"""Service stations (supervisors): the list, a new station, its officer, and its printable
惠农通 QR code (a permanent parametric code with the scene `station:<code>`, made by
WeChat's API as `python -m conversation.followers station-qr` makes it)."""

from __future__ import annotations

import base64
import logging

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from clients.wechat import WeChatApi, WeChatApiError
from conversation.followers import station_qrcode
from handoff import admin
from sunshine.models import ServiceStation
from webhooks.console import bp
from webhooks.console.auth import supervisor_required
from webhooks.console.common import officer_id_of, settings

log = logging.getLogger(__name__)


def stations_page(error: str | None = None, form: dict | None = None, status: int = 200) -> ResponseReturnValue:
    page = render_template(
        "console/admin_stations.html",
        stations=admin.stations(g.db, g.officer),
        officers=admin.active_officers(g.db),
        error=error,
        form=form or {},
    )
    return page, status


@bp.get("/admin/stations")
@supervisor_required
def admin_stations() -> ResponseReturnValue:
    return stations_page()


@bp.post("/admin/stations")
@supervisor_required
def admin_station_create() -> ResponseReturnValue:
    form = request.form
    try:
        station = admin.create_station(
            g.db,
            g.officer,
            form.get("code", ""),
            form.get("name", ""),
            form.get("village", ""),
            officer_id_of(form.get("officer_id")),
        )
    except admin.AdminError as exc:
        return stations_page(str(exc), form.to_dict(), 400)
    flash(f"已新建服务站{station.name}（{station.code}）", "ok")
    return redirect(url_for("console.admin_stations"), code=303)


@bp.post("/admin/stations/<int:station_id>/officer")
@supervisor_required
def admin_station_assign(station_id: int) -> ResponseReturnValue:
    try:
        station, officer = admin.assign_station(
            g.db, g.officer, station_id, officer_id_of(request.form.get("officer_id"))
        )
    except admin.AdminError as exc:
        return stations_page(str(exc), status=400)
    flash(f"{station.name}改由{officer.display_name}负责，从现在起扫码的客户由他/她接待", "ok")
    return redirect(url_for("console.admin_stations"), code=303)


@bp.get("/admin/stations/<int:station_id>/qr")
@supervisor_required
def admin_station_qr(station_id: int) -> ResponseReturnValue:
    station = g.db.get(ServiceStation, station_id)
    if station is None:
        abort(404, description="没有这个服务站")
    try:
        _, image = station_qrcode(g.db, WeChatApi.from_settings(settings()), station.code)
    except WeChatApiError as exc:
        log.warning("station QR code for %s not made: %s", station.code, exc)
        message = f"微信接口暂时生成不了二维码（错误码 {exc.errcode or '无法连接'}），请稍后再试"
        return render_template("console/refused.html", message=message), 502
    return render_template("console/admin_station_qr.html", station=station, png=base64.b64encode(image).decode())
