"""The Rasa server, reached through its REST channel."""
from __future__ import annotations

import requests


class RasaUnavailable(RuntimeError):
    """The Rasa server did not answer (down, timed out or failed)."""


class RasaClient:
    def __init__(self, base_url: str, timeout: float = 30.0):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._http = requests.Session()

    def send(self, sender: str, text: str, metadata: dict | None = None) -> list[dict]:
        """Send one customer message; returns the bot's messages in order."""
        try:
            resp = self._http.post(f"{self.base_url}/webhooks/rest/webhook",
                                   json={"sender": sender, "message": text, "metadata": metadata or {}},
                                   timeout=self.timeout)
            resp.raise_for_status()
            return resp.json()
        except (requests.RequestException, ValueError) as exc:
            raise RasaUnavailable(f"Rasa at {self.base_url} failed: {type(exc).__name__}") from exc
