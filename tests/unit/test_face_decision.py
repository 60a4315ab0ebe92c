"""The face decision (auth_flow.face_match, face_engines, faces' upload limits and quality gates),
the certified engine against the FaceID emulator over real HTTP, and `evaluate-faces` on the
development set (../shared/testdata/faces-eval)."""

from __future__ import annotations

import base64
import io
import json
import os
import struct
import zlib
from pathlib import Path

import dlib
import numpy as np
import pytest
import requests
from PIL import Image, ImageEnhance, ImageFilter
from sqlalchemy import select

from auth_flow import face_match, faces, liveness
from auth_flow.__main__ import main as auth_main
from auth_flow.consent import give_biometric_consent
from auth_flow.face_engines import CertifiedEngine, EngineUnavailable, LocalEngine, NoReference, cohort_of
from auth_flow.identity import check_identity
from auth_flow.tokens import find_by_token, party_of
from clients.faceid import FaceIdClient, FaceIdError, tc3_authorization
from emulators import serve_in_thread
from emulators.faceid.api import create_app as faceid_app
from sunshine.db import unit_of_work
from sunshine.models import Authorization, ConsentEvidence, Customer
from sunshine.protect import seal, unseal
from tests.conftest import TEST_SECRET
from tests.unit import auth_media as media
from tests.unit.test_auth_flow import CLIENT, MAX, MOTION, bound, face_attempt, id_digits, second_factor

EVAL = media.FACES.parent / "faces-eval"
SECRET_ID, SECRET_KEY = "AKIDtest0000000000000000000000000000", "test-faceid-key"


# --- upload limits: the attack first, then its refusal ---------------------------------------


