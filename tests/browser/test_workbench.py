"""The officer's workbench in Chromium, against the web app over real HTTP on the demo village
(no whole stack): the console lands on the home page, a row leads to the conversation, a canned
reply goes into the reply box where the officer edits it; the supervisor's figures are drawn as
SVG. Screenshots are kept in the test's tmp_path (home.png, hand_off.png, figures.png)."""

from __future__ import annotations

from dataclasses import replace

from emulators import serve_in_thread
from handoff import service as h
from handoff.canned import load_canned_replies
from sunshine.db import unit_of_work
from tests.unit.lending_helpers import import_village, person_id, service
from tests.unit.test_four_eyes import under_review
from tests.unit.test_lending_applications import ZHANG
from webhooks import create_app


def log_in(page, web: str, username: str) -> None:
    page.goto(web + "/console/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "sunshine-demo")
    page.click("button[type=submit]")


def test_home_page_canned_reply_and_figures_in_chromium(demo_settings, launch_chromium, tmp_path):
    url = demo_settings.database_url
    with unit_of_work(url) as s:
        hand_off_id = h.request_hand_off(s, ZHANG, "customer_request")[0].id
        h.request_hand_off(s, "o_stranger", "bot_unavailable")
        import_village(
            s,
            tmp_path,
            [f"东湖村,东一,{person_id('19700101', seq=n)},,farmer,{n * 30000},2027-12-31,," for n in (1, 2, 3)],
        )
    under_review(url, service()[0], 150_000)
    with serve_in_thread(create_app(replace(demo_settings))) as web:
        browser = launch_chromium()
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        log_in(page, web, "officer01")
        page.wait_for_selector("#work-hand_offs")
        assert page.url.endswith("/console/home")
        assert page.inner_text("#work-hand_offs .count") == "1"
        assert page.inner_text("#work-decisions .count") == "1"
        page.screenshot(path=tmp_path / "home.png", full_page=True)

        page.click(f'#work-hand_offs a[href="/console/hand-offs/{hand_off_id}"]')
        page.wait_for_selector("#reply")
        page.fill("#reply-text", "张师傅，")
        page.focus("#reply-text")
        page.keyboard.press("End")
        reply = load_canned_replies()[1].replies[0]
        page.select_option("#canned-replies", label=reply.title)
        assert page.input_value("#reply-text") == "张师傅，" + reply.text  # inserted at the cursor
        assert page.input_value("#canned-replies") == ""  # ready for the next one
        page.keyboard.type("有问题再找我。")
        assert page.input_value("#reply-text").endswith(reply.text + "有问题再找我。")
        page.screenshot(path=tmp_path / "hand_off.png", full_page=True)

        page.context.clear_cookies()
        log_in(page, web, "supervisor01")
        page.wait_for_selector("#work-second_approvals")
        page.goto(web + "/console/figures")
        page.wait_for_selector("#figures-table")
        assert page.locator("figure.chart svg").count() == 8
        assert page.locator("figure.chart svg rect").count() > 20
        assert "东湖村" in page.inner_text("#figures-table") and "全支行" in page.inner_text("#figures-table")
        page.screenshot(path=tmp_path / "figures.png", full_page=True)
