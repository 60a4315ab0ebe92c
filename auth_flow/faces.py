"""Face verification with face_recognition (dlib HOG detector, one encoding).

- The selfie must hold exactly one face, good enough to compare (`quality`), and the face
  engine (`auth_flow.face_engines`: the local decision of `auth_flow.face_match`, or a
  certified verification service) decides whether it is the person (a `Matcher`).
- Liveness, and `verify` (one attempt: liveness over the frames and the match of the
  selfie), are in `auth_flow.liveness`.

Uploads are JPEG or PNG only, checked from their header before anything is decoded, at most
MAX_PIXELS each and MAX_REQUEST_PIXELS together (a decompression bomb is refused before it
costs memory); JPEGs are decoded in draft mode, already reduced towards the working width.
Images are decoded in memory; only their SHA-256 is kept, except what an officer's review of
a face check needs (`seal_image`: the selfie and the reference photo, downscaled, sealed with a
key of their own, deleted once decided; auth_flow.face_review). Reference encodings are stored
encrypted (`seal_encoding`).
"""

from __future__ import annotations

import hashlib
import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, UnidentifiedImageError

from auth_flow.face_match import Decision
from sunshine.protect import fernet

WORK_WIDTH = 640  # images are downscaled to this width before detection (speed on one core)
MAX_PIXELS = 4_000_000  # one frame: more than a phone page's camera frame needs, checked before decoding
MAX_REQUEST_PIXELS = 16_000_000  # all the frames of one attempt together
FORMATS = {b"\xff\xd8\xff": "JPEG", b"\x89PNG\r\n\x1a\n": "PNG"}  # magic bytes -> the only formats decoded
# Quality gates: a face too small, too dark, too bright or blurred asks for another frame.
MIN_FACE_PX = 60  # face box height in the working image
MIN_BRIGHTNESS, MAX_BRIGHTNESS = 40, 220  # mean grey level of the face box
MIN_SHARPNESS = 12.0  # variance of the Laplacian of the face box, grey levels squared
# What an encoding depends on (detector, upsampling, model, jitters, quality gates): cached encodings carry it.
ENCODER_VERSION = f"hog-up1/small/jitter1/q{MIN_FACE_PX}-{MIN_BRIGHTNESS}-{MAX_BRIGHTNESS}-{MIN_SHARPNESS:g}"
ENCODINGS_KEY = b"sunshine face reference encodings"  # the purpose of their own sealing key


class FaceError(ValueError):
    """An image that cannot be checked; the message is for the person in front of the camera."""


class NotAnImage(FaceError):
    pass


class NoFace(FaceError):
    pass


class SeveralFaces(FaceError):
    pass


class TooLarge(NotAnImage):
    pass


class Retake(FaceError):
    """Nothing was decided and the person is asked to try again: the attempt is not counted."""


class PoorQuality(Retake):
    """The frame is usable in principle but not good enough to compare: the person is asked for a
    better one (it does not use up an attempt); the message says what to change."""


