"""The Rasa server, reached through its REST channel and HTTP API, with RASA_TOKEN."""

from __future__ import annotations

from urllib.parse import quote

import requests


class RasaUnavailable(RuntimeError):
    """The Rasa server did not answer (down, timed out or failed)."""


class RasaClient:
    def __init__(self, base_url: str, timeout: float = 30.0, token: str = ""):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.token = token
        self._http = requests.Session()
        if token:  # the REST channel (bot/channels.py) reads the header
            self._http.headers["Authorization"] = f"Bearer {token}"

    def _api_params(self) -> dict[str, str]:
        """Rasa's HTTP API reads its token only from the `token` query parameter."""
        return {"token": self.token} if self.token else {}

    def send(self, sender: str, text: str, metadata: dict | None = None) -> list[dict]:
        """Send one customer message; returns the bot's messages in order."""
        try:
            resp = self._http.post(
                f"{self.base_url}/webhooks/rest/webhook",
                json={"sender": sender, "message": text, "metadata": metadata or {}},
                timeout=self.timeout,
            )
            resp.raise_for_status()
            return resp.json()
        except (requests.RequestException, ValueError) as exc:
            raise RasaUnavailable(f"Rasa at {self.base_url} failed: {type(exc).__name__}") from exc

    def _events(self, sender: str, timeout: float) -> list[dict]:
        """Every event of the sender's tracker, oldest first (Rasa's HTTP API)."""
        try:
            resp = self._http.get(
                f"{self.base_url}/conversations/{quote(sender, safe='')}/tracker",
                params={"include_events": "ALL", **self._api_params()},
                timeout=timeout,
            )
            resp.raise_for_status()
            return resp.json().get("events") or []
        except (requests.RequestException, ValueError, AttributeError) as exc:
            raise RasaUnavailable(f"Rasa at {self.base_url} failed: {type(exc).__name__}") from exc

    def answer_to(self, sender: str, message_key: str, timeout: float = 10.0) -> list[dict] | None:
        """The bot's messages (as `send` returns them) in answer to the message that `send` gave
        `{"message_key": message_key}` as metadata; None when the bot has no such message."""
        events = self._events(sender, timeout)
        for i in range(len(events) - 1, -1, -1):
            if events[i].get("event") == "user" and (events[i].get("metadata") or {}).get("message_key") == message_key:
                answer = []
                for later in events[i + 1 :]:
                    if later.get("event") == "user":
                        break
                    if later.get("event") == "bot":
                        answer.append({**(later.get("data") or {}), "text": later.get("text")})
                return answer
        return None

    def history(self, sender: str, timeout: float = 3.0) -> list[dict]:
        """What the customer and the bot said, oldest first, from the tracker (Rasa's HTTP API):
        [{"author": "customer" | "bot", "text": ..., "at": unix seconds}]."""
        events = self._events(sender, timeout)
        authors = {"user": "customer", "bot": "bot"}
        return [
            {"author": authors[e["event"]], "text": e["text"], "at": e.get("timestamp")}
            for e in events
            if e.get("event") in authors and e.get("text")
        ]
