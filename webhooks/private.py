"""Answers that carry personal data or printable tokens (console pages and JSON, the
authorization page and its API) must not be kept by the browser or any proxy: a shared
branch computer's back button or cache must not show them to the next person.

Use `blueprint.after_request(no_store)` for a whole blueprint, `@no_store_view` for one view.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import ParamSpec

from flask import Response, make_response
from flask.typing import ResponseReturnValue

P = ParamSpec("P")


def no_store(resp: Response) -> Response:
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Pragma"] = "no-cache"  # HTTP/1.0 caches
    return resp


def no_store_view(view: Callable[P, ResponseReturnValue]) -> Callable[P, Response]:
    @wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> Response:
        return no_store(make_response(view(*args, **kwargs)))

    return wrapper
