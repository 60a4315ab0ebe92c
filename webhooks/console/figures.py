"""The branch's figures for supervisors (handoff.figures): a page of charts drawn here as SVG
(no script, nothing from outside) with the whole table, and the same table as CSV for Excel
(UTF-8 with a BOM, so that Chinese opens right). An officer gets 403."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any

from flask import Response, abort, g, render_template, request
from flask.typing import ResponseReturnValue

from handoff import figures as branch
from handoff.service import SUPERVISOR
from sunshine.clock import today
from webhooks.console import bp
from webhooks.console.auth import login_required
from webhooks.console.common import settings

LABEL_W, BAR_W, VALUE_W, BAR_H, GAP = 110, 300, 90, 14, 10
COLORS = ("#d4a017", "#8a6410", "#4f8a3c")


def _value(value: float | int | None, kind: str, grouped: bool = True) -> str:
    """A figure as the table and the CSV show it ("—": nothing to measure)."""
    if value is None:
        return "—"
    if kind == "share":
        return f"{value * 100:.1f}%"
    if kind in ("hours", "minutes"):
        return f"{value:.1f}"
    return f"{value:,}" if grouped else str(value)


@dataclass
class Chart:
    """A horizontal bar chart, one group of bars per village (the branch's last), laid out here
    so that the template only draws rectangles and text."""

    title: str
    series: tuple[str, ...]  # what each bar of a group shows
    kind: str  # share (bars out of 100%) | count | hours | minutes
    note: str = ""
    groups: list[dict[str, Any]] = field(default_factory=list)
    width: int = LABEL_W + BAR_W + VALUE_W
    height: int = 0


def _chart(title: str, attrs: tuple[str, ...], series: tuple[str, ...], kind: str, rows, note: str = "") -> Chart:
    chart = Chart(title, series, kind, note)
    top = 24 if len(series) > 1 else 6  # room for the legend
    values = [[getattr(row, a) for a in attrs] for row in rows]
    most = 1.0 if kind == "share" else max([v for vs in values for v in vs if v] or [1])
    y = top
    for row, row_values in zip(rows, values, strict=True):
        bars = []
        for i, value in enumerate(row_values):
            bars.append(
                {
                    "y": y + i * BAR_H,
                    "w": round(BAR_W * (value or 0) / most, 1),
                    "color": COLORS[i],
                    "text": _value(value, kind),
                    "label": series[i],
                }
            )
        span = BAR_H * len(row_values)
        last = row is rows[-1]  # the branch
        chart.groups.append({"label": row.village, "label_y": y + span / 2 + 5, "bars": bars, "branch": last})
        y += span + GAP
    chart.height = y
    return chart


def _charts(figures: branch.BranchFigures) -> list[Chart]:
    rows = [*figures.villages, figures.branch]
    promise = settings().loan_review_hours
    return [
        _chart(
            "建档面、授信面与用信率",
            ("filed_share", "line_share", "use_share"),
            ("建档面", "授信面", "用信率"),
            "share",
            rows,
            "建档面、授信面：占村里户数；用信率：占授信户数（截至今天）",
        ),
        _chart("线上申请（笔）", ("applications", "online"), ("全部申请", "线上申请"), "count", rows),
        _chart("系统自动审批占比", ("auto_share",), ("系统审批占比",), "share", rows, "系统自动批准的占已决定申请"),
        _chart(
            "大额贷款按时决定",
            ("on_time_share",),
            ("按时决定占比",),
            "share",
            rows,
            f"客户经理在承诺时限（{promise}小时）内作出决定的占比",
        ),
        _chart("平均决定用时（小时）", ("decision_hours",), ("平均决定用时",), "hours", rows, "从进入人工审批到决定"),
        _chart("转人工首次回复（分钟）", ("reply_minutes",), ("平均首次回复",), "minutes", rows),
        _chart(
            "征信授权完成",
            ("authorized_share",),
            ("授权完成率",),
            "share",
            rows,
            "完成的授权占请求（重新发起的只算一次）",
        ),
        _chart(
            "平均授权用时（分钟）",
            ("authorization_minutes",),
            ("平均授权用时",),
            "minutes",
            rows,
            "从发出请求到本人同意",
        ),
    ]


def _figures() -> branch.BranchFigures:
    """The figures for the period asked for (`from`, `to`); 403 for an officer, 400 for a bad period."""
    if g.officer.role != SUPERVISOR:
        abort(403, description="支行数据只有主管可以查看")
    now = today()
    try:
        period = branch.period_of(request.args.get("from"), request.args.get("to"), now)
    except branch.FiguresError as exc:
        abort(400, description=str(exc))
    return branch.branch_figures(g.db, period, now)


@bp.get("/figures")
@login_required
def figures() -> ResponseReturnValue:
    data = _figures()
    return render_template(
        "console/figures.html",
        figures=data,
        charts=_charts(data),
        columns=branch.COLUMNS,
        value=_value,
        colors=COLORS,
        label_w=LABEL_W,
        bar_h=BAR_H,
    )


def _cell(text: str) -> str:
    """A text cell Excel will not read as a formula."""
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


@bp.get("/figures.csv")
@login_required
def figures_csv() -> ResponseReturnValue:
    data = _figures()
    out = io.StringIO()
    out.write("\ufeff")  # the BOM: Excel then reads the file as UTF-8
    writer = csv.writer(out)
    writer.writerow(["村", *(heading for heading, _, _ in branch.COLUMNS)])
    for row in [*data.villages, data.branch]:
        writer.writerow([_cell(row.village), *(_value(getattr(row, a), kind, False) for _, a, kind in branch.COLUMNS)])
    name = f"branch-figures-{data.period.first}-{data.period.last}.csv"
    return Response(
        out.getvalue().encode("utf-8"),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
