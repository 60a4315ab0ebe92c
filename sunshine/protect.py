"""Personal data: masking for display and logs, fingerprints for look-up,
sealing (symmetric encryption) for what must be read back."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_ID_RE = re.compile(r"(?<![0-9])([1-9][0-9]{5})([0-9]{8})([0-9]{3}[0-9Xx])(?![0-9])")
_PHONE_RE = re.compile(r"(?<![0-9])(1[3-9][0-9])([0-9]{4})([0-9]{4})(?![0-9])")
# Credentials that travel in URLs and headers: WeChat's and WeCom's secrets and access tokens
# (query parameters), bearer keys, and the authorization tokens in the H5 page's paths.
_CREDENTIAL_RE = re.compile(r"(?i)\b(secret|appsecret|corpsecret|access_token|api_key|js_code|code)=([^&\s'\"<>]+)")
_BEARER_RE = re.compile(r"(?i)\b(Bearer\s+)\S+")
_AUTH_PATH_RE = re.compile(r"(/auth/|/api/authorizations/)(?!wechat-callback)([A-Za-z0-9_-]{4})[A-Za-z0-9_-]{4,}")


def mask_id_number(id_number: str) -> str:
    """3213********1234: first four and last four characters kept."""
    s = id_number.strip()
    if len(s) < 8:
        return "*" * len(s)
    return s[:4] + "*" * (len(s) - 8) + s[-4:]


def mask_phone(phone: str) -> str:
    s = phone.strip()
    return s[:3] + "****" + s[-4:] if len(s) == 11 else "*" * len(s)


def mask_account(account_no: str) -> str:
    """尾号1234: a bank account as a customer's message names it (its last four digits)."""
    return f"尾号{account_no.strip()[-4:]}"


def mask_name(name: str) -> str:
    """张建国 -> 张**; a name is kept to its family character."""
    return name[:1] + "*" * (len(name) - 1) if name else name


def mask_text(text: str) -> str:
    """Mask ID numbers and mobile numbers wherever they occur in free text."""
    text = _ID_RE.sub(lambda m: mask_id_number(m.group(0)), text)
    return _PHONE_RE.sub(lambda m: m.group(1) + "****" + m.group(3), text)


def redact_credentials(text: str) -> str:
    """Hide secrets, access tokens, bearer keys and authorization tokens (first 4 characters
    kept) wherever they occur in text, e.g. in an exception that quotes a request's URL."""
    text = _CREDENTIAL_RE.sub(lambda m: f"{m.group(1)}=***", text)
    text = _BEARER_RE.sub(lambda m: f"{m.group(1)}***", text)
    return _AUTH_PATH_RE.sub(lambda m: f"{m.group(1)}{m.group(2)}***", text)


def mask_log(text: str) -> str:
    """What a log line may show: ID and phone numbers masked, credentials hidden."""
    return redact_credentials(mask_text(text))


def constant_time_equal(given: str, expected: str) -> bool:
    """Compare a secret someone sent with the expected one in constant time; any text
    (hmac.compare_digest refuses non-ASCII str with a TypeError)."""
    return hmac.compare_digest(given.encode(), expected.encode())


def fingerprint(secret_key: str, value: str) -> str:
    """A keyed hash for equality look-ups (e.g. ID number) without storing the value."""
    return hmac.new(secret_key.encode(), value.strip().upper().encode(), hashlib.sha256).hexdigest()


def fernet(secret_key: str, purpose: bytes = b"") -> Fernet:
    """The key that seals data under `secret_key`. Personal data (`seal`) has the first key; a
    `purpose` (e.g. face encodings, biometric data) gets a key of its own (HKDF with the purpose
    as info), so that the key of one kind of data opens no other. The two derivations differ on
    purpose and stay as they are: every value sealed so far opens."""
    if purpose:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(secret_key.encode())
    else:
        key = hashlib.sha256(b"sunshine-seal:" + secret_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def seal(secret_key: str, value: str) -> str:
    return fernet(secret_key).encrypt(value.encode()).decode()


def unseal(secret_key: str, token: str) -> str:
    return fernet(secret_key).decrypt(token.encode()).decode()


class MaskingFormatter(logging.Formatter):
    """Formats a record, its traceback included (with `inner`, another formatter, when
    given), then masks it with `mask_log`."""

    def __init__(self, fmt: str | None = None, inner: logging.Formatter | None = None):
        super().__init__(fmt)
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        return mask_log(self.inner.format(record) if self.inner else super().format(record))


def mask_every_handler() -> None:
    """Mask what the handlers a framework already set up will write (the action server's:
    rasa-sdk installs its own coloured handler before it imports our actions)."""
    loggers = [
        logging.getLogger(),
        *(lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)),
    ]
    for handler in {h for lg in loggers for h in lg.handlers}:
        if not isinstance(handler.formatter, MaskingFormatter):
            handler.setFormatter(MaskingFormatter(inner=handler.formatter or logging.Formatter()))


class _MaskedRecords:
    """A log-record factory whose records carry their message already masked."""

    def __init__(self, make):
        self.make = make

    def __call__(self, *args, **kwargs) -> logging.LogRecord:
        record = self.make(*args, **kwargs)
        record.msg, record.args = mask_log(record.getMessage()), None
        return record


def mask_records() -> None:
    """Mask the message of every log record this process makes, whatever handler or formatter
    writes it (Rasa's structlog output, Sanic's and RQ's loggers included). Tracebacks are
    masked by `MaskingFormatter` where it formats them."""
    if not isinstance(logging.getLogRecordFactory(), _MaskedRecords):
        logging.setLogRecordFactory(_MaskedRecords(logging.getLogRecordFactory()))


def configure_logging(level: str = "INFO") -> None:
    mask_records()
    handler = logging.StreamHandler()
    handler.setFormatter(MaskingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
