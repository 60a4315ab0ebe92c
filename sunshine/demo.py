"""Demo data: the bank's products, one village's households with pre-granted
lines, WeChat bindings for a few of them, officer accounts and two service
stations; and (`load_demo_references`) reference faces for seven of the
villagers, from the public test photos in shared/testdata/faces (not copied
into the repository: read where they lie when the demo loads).

A household whose `valid_until` is left empty in demo/households.csv gets a
line valid until the end of next year (by `sunshine.clock`), so the demo never
expires. Loading it again changes nothing (within the same year).
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import numpy as np
from PIL import Image
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from auth_flow.enrolment import ImportReport as ReferenceReport
from auth_flow.enrolment import RowRefused, import_references, photos_in_folder
from lending.catalog import sync_products
from lending.customers import by_id_number
from lending.village_file import ImportReport, import_lines
from sunshine import clock
from sunshine.models import Customer, Officer, ServiceStation
from sunshine.settings import ROOT

DEMO = Path(__file__).resolve().parent.parent / "demo"
DEMO_OFFICER = "officer01"
# The shared test photos beside the checkout (../shared, or ../../shared from a worktree).
FACES_BESIDE = [base / "shared" / "testdata" / "faces" for base in (ROOT.parent, ROOT.parent.parent)]
log = logging.getLogger(__name__)


def _rows(name: str) -> list[dict[str, str]]:
    with (DEMO / name).open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def demo_valid_until() -> date:
    """The end of next year: the demo lines' validity when households.csv leaves it empty."""
    return date(clock.today().year + 1, 12, 31)


def _households() -> io.StringIO:
    rows = _rows("households.csv")
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "valid_until": row["valid_until"] or demo_valid_until().isoformat()})
    out.seek(0)
    return out


def load_demo(session: Session, secret_key: str) -> ImportReport:
    """Load every piece of demo data (idempotent). Development only: the launcher calls it when
    SUNSHINE_DEMO is on, never in production. More demo data hooks in here."""
    sync_products(session)
    for row in _rows("officers.csv"):
        if session.scalar(select(Officer).where(Officer.username == row["username"])) is None:
            session.add(
                Officer(
                    username=row["username"],
                    display_name=row["display_name"],
                    role=row["role"],
                    wecom_userid=row["wecom_userid"],
                    password_hash=generate_password_hash(row["password"]),
                    # Development data: the published demo password needs no first change.
                    must_change_password=False,
                )
            )
    session.flush()
    for row in _rows("stations.csv"):
        if session.scalar(select(ServiceStation).where(ServiceStation.code == row["code"])) is None:
            officer_id = session.scalar(select(Officer.id).where(Officer.username == row["officer"]))
            session.add(
                ServiceStation(code=row["code"], name=row["name"], village=row["village"], officer_id=officer_id)
            )
    report = import_lines(session, secret_key, _households(), actor="demo")
    officer_id = session.scalar(select(Officer.id).where(Officer.username == DEMO_OFFICER))
    session.execute(update(Customer).where(Customer.officer_id.is_(None)).values(officer_id=officer_id))
    for row in _rows("wechat_bindings.csv"):  # the Official Account's openid and/or the UnionID
        customer = by_id_number(session, secret_key, row["id_number"])
        if customer is not None and row["openid"]:
            customer.wechat_openid = row["openid"]
        if customer is not None and row["unionid"]:
            customer.unionid = row["unionid"]
    return report


def demo_leftovers(session: Session) -> list[str]:
    """What of the demo is in this database, one line each: demo officers (whose password is
    published in demo/officers.csv) and demo WeChat ids bound to customers. Production refuses
    to start while any is left."""
    usernames = [row["username"] for row in _rows("officers.csv")]
    openids = [row["openid"] for row in _rows("wechat_bindings.csv") if row["openid"]]
    unionids = [row["unionid"] for row in _rows("wechat_bindings.csv") if row["unionid"]]
    found = session.scalars(select(Officer.username).where(Officer.username.in_(usernames))).all()
    bound = session.scalars(select(Customer.wechat_openid).where(Customer.wechat_openid.in_(openids))).all()
    linked = session.scalars(select(Customer.unionid).where(Customer.unionid.in_(unionids))).all()
    return (
        [f"demo officer {name} (published password) is in the database; delete it" for name in sorted(found)]
        + [f"demo WeChat id {openid} is bound to a customer; unbind it" for openid in sorted(bound)]
        + [f"demo UnionID {unionid} is bound to a customer; unbind it" for unionid in sorted(linked)]
    )


def demo_faces_dir(configured: str = "") -> Path | None:
    """The folder of the demo's face photos: DEMO_FACES_DIR when set, else shared/testdata/faces
    beside the checkout; None when it is not there."""
    candidates = [Path(configured)] if configured else FACES_BESIDE
    return next((p for p in candidates if p.is_dir()), None)


CLIP = "short_hamilton_clip.mp4"  # the moving face the browser tests' fake camera plays
# Frames of the clip that show each step of a liveness challenge (yaw, pitch and mouth from
# auth_flow.liveness.pose, against the look frames 117-121, which also match the reference
# best): the singer turns to their left in 183-187, to their right in 153-157, lifts the
# head (a nod's pitch) in 261-263 and opens the mouth in 264-267 (in 267 wide enough; the
# head still lifted: the clip has no open mouth that is neither turned nor lifted).
POSES = {
    "look": (117, 119, 121),
    "left": (183, 185, 187),
    "right": (153, 155, 157),
    "nod": (261, 262, 263),
    "mouth": (264, 265, 267),
}
# The page's timing (auth.html): each step of a challenge lasts STEP_S, its frames taken
# from 1.0 s to 1.8 s into it; the camera starts afresh (the video from its first frame)
# when the challenge is known. The demo camera plays at FPS.
STEP_S, FPS = 2.4, 10


