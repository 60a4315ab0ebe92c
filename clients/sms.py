"""The bank's SMS gateway (JSON over HTTP): one text to one mainland mobile number.

    sms = SmsClient.from_settings(settings)
    message_id = sms.send("13912340002", "【阳光农商银行】验证码123456，5分钟内有效")

Wire format (the gateway's, spoken by emulators.sms as well):
    POST {SMS_API_BASE}/v1/sms/send   Authorization: Bearer {SMS_API_KEY}
         {"phone": "13912340002", "content": "..."}
    200 {"message_id": "...", "status": "accepted"}
    4xx {"error": {"code": "invalid_phone" | "unauthorized" | ..., "message": "..."}}

The client never retries on its own (a retry may send a second text): `SmsError`.

One-time codes (the authorization page's and the WeChat binding's) are made, worded and
checked here, the same way for both: `new_code`, `code_text`, `code_digest`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

import requests

CODE_DIGITS = 6
# The sender's signature, registered with the gateway, at the head of every text.
SIGNATURE = "阳光农村商业银行"


def signed(text: str) -> str:
    return f"【{SIGNATURE}】{text}"


def new_code() -> str:
    """A fresh random CODE_DIGITS-digit code."""
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def code_digest(secret_key: str, scope: str, code: str) -> str:
    """What is stored of a code: a keyed hash bound to `scope` (the request it was sent for),
    so a code works for nothing else and a database reader learns nothing."""
    return hmac.new(secret_key.encode(), f"{scope}:{code}".encode(), hashlib.sha256).hexdigest()


def code_text(purpose: str, code: str, minutes: int) -> str:
    """The text that carries a code."""
    return signed(f"您的{purpose}验证码为{code}，{minutes}分钟内有效。请勿告诉任何人（包括银行工作人员）。")


class SmsError(Exception):
    """The text was not accepted (refused, unreachable, or an unreadable answer)."""


class SmsClient:
    def __init__(self, base_url: str, api_key: str, timeout: float = 5.0, http: requests.Session | None = None):
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.http = http or requests.Session()

    @classmethod
    def from_settings(cls, settings, timeout: float = 5.0) -> SmsClient:
        return cls(settings.sms_api_base, settings.sms_api_key, timeout=timeout)

    def send(self, phone: str, content: str) -> str:
        """Send `content` to `phone`; returns the gateway's message id."""
        try:
            resp = self.http.post(
                f"{self.base_url}/v1/sms/send",
                json={"phone": phone, "content": content},
                headers={"Authorization": f"Bearer {self.api_key}"},
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise SmsError(f"SMS gateway at {self.base_url} unreachable: {type(exc).__name__}") from exc
        try:
            data = resp.json()
        except ValueError:
            raise SmsError(f"SMS gateway answered HTTP {resp.status_code} with no JSON") from None
        if resp.status_code != 200 or not isinstance(data, dict) or "message_id" not in data:
            err = (data.get("error") if isinstance(data, dict) else None) or {}
            raise SmsError(f"SMS gateway refused the text (HTTP {resp.status_code} {err.get('code', 'unknown')})")
        return str(data["message_id"])
