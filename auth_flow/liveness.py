"""Liveness: that the frames of one attempt come from a live head in front of the camera.

- `verify(match, frames, ...)`: the selfie (the most frontal frame; with a challenge, of its
  first step, the look at the camera) must hold exactly one face, good enough to compare, and
  the face engine (`auth_flow.face_engines`) decides whether it is the person; the frames
  must be live.
- The page asks the person to turn their head slowly while it takes several
  frames. A face photo held up to the camera is a plane, and the landmarks of a plane
  in any two views are related exactly by a homography (perspective map); a real head
  turning is not. The largest landmark residual after the best homography fit,
  measured in eye distances, must reach `min_motion`. A still image gives 0.
- Active liveness: a recording of the person turning their head would pass the planar
  check, so each attempt first gets a random challenge from the server (`Challenges.issue`):
  a look at the camera, then CHALLENGE_LENGTH actions (turn left, turn right, nod, open the
  mouth) in a random order, bound to a nonce, to the face check's subject (an authorization,
  or a loan contract's signing: auth_flow.subjects) and to a time window, kept in Redis and
  usable once. The page uploads each frame with the index of the step it was taken in;
  `check_actions` measures each frame's head pose and mouth against the first step's (yaw:
  the nose tip between the jaw's ends; pitch: the nose tip's height under the eyes, in eye
  distances; mouth: the inner lips' gap over the mouth's width) and wants each step to show
  its action (and a nod or mouth step not to be a turn). Frames seen in an earlier attempt
  (same SHA-256) are refused as a replay.
"""

from __future__ import annotations

import json
import random
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from auth_flow.faces import (
    FaceError,
    FaceResult,
    Matcher,
    NoFace,
    _face_recognition,
    _one_face,
    check_uploads,
    load_image,
    sha256,
)
from sunshine.clock import utcnow
from sunshine.redis import connect
from sunshine.settings import CHALLENGE_ACTIONS as ACTIONS
from sunshine.settings import CHALLENGE_LENGTH, Settings, demo_challenge_order

LANDMARK_WIDTH = 320  # liveness frames need only the landmarks
MIN_FRAMES, MAX_FRAMES = 3, 16

# What the page asks for, in the words it uses. "look" is always the first step (the baseline).
PROMPTS = {
    "look": "请正对镜头，保持不动",
    "left": "请慢慢向左转头",
    "right": "请慢慢向右转头",
    "nod": "请慢慢点头",
    "mouth": "请张大嘴巴",
}
# ACTIONS, CHALLENGE_LENGTH (sunshine.settings, which checks FACE_CHALLENGE_DEMO_ORDER against them):
# turn left, turn right, nod, open the mouth; 3 of them per challenge, 4*3*2 = 24 orders.
FRAMES_PER_STEP = 3
# How far a frame must move from the first step's median to show an action.
TURN = 0.12  # yaw: the nose tip's offset between the jaw's ends, in jaw widths (+: the person's left)
NOD = 0.1  # pitch: the nose tip's height under the eyes, in eye distances (an open mouth leaves it)
MOUTH = 0.08  # the inner lips' gap over the mouth's width

# Landmark indices in face_recognition's "large" model, its parts flattened in order
# (chin 0-16, eyebrows 17-26, nose bridge 27-30, nose tip 31-35, eyes 36-47, top lip 48-59,
# bottom lip 60-71): the jaw's ends, the nose tip, the mouth's corners, the inner lips.
JAW_RIGHT, JAW_LEFT, NOSE = 0, 16, 30
MOUTH_CORNERS = (48, 54)
INNER_LIPS = ((58, 69), (57, 70), (56, 71))  # upper-inner over lower-inner


