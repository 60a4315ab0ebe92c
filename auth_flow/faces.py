"""Face verification and liveness with face_recognition (dlib HOG detector, one encoding).

- `verify(reference, frames, ...)`: the selfie (the most frontal frame) must hold exactly
  one face whose distance to the enrolled reference is at most the tolerance.
- Liveness: the page asks the person to turn their head slowly while it takes several
  frames. A face photo held up to the camera is a plane, and the landmarks of a plane
  in any two views are related exactly by a homography (perspective map); a real head
  turning is not. The largest landmark residual after the best homography fit,
  measured in eye distances, must reach `min_motion`. A still image gives 0.

Images are decoded in memory and never written anywhere; only their SHA-256 is kept.
Reference encodings are stored encrypted (`seal_encoding`).
"""

from __future__ import annotations

import base64
import hashlib
import io
from dataclasses import dataclass, field

import numpy as np
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from PIL import Image, UnidentifiedImageError

WORK_WIDTH = 640  # images are downscaled to this width before detection (speed on one core)
LANDMARK_WIDTH = 320  # liveness frames need only the landmarks
MAX_PIXELS = 40_000_000
MIN_FRAMES, MAX_FRAMES = 3, 12


class FaceError(ValueError):
    """An image that cannot be checked; the message is for the person in front of the camera."""


class NotAnImage(FaceError):
    pass


class NoFace(FaceError):
    pass


class SeveralFaces(FaceError):
    pass


@dataclass(frozen=True)
class FaceResult:
    """What a face check found: recorded as evidence whatever the decision."""

    distance: float | None
    threshold: float
    matched: bool
    motion: float | None
    min_motion: float
    live: bool
    image_sha256: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.matched and self.live

    def as_dict(self) -> dict:
        return {
            "distance": None if self.distance is None else round(self.distance, 4),
            "threshold": self.threshold,
            "matched": self.matched,
            "motion": None if self.motion is None else round(self.motion, 4),
            "min_motion": self.min_motion,
            "live": self.live,
            "decision": "pass" if self.passed else "fail",
        }


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_image(data: bytes, width: int = WORK_WIDTH) -> np.ndarray:
    """RGB pixels of a JPEG/PNG upload, downscaled to at most `width` pixels wide."""
    try:
        image = Image.open(io.BytesIO(data))
        if image.width * image.height > MAX_PIXELS:
            raise NotAnImage("照片太大，请重新拍摄")
        image.load()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, SyntaxError, ValueError):
        raise NotAnImage("上传的不是照片，请用手机摄像头重新拍摄") from None
    image = image.convert("RGB")
    if image.width > width:
        image = image.resize((width, round(image.height * width / image.width)), Image.BILINEAR)
    return np.asarray(image)


def _one_face(pixels: np.ndarray) -> tuple:
    import face_recognition  # lazy: heavy (dlib and its models), loaded by the face step only

    boxes = face_recognition.face_locations(pixels, number_of_times_to_upsample=1, model="hog")
    if not boxes:
        raise NoFace("没有检测到人脸，请正对摄像头、光线充足后重试")
    if len(boxes) > 1:
        raise SeveralFaces("画面中有多张人脸，请确保只有您本人在镜头前")
    return boxes[0]


def encode(pixels: np.ndarray) -> np.ndarray:
    """The 128-d encoding of the single face in `pixels` (NoFace / SeveralFaces otherwise)."""
    import face_recognition  # lazy: heavy (dlib and its models), loaded by the face step only

    box = _one_face(pixels)
    return face_recognition.face_encodings(pixels, [box], num_jitters=1, model="small")[0]


def _landmarks(pixels: np.ndarray) -> np.ndarray:
    import face_recognition  # lazy: heavy (dlib and its models), loaded by the face step only

    box = _one_face(pixels)
    marks = face_recognition.face_landmarks(pixels, [box], model="large")[0]
    return np.array([p for part in marks.values() for p in part], dtype=float)


