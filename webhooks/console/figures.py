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

LABEL_W, BAR_W, VALUE_W = 110, 300, 90
# Bars are 14 px high while they fit in PLOT_H; a branch of many villages gets thinner bars (down
# to 3 px, without their texts: the table below and each bar's tooltip give the numbers).
BAR_H, MIN_BAR_H, PLOT_H, TEXT_H = 14, 3, 640, 11
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
    bar_h: int = BAR_H


def _chart(
    title: str,
    attrs: tuple[str, ...],
    series: tuple[str, ...],
    kind: str,
    figures: branch.BranchFigures,
    note: str = "",
) -> Chart:
    """The chart of `attrs` per village, and for the branch unless they are counts (its total
    would dwarf the villages': the note says it)."""
    chart = Chart(title, series, kind, note)
    rows = figures.villages if kind == "count" else [*figures.villages, figures.branch]
    chart.bar_h = bar_h = max(MIN_BAR_H, min(BAR_H, int(PLOT_H / (max(len(rows), 1) * (len(series) + 0.7)))))
    gap, texts = max(2, round(bar_h * 0.7)), bar_h >= TEXT_H
    values = [[getattr(row, a) for a in attrs] for row in rows]
    most = 1.0 if kind == "share" else max([v for vs in values for v in vs if v] or [1])
    y = 24 if len(series) > 1 else 6  # room for the legend
    for row, row_values in zip(rows, values, strict=True):
        bars = [
            {
                "y": y + i * bar_h,
                "w": round(BAR_W * (value or 0) / most, 1),
                "color": COLORS[i],
                "text": _value(value, kind) if texts else "",
                "tip": f"{row.village} {series[i]}：{_value(value, kind)}",
            }
            for i, value in enumerate(row_values)
        ]
        span = bar_h * len(row_values)
        branch_row = row is figures.branch
        chart.groups.append(
            {
                "label": row.village if branch_row or span >= TEXT_H else "",
                "label_y": y + span / 2 + 4,
                "bars": bars,
                "branch": branch_row,
            }
        )
        y += span + gap
    chart.height = y
    return chart


def _charts(figures: branch.BranchFigures) -> list[Chart]:
    total, promise = figures.branch, settings().loan_review_hours
    return [
        _chart(
            "建档面、授信面与用信率",
            ("filed_share", "line_share", "use_share"),
            ("建档面", "授信面", "用信率"),
            "share",
            figures,
            "建档面、授信面：占村里户数；用信率：占授信户数（截至今天）",
        ),
        _chart(
            "线上申请（笔）",
            ("applications", "online"),
            ("全部申请", "线上申请"),
            "count",
            figures,
            f"全支行{total.applications:,}笔，其中线上{total.online:,}笔（客户自己在微信里提交）",
        ),
        _chart("系统自动审批占比", ("auto_share",), ("系统审批占比",), "share", figures, "系统自动批准的占已决定申请"),
        _chart(
            "大额贷款按时决定",
            ("on_time_share",),
            ("按时决定占比",),
            "share",
            figures,
            f"客户经理在承诺时限（{promise}小时）内作出决定的占比",
        ),
        _chart(
            "平均决定用时（小时）", ("decision_hours",), ("平均决定用时",), "hours", figures, "从进入人工审批到决定"
        ),
        _chart(
            "转人工首次回复（分钟）",
            ("reply_minutes",),
            ("平均首次回复",),
            "minutes",
            figures,
            f"从转人工到客户经理第一次回复；全支行按时回复{_value(total.answered_on_time_share, 'share')}",
        ),
        _chart(
            "征信授权完成",
            ("authorized_share",),
            ("授权完成率",),
            "share",
            figures,
            "完成的授权占请求（重新发起的只算一次）",
        ),
        _chart(
            "平均授权用时（分钟）",
            ("authorization_minutes",),
            ("平均授权用时",),
            "minutes",
            figures,
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