def png_bomb(width: int, height: int) -> bytes:
    """A valid 1-bit PNG of width x height black pixels: a few KB that decode to width*height pixels."""
    raw = zlib.compress(b"".join(b"\0" + bytes((width + 7) // 8) for _ in range(height)), 9)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def jpeg_claiming(width: int, height: int) -> bytes:
    """A small real JPEG whose frame header (SOF0) claims width x height."""
    data = bytearray(media.jpeg(np.full((48, 64, 3), 128, np.uint8)))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


@pytest.fixture
def decoded(monkeypatch):
    """The sizes at which images were actually decoded (Image.load spied on)."""
    sizes: list[tuple[int, int]] = []
    original = Image.Image.load

    def load(self):
        sizes.append(self.size)
        return original(self)

    monkeypatch.setattr(Image.Image, "load", load)
    return sizes


def test_a_decompression_bomb_is_refused_before_decoding(decoded):
    bomb = png_bomb(9000, 9000)
    assert len(bomb) < 40_000  # 81 megapixels in a few KB: decoding it is the attack
    huge_jpeg = jpeg_claiming(8000, 6000)  # a 48-megapixel JPEG header
    giant_jpeg = jpeg_claiming(60000, 60000)  # past PIL's own bomb limit
    assert Image.open(io.BytesIO(bomb)).size == (9000, 9000)
    assert Image.open(io.BytesIO(huge_jpeg)).size == (8000, 6000)
    decoded.clear()
    with pytest.raises(faces.TooLarge, match="400万像素"):
        faces.load_image(bomb)
    with pytest.raises(faces.TooLarge):
        faces.load_image(huge_jpeg)
    with pytest.raises(faces.TooLarge, match="像素太多"):  # the same answer as ours
        faces.load_image(giant_jpeg)
    assert decoded == []  # refused from the header: not one pixel decoded


def test_only_jpeg_and_png_are_decoded(decoded):
    buf = io.BytesIO()
    Image.fromarray(np.full((200, 200, 3), 90, np.uint8)).save(buf, format="BMP")
    decoded.clear()
    for data in (buf.getvalue(), b"GIF89a\x01\x00\x01\x00", b"II*\x00" + b"\0" * 64, b"%PDF-1.4"):
        with pytest.raises(faces.NotAnImage, match="JPEG或PNG"):
            faces.load_image(data)
    with pytest.raises(faces.NotAnImage, match="不是照片"):  # the magic bytes of a JPEG, then garbage
        faces.load_image(b"\xff\xd8\xff\xe0" + b"garbage" * 10)
    assert decoded == []


def test_jpeg_is_decoded_in_draft_mode(decoded):
    big = media.jpeg(Image.open(io.BytesIO(media.image("obama.jpg"))).convert("RGB").resize((1920, 1440)))
    decoded.clear()
    pixels = faces.load_image(big)
    assert pixels.shape[1] == faces.WORK_WIDTH
    assert decoded and decoded[0][0] < 1920  # the DCT already scaled it down: the full frame was never decoded


def test_a_request_of_many_large_frames_is_refused_before_any_matching():
    frames = [jpeg_claiming(2000, 1000)] * 12  # 12 frames of 2 megapixels each: 24 in all

    def never(selfie):
        raise AssertionError("matched despite the limits")

    with pytest.raises(faces.TooLarge, match="1600万像素"):
        liveness.verify(never, frames, MOTION)


# --- quality gates -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change,advice",
    [
        (lambda img: ImageEnhance.Brightness(img).enhance(0.12), "光线太暗"),
        (lambda img: ImageEnhance.Brightness(img).enhance(3.0), "光线太强"),
        (lambda img: img.filter(ImageFilter.GaussianBlur(5)), "模糊"),
        (lambda img: img.resize((img.width // 5, img.height // 5)), "人脸太小"),
    ],
)
def test_a_poor_frame_asks_for_a_better_one_saying_what_to_change(change, advice):
    img = Image.open(io.BytesIO(media.image("obama.jpg"))).convert("RGB")
    faces.encode(faces.load_image(media.jpeg(img)), check_quality=True)  # the good frame passes the gates
    with pytest.raises(faces.PoorQuality, match=advice) as caught:
        faces.encode(faces.load_image(media.jpeg(change(img))), check_quality=True)
    assert isinstance(caught.value, faces.Retake)


# --- the decision --------------------------------------------------------------------------------


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def test_the_cohort_ratio_asks_more_of_a_face_in_a_crowded_region():
    rng = np.random.default_rng(7)
    policy = face_match.Policy(cohort_min=20)
    reference = unit(rng.normal(size=128)) * 0.8
    probe = reference + unit(rng.normal(size=128)) * 0.38  # distance 0.38: the closest East-Asian impostor
    crowded = reference + rng.normal(size=(50, 128)) * 0.025  # other people about 0.28 away
    sparse = reference + rng.normal(size=(50, 128)) * 0.06  # other people about 0.68 away
    near = face_match.decide(reference, probe, crowded, policy)
    far = face_match.decide(reference, probe, sparse, policy)
    assert near.method == far.method == "cohort_ratio" and near.distance == pytest.approx(0.38)
    assert near.outcome == "fail" and far.outcome == "pass", (near, far)
    assert near.as_dict()["engine"] == "local" and near.as_dict()["cohort_size"] == 50


def test_without_a_large_enough_cohort_the_strict_distance_decides_with_a_review_band():
    policy = face_match.Policy(cohort_min=100, pass_distance=0.40, review_distance=0.50)
    reference, cohort = np.zeros(128), np.ones((99, 128))
    outcomes = {}
    for d in (0.35, 0.45, 0.55):
        probe = np.r_[d, np.zeros(127)]
        decision = face_match.decide(reference, probe, cohort, policy)
        assert decision.method == "distance" and decision.threshold == 0.40
        outcomes[d] = decision.outcome
    assert outcomes == {0.35: "pass", 0.45: "review", 0.55: "fail"}


def test_no_pass_beyond_face_recognition_s_own_tolerance_whatever_the_cohort():
    policy = face_match.Policy(cohort_min=5)
    reference, probe = np.zeros(128), np.r_[0.65, np.zeros(127)]
    cohort = np.r_[[np.r_[5.0, np.zeros(127)]] * 10]
    assert face_match.decide(reference, probe, cohort, policy).outcome == "review"


# --- evaluate-faces on the development set -------------------------------------------------------


@pytest.fixture(scope="module")
def evaluation(tmp_path_factory):
    """The encodings cache evaluate-faces keeps (by image SHA-256 and encoder settings): in
    SUNSHINE_CACHE_DIR when set (`make test` sets it per user, as Rasa's cache, and names the file by
    dlib's version), else a new one (every image encoded)."""
    if not EVAL.is_dir():
        pytest.skip(f"no evaluation set at {EVAL}")
    kept = os.environ.get("SUNSHINE_CACHE_DIR")
    if kept:
        return Path(kept) / f"face-encodings-dlib-{dlib.__version__}.json"
    return tmp_path_factory.mktemp("faces") / "encodings.json"


def test_evaluate_faces_meets_the_target_on_east_asian_faces(evaluation, capsys):
    assert auth_main(["evaluate-faces", str(EVAL), "--json", "--cache", str(evaluation)]) == 0
    report = json.loads(capsys.readouterr().out)
    east, west = report["groups"]["east_asian"], report["groups"]["western"]
    assert report["policy"]["pass_ratio"] == 0.88 and report["policy"]["engine"] == "local"
    for group in (east, west):
        assert group["same_pairs"] > 300 and group["diff_pairs"] > 5000
        assert group["frr"] == pytest.approx(group["false_rejects"] / group["same_pairs"], abs=1e-5)
        assert 0 < group["refused_images"] < 10  # several faces or none in the press photos: counted apart
        assert group["same_distance"]["median"] < group["diff_distance"]["median"]
    assert east["far"] <= 0.005 and east["frr"] <= 0.15, east
    assert west["far"] <= 0.005 and west["frr"] <= 0.15, west
    # the plain distance at the old tolerance (0.5) let many more East-Asian impostors through
    assert east["diff_distance"]["min"] < 0.5


def test_evaluate_faces_prints_a_table_and_draws_the_curves(evaluation, tmp_path, capsys):
    png = tmp_path / "eval.png"
    assert auth_main(["evaluate-faces", str(EVAL), "--cache", str(evaluation), "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert "east_asian" in out and "western" in out and str(png) in out
    assert png.read_bytes().startswith(b"\x89PNG") and Image.open(png).size[0] > 800
    assert auth_main(["evaluate-faces", str(tmp_path / "missing")]) == 2


# --- the certified engine against the FaceID emulator ---------------------------------------------


@pytest.fixture
def faceid():
    app = faceid_app({SECRET_ID: SECRET_KEY})
    with serve_in_thread(app) as url:
        yield url, app.extensions["faceid_emulator"]


def register(url: str, id_number: str, name: str, photo: bytes) -> None:
    body = {"IdCard": id_number, "Name": name, "ImageBase64": base64.b64encode(photo).decode()}
    requests.post(f"{url}/_emulator/id-photos", json=body, timeout=30).raise_for_status()


def person(id_number: str, name: str) -> Customer:
    return Customer(name=name, id_sealed=seal(TEST_SECRET, id_number))


def test_the_certified_engine_decides_by_the_service_s_similarity(faceid):
    url, state = faceid
    register(url, "11010519491231002X", "奥巴马", media.image("obama.jpg"))
    engine = CertifiedEngine(TEST_SECRET, FaceIdClient(url, SECRET_ID, SECRET_KEY), pass_sim=70, review_sim=60)
    match = engine.matcher(None, person("11010519491231002X", "奥巴马"))
    same, other = match(media.image("obama2.jpg")), match(media.image("biden.jpg"))
    assert same.outcome == "pass" and same.engine == "certified" and same.score >= 70 and same.request_id
    assert other.outcome == "fail" and other.score < 60
    assert same.as_dict()["threshold"] == 70 and same.as_dict()["method"] == "similarity"
    received = state.requests
    assert [r["Result"] for r in received] == ["Success", "FailedOperation.CompareLowSimilarity"]
    assert received[0]["IdCard"] == "110***********002X"
    with pytest.raises(faces.NoFace):
        match(media.image("dogs_no_face.jpg"))
    with pytest.raises(NoReference):
        engine.matcher(None, person("11010519491231002X", "张三"))(media.image("obama2.jpg"))
    with pytest.raises(NoReference):
        engine.matcher(None, person("110105194912310000", "奥巴马"))(media.image("obama2.jpg"))


def test_the_service_refuses_a_wrong_signature_and_its_faults_cost_no_attempt(faceid):
    url, _ = faceid
    register(url, "11010519491231002X", "奥巴马", media.image("obama.jpg"))
    with pytest.raises(FaceIdError, match="AuthFailure.SignatureFailure"):
        FaceIdClient(url, SECRET_ID, "another-key").image_recognition("11010519491231002X", "奥巴马", b"x")
    with pytest.raises(FaceIdError, match="AuthFailure.SecretIdNotFound"):
        FaceIdClient(url, "AKIDunknown", SECRET_KEY).image_recognition("11010519491231002X", "奥巴马", b"x")
    body = json.dumps({"IdCard": "11010519491231002X", "Name": "奥巴马", "ImageBase64": ""}).encode()
    host = url.split("//")[1]
    signed = tc3_authorization(SECRET_ID, SECRET_KEY, host, body, 1_700_000_000)  # a signature from 2023
    stale = requests.post(
        url + "/",
        data=body,
        timeout=10,
        headers={
            "Content-Type": "application/json; charset=utf-8",
            "X-TC-Action": "ImageRecognitionV2",
            "X-TC-Version": "2018-03-01",
            "X-TC-Timestamp": "1700000000",
            "Authorization": signed,
        },
    ).json()["Response"]
    assert stale["Error"]["Code"] == "AuthFailure.SignatureExpire"
    requests.post(f"{url}/_emulator/faults", json={"mode": "fail", "count": 1}, timeout=5)
    engine = CertifiedEngine(TEST_SECRET, FaceIdClient(url, SECRET_ID, SECRET_KEY), pass_sim=70, review_sim=60)
    with pytest.raises(EngineUnavailable, match="不计入次数"):
        engine.matcher(None, person("11010519491231002X", "奥巴马"))(media.image("obama2.jpg"))
    closed = CertifiedEngine(TEST_SECRET, FaceIdClient("http://127.0.0.1:9", SECRET_ID, SECRET_KEY, timeout=1), 70, 60)
    with pytest.raises(EngineUnavailable):
        closed.matcher(None, person("11010519491231002X", "奥巴马"))(media.image("obama2.jpg"))


def _to_face_step(url: str, token: str, name: str, sms):
    """Identity and the biometric consent done; the browser bound to the request."""
    factor = second_factor(url, token, sms)
    with unit_of_work(url) as s:
        browser = bound(check_identity(s, TEST_SECRET, token, name, id_digits(s, token), CLIENT, MAX, **factor))
        give_biometric_consent(s, token, True, browser)
    return browser


def test_the_evidence_records_which_engine_decided_and_a_retake_costs_no_attempt(
    demo_settings, application, sms, faceid
):
    db = demo_settings.database_url
    url, _ = faceid
    _, tokens, names = application
    token = tokens["spouse"]
    browser = _to_face_step(db, token, names["spouse"], sms)
    with unit_of_work(db) as s:
        party = party_of(s, find_by_token(s, token))
        register(url, unseal(TEST_SECRET, party.id_sealed), party.name, media.reference())
    # The clip's reference is a small video frame, not an ID photo: its frames reach Sim 60-70 here.
    engine = CertifiedEngine(TEST_SECRET, FaceIdClient(url, SECRET_ID, SECRET_KEY), pass_sim=55, review_sim=45)
    dark = [media.jpeg(ImageEnhance.Brightness(Image.open(io.BytesIO(f))).enhance(0.25)) for f in media.live_frames()]
    local = LocalEngine(TEST_SECRET, face_match.Policy(pass_distance=0.5, review_distance=0.5))
    retake = face_attempt(db, demo_settings.redis_url, token, dark, local, browser)
    assert not retake.ok and "光线太暗" in retake.message and retake.attempts_left == MAX
    assert face_attempt(db, demo_settings.redis_url, token, engine=engine, client=browser).ok
    with unit_of_work(db) as s:
        auth = s.scalar(select(Authorization).where(Authorization.party_role == "spouse"))
        assert auth.attempts == 0 and auth.face_verified_at is not None
        records = s.scalars(
            select(ConsentEvidence).where(ConsentEvidence.authorization_id == auth.id).order_by(ConsentEvidence.id)
        ).all()
        by_event = {r.event: r for r in records}
    assert by_event["face_retake"].detail["engine"] == "local"
    face = by_event["face_passed"].face
    assert face["engine"] == "certified" and face["threshold"] == 55 and face["score"] >= 55 and face["request_id"]


def test_the_local_engine_s_cohort_is_the_other_customers_references(demo_settings, application):
    with unit_of_work(demo_settings.database_url) as s:
        parties = s.scalars(select(Authorization.party_customer_id).order_by(Authorization.id)).all()
        cohort = cohort_of(s, TEST_SECRET, parties[0])
        assert cohort.shape == (len(set(parties)) - 1, 128)
        match = LocalEngine(TEST_SECRET, face_match.Policy()).matcher(s, s.get(Customer, parties[0]))
        decision = match(media.jpeg(media.clip_frames()[130]))
        assert decision.method == "distance" and decision.cohort_size == len(cohort)  # too few for the ratio
        assert decision.outcome == "pass" and decision.reference_sha256
        with pytest.raises(NoReference):
            stranger = s.scalar(select(Customer).where(Customer.id.notin_(parties)).limit(1))
            LocalEngine(TEST_SECRET, face_match.Policy()).matcher(s, stranger)


def test_face_settings_are_checked(tmp_path):
    from sunshine.settings import ConfigError, load

    none = tmp_path / "none"
    for bad, why in (
        ({"FACE_ENGINE": "cloud"}, "FACE_ENGINE"),
        ({"FACE_PASS_RATIO": "1.2", "FACE_REVIEW_RATIO": "1.0"}, "FACE_PASS_RATIO"),
        ({"FACE_TOLERANCE": "0.45", "FACE_REVIEW_DISTANCE": "0.40"}, "FACE_REVIEW_DISTANCE"),
        ({"FACEID_PASS_SIM": "60", "FACEID_REVIEW_SIM": "70"}, "FACEID_REVIEW_SIM"),
        ({"FACEID_URL": "faceid.tencentcloudapi.com"}, "FACEID_URL"),
    ):
        with pytest.raises(ConfigError, match=why):
            load(bad, dotenv=none)
    from sunshine.settings import Settings, production_problems

    local = " ".join(production_problems(Settings()))
    assert "FACEID" not in local  # the local engine calls no service: its key and host are not asked for
    certified = production_problems(Settings(face_engine="certified"))
    assert any(p.startswith("FACEID_SECRET_KEY is still the development default") for p in certified)
    assert any(p.startswith("FACEID_URL=") and "emulator" in p for p in certified)
    real = Settings(face_engine="certified", faceid_secret_key="x", faceid_url="https://faceid.tencentcloudapi.com")
    assert not [p for p in production_problems(real) if "FACEID" in p]


def test_a_match_in_the_review_band_goes_to_the_officer_and_costs_no_try(demo_settings, application, sms):
    from sunshine.models import HandOff

    db = demo_settings.database_url
    _, tokens, names = application
    token = tokens["guarantor"]
    browser = _to_face_step(db, token, names["guarantor"], sms)
    # the clip's frames match their reference at 0.3-0.5: with pass <= 0.2 and review <= 0.6, review
    engine = LocalEngine(TEST_SECRET, face_match.Policy(pass_distance=0.2, review_distance=0.6))
    out = face_attempt(db, demo_settings.redis_url, token, engine=engine, client=browser)
    assert not out.ok and out.review and out.face["decision"] == "review" and "已请客户经理人工核验" in out.message
    assert "不一致" not in out.message and out.attempts_left == MAX  # not evidence against the person
    with unit_of_work(db) as s:
        hand_off = s.scalar(select(HandOff).where(HandOff.reason == "face_review"))
        assert hand_off.summary["party_role"] == "guarantor" and hand_off.summary["engine"] == "local"
        event = s.scalar(select(ConsentEvidence.event).order_by(ConsentEvidence.id.desc()).limit(1))
    assert event == "face_review"
