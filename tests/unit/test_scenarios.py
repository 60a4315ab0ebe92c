"""The scenario services' content file (conversation/scenarios.py): its checks, the answers worded
for a customer, and action_faq answering from it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from bot.actions.scenarios import NOT_IN_CONTENT, ActionFaq
from conversation import scenarios
from conversation.scenarios import ContentError, answer_for, read_content
from sunshine.models import Customer
from tests.unit.bot_trackers import DEMO_OPENID, DOMAIN, UNKNOWN_OPENID, make_tracker, run, user_event

SHIPPED = {path.name: path for path in (scenarios.SCENARIOS_FILE, scenarios.PROJECTS_FILE)}


@pytest.fixture
def content(tmp_path, monkeypatch):
    """Copies of the shipped content files, in force for the test; returns an editor."""
    for path in SHIPPED.values():
        shutil.copy(path, tmp_path / path.name)
    monkeypatch.setattr(scenarios, "SCENARIOS_FILE", tmp_path / "scenarios.yml")
    monkeypatch.setattr(scenarios, "PROJECTS_FILE", tmp_path / "housing_projects.yml")
    monkeypatch.setattr(scenarios, "_loaded", scenarios._Loaded())

    def edit(name: str, change) -> Path:
        path = tmp_path / name
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        change(data)
        path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        return path

    return edit


def _refused(content, name: str, change) -> str:
    content(name, change)
    with pytest.raises(ContentError) as exc:
        read_content(scenarios.SCENARIOS_FILE, scenarios.PROJECTS_FILE)
    return str(exc.value)


class Deposits:
    """The core-banking deposit read, as DepositBalances describes it, holding a given balance."""

    def __init__(self, balance: int):
        self.balance = balance

    def deposit_balance(self, customer: Customer) -> int:
        return self.balance


# --- the shipped files ----------------------------------------------------------------------


@pytest.mark.no_database
def test_the_shipped_content_answers_every_faq_topic_of_the_domain():
    content = read_content()
    domain_topics = {k.split("/", 1)[1] for k in DOMAIN["responses"] if k.startswith("utter_faq/")}
    assert set(content.topics) == domain_topics
    assert len(content.projects) >= 3
    assert all(topic.offer for topic in content.topics.values())


# --- the checks: a clear error naming the entry and the field --------------------------------


@pytest.mark.no_database
def test_a_topic_without_an_offer_is_refused(content):
    message = _refused(content, "scenarios.yml", lambda d: d["topics"]["scenic_ticket"].pop("offer"))
    assert message == "scenarios.yml, topic scenic_ticket: offer must be non-empty text"


@pytest.mark.no_database
def test_an_empty_text_is_refused(content):
    message = _refused(content, "scenarios.yml", lambda d: d["topics"]["lost_card"].update(text="  "))
    assert message == "scenarios.yml, topic lost_card: text must be non-empty text"


@pytest.mark.no_database
def test_a_misspelt_field_is_refused(content):
    message = _refused(content, "scenarios.yml", lambda d: d["topics"]["hospital_payment"].update(ofer="x"))
    assert "topic hospital_payment: unknown field ofer" in message


@pytest.mark.no_database
def test_a_link_must_be_https(content):
    def change(d):
        d["topics"]["hospital_payment"]["links"] = [{"title": "县医院", "url": "http://hospital.example.cn"}]

    message = _refused(content, "scenarios.yml", change)
    assert message == "scenarios.yml, topic hospital_payment, link 1: url must start with https:// and have no spaces"


@pytest.mark.no_database
def test_a_mini_program_path_must_be_a_page_path(content):
    def change(d):
        d["topics"]["scenic_ticket"]["mini_program"]["path"] = "/pages/ticket"

    message = _refused(content, "scenarios.yml", change)
    assert message.startswith("scenarios.yml, topic scenic_ticket, mini_program: path '/pages/ticket'")


@pytest.mark.no_database
def test_a_next_step_may_use_only_the_name(content):
    message = _refused(
        content, "scenarios.yml", lambda d: d["topics"]["lost_card"].update(next_step="{name}您好，卡号{card}")
    )
    assert message.startswith("scenarios.yml, topic lost_card: next_step may use only {name}")


@pytest.mark.no_database
def test_an_answer_too_long_for_one_wechat_message_is_refused(content):
    message = _refused(content, "scenarios.yml", lambda d: d["topics"]["mobile_banking"].update(text="很长" * 400))
    assert message.startswith("scenarios.yml, topic mobile_banking: the answer is")
    assert "too long for one WeChat message" in message


@pytest.mark.no_database
def test_a_file_that_is_not_yaml_is_refused(content):
    scenarios.SCENARIOS_FILE.write_text("topics: [unclosed", encoding="utf-8")
    with pytest.raises(ContentError, match="^scenarios.yml: not valid YAML"):
        read_content(scenarios.SCENARIOS_FILE, scenarios.PROJECTS_FILE)


@pytest.mark.no_database
def test_a_deposit_must_be_whole_yuan(content):
    message = _refused(content, "housing_projects.yml", lambda d: d["projects"][1].update(deposit="20万"))
    assert message == "housing_projects.yml, project 中阳里学府: deposit must be a whole number of yuan above 0"


@pytest.mark.no_database
def test_two_projects_cannot_share_a_name(content):
    message = _refused(content, "housing_projects.yml", lambda d: d["projects"][2]["aliases"].append("中阳里"))
    assert message == "housing_projects.yml, project 大沙河滨河苑: the name 中阳里 is already 中阳里学府's"


@pytest.mark.no_database
def test_a_broken_edit_keeps_the_last_good_content_in_force(content, caplog):
    first = scenarios.current()
    path = content("scenarios.yml", lambda d: d["topics"]["opening_hours"].pop("offer"))
    with caplog.at_level("ERROR"):
        assert scenarios.current() is first
    assert "topic opening_hours: offer must be non-empty text" in caplog.text
    content("scenarios.yml", lambda d: d["topics"]["opening_hours"].update(offer="新的一句推荐。"))
    assert path.exists() and scenarios.current().topics["opening_hours"].offer == "新的一句推荐。"


@pytest.mark.no_database
def test_a_process_never_starts_on_broken_content(content, monkeypatch):
    from bot import action_server

    content("scenarios.yml", lambda d: d["topics"]["opening_hours"].pop("title"))
    with pytest.raises(SystemExit, match="action server not started: scenarios.yml, topic opening_hours: title"):
        action_server.main(["--port", "0"])


# --- the answers ----------------------------------------------------------------------------


@pytest.mark.no_database
def test_staff_edits_reach_the_answer_without_retraining(content):
    content("scenarios.yml", lambda d: d["topics"]["opening_hours"].update(text="春节期间网点初四开门。"))
    assert answer_for("opening_hours").text == "春节期间网点初四开门。"


@pytest.mark.no_database
def test_every_answer_ends_with_its_one_offer():
    for topic in scenarios.topics():
        answer = answer_for(topic, Customer(name="张建国"), "凤鸣府")
        assert answer.chat_text("wxappid").endswith("\n" + answer.offer)
        assert answer.chat_text().count(answer.offer) == 1


@pytest.mark.no_database
def test_a_known_customer_is_offered_the_next_step():
    assert answer_for("scenic_ticket").next_step is None
    step = answer_for("scenic_ticket", Customer(name="张建国")).next_step
    assert step and step.startswith("张**您好") and "张建国" not in step


@pytest.mark.no_database
def test_the_mini_program_page_is_a_wechat_link_in_the_chat():
    text = answer_for("scenic_ticket").chat_text("wx0000000000demo02")
    assert 'data-miniprogram-appid="wx0000000000demo02"' in text
    assert 'data-miniprogram-path="pages/services/ticket"' in text
    assert answer_for("scenic_ticket").as_dict()["mini_program"] == {"title": "买门票", "path": "pages/services/ticket"}


@pytest.mark.no_database
def test_deposit_verification_without_a_project_lists_the_projects():
    step = answer_for("housing_lottery", None, "摇号验资咋弄").next_step or ""
    assert "凤鸣府" in step and "30万元" in step and "中阳里学府" in step and "20万元" in step
    assert "哪个楼盘" in step


@pytest.mark.no_database
def test_deposit_verification_for_a_project_says_what_it_requires_and_what_to_bring():
    step = answer_for("housing_lottery", None, "中阳里摇号要验资多少").next_step or ""
    assert step.startswith("中阳里学府摇号要验资20万元")
    assert "身份证" in step and "绑定微信后" in step


@pytest.mark.no_database
def test_deposit_verification_for_a_known_customer_whose_deposit_covers_it():
    step = answer_for("housing_lottery", Customer(name="张建国"), "凤鸣府验资", Deposits(320_000)).next_step or ""
    assert "凤鸣府摇号要验资30万元" in step
    assert "张**您好，您在咱们银行的存款够验资金额" in step


@pytest.mark.no_database
def test_deposit_verification_for_a_known_customer_short_of_it():
    step = answer_for("housing_lottery", Customer(name="张建国"), "滨河苑", Deposits(100_000)).next_step or ""
    assert "还差5万元" in step and "身份证" in step


# --- action_faq -----------------------------------------------------------------------------


def faq_event(text: str, topic: str) -> dict:
    event = user_event(text, "faq")
    event["parse_data"]["response_selector"] = {
        "all_retrieval_intents": ["faq"],
        "faq": {"response": {"intent_response_key": f"faq/{topic}", "confidence": 0.95}, "ranking": []},
    }
    return event


def test_action_faq_answers_from_the_content_for_a_bound_customer(bank_env):
    text, events = run(ActionFaq(), make_tracker(DEMO_OPENID, faq_event("门票咋买", "scenic_ticket")))
    assert text.startswith("寒山公园门票可以网上买")
    assert "张**您好" in text and "张建国" not in text
    assert text.endswith(answer_for("scenic_ticket").offer)
    assert events == []


def test_action_faq_for_a_customer_not_bound(bank_env):
    text, _ = run(ActionFaq(), make_tracker(UNKNOWN_OPENID, faq_event("凤鸣府验资要多少", "housing_lottery")))
    assert "凤鸣府摇号要验资30万元" in text and "绑定微信后" in text


def test_action_faq_for_a_topic_the_content_lacks(bank_env):
    text, _ = run(ActionFaq(), make_tracker(DEMO_OPENID, faq_event("理财产品有哪些", "wealth")))
    assert text == NOT_IN_CONTENT
