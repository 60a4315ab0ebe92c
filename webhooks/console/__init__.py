"""`/console`: the loan officers' console, and its JSON under `/api/console`.

Pages are rendered on the server (Jinja escapes everything a customer or
officer wrote); a little JavaScript (static/console.js) counts deadlines down,
polls for changes and sends replies without reloading. Routes parse, call the
hand-off and lending services, and render; sending happens in the background
jobs (handoff.jobs), after the records are committed.

One module per concern adds its routes to these two blueprints: `auth` (login,
CSRF, who is logged in), `home` (the officer's day), `queue`, `hand_offs`, `applications`, `entry` (an
officer enters an application), `customers` (search, a customer's page, tags), `references` (reference
faces), `inspections` (the annual inspection), `figures` (the branch's, for supervisors), and the
supervisors' administration: `admin_officers`, `stations`, `assignments` (customers to officers),
`watch_list`; `common` holds what their pages share. A new page is a new module imported at the bottom.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint

from webhooks.private import no_store

bp = Blueprint(
    "console",
    __name__,
    url_prefix="/console",
    static_folder=Path(__file__).parent.parent / "static",
    static_url_path="/static",
)
api = Blueprint("console_api", __name__, url_prefix="/api/console")
# Every console answer shows personal data or printable authorization codes: never cached.
bp.after_request(no_store)
api.after_request(no_store)

# The route modules add their routes to `bp` and `api` when imported, so they come after them.
from webhooks.console import (  # noqa: E402
    admin_officers,
    applications,
    assignments,
    auth,
    common,
    customers,
    entry,
    face_reviews,
    figures,
    hand_offs,
    home,
    inspections,
    locks,
    queue,
    references,
    stations,
    watch_list,
)

__all__ = [
    "admin_officers",
    "api",
    "applications",
    "assignments",
    "auth",
    "bp",
    "common",
    "customers",
    "entry",
    "face_reviews",
    "figures",
    "hand_offs",
    "home",
    "inspections",
    "locks",
    "queue",
    "references",
    "stations",
    "watch_list",
]
