"""Reference faces: a photo is checked (JPEG/PNG, size, exactly one face) before anything is
written; replacing keeps the history; the bulk import reports refused rows and is idempotent;
the demo villagers get their references from the shared test photos."""

from __future__ import annotations

import io
import logging
import shutil
from dataclasses import replace
from datetime import timedelta

import pytest
from PIL import Image
from sqlalchemy import func, select

from auth_flow import enrolment, faces
from auth_flow.__main__ import main as auth_flow_cli
from auth_flow.tokens import reissue_for_application
from lending.customers import by_id_number, by_openid
from sunshine.db import unit_of_work
from sunshine.demo import DEMO, demo_faces_dir, load_demo_references
from sunshine.launcher import prepare
from sunshine.models import AuditEntry, Authorization, FaceReference
from sunshine.settings import Settings
from tests.conftest import TEST_SECRET
from tests.unit import auth_media as media
from tests.unit.lending_helpers import service as lending_service
from tests.unit.test_auth_flow import authorize

ZHANG, LI, WANG = "321283197503120119", "321283197706050229", "32128319820820033X"


def counts(url: str) -> tuple[int, int]:
    with unit_of_work(url) as s:
        return (
            s.scalar(select(func.count()).select_from(FaceReference)),
            s.scalar(select(func.count()).select_from(AuditEntry)),
        )


def enrol(url: str, image: bytes, id_number: str = ZHANG, source: str = "id_card") -> FaceReference:
    with unit_of_work(url) as s:
        customer = by_id_number(s, TEST_SECRET, id_number)
        ref = enrolment.enroll_reference(s, TEST_SECRET, customer, image, "officer:officer01", source)
        s.flush()
        s.expunge(ref)
        return ref


def test_a_good_photo_is_enrolled_sealed_and_replacing_it_keeps_the_history(demo_db_url):
    first = enrol(demo_db_url, media.image("obama.jpg"))
    assert first.active and first.source == "id_card" and first.enrolled_by == "officer:officer01"
    assert first.image_sha256 == faces.sha256(media.image("obama.jpg"))
    sealed = faces.unseal_encoding(TEST_SECRET, first.encoding_sealed)
    assert sealed.shape == (128,)
    assert enrol(demo_db_url, media.image("obama.jpg")).id == first.id  # the same photo: nothing new
    assert counts(demo_db_url)[0] == 1

    second = enrol(demo_db_url, media.image("obama2.jpg"), source="station_photo")
    with unit_of_work(demo_db_url) as s:
        customer = by_id_number(s, TEST_SECRET, ZHANG)
        assert enrolment.reference_of(s, customer.id).id == second.id
        assert [(r.id, r.active) for r in enrolment.history(s, customer.id)] == [(second.id, True), (first.id, False)]
        actions = s.execute(
            select(AuditEntry.action, AuditEntry.detail)
            .where(AuditEntry.action.like("face_reference.%"))
            .order_by(AuditEntry.id)
        ).all()
    assert [a for a, _ in actions] == ["face_reference.enrolled", "face_reference.replaced"]
    assert actions[1][1]["replaced"] == [first.id] and actions[1][1]["source"] == "station_photo"


def gif_of(name: str) -> bytes:
    out = io.BytesIO()
    Image.open(io.BytesIO(media.image(name))).save(out, format="GIF")
    return out.getvalue()


@pytest.mark.parametrize(
    "image,error,message",
    [
        (lambda: media.image("dogs_no_face.jpg"), faces.NoFace, "没有检测到人脸"),
        (lambda: media.image("two_people.jpg"), faces.SeveralFaces, "多张人脸"),
        (lambda: gif_of("obama.jpg"), faces.NotAnImage, "只能登记JPEG或PNG"),
        (lambda: b"%PDF-1.4 not a photo", faces.NotAnImage, "只能登记JPEG或PNG"),
        (lambda: media.image("obama.jpg")[:3000], faces.NotAnImage, "照片文件已损坏"),
        (lambda: b"", faces.NotAnImage, "没有收到照片"),
        (lambda: b"\xff\xd8\xff" + bytes(enrolment.MAX_PHOTO_BYTES), enrolment.PhotoTooLarge, "照片太大"),
    ],
    ids=["no-face", "two-faces", "gif", "not-an-image", "cut-off", "empty", "too-large"],
)
def test_a_refused_photo_says_why_and_changes_nothing(demo_db_url, image, error, message):
    enrol(demo_db_url, media.image("obama.jpg"))
    before = counts(demo_db_url)
    with pytest.raises(error, match=message):
        enrol(demo_db_url, image())
    assert counts(demo_db_url) == before
    with unit_of_work(demo_db_url) as s:  # the earlier reference is still the active one
        ref = enrolment.reference_of(s, by_id_number(s, TEST_SECRET, ZHANG).id)
        assert ref.image_sha256 == faces.sha256(media.image("obama.jpg"))