class ChallengeRefused(ValueError):
    """The attempt does not answer a live challenge of this authorization; `reason` is for the
    evidence, the message for the person."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


_random: random.Random = secrets.SystemRandom()  # tests replace it to fix the challenge


@dataclass(frozen=True)
class Challenge:
    nonce: str
    authorization_id: int | str  # the face check's subject (auth_flow.subjects.FaceSubject.challenge_key)
    actions: tuple[str, ...]
    issued_at: datetime
    window_s: int
    demo_order: bool = False  # the fixed FACE_CHALLENGE_DEMO_ORDER (development), not a random one

    @property
    def steps(self) -> list[str]:
        return ["look", *self.actions]

    def public(self) -> dict:
        """What the page needs: the nonce, and the steps with their prompts."""
        return {
            "nonce": self.nonce,
            "steps": [{"action": a, "prompt": PROMPTS[a]} for a in self.steps],
            "frames_per_step": FRAMES_PER_STEP,
            "expires_in": self.window_s,
        }

    def evidence(self) -> dict:
        """What the evidence chain keeps of it (the nonce only hashed)."""
        return {
            "nonce_sha256": sha256(self.nonce.encode()),
            "actions": list(self.actions),
            "issued_at": self.issued_at.isoformat(),
            "window_s": self.window_s,
            # A demo consent (FACE_CHALLENGE_DEMO_ORDER: a recorded video can answer it) says so.
            "order": "fixed_demo_order" if self.demo_order else "random",
        }


class Challenges:
    """The challenges issued and the frames seen, in Redis. A challenge is taken (and so
    used up) by the attempt that names its nonce; its key outlives the window so that a late
    answer is told it is late rather than unknown."""

    PREFIX = "liveness:"

    def __init__(self, redis_url: str, window_s: int, frame_memory_s: int, demo_order: tuple[str, ...] = ()):
        """`demo_order`: every challenge asks for these actions (FACE_CHALLENGE_DEMO_ORDER, development
        only: the settings refuse it without SUNSHINE_DEMO or in production); empty: random."""
        self.redis_url, self.window_s, self.frame_memory_s = redis_url, window_s, frame_memory_s
        self.demo_order = demo_order

    @classmethod
    def from_settings(cls, s: Settings) -> Challenges:
        """The settings' challenges; the demo order only with SUNSHINE_DEMO on, never in production."""
        honoured = s.sunshine_demo and s.sunshine_env != "production"
        order = demo_challenge_order(s.face_challenge_demo_order) if honoured else ()
        return cls(s.redis_url, s.face_challenge_window_s, s.face_replay_memory_s, order)

    def _key(self, kind: str, name: str) -> str:
        return f"{self.PREFIX}{kind}:{name}"

    def issue(self, authorization_id: int | str) -> Challenge:
        challenge = Challenge(
            nonce=secrets.token_urlsafe(24),
            authorization_id=authorization_id,
            actions=self.demo_order or tuple(_random.sample(ACTIONS, CHALLENGE_LENGTH)),
            issued_at=utcnow(),
            window_s=self.window_s,
            demo_order=bool(self.demo_order),
        )
        record = {
            "auth": authorization_id,
            "actions": list(challenge.actions),
            "issued": challenge.issued_at.isoformat(),
            "demo_order": challenge.demo_order,
        }
        with connect(self.redis_url).pipeline(transaction=True) as pipe:
            pipe.set(self._key("challenge", challenge.nonce), json.dumps(record), ex=self.window_s + 3600)
            pipe.set(self._key("latest", str(authorization_id)), challenge.nonce, ex=self.window_s + 3600)
            pipe.execute()
        return challenge

    def take(self, nonce: str, authorization_id: int | str) -> Challenge:
        """The challenge `nonce` names, used up; ChallengeRefused when there is none, it was
        used, it belongs to another authorization, a later challenge of the authorization
        replaced it (one attempt at a time), or its window has passed."""
        if not nonce:
            raise ChallengeRefused("no_challenge", "请点“开始”，按页面提示的动作重新刷脸")
        r = connect(self.redis_url)
        key = self._key("challenge", nonce)
        with r.pipeline(transaction=True) as pipe:
            raw, _, latest = pipe.get(key).delete(key).get(self._key("latest", str(authorization_id))).execute()
        if raw is None:
            raise ChallengeRefused("unknown_or_used_nonce", "这次刷脸的动作提示已经用过或无效，请点“开始”重新刷脸")
        record = json.loads(raw)
        challenge = Challenge(
            nonce=nonce,
            authorization_id=record["auth"],
            actions=tuple(record["actions"]),
            issued_at=datetime.fromisoformat(record["issued"]),
            window_s=self.window_s,
            demo_order=record.get("demo_order", False),
        )
        if challenge.authorization_id != authorization_id:
            raise ChallengeRefused("another_authorization", "这次刷脸的动作提示不属于本次授权，请点“开始”重新刷脸")
        if latest is None or latest.decode() != nonce:
            raise ChallengeRefused("superseded", "这次刷脸的动作提示已被新的提示取代，请按最新的提示刷脸")
        if utcnow() > challenge.issued_at + timedelta(seconds=self.window_s):
            raise ChallengeRefused("outside_window", f"没有在{self.window_s}秒内完成动作，请点“开始”重新刷脸")
        return challenge

    def admit(self, nonce: str, authorization_id: int | str, hashes: list[str]) -> Challenge:
        """The challenge an attempt answers, used up, when its frames (`hashes`) were never
        uploaded before; ChallengeRefused otherwise (see `take`; "replayed_frames")."""
        challenge = self.take(nonce, authorization_id)
        if not self.first_sight(hashes):
            raise ChallengeRefused("replayed_frames", "这些画面以前上传过，请本人对着摄像头重新刷脸")
        return challenge

    def first_sight(self, hashes: list[str]) -> bool:
        """Remember these frames; False when any of them was uploaded before (a replay)."""
        r = connect(self.redis_url)
        with r.pipeline(transaction=True) as pipe:
            for h in set(hashes):
                pipe.set(self._key("frame", h), 1, nx=True, ex=self.frame_memory_s)
            return all(pipe.execute())


