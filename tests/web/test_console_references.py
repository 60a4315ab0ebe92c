"""The console's reference faces through Flask's test client on a real database and Redis:
find a customer (masked ID), enrol a photo, refusals that change nothing, replacing it
(the history says who and when), CSRF, other officers' customers, and the bulk import."""

import io
import re
import zipfile

import pytest
from sqlalchemy import func, select

from auth_flow import enrolment, faces
from lending.customers import by_id_number
from sunshine.db import unit_of_work
from sunshine.models import FaceReference, Officer
from tests.conftest import TEST_SECRET
from tests.unit import auth_media as media
from tests.web import test_console_officers

login = test_console_officers.login  # the fixture: a client logged in as a demo officer

ZHANG = "321283197503120119"


def customer_id(settings, id_number=ZHANG) -> int:
    with unit_of_work(settings.database_url) as s:
        return by_id_number(s, TEST_SECRET, id_number).id


def references(settings) -> list[tuple[str, bool, str, str]]:
    with unit_of_work(settings.database_url) as s:
        return [
            (r.image_sha256, r.active, r.source, r.enrolled_by)
            for r in s.scalars(select(FaceReference).order_by(FaceReference.id))
        ]


def upload(client, cid, image: bytes, source="id_card", csrf=None, name="photo.jpg"):
    data = {"source": source, "photo": (io.BytesIO(image), name)}
    if csrf is not False:
        data["csrf"] = csrf or client.csrf
    return client.post(f"/console/customers/{cid}/reference", data=data, content_type="multipart/form-data")


def search(client, query: str, csrf=None) -> str:
    return client.post("/console/references", data={"q": query, "csrf": csrf or client.csrf}).get_data(as_text=True)


def test_find_a_customer_by_id_number_or_name_with_the_id_masked(login, demo_settings):
    client = login()
    assert "查找客户" in client.get("/console/references").get_data(as_text=True)
    page = search(client, ZHANG)
    assert "张建国" in page and "3212**********0119" in page and ZHANG not in page and "未登记" in page
    page = search(client, "建国")
    assert "3212**********0119" in page and "李秀英" not in page
    assert "身份证号应为18位" in search(client, "32128319750312011")
    assert "没有找到" in search(client, "110101199003070011")
    assert "表单已过期" in search(client, ZHANG, csrf="forged")


def test_enrol_refuse_and_replace_a_reference_from_the_console(login, demo_settings):
    client, cid = login(), customer_id(demo_settings)
    resp = upload(client, cid, media.image("obama.jpg"))
    assert resp.status_code == 303 and resp.headers["Location"].endswith(f"/console/customers/{cid}/reference")
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "已登记张建国的照片" in page and "使用中" in page and "李经理" in page and "身份证照片" in page
    assert references(demo_settings) == [(faces.sha256(media.image("obama.jpg")), True, "id_card", "officer:officer01")]

    for image, status, message in [
        (media.image("two_people.jpg"), 422, "照片中有多张人脸"),
        (media.image("dogs_no_face.jpg"), 422, "照片中没有检测到人脸"),
        (b"GIF89a not really", 422, "只能登记JPEG或PNG"),
        (b"", 422, "没有收到照片"),
    ]:
        resp = upload(client, cid, image)
        assert resp.status_code == status and message in resp.get_data(as_text=True)
    resp = upload(client, cid, media.image("obama2.jpg"), source="selfie")
    assert resp.status_code == 400 and "请选择照片来源" in resp.get_data(as_text=True)
    resp = upload(client, cid, b"\xff\xd8" + bytes(enrolment.MAX_PHOTO_BYTES))  # just over: not decoded
    assert resp.status_code == 422 and "照片太大" in resp.get_data(as_text=True)
    resp = upload(client, cid, b"\xff\xd8" + bytes(enrolment.MAX_PHOTO_BYTES + 100_000))  # the request not read
    assert resp.status_code == 303 and "照片太大" in client.get(resp.headers["Location"]).get_data(as_text=True)
    resp = upload(client, cid, media.image("obama2.jpg"), csrf="forged")
    assert resp.status_code == 400
    assert len(references(demo_settings)) == 1  # none of these changed anything

    supervisor = login("supervisor01")
    resp = upload(supervisor, cid, media.image("obama2.jpg"), source="station_photo")
    page = supervisor.get(resp.headers["Location"]).get_data(as_text=True)
    assert "已更换张建国的照片" in page and "已被更换" in page and "周主任" in page and "服务站现场拍照" in page
    assert [(active, by) for _, active, _, by in references(demo_settings)] == [
        (False, "officer:officer01"),
        (True, "officer:supervisor01"),
    ]