def test_a_phone_s_full_resolution_photo_is_enrolled():
    """More pixels than a camera frame may have (faces.MAX_PIXELS): an officer's phone photo."""
    out = io.BytesIO()
    big = Image.open(io.BytesIO(media.image("obama.jpg"))).resize((3000, 3750))
    big.save(out, format="JPEG", quality=85)
    assert big.width * big.height > faces.MAX_PIXELS
    assert enrolment.check_photo(out.getvalue()).encoding.shape == (128,)


def test_a_png_is_enrolled():
    out = io.BytesIO()
    Image.open(io.BytesIO(media.image("biden.jpg"))).save(out, format="PNG")
    assert enrolment.check_photo(out.getvalue()).encoding.shape == (128,)


@pytest.fixture
def photo_dir(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("obama.jpg", "biden.jpg", "two_people.jpg", "dogs_no_face.jpg"):
        shutil.copy(media.FACES / name, folder / name)
    (tmp_path / "secret.jpg").write_bytes(media.image("kit_harington_john1.jpeg"))
    return folder


IMPORT_CSV = (
    "id_number,photo\n"
    f"{ZHANG},obama.jpg\n"  # 2
    f"{LI},biden.jpg\n"  # 3
    f"{WANG},two_people.jpg\n"  # 4
    "321283196802010556,missing.jpg\n"  # 5
    "110101199003070011,obama.jpg\n"  # 6: valid, but not the bank's customer
    "12345,obama.jpg\n"  # 7
    "321283199007180779,../secret.jpg\n"  # 8: outside the folder
    "321283198604251024,dogs_no_face.jpg\n"  # 9
)


def test_bulk_import_reports_refused_rows_and_a_rerun_changes_nothing(demo_db_url, photo_dir, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", demo_db_url)
    monkeypatch.setenv("SECRET_KEY", TEST_SECRET)
    sheet = photo_dir.parent / "people.csv"
    sheet.write_text(IMPORT_CSV, encoding="utf-8")

    assert auth_flow_cli(["enrol-references", str(sheet), str(photo_dir), "--officer", "officer01"]) == 1
    out = capsys.readouterr().out
    assert "8 rows: 2 enrolled, 0 replaced, 0 unchanged, 6 refused" in out
    assert "[1/8] line 2 3212**********0119: enrolled" in out
    refused = [line for line in out.splitlines() if line.startswith("refused:")]
    assert refused == [
        "refused: line 4, file two_people.jpg, 3212**********033X: 照片中有多张人脸，登记的照片里只能有本人一张脸",
        "refused: line 5, file missing.jpg, 3212**********0556: 照片文件不存在",
        "refused: line 6, file obama.jpg, 1101**********0011: 银行没有这个身份证号的客户",
        "refused: line 7, file obama.jpg, *****: 身份证号应为18位，最后一位可以是数字或X",
        "refused: line 8, file ../secret.jpg, 3212**********0779: 照片文件名不对（只能是照片文件夹里的文件名）",
        "refused: line 9, file dogs_no_face.jpg, 3212**********1024: "
        "照片中没有检测到人脸，请换一张本人正面、清晰的照片",
    ]
    assert ZHANG not in out and LI not in out  # ID numbers only masked
    after_first = counts(demo_db_url)
    assert after_first[0] == 2

    assert auth_flow_cli(["enrol-references", str(sheet), str(photo_dir), "--officer", "officer01"]) == 1
    assert "8 rows: 0 enrolled, 0 replaced, 2 unchanged, 6 refused" in capsys.readouterr().out
    assert counts(demo_db_url) == after_first  # nothing new, not even audit entries

    (photo_dir / "two_people.jpg").write_bytes(media.image("obama2.jpg"))  # the officer fixes a photo
    sheet.write_text(IMPORT_CSV.replace("biden.jpg", "obama.jpg"), encoding="utf-8")
    auth_flow_cli(["enrol-references", str(sheet), str(photo_dir), "--officer", "officer01"])
    assert "8 rows: 1 enrolled, 1 replaced, 1 unchanged, 5 refused" in capsys.readouterr().out


def test_a_csv_without_its_columns_is_refused_whole(demo_db_url, photo_dir, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", demo_db_url)
    monkeypatch.setenv("SECRET_KEY", TEST_SECRET)
    sheet = photo_dir.parent / "people.csv"
    sheet.write_text(f"身份证,照片\n{ZHANG},obama.jpg\n", encoding="utf-8")
    assert auth_flow_cli(["enrol-references", str(sheet), str(photo_dir), "--officer", "officer01"]) == 2
    assert "id_number,photo" in capsys.readouterr().err
    assert counts(demo_db_url)[0] == 0


def test_the_demo_people_have_references_after_the_demo_loads(demo_db_url, caplog):
    folder = demo_faces_dir()
    assert folder is not None, "the shared test photos are missing"
    with unit_of_work(demo_db_url) as s:
        report = load_demo_references(s, TEST_SECRET, folder)
    assert (report.enrolled, report.refused) == (7, [])
    listed = [line.split(",")[0] for line in (DEMO / "face_references.csv").read_text().splitlines()[1:]]
    with unit_of_work(demo_db_url) as s:
        for id_number in listed:
            ref = enrolment.reference_of(s, by_id_number(s, TEST_SECRET, id_number).id)
            assert ref is not None and ref.source == "demo"
        zhang = enrolment.reference_of(s, by_id_number(s, TEST_SECRET, ZHANG).id)
        spouse = enrolment.reference_of(s, by_id_number(s, TEST_SECRET, LI).id)
    # 张建国 and his spouse: the frame of the moving clip Chromium's fake camera plays in the tests
    assert zhang.image_sha256 == spouse.image_sha256 == faces.sha256(media.reference())
    with unit_of_work(demo_db_url) as s:  # loading again changes nothing
        again = load_demo_references(s, TEST_SECRET, folder)
    assert (again.enrolled, again.unchanged) == (0, 7)

    with caplog.at_level(logging.WARNING), unit_of_work(demo_db_url) as s:
        assert load_demo_references(s, TEST_SECRET, demo_faces_dir("/nonexistent/faces")) is None
    assert "demo reference faces not loaded" in caplog.text and "DEMO_FACES_DIR" in caplog.text


def test_with_the_demo_references_zhang_and_his_spouse_authorize_with_the_moving_clip(demo_settings, sms):
    """What `make run` offers a new user: nobody enrols anything, the clip's frames pass."""
    demo_db_url = demo_settings.database_url
    with unit_of_work(demo_db_url) as s:
        load_demo_references(s, TEST_SECRET, demo_faces_dir())
    svc, _ = lending_service()
    with unit_of_work(demo_db_url) as s:
        zhang = by_openid(s, "o_demo_zhangjianguo")
        app = svc.apply(s, zhang.id, "sunshine_e_loan", 50_000, 12, idempotency_key="demo-refs")
        issued = reissue_for_application(s, app, "officer01", timedelta(minutes=30)).issued
        parties = {i.authorization.party_role: (i.token, i.authorization.party_name) for i in issued}
    assert sorted(parties) == ["applicant", "spouse"]
    for token, name in parties.values():
        authorize(demo_db_url, token, name, sms, demo_settings.redis_url)
    with unit_of_work(demo_db_url) as s:
        assert {a.status for a in s.scalars(select(Authorization).order_by(Authorization.id))} == {"consented"}


def test_make_run_s_prepare_loads_the_demo_references(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'run.sqlite'}"
    prepare(replace(Settings(), database_url=url, secret_key=TEST_SECRET, sunshine_demo=True))
    assert "demo reference faces: 7 rows: 7 enrolled" in capsys.readouterr().out
    with unit_of_work(url) as s:
        assert enrolment.reference_of(s, by_openid(s, "o_demo_zhangjianguo").id) is not None
        assert s.scalar(select(func.count()).select_from(FaceReference)) == 7