def _landmarks(pixels: np.ndarray) -> np.ndarray:
    box = _one_face(pixels)
    marks = _face_recognition().face_landmarks(pixels, [box], model="large")[0]
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


def pose(marks: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, mouth) of one frame's landmarks; see the module's docstring."""
    yaw = (marks[NOSE][0] - (marks[JAW_RIGHT][0] + marks[JAW_LEFT][0]) / 2) / max(
        marks[JAW_LEFT][0] - marks[JAW_RIGHT][0], 1e-9
    )
    left, right = marks[36:42].mean(axis=0), marks[42:48].mean(axis=0)
    pitch = (marks[NOSE][1] - (left[1] + right[1]) / 2) / max(np.linalg.norm(right - left), 1e-9)
    gap = np.mean([np.linalg.norm(marks[a] - marks[b]) for a, b in INNER_LIPS])
    mouth = gap / max(np.linalg.norm(marks[MOUTH_CORNERS[1]] - marks[MOUTH_CORNERS[0]]), 1e-9)
    return float(yaw), float(pitch), float(mouth)


@dataclass(frozen=True)
class ActionCheck:
    """Whether the frames of each step showed the step's action, with what was measured."""

    ok: bool
    message: str
    steps: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"ok": self.ok, "steps": self.steps}


def _shown(action: str, moves: np.ndarray) -> bool:
    """Whether the moves (yaw, pitch, mouth) of one step's frames from the baseline show `action`:
    a turn must be the step's largest turn and go the asked way; a nod or an open mouth must reach
    its threshold in some frame, the step not being a turn (its median turn under TURN)."""
    yaw = moves[:, 0]
    if action in ("left", "right"):
        largest = yaw[np.argmax(np.abs(yaw))]
        return bool(abs(largest) >= TURN and (largest > 0) == (action == "left"))
    if np.median(np.abs(yaw)) >= TURN:
        return False
    if action == "nod":
        return bool(np.abs(moves[:, 1]).max() >= NOD)
    return bool(moves[:, 2].max() >= MOUTH)


