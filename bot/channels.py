"""Rasa's REST channel for the web and workers (bot/credentials.yml), answering only callers
with RASA_TOKEN: the same URL (/webhooks/rest/webhook) and JSON as Rasa's own, whose sender
is whoever the caller says, so that anyone reaching it could talk as any customer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint, response
from sanic.request import Request

from sunshine.guard import bearer_matches
from sunshine.settings import load


class TokenRestInput(RestInput):
    """`rest`, asking for `Authorization: Bearer RASA_TOKEN` (empty token: development, open)."""

    def __init__(self, token: str = "") -> None:
        self.token = token

    @classmethod
    def name(cls) -> str:
        return "rest"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> TokenRestInput:
        return cls(load().rasa_token)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        bp = super().blueprint(on_new_message)
        token = self.token
        if token:

            @bp.middleware("request")
            async def _authenticate(request: Request):
                if bearer_matches(request.headers.get("Authorization"), token):
                    return None
                return response.json({"error": "Rasa's REST channel needs its token (RASA_TOKEN)"}, status=401)

        return bp