@dataclass(frozen=True)
class FaceResult:
    """What a face check found: recorded as evidence whatever the decision."""

    match: Decision
    motion: float | None
    min_motion: float
    live: bool
    image_sha256: list[str] = field(default_factory=list)

    @property
    def matched(self) -> bool:
        return self.match.outcome == "pass"

    @property
    def passed(self) -> bool:
        return self.matched and self.live

    @property
    def review(self) -> bool:
        """Live, and the match in the band an officer decides (neither clearly the person nor not)."""
        return self.live and self.match.outcome == "review"

    def as_dict(self) -> dict:
        return {
            **self.match.as_dict(),
            "matched": self.matched,
            "motion": None if self.motion is None else round(self.motion, 4),
            "min_motion": self.min_motion,
            "live": self.live,
            "decision": "pass" if self.passed else "review" if self.review else "fail",
        }


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _open(data: bytes, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """The image's header only (nothing decoded yet): JPEG or PNG, at most `max_pixels`."""
    kind = next((name for magic, name in FORMATS.items() if data.startswith(magic)), None)
    if kind is None:
        raise NotAnImage("上传的不是照片（只接受JPEG或PNG格式），请用手机摄像头重新拍摄")
    too_large = f"照片像素太多，单张不能超过{max_pixels // 1_000_000}00万像素，请用手机摄像头直接拍摄"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # refused just below, undecoded
            image: Image.Image = Image.open(io.BytesIO(data), formats=[kind])
    except Image.DecompressionBombError:  # PIL's own limit (far above ours), from the header too
        raise TooLarge(too_large) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise NotAnImage("上传的不是照片，请用手机摄像头重新拍摄") from None
    if image.width * image.height > max_pixels:
        raise TooLarge(too_large)
    return image


def check_uploads(uploads: list[bytes]) -> None:
    """Refuse, from the headers alone, any frame that is not JPEG/PNG or too large, and frames
    that together hold more than MAX_REQUEST_PIXELS: before a single pixel is decoded."""
    total = 0
    for data in uploads:
        image = _open(data)
        total += image.width * image.height
    if total > MAX_REQUEST_PIXELS:
        raise TooLarge(f"这次上传的画面合计超过{MAX_REQUEST_PIXELS // 1_000_000}00万像素，请降低分辨率重新拍摄")


def load_image(data: bytes, width: int = WORK_WIDTH, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """RGB pixels of a JPEG/PNG upload, downscaled to at most `width` pixels wide (an officer's
    reference photo may have more pixels than a camera frame: `max_pixels`)."""
    image = _open(data, max_pixels)
    try:
        if image.format == "JPEG" and image.width > width:
            image.draft("RGB", (width, max(1, image.height * width // image.width)))  # DCT scaling: decode less
        image.load()
    except (OSError, Image.DecompressionBombError, SyntaxError, ValueError):
        raise NotAnImage("上传的不是照片，请用手机摄像头重新拍摄") from None
    image = image.convert("RGB")
    if image.width > width:
        image = image.resize((width, round(image.height * width / image.width)), Image.Resampling.BILINEAR)
    return np.asarray(image)


def _face_recognition():
    """The face_recognition library, imported at the first face check, not at import: loading it
    (dlib and its models) takes seconds and memory that processes which never check a face pay otherwise."""
    import face_recognition

    return face_recognition


def quality(pixels: np.ndarray, box: tuple) -> None:
    """Raise PoorQuality, saying what to change, when the face in `box` is too small, badly lit or blurred."""
    top, right, bottom, left = box
    if bottom - top < MIN_FACE_PX:
        raise PoorQuality("人脸太小，请把手机拿近一些，让脸部占满取景框")
    grey = pixels[max(top, 0) : bottom, max(left, 0) : right].astype(float).mean(axis=2)
    brightness = float(grey.mean())
    if brightness < MIN_BRIGHTNESS:
        raise PoorQuality("光线太暗，请到明亮的地方、面向光源再拍")
    if brightness > MAX_BRIGHTNESS:
        raise PoorQuality("光线太强或逆光，请避开强光、不要背对窗户再拍")
    laplacian = grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:] - 4 * grey[1:-1, 1:-1]
    if float(laplacian.var()) < MIN_SHARPNESS:
        raise PoorQuality("画面模糊，请拿稳手机、擦干净镜头再拍")


def _one_face(pixels: np.ndarray) -> tuple:
    boxes = _face_recognition().face_locations(pixels, number_of_times_to_upsample=1, model="hog")
    if not boxes:
        raise NoFace("没有检测到人脸，请正对摄像头、光线充足后重试")
    if len(boxes) > 1:
        raise SeveralFaces("画面中有多张人脸，请确保只有您本人在镜头前")
    return boxes[0]


def encode(pixels: np.ndarray, check_quality: bool = False) -> np.ndarray:
    """The 128-d encoding of the single face in `pixels` (NoFace / SeveralFaces otherwise;
    PoorQuality too when `check_quality`)."""
    box = _one_face(pixels)
    if check_quality:
        quality(pixels, box)
    return _face_recognition().face_encodings(pixels, [box], num_jitters=1, model="small")[0]


Matcher = Callable[[bytes], Decision]  # the selfie's bytes -> the face engine's decision


def match(reference: np.ndarray, pixels: np.ndarray) -> float:
    """Distance between the reference encoding and the single face in `pixels`."""
    return distance(reference, encode(pixels))


def distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)))


def seal_encoding(secret_key: str, encoding: np.ndarray) -> str:
    return fernet(secret_key, ENCODINGS_KEY).encrypt(np.asarray(encoding, dtype="<f8").tobytes()).decode()


def unseal_encoding(secret_key: str, sealed: str) -> np.ndarray:
    return unseal_encodings(secret_key, [sealed])[0]


def unseal_encodings(secret_key: str, sealed: list[str]) -> list[np.ndarray]:
    """Several at once: the key is derived once (deriving it costs more than decrypting)."""
    key = fernet(secret_key, ENCODINGS_KEY)
    return [np.frombuffer(key.decrypt(s.encode()), dtype="<f8") for s in sealed]


# An officer's review of a face check (auth_flow.face_review) sees the live frame and the reference
# photo: kept as downscaled JPEG copies (no metadata), sealed with a key of their own.
REVIEW_IMAGES_KEY = b"sunshine face review images"
REVIEW_WIDTH = 480


def review_copy(data: bytes, max_pixels: int = MAX_PIXELS) -> bytes:
    """A JPEG, at most REVIEW_WIDTH wide, of an upload (what an officer needs to compare, nothing more)."""
    out = io.BytesIO()
    Image.fromarray(load_image(data, REVIEW_WIDTH, max_pixels=max_pixels)).save(out, format="JPEG", quality=85)
    return out.getvalue()


def seal_review_copy(secret_key: str, copy: bytes) -> str:
    return fernet(secret_key, REVIEW_IMAGES_KEY).encrypt(copy).decode()


def seal_image(secret_key: str, data: bytes) -> str:
    """`review_copy` of the image, sealed with the face-review key."""
    return seal_review_copy(secret_key, review_copy(data))


def unseal_image(secret_key: str, sealed: str) -> bytes:
    return fernet(secret_key, REVIEW_IMAGES_KEY).decrypt(sealed.encode())
