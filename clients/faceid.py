"""A certified face-verification service (人脸核身): Tencent Cloud FaceID's photo verification
against the authoritative ID photo, `ImageRecognitionV2` (API 3.0, version 2018-03-01).

    client = FaceIdClient(settings.faceid_url, settings.faceid_secret_id, settings.faceid_secret_key)
    result = client.image_recognition(id_number, name, jpeg_bytes)
    result.sim  # 0-100; the service recommends >= 70 as the same person

Wire format (as the real service): `POST /` with a JSON body `{"IdCard", "Name",
"ImageBase64"}`, headers `X-TC-Action: ImageRecognitionV2`, `X-TC-Version: 2018-03-01`,
`X-TC-Timestamp`, and `Authorization: TC3-HMAC-SHA256 Credential=ID/DATE/faceid/tc3_request,
SignedHeaders=content-type;host, Signature=...` (`tc3_authorization`). The answer is always
HTTP 200 with `{"Response": {...}}`: `Result` "Success" with `Sim`, a business failure
(`FailedOperation.CompareLowSimilarity` still carries `Sim`; no face, several faces, ID not in
the authoritative database, ...), or `Error` {Code, Message} for a refused call (signature,
parameters, rate limit). Each call is billable, so the client does not retry.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import urlsplit

import requests

SERVICE, VERSION, ACTION = "faceid", "2018-03-01", "ImageRecognitionV2"
CONTENT_TYPE = "application/json; charset=utf-8"
MAX_IMAGE_BASE64 = 3 * 1024 * 1024  # the service refuses larger ImageBase64


class FaceIdError(Exception):
    """The service could not give a similarity; `code` is its code."""

    def __init__(self, code: str, message: str, request_id: str = ""):
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.request_id = code, message, request_id


class FaceIdUnavailable(FaceIdError):
    """Not reached, timed out, 5xx, or an internal error of the service: try again later."""


@dataclass(frozen=True)
class Recognition:
    result: str  # "Success" or a FailedOperation code
    description: str
    sim: float | None
    request_id: str

    @property
    def success(self) -> bool:
        return self.result == "Success"


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def tc3_authorization(secret_id: str, secret_key: str, host: str, body: bytes, timestamp: int) -> str:
    """The `Authorization` header of Tencent Cloud API 3.0 (TC3-HMAC-SHA256) for a JSON POST to `/`."""
    day = datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d")
    canonical = "\n".join(
        ["POST", "/", "", f"content-type:{CONTENT_TYPE}\nhost:{host}\n", "content-type;host"]
        + [hashlib.sha256(body).hexdigest()]
    )
    scope = f"{day}/{SERVICE}/tc3_request"
    to_sign = f"TC3-HMAC-SHA256\n{timestamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    key = _hmac(_hmac(_hmac(("TC3" + secret_key).encode(), day), SERVICE), "tc3_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return f"TC3-HMAC-SHA256 Credential={secret_id}/{scope}, SignedHeaders=content-type;host, Signature={signature}"


class FaceIdClient:
    def __init__(
        self,
        base_url: str,
        secret_id: str,
        secret_key: str,
        timeout: float = 5.0,
        region: str = "ap-guangzhou",
        http: requests.Session | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.host = urlsplit(self.base_url).netloc
        self.secret_id, self.secret_key = secret_id, secret_key
        self.timeout, self.region = timeout, region
        self.http = http or requests.Session()

    @classmethod
    def from_settings(cls, s) -> FaceIdClient:
        return cls(s.faceid_url, s.faceid_secret_id, s.faceid_secret_key, timeout=s.faceid_timeout_s)

    def image_recognition(self, id_number: str, name: str, image: bytes) -> Recognition:
        """Compare `image` (JPEG/PNG) with the authoritative ID photo of `id_number`/`name`."""
        encoded = base64.b64encode(image).decode()
        if len(encoded) > MAX_IMAGE_BASE64:
            raise FaceIdError("InvalidParameterValue", "ImageBase64 larger than 3 MB")
        body = json.dumps({"IdCard": id_number, "Name": name, "ImageBase64": encoded}).encode()
        timestamp = int(time.time())
        headers = {
            "Content-Type": CONTENT_TYPE,
            "Host": self.host,
            "X-TC-Action": ACTION,
            "X-TC-Version": VERSION,
            "X-TC-Timestamp": str(timestamp),
            "X-TC-Region": self.region,
            "Authorization": tc3_authorization(self.secret_id, self.secret_key, self.host, body, timestamp),
        }
        try:
            resp = self.http.post(self.base_url + "/", data=body, headers=headers, timeout=self.timeout)
        except requests.RequestException as exc:
            raise FaceIdUnavailable("ClientError", f"{self.base_url} unreachable: {type(exc).__name__}") from exc
        if resp.status_code >= 500:
            raise FaceIdUnavailable("InternalError", f"HTTP {resp.status_code}")
        try:
            answer = resp.json()["Response"]
        except (ValueError, KeyError, TypeError) as exc:
            raise FaceIdUnavailable("InternalError", f"HTTP {resp.status_code} without a Response") from exc
        request_id = str(answer.get("RequestId", ""))
        if "Error" in answer:
            code, message = answer["Error"].get("Code", ""), answer["Error"].get("Message", "")
            if code.startswith(("InternalError", "RequestLimitExceeded", "FailedOperation.UnKnown")):
                raise FaceIdUnavailable(code, message, request_id)
            raise FaceIdError(code, message, request_id)
        sim = answer.get("Sim")
        return Recognition(
            result=str(answer.get("Result", "")),
            description=str(answer.get("Description", "")),
            sim=None if sim is None else float(sim),
            request_id=request_id,
        )
