"""Credit-report authorization: issue a request for one party and send the H5 link."""
from __future__ import annotations

from datetime import timedelta
from typing import Any, Dict, List, Text

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from auth_flow.qr import authorization_url
from auth_flow.service import issue
from bot.actions.common import BankAction, database, latest_entity, openid_of, settings
from lending.customers import by_openid, spouse_of
from sunshine.protect import mask_name

REQUESTED_BY = "bot"


class ActionStartAuthorization(BankAction):
    """Issues an authorization for the applicant (or the spouse) and sends the link."""

    def name(self) -> Text:
        return "action_start_authorization"

    def answer(self, dispatcher: CollectingDispatcher, tracker: Tracker,
               domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        # Only what the customer said just now: an earlier "我老婆" must not
        # send the next link to the spouse.
        role = latest_entity(tracker, "party_role") or "applicant"
        events = [SlotSet("party_role", None)] if tracker.get_slot("party_role") else []
        cfg = settings()
        with database(cfg) as session:
            customer = by_openid(session, openid_of(tracker))
            if customer is None:
                dispatcher.utter_message(text=(
                    "征信授权要先确认是您本人。我这边还没查到您微信绑定的客户信息，"
                    "回复“转人工”，客户经理核实身份后会把授权链接发给您。"))
                return events
            if role == "guarantor":
                dispatcher.utter_message(text=(
                    "担保人的征信授权，要先由客户经理登记担保人信息，再把授权链接发给担保人本人。"
                    "回复“转人工”，客户经理会跟您对接。"))
                return events
            party = customer
            if role == "spouse":
                party = spouse_of(session, customer)
                if party is None:
                    dispatcher.utter_message(text=(
                        "系统里还没有您爱人的信息，没法发授权链接。"
                        "回复“转人工”，请客户经理帮您补登记。"))
                    return events
            ttl = timedelta(seconds=cfg.authorization_ttl_s)
            issued = issue(session, customer, party, role, REQUESTED_BY, ttl)
            party_name, party_id = party.name, party.id_masked
        url = authorization_url(cfg.public_base_url, issued.token)
        valid = _validity(ttl)
        if role == "spouse":
            text = (f"这是给您爱人{mask_name(party_name)}（身份证{party_id}）的征信授权链接，"
                    f"请转给本人打开，核对信息后刷脸完成授权，{valid}：\n{url}")
        else:
            text = (f"请点开下面的链接，核对信息后刷脸，就能完成征信查询授权，{valid}：\n{url}\n"
                    "授权只用于这次贷款审批，链接请不要转给别人。")
        dispatcher.utter_message(text=text)
        return events


def _validity(ttl: timedelta) -> str:
    minutes = int(ttl.total_seconds() // 60)
    if minutes >= 120 and minutes % 60 == 0:
        return f"{minutes // 60}小时内有效"
    return f"{max(minutes, 1)}分钟内有效"
