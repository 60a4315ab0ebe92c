"""Face images and camera frames for the authorization tests, from ../shared/testdata/faces/."""

from __future__ import annotations

import copy
import hashlib
import io
import itertools
import json
import os
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from sunshine.demo import POSES

FACES = Path(__file__).resolve().parents[2].parent / "shared" / "testdata" / "faces"
if not FACES.is_dir():
    FACES = Path("/work/shared/testdata/faces")
CLIP = FACES / "short_hamilton_clip.mp4"
MOVING = range(150, 186, 6)  # frames of the clip where the head turns


def image(name: str) -> bytes:
    return (FACES / name).read_bytes()


@lru_cache(maxsize=1)
def clip_frames() -> tuple[np.ndarray, ...]:
    """Every frame of the moving-face clip (RGB), decoded with imageio-ffmpeg's ffmpeg."""
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(CLIP))
    meta = next(reader)
    width, height = meta["size"]
    return tuple(np.frombuffer(raw, np.uint8).reshape(height, width, 3) for raw in reader)


def jpeg(pixels: np.ndarray | Image.Image) -> bytes:
    img = pixels if isinstance(pixels, Image.Image) else Image.fromarray(pixels)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def live_frames() -> list[bytes]:
    """What the page uploads for a live, turning head."""
    frames = clip_frames()
    return [jpeg(frames[k]) for k in MOVING]


def reference() -> bytes:
    """A frame of the clip, enrolled as the singer's reference photo."""
    return jpeg(clip_frames()[126])


def photo_held_up(data: bytes, n: int = 6, seed: int = 0) -> list[bytes]:
    """A printed photo moved and tilted in front of the camera: perspective views of one plane."""
    rng = np.random.default_rng(seed)
    img = Image.open(io.BytesIO(data)).convert("RGB")
    out = []
    for _ in range(n):
        h = np.eye(3) + np.r_[rng.uniform(-0.08, 0.08, 6), rng.uniform(-2e-4, 2e-4, 2), 0].reshape(3, 3) * [
            [1, 1, 40],
            [1, 1, 40],
            [1, 1, 0],
        ]
        inv = np.linalg.inv(h)
        inv /= inv[2, 2]
        out.append(jpeg(img.transform(img.size, Image.PERSPECTIVE, tuple(inv.flatten()[:8]), Image.BILINEAR)))
    return out


def pose_frames(action: str) -> list[np.ndarray]:
    """The clip's frames of a challenge step (sunshine.demo.POSES)."""
    frames = clip_frames()
    return [frames[k] for k in POSES[action]]


_takes = itertools.count(1)


def challenge_frames(actions, take: int | None = None) -> tuple[list[bytes], list[int]]:
    """What the page uploads for a challenge of `actions`: the frames of each step with their step
    index (step 0: the look at the camera). Each call is a new take, as a camera films afresh:
    the take's number is written in black and white 8x8 blocks along the top edge, so its JPEGs
    differ from every other take's (pass the same `take` again for a byte-identical replay)."""
    take = next(_takes) if take is None else take
    uploads, steps = [], []
    for k, action in enumerate(["look", *actions]):
        for pixels in pose_frames(action):
            marked = pixels.copy()
            for bit in range(16):
                marked[:8, 8 * bit : 8 * bit + 8] = 255 if take >> bit & 1 else 0
            uploads.append(jpeg(marked))
            steps.append(k)
    return uploads, steps


class FixedChallenge:
    """Stands in for auth_flow.liveness._random (monkeypatched) so that a test knows the challenge."""

    def __init__(self, *actions: str):
        self.actions = list(actions)

    def sample(self, population, k):
        assert set(self.actions) <= set(population) and len(self.actions) == k
        return list(self.actions)


class RememberedFaces:
    """face_recognition (imported at its first use, as auth_flow.faces does) with each result of its
    detection, encodings and landmarks remembered per frame: they are pure functions of the pixels,
    up to a second a frame, and the tests show the same frames (the clip's, the reference photo)
    hundreds of times. What a caller gets is a copy, as from the library.

    With a `folder` (`make test`: in SUNSHINE_CACHE_DIR, kept per user as Rasa's cache), each result is
    also kept there as a JSON file, shared by the test processes and kept from one run to the next
    (dlib's face detection was about 40 s of the suite's CPU); the folder is named by dlib's and
    face_recognition's versions."""

    REMEMBERED = ("face_locations", "face_encodings", "face_landmarks")

    def __init__(self, folder: Path | None = None) -> None:
        self._results: dict[tuple, object] = {}
        self._folder = folder

    def __getattr__(self, name: str):
        import face_recognition

        found = getattr(face_recognition, name)
        if name not in self.REMEMBERED:
            return found

        def remembered(pixels: np.ndarray, *args, **kwargs):
            frame = hashlib.blake2b(np.ascontiguousarray(pixels).tobytes(), digest_size=16).digest()
            key = (name, frame, pixels.shape, str(pixels.dtype), repr(args), repr(sorted(kwargs.items())))
            if key not in self._results:
                self._results[key] = self._kept(key, lambda: found(pixels, *args, **kwargs))
            return copy.deepcopy(self._results[key])

        return remembered

    def _kept(self, key: tuple, compute):
        """The result from the folder, else computed (and written there)."""
        if self._folder is None:
            return compute()
        import dlib
        import face_recognition

        name = key[0]
        folder = self._folder / f"face-results-dlib-{dlib.__version__}-fr-{face_recognition.__version__}"
        path = folder / f"{hashlib.blake2b(repr(key).encode(), digest_size=16).hexdigest()}.json"
        try:
            return _from_json(name, json.loads(path.read_text()))
        except (OSError, ValueError, TypeError, AttributeError):  # not kept yet, or unreadable: computed again
            result = compute()
        folder.mkdir(parents=True, exist_ok=True)
        written = path.with_suffix(f".{os.getpid()}.tmp")
        written.write_text(json.dumps(_to_json(name, result)))
        os.replace(written, path)  # whole or not at all, whichever process writes it
        return result


def _to_json(name: str, result: list):
    if name == "face_encodings":
        return [encoding.tolist() for encoding in result]
    return result  # locations: tuples; landmarks: dicts of lists of tuples (JSON lists)


def _from_json(name: str, kept: list) -> list:
    """face_recognition's types: locations as tuples, encodings as float64 arrays, landmark points as tuples."""
    if name == "face_locations":
        return [tuple(location) for location in kept]
    if name == "face_encodings":
        return [np.array(encoding, dtype=np.float64) for encoding in kept]
    return [{part: [tuple(point) for point in points] for part, points in face.items()} for face in kept]