def _normalizer(points: np.ndarray) -> np.ndarray:
    centre = points.mean(axis=0)
    scale = np.sqrt(2) / max(np.sqrt(((points - centre) ** 2).sum(axis=1).mean()), 1e-9)
    return np.array([[scale, 0, -scale * centre[0]], [0, scale, -scale * centre[1]], [0, 0, 1]])


def planar_residual(a: np.ndarray, b: np.ndarray) -> float:
    """RMS distance of landmarks `b` from `a` mapped by their best homography (normalised
    DLT), in eye distances of `b`: about 0 for two views of a flat picture."""
    ta, tb = _normalizer(a), _normalizer(b)
    an = (np.c_[a, np.ones(len(a))] @ ta.T)[:, :2]
    bn = (np.c_[b, np.ones(len(b))] @ tb.T)[:, :2]
    rows = []
    for (x, y), (u, v) in zip(an, bn, strict=False):
        rows.append([-x, -y, -1, 0, 0, 0, u * x, u * y, u])
        rows.append([0, 0, 0, -x, -y, -1, v * x, v * y, v])
    h = np.linalg.svd(np.array(rows))[2][-1].reshape(3, 3)
    h = np.linalg.inv(tb) @ h @ ta
    mapped = np.c_[a, np.ones(len(a))] @ h.T
    mapped = mapped[:, :2] / mapped[:, 2:]
    eyes = np.linalg.norm(b[36:42].mean(axis=0) - b[42:48].mean(axis=0))
    return float(np.sqrt(((mapped - b) ** 2).sum(axis=1).mean()) / max(eyes, 1e-9))


def motion(marks: list[np.ndarray]) -> float:
    """The largest non-planar landmark motion between the first frame and any other."""
    return max(planar_residual(marks[0], m) for m in marks[1:])


def turn(marks: np.ndarray) -> float:
    """How far the head is turned: the nose tip's offset from between the eyes, in eye distances."""
    left, right = marks[36:42].mean(axis=0), marks[42:48].mean(axis=0)
    return float(abs(marks[30][0] - (left[0] + right[0]) / 2) / max(np.linalg.norm(right - left), 1e-9))


def verify(reference: np.ndarray, uploads: list[bytes], tolerance: float, min_motion: float) -> FaceResult:
    """Check the frames of one attempt against the enrolled reference encoding.

    Raises FaceError (not an image, no face, several faces, too few frames) before any decision.
    """
    if not MIN_FRAMES <= len(uploads) <= MAX_FRAMES:
        raise FaceError(f"需要{MIN_FRAMES}到{MAX_FRAMES}张连续画面，请重新拍摄")
    hashes_ = [sha256(u) for u in uploads]
    marks, usable = [], []
    for i, upload in enumerate(uploads):  # a blurred frame mid-turn may show no face: skip it
        try:
            marks.append(_landmarks(load_image(upload, LANDMARK_WIDTH)))
            usable.append(i)
        except NoFace:
            continue
    if len(marks) < MIN_FRAMES:
        raise NoFace("没有检测到人脸，请正对摄像头、光线充足后重试")
    moved = 0.0 if len(set(hashes_)) == 1 else motion(marks)
    frontal = min(range(len(marks)), key=lambda i: turn(marks[i]))  # the selfie: the most frontal frame
    distance = match(reference, load_image(uploads[usable[frontal]]))
    return FaceResult(
        distance=distance,
        threshold=tolerance,
        matched=distance <= tolerance,
        motion=moved,
        min_motion=min_motion,
        live=moved >= min_motion,
        image_sha256=hashes_,
    )


def match(reference: np.ndarray, pixels: np.ndarray) -> float:
    """Distance between the reference encoding and the single face in `pixels`."""
    return float(np.linalg.norm(encode(pixels) - reference))


def _fernet(secret_key: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"sunshine face reference encodings").derive(
        secret_key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))


def seal_encoding(secret_key: str, encoding: np.ndarray) -> str:
    return _fernet(secret_key).encrypt(np.asarray(encoding, dtype="<f8").tobytes()).decode()


def unseal_encoding(secret_key: str, sealed: str) -> np.ndarray:
    return np.frombuffer(_fernet(secret_key).decrypt(sealed.encode()), dtype="<f8")
