"""`python -m bot.action_server --actions bot.actions --port N`: rasa-sdk's action server
(`rasa run actions`) that runs an action only for a caller with ACTION_SERVER_TOKEN.

Rasa calls the action server with the tracker of a conversation: whoever could call it
directly could send a forged tracker (another customer's `customer_ref`, another openid as
sender) and act as that customer. Rasa sends the token as a header set in endpoints.yml
(`action_endpoint.headers.Authorization: Bearer ...`, written by the launcher); every
request but `/health` without it is answered 401. The check is attached through rasa-sdk's
own plugin hook (`attach_sanic_app_extensions`).
"""

from __future__ import annotations

import logging
import sys

import pluggy
from rasa_sdk.plugin import plugin_manager
from sanic import Sanic, response
from sanic.request import Request

from conversation import scenarios
from sunshine.guard import bearer_matches
from sunshine.settings import load

hookimpl = pluggy.HookimplMarker("rasa_sdk")
log = logging.getLogger(__name__)
OPEN_PATHS = ("/health",)


class TokenCheck:
    """The rasa-sdk plugin that refuses callers without the token."""

    def __init__(self, token: str):
        self.token = token

    @hookimpl
    def attach_sanic_app_extensions(self, app: Sanic) -> None:
        token = self.token
        if not token:
            log.warning("ACTION_SERVER_TOKEN is empty: the action server answers anyone (development only)")
            return

        @app.middleware("request")
        async def _authenticate(request: Request):
            if request.path in OPEN_PATHS or bearer_matches(request.headers.get("Authorization"), token):
                return None
            return response.json({"error": "the action server needs its token (ACTION_SERVER_TOKEN)"}, status=401)


def main(argv: list[str] | None = None) -> None:
    from rasa_sdk.__main__ import main as sdk_main

    try:
        scenarios.current()  # the scenario answers' content: refuse to start on a broken file
    except scenarios.ContentError as exc:
        sys.exit(f"action server not started: {exc}")
    plugin_manager().register(TokenCheck(load().action_server_token))
    sys.argv = ["rasa_sdk", *(sys.argv[1:] if argv is None else argv)]
    sdk_main()


if __name__ == "__main__":
    main()
