"""The officer's home page (今日工作), where the console lands after login: each kind of work
waiting for them (handoff.workbench), with its count, what is overdue and links to the pages
where it is done; it refreshes itself like the queue."""

from __future__ import annotations

from typing import Any

from flask import g, render_template, url_for
from flask.typing import ResponseReturnValue

from handoff import workbench
from sunshine.clock import utcnow
from webhooks.console import bp
from webhooks.console.auth import login_required, passive

# The work the home page shows, in this order (the annual inspection's too: workbench.inspections_due).
WORK_SOURCES: tuple[workbench.WorkSource, ...] = workbench.SOURCES
# The page a row's work is done on: its endpoint and the argument naming the row's id.
ROW_PAGES = {
    "hand_off": ("console.hand_off_page", "hand_off_id"),
    "application": ("console.application_page", "application_id"),
    "inspection": ("console.inspection_page", "inspection_id"),
}
# Groups whose whole list is a page of its own.
GROUP_PAGES = {kind: "console.queue" for kind in ("hand_offs", "branch_queue", "decisions", "second_approvals")}
GROUP_PAGES["inspections"] = "console.inspections"


def _row_link(row: workbench.WorkRow) -> str:
    endpoint, argument = ROW_PAGES[row.page]
    values: dict[str, Any] = {argument: row.page_id}
    return url_for(endpoint, **values)


def _context() -> dict[str, Any]:
    groups = workbench.today_work(g.db, g.officer, WORK_SOURCES)
    return {
        "groups": groups,
        "total": sum(group.count for group in groups),
        "overdue": sum(group.overdue for group in groups),
        "row_link": _row_link,
        "group_link": lambda group: url_for(GROUP_PAGES[group.kind]) if group.kind in GROUP_PAGES else None,
        "now": utcnow(),
    }


@bp.get("/home")
@login_required
def home() -> ResponseReturnValue:
    return render_template("console/home.html", **_context())


@bp.get("/home/rows")
@login_required
@passive
def home_rows() -> ResponseReturnValue:
    """The home page's groups alone, for its live refresh."""
    return render_template("console/_home_groups.html", **_context())
