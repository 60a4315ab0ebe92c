"""Tencent Cloud FaceID's photo verification (照片人脸核身, `ImageRecognitionV2`), emulated.

    POST /   headers X-TC-Action: ImageRecognitionV2, X-TC-Version: 2018-03-01, X-TC-Timestamp,
             Authorization: TC3-HMAC-SHA256 Credential=ID/DATE/faceid/tc3_request, SignedHeaders=..., Signature=...
             body {"IdCard", "Name", "ImageBase64"}
      200 {"Response": {"Result": "Success", "Description": "成功", "Sim": 89.88, "RequestId"}}
      200 {"Response": {"Result": "FailedOperation.CompareLowSimilarity", "Description", "Sim", "RequestId"}}
      200 {"Response": {"Result": "FailedOperation.LifePhotoDetectNoFaces" | "...LifePhotoDetectFaces" |
                        "...IdNoExistSystem" | "...IdNameMisMatch", "Description", "RequestId"}}
      200 {"Response": {"Error": {"Code": "AuthFailure.SignatureFailure" | "AuthFailure.SignatureExpire" |
                        "AuthFailure.SecretIdNotFound" | "InvalidAction" | "MissingParameter" |
                        "InvalidParameterValue" | "InternalError", "Message"}, "RequestId"}}

The real service holds the authoritative ID photos; here a test or a person registers them:

    POST /_emulator/id-photos {"IdCard", "Name", "ImageBase64"}   the "authoritative" photo of an ID
    GET  /_emulator/requests   the verification requests received, oldest first (ID numbers masked)
    POST /_emulator/faults {"mode": "fail" | "slow", "count": 1, "delay": 3.0}; DELETE /_emulator/faults
    POST /_emulator/reset

The similarity is NOT a certified model's: it is face_recognition's distance d mapped to
Sim = 100 - 75 d (clipped to 0-100), so that the service's recommended 70 is d = 0.4.
Below 70 the result is CompareLowSimilarity, as the real service answers, still with Sim.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import io
import json
import threading
import time
import uuid
from datetime import datetime, timezone

from flask import Flask, Response, request

LOW_SIMILARITY = 70.0
MAX_IMAGE_BASE64 = 3 * 1024 * 1024
MAX_CLOCK_SKEW_S = 300


def similarity(distance: float) -> float:
    return round(min(100.0, max(0.0, 100.0 - 75.0 * distance)), 2)


def _encodings(image: bytes) -> list:
    import face_recognition
    import numpy as np
    from PIL import Image

    img = Image.open(io.BytesIO(image), formats=["JPEG", "PNG"])
    if img.width * img.height > 4_000_000:
        raise ValueError("image too large")
    pixels = np.asarray(img.convert("RGB"))
    boxes = face_recognition.face_locations(pixels, number_of_times_to_upsample=1)
    return face_recognition.face_encodings(pixels, boxes)


def _signature(secret_key: str, day: str, string_to_sign: str) -> str:
    def sign(key: bytes, msg: str) -> bytes:
        return hmac.new(key, msg.encode(), hashlib.sha256).digest()

    key = sign(sign(sign(("TC3" + secret_key).encode(), day), "faceid"), "tc3_request")
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


class FaceIdState:
    def __init__(self, credentials: dict[str, str]):
        self.credentials = dict(credentials)
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.photos: dict[str, dict] = {}
        self.requests: list[dict] = []
        self.faults: dict = {}

    def check_signature(self) -> str | None:
        """The API error code of a badly signed request, or None."""
        auth = request.headers.get("Authorization", "")
        try:
            algorithm, rest = auth.split(" ", 1)
            parts = dict(p.strip().split("=", 1) for p in rest.split(","))
            secret_id, day, service, _ = parts["Credential"].split("/")
            signed_headers, signature = parts["SignedHeaders"], parts["Signature"]
            timestamp = int(request.headers["X-TC-Timestamp"])
        except (ValueError, KeyError):
            return "AuthFailure.InvalidAuthorization"
        if algorithm != "TC3-HMAC-SHA256" or service != "faceid":
            return "AuthFailure.InvalidAuthorization"
        if secret_id not in self.credentials:
            return "AuthFailure.SecretIdNotFound"
        if abs(time.time() - timestamp) > MAX_CLOCK_SKEW_S:
            return "AuthFailure.SignatureExpire"
        if day != datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d"):
            return "AuthFailure.SignatureFailure"
        names = signed_headers.split(";")
        # TC3: each signed header as "name:value\n", name and value lower-case and trimmed.
        headers = "".join(f"{n}:{request.headers.get(n, '').strip().lower()}\n" for n in names)
        canonical = "\n".join(
            ["POST", "/", "", headers, signed_headers, hashlib.sha256(request.get_data()).hexdigest()]
        )
        to_sign = (
            f"TC3-HMAC-SHA256\n{timestamp}\n{day}/faceid/tc3_request\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        )
        if not hmac.compare_digest(_signature(self.credentials[secret_id], day, to_sign), signature):
            return "AuthFailure.SignatureFailure"
        return None


def _answer(body: dict) -> Response:
    body.setdefault("RequestId", str(uuid.uuid4()))
    return Response(json.dumps({"Response": body}, ensure_ascii=False), 200, mimetype="application/json")


def _error(code: str, message: str) -> Response:
    return _answer({"Error": {"Code": code, "Message": message}})


def _mask(id_number: str) -> str:
    return id_number[:3] + "*" * max(len(id_number) - 7, 0) + id_number[-4:]


def create_app(credentials: dict[str, str] | None = None) -> Flask:
    app = Flask("faceid_emulator")
    state = FaceIdState(credentials or {})
    app.extensions["faceid_emulator"] = state

    @app.post("/")
    def api():
        with state.lock:
            fault = state.faults
            if fault.get("count", 0) > 0:
                fault["count"] -= 1
        if fault.get("mode") == "slow" and fault.get("count", -1) >= 0:
            time.sleep(float(fault.get("delay", 3.0)))
        elif fault.get("mode") == "fail" and fault.get("count", -1) >= 0:
            return _error("InternalError", "内部错误")
        action = request.headers.get("X-TC-Action", "")
        if action != "ImageRecognitionV2" or request.headers.get("X-TC-Version") != "2018-03-01":
            return _error("InvalidAction", f"接口不存在或版本不对：{action}")
        problem = state.check_signature()
        if problem:
            return _error(problem, "签名校验失败")
        try:
            body = json.loads(request.get_data())
            id_card, name, image_b64 = body["IdCard"], body["Name"], body["ImageBase64"]
        except (ValueError, KeyError, TypeError):
            return _error("MissingParameter", "缺少参数 IdCard、Name 或 ImageBase64")
        if len(image_b64) > MAX_IMAGE_BASE64:
            return _error("InvalidParameterValue", "ImageBase64 超过 3M")
        try:
            image = base64.b64decode(image_b64, validate=True)
        except (binascii.Error, ValueError):
            return _error("InvalidParameterValue", "ImageBase64 不是标准的 Base64")
        answer = _verify(state, id_card, name, image)
        answer["RequestId"] = str(uuid.uuid4())
        with state.lock:
            state.requests.append(
                {"IdCard": _mask(id_card), "Name": name, **{k: answer.get(k) for k in ("Result", "Sim", "RequestId")}}
            )
        return _answer(answer)

    @app.post("/_emulator/id-photos")
    def register():
        body = request.get_json(force=True)
        encodings = _encodings(base64.b64decode(body["ImageBase64"]))
        if len(encodings) != 1:
            return {"error": f"the ID photo must hold one face, it holds {len(encodings)}"}, 400
        with state.lock:
            state.photos[body["IdCard"]] = {"name": body["Name"], "encoding": encodings[0]}
        return {"ok": True}, 201

    @app.get("/_emulator/requests")
    def requests_received():
        with state.lock:
            return {"requests": list(state.requests)}

    @app.post("/_emulator/faults")
    def set_faults():
        with state.lock:
            state.faults = dict(request.get_json(force=True))
            state.faults.setdefault("count", 1)
        return state.faults

    @app.delete("/_emulator/faults")
    def clear_faults():
        with state.lock:
            state.faults = {}
        return {"ok": True}

    @app.post("/_emulator/reset")
    def reset():
        with state.lock:
            state.reset()
        return {"ok": True}

    @app.get("/healthz")
    def healthz():
        return {"ok": True}

    return app


def _verify(state: FaceIdState, id_card: str, name: str, image: bytes) -> dict:
    import numpy as np

    with state.lock:
        photo = state.photos.get(id_card)
    if photo is None:
        return {"Result": "FailedOperation.IdNoExistSystem", "Description": "库中无此号，请到户籍所在地进行核实"}
    if photo["name"] != name:
        return {"Result": "FailedOperation.IdNameMisMatch", "Description": "姓名和身份证号不一致，请核实后重试"}
    try:
        encodings = _encodings(image)
    except (OSError, ValueError, SyntaxError):
        return {"Result": "FailedOperation.LifePhotoPoorQuality", "Description": "照片无法解析或质量太差"}
    if not encodings:
        return {"Result": "FailedOperation.LifePhotoDetectNoFaces", "Description": "未能检测到完整人脸"}
    if len(encodings) > 1:
        return {"Result": "FailedOperation.LifePhotoDetectFaces", "Description": "检测到多张人脸"}
    sim = similarity(float(np.linalg.norm(encodings[0] - photo["encoding"])))
    if sim < LOW_SIMILARITY:
        return {"Result": "FailedOperation.CompareLowSimilarity", "Description": "比对相似度未达到通过标准", "Sim": sim}
    return {"Result": "Success", "Description": "成功", "Sim": sim}