def test_an_officer_cannot_enrol_another_officers_customer(login, demo_settings):
    cid = customer_id(demo_settings)
    with unit_of_work(demo_settings.database_url) as s:
        s.get(type(by_id_number(s, TEST_SECRET, ZHANG)), cid).officer_id = s.scalar(
            select(Officer.id).where(Officer.username == "supervisor01")
        )
    client = login()
    assert client.get(f"/console/customers/{cid}/reference").status_code == 403
    assert upload(client, cid, media.image("obama.jpg")).status_code == 403
    assert "没有找到" in search(client, ZHANG)
    assert references(demo_settings) == []


def test_not_logged_in_cannot_see_or_upload(make_client, demo_settings):
    client = make_client()
    assert client.get("/console/references").status_code == 302
    resp = client.post(
        f"/console/customers/{customer_id(demo_settings)}/reference",
        data={"source": "id_card", "photo": (io.BytesIO(media.image("obama.jpg")), "a.jpg")},
        content_type="multipart/form-data",
    )
    assert resp.status_code == 302 and "/console/login" in resp.headers["Location"]
    assert references(demo_settings) == []


def zip_of(**files: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in files.items():
            archive.writestr(f"photos/{name.replace('_', '.')}", data)
    return out.getvalue()


@pytest.mark.parametrize("again", [False, True], ids=["first-import", "re-import"])
def test_bulk_import_from_the_console(login, demo_settings, again):
    with unit_of_work(demo_settings.database_url) as s:  # 赵小军 is another officer's customer
        by_id_number(s, TEST_SECRET, "321283199007180779").officer_id = s.scalar(
            select(Officer.id).where(Officer.username == "supervisor01")
        )
    client = login()
    sheet = (
        f"id_number,photo\n{ZHANG},obama.jpg\n321283197706050229,two.jpg\n321283196802010556,none.jpg\n"
        "321283199007180779,obama.jpg\n"
    )
    archive = zip_of(obama_jpg=media.image("obama.jpg"), two_jpg=media.image("two_people.jpg"))

    def send():
        return client.post(
            "/console/references/import",
            data={
                "csrf": client.csrf,
                "csv": (io.BytesIO(sheet.encode()), "people.csv"),
                "photos": (io.BytesIO(archive), "photos.zip"),
            },
            content_type="multipart/form-data",
        )

    page = send().get_data(as_text=True)
    if again:
        page = send().get_data(as_text=True)
    text = re.sub(r"<[^>]+>", "", page)
    assert ("照片没变1人" if again else "新登记1人") in text and "不合格3行" in text
    assert "照片中有多张人脸" in page and "压缩包里没有这个照片文件" in page and "3212**********0229" in page
    assert "这是其他客户经理的客户" in page
    with unit_of_work(demo_settings.database_url) as s:
        assert s.scalar(select(func.count()).select_from(FaceReference)) == 1

    resp = client.post(
        "/console/references/import",
        data={"csrf": client.csrf, "csv": (io.BytesIO(b"a,b\n"), "x.csv"), "photos": (io.BytesIO(b"no zip"), "p.zip")},
        content_type="multipart/form-data",
    )
    assert "不是zip文件" in client.get(resp.headers["Location"]).get_data(as_text=True)