def challenge_video(clip_frames: Sequence[np.ndarray], actions: Sequence[str]) -> list[np.ndarray]:
    """A camera's view of the clip's singer doing `actions` after a look at the camera, one
    step of the page's timing each, then looking again; `clip_frames`: the clip's frames from
    its first (at least up to the last pose).

    Each step goes into its pose and back out (the pose's frames, the last held, then backwards:
    a sixth of the step each), so that the pose's fullest frame (the open mouth of 267, say) fills
    0.8 s to 1.6 s of the step, where the page takes its frames (1.0 s and 1.4 s; 1.8 s): the
    video may run up to 0.6 s behind the page's clock, as Chromium's fake camera does when the
    machine is busy (a late frame is not made up for), or ahead. With each pose's frames in turn
    across the step, the fullest one showed only from 1.6 s, and a camera 0.2 s late failed the
    mouth step of the demo story now and then."""
    per_step = round(STEP_S * FPS)
    out = []
    for action in ["look", *actions, "look"]:
        poses = [clip_frames[k] for k in POSES[action]]
        there_and_back = [*poses, poses[-1], *reversed(poses)]
        out += [there_and_back[i * len(there_and_back) // per_step] for i in range(per_step)]
    return out


def write_demo_camera(path: Path, faces_dir: Path, actions: Sequence[str], take: int | None = None) -> int:
    """A y4m file for Chromium's fake camera: the moving clip's singer (the face of 张建国 and
    李秀英 in the demo) answering a face challenge of `actions` at the page's timing; returns
    the number of frames. `take` (a seed): another take of the same face, every pixel moved by
    a little sensor noise, so that its frames are not the bytes of an earlier take (the page
    refuses frames it has seen: `auth_flow.liveness`, "replayed_frames")."""
    last = max(k for action in ["look", *actions] for k in POSES[action])
    frames = challenge_video(video_frames(faces_dir / CLIP, 0, last + 1), actions)
    if take is not None:
        noise = np.random.default_rng(take)
        frames = [np.clip(f.astype(np.int16) + noise.integers(-3, 4, f.shape), 0, 255).astype(np.uint8) for f in frames]
    write_y4m(path, frames, FPS)
    return len(frames)


def video_frames(video: Path, start: int = 0, stop: int | None = None) -> list[np.ndarray]:
    """Frames `start` to `stop` (RGB) of a video, decoded with imageio-ffmpeg's ffmpeg."""
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(video))
    frames = []
    try:
        width, height = next(reader)["size"]
        for i, raw in enumerate(reader):
            if stop is not None and i >= stop:
                break
            if i >= start:
                frames.append(np.frombuffer(raw, np.uint8).reshape(height, width, 3))
    finally:
        reader.close()
    return frames


def clip_frame(video: Path, index: int) -> bytes:
    """Frame `index` of a video as a JPEG (quality 90)."""
    frames = video_frames(video, index, index + 1)
    if not frames:
        raise RowRefused(f"视频不到{index + 1}帧")
    out = io.BytesIO()
    Image.fromarray(frames[0]).save(out, format="JPEG", quality=90)
    return out.getvalue()


def write_y4m(path: Path, frames: list[np.ndarray], fps: int = 30) -> None:
    """YUV4MPEG2 (4:2:0), the format Chromium's --use-file-for-fake-video-capture reads."""
    h, w = frames[0].shape[:2]
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for rgb in frames:
            y, u, v = Image.fromarray(rgb).convert("YCbCr").split()
            out.write(
                b"FRAME\n" + y.tobytes() + u.resize((w // 2, h // 2)).tobytes() + v.resize((w // 2, h // 2)).tobytes()
            )


def _demo_photos(folder: Path):
    """Photos by file name in `folder`; `clip.mp4#N` is frame N of that video."""
    files = photos_in_folder(folder)

    def read(name: str) -> bytes:
        if "#" not in name:
            return files(name)
        video, index = name.rsplit("#", 1)
        files(video)  # the same checks: inside the folder, present, not too large
        try:
            return clip_frame(folder / video, int(index))
        except ImportError:
            raise RowRefused("读取视频需要 imageio-ffmpeg（requirements.txt）") from None

    return read


def load_demo_references(session: Session, secret_key: str, faces_dir: Path | None) -> ReferenceReport | None:
    """Enrol the reference faces demo/face_references.csv lists (the moving clip's frame for
    张建国 and 李秀英, so that Chromium's fake camera playing that clip passes their face check;
    other public photos for five more), through the bulk import: a re-run changes nothing.
    Commits what the session holds first. None, with a warning, when the photos are absent."""
    if faces_dir is None or not faces_dir.is_dir():
        log.warning(
            "demo reference faces not loaded: the test photos (shared/testdata/faces) are not at %s; "
            "set DEMO_FACES_DIR. Without them demo authorizations stop at the face step "
            "(银行还没有登记您的证件照) until an officer enrols a photo in the console.",
            faces_dir or " or ".join(map(str, FACES_BESIDE)),
        )
        return None
    with (DEMO / "face_references.csv").open(encoding="utf-8") as rows:
        report = import_references(session, secret_key, rows, _demo_photos(faces_dir), "demo", source="demo")
    for r in report.refused:
        log.warning("demo reference face refused: line %s, %s, %s: %s", r.line, r.photo, r.id_masked, r.reason)
    return report
