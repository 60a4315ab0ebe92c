"""The credit-bureau emulator and clients.bureau.BureauClient."""

from __future__ import annotations

import time

import pytest
import requests

from clients.bureau import BureauClient, BureauRejected, BureauUnavailable, CreditReport
from emulators import serve_in_thread
from emulators.bureau.api import create_app, id_number_valid, risk_class, with_check_digit
from tests.conftest import free_port

ZHANG = "321283197503120119"  # demo customer 张建国: 16th digit 1 -> clean
SUN = "321283199211030882"  # demo spouse 孙丽: 16th digit 8 -> past overdue
SERIOUS = with_check_digit("32128319800101091")  # 16th digit 9 -> overdue now


def ask(client, **over):
    body = {"id_number": ZHANG, "name": "张建国", "authorization_id": "auth-1", "purpose": "loan_approval"}
    body.update(over)
    return client.post("/v1/reports", json=body)


@pytest.fixture
def client():
    return create_app().test_client()


def test_id_numbers_and_the_documented_rule():
    assert id_number_valid(ZHANG) and id_number_valid("32128319820820033X") and id_number_valid(SERIOUS)
    assert not id_number_valid("321283197503120118") and not id_number_valid("12345")
    assert [risk_class(i) for i in (ZHANG, SUN, SERIOUS)] == ["clean", "past_overdue", "serious"]


def test_report_is_realistic_and_deterministic(client):
    first = ask(client)
    assert first.status_code == 201
    a = first.get_json()
    b = ask(client, authorization_id="auth-2").get_json()
    assert a["report_id"] != b["report_id"]
    for part in ("subject", "summary", "loans", "credit_cards", "overdue_records", "queries"):
        assert a[part] == b[part], part
    assert a["subject"]["name"] == "张建国" and a["subject"]["gender"] == "男"
    assert a["subject"]["birth_date"] == "1975-03-12"
    assert a["query"] == {
        "authorization_id": "auth-1",
        "purpose": "loan_approval",
        "purpose_label": "贷款审批",
        "institution": "阳光农村商业银行",
    }
    assert a["summary"]["risk_class"] == "clean" and a["overdue_records"] == []
    for loan in a["loans"]:
        assert {"institution", "type", "amount", "balance", "status", "repayment_24m"} <= set(loan)
        assert len(loan["repayment_24m"]) == 24
    assert client.get(f"/v1/reports/{a['report_id']}").get_json() == a


def test_negative_items_follow_the_rule(client):
    past = ask(client, id_number=SUN, name="孙丽").get_json()
    assert 1 <= len(past["overdue_records"]) <= 3
    assert all(r["overdue_months"] == 1 for r in past["overdue_records"])
    assert past["summary"]["current_overdue_amount"] == 0
    serious = ask(client, id_number=SERIOUS, name="王五").get_json()
    assert serious["summary"]["current_overdue_amount"] > 0
    assert serious["summary"]["max_overdue_months"] >= 3
    assert any(loan["status"] == "overdue" and loan["five_class"] == "次级" for loan in serious["loans"])
    assert serious["summary"]["queries_last_6m"] >= 6


@pytest.mark.parametrize(
    "over, code",
    [
        ({"id_number": "321283197503120118"}, "invalid_id_number"),
        ({"purpose": "curiosity"}, "invalid_purpose"),
        ({"authorization_id": ""}, "invalid_request"),
    ],
)
def test_bad_requests(client, over, code):
    res = ask(client, **over)
    assert res.status_code == 400 and res.get_json()["error"]["code"] == code


def test_faults_and_query_log(client):
    client.post("/_emulator/faults", json={"mode": "fail", "count": 2, "status": 503})
    assert ask(client).status_code == 503
    assert ask(client).status_code == 503
    assert ask(client).status_code == 201
    client.post("/_emulator/faults", json={"mode": "slow", "delay": 0.2})
    started = time.monotonic()
    assert ask(client).status_code == 201 and time.monotonic() - started >= 0.2
    log = client.get("/_emulator/queries").get_json()
    assert [q["authorization_id"] for q in log] == ["auth-1", "auth-1"]
    client.post("/_emulator/reset")
    assert client.get("/_emulator/queries").get_json() == []


@pytest.fixture
def bureau():
    with serve_in_thread(create_app()) as base:
        yield base


def test_client_returns_a_report(bureau):
    report = BureauClient(bureau, timeout=5).query_report(SUN, "孙丽", "auth-9", purpose="spouse_joint_review")
    assert isinstance(report, CreditReport)
    assert report.subject["id_number"] == SUN and report.has_overdue_records and not report.has_current_overdue
    assert report.raw["query"]["authorization_id"] == "auth-9"
    serious = BureauClient(bureau).query_report(SERIOUS, "王五", "auth-10")
    assert serious.has_current_overdue and serious.total_loan_balance > 0


def test_client_raises_on_failures(bureau):
    client = BureauClient(bureau, timeout=0.5)
    requests.post(f"{bureau}/_emulator/faults", json={"mode": "fail", "status": 502}, timeout=5)
    with pytest.raises(BureauUnavailable, match="502"):
        client.query_report(ZHANG, "张建国", "auth-1")
    requests.post(f"{bureau}/_emulator/faults", json={"mode": "slow", "delay": 1.5}, timeout=5)
    with pytest.raises(BureauUnavailable, match="did not answer"):
        client.query_report(ZHANG, "张建国", "auth-1")
    with pytest.raises(BureauRejected) as info:
        client.query_report("321283197503120118", "张建国", "auth-1")
    assert info.value.status == 400 and info.value.code == "invalid_id_number"
    with pytest.raises(BureauUnavailable, match="unreachable"):
        BureauClient(f"http://127.0.0.1:{free_port()}", timeout=1).query_report(ZHANG, "张建国", "auth-1")
    with pytest.raises(ValueError):
        client.query_report(ZHANG, "张建国", "auth-1", purpose="curiosity")