def check_actions(actions: tuple[str, ...], marks: list[np.ndarray], steps: list[int]) -> ActionCheck:
    """Whether the frames (their landmarks, each with the index of the step it was taken in; step
    0 is the look at the camera) show `actions` in order. Yaw is signed as the camera sees it,
    unmirrored: turning to one's left moves the nose tip to the image's right."""
    poses = np.array([pose(m) for m in marks])
    taken = np.array(steps)
    if not (taken == 0).any():
        return ActionCheck(False, "没有拍到正对镜头的画面，请按提示先正对镜头")
    baseline = np.median(poses[taken == 0], axis=0)
    report, missing = [], []
    for k, action in enumerate(actions, start=1):
        moves = poses[taken == k] - baseline
        shown = len(moves) > 0 and _shown(action, moves)
        report.append(
            {
                "step": k,
                "asked": action,
                "shown": shown,
                "frames": len(moves),
                "yaw": round(float(moves[np.abs(moves[:, 0]).argmax(), 0]), 3) if len(moves) else None,
                "pitch": round(float(np.abs(moves[:, 1]).max()), 3) if len(moves) else None,
                "mouth": round(float(moves[:, 2].max()), 3) if len(moves) else None,
            }
        )
        if not shown:
            missing.append(f"第{k + 1}步（{PROMPTS[action].removeprefix('请')}）")
    if missing:
        return ActionCheck(False, f"{'、'.join(missing)}没有做到，请点“开始”后按提示的顺序做动作", report)
    return ActionCheck(True, "动作正确", report)


def _step_indices(steps: list[int] | None, frames: int, challenge: Challenge) -> list[int]:
    if steps is None or len(steps) != frames or any(s not in range(len(challenge.steps)) for s in steps):
        raise FaceError("画面和动作步骤对不上，请点“开始”重新刷脸")
    if steps != sorted(steps):
        raise FaceError("画面的顺序不对，请点“开始”重新刷脸")
    return steps


@dataclass(frozen=True)
class Verdict:
    """One attempt: the face (the engine's match, planar liveness) and the challenge's actions."""

    face: FaceResult
    actions: ActionCheck | None

    @property
    def actions_ok(self) -> bool:
        return self.actions is None or self.actions.ok

    @property
    def passed(self) -> bool:
        return self.face.passed and self.actions_ok

    @property
    def review(self) -> bool:
        """Live, the actions done, and the match in the band an officer decides."""
        return self.face.review and self.actions_ok


def verify(
    match: Matcher,
    uploads: list[bytes],
    min_motion: float,
    challenge: Challenge | None = None,
    steps: list[int] | None = None,
) -> Verdict:
    """Check the frames of one attempt: liveness over the frames, the face engine's `match` of
    the selfie (the most frontal frame; with a challenge, of its look at the camera), and, given
    the attempt's challenge, that they show its actions in order (`steps[i]`: frame i's step).

    Raises FaceError (not an image or too large, no face, several faces, poor quality, too few
    frames, steps that do not fit the challenge) before any decision.
    """
    if not MIN_FRAMES <= len(uploads) <= MAX_FRAMES:
        raise FaceError(f"需要{MIN_FRAMES}到{MAX_FRAMES}张连续画面，请重新拍摄")
    taken = _step_indices(steps, len(uploads), challenge) if challenge is not None else None
    check_uploads(uploads)
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
    candidates = [i for i in range(len(marks)) if taken is None or taken[usable[i]] == 0] or list(range(len(marks)))
    frontal = min(candidates, key=lambda i: turn(marks[i]))
    face = FaceResult(
        match=match(uploads[usable[frontal]]),
        motion=moved,
        min_motion=min_motion,
        live=moved >= min_motion,
        image_sha256=hashes_,
    )
    if challenge is None or taken is None:
        return Verdict(face, None)
    return Verdict(face, check_actions(challenge.actions, marks, [taken[i] for i in usable]))
