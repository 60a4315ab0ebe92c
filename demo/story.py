"""`make demo`: the bank's story end to end through the real parts, printed as it goes.

    .venv/bin/python -m demo.story [--shots DIR]

A farmer (张建国, a demo customer) applies for a small loan in the WeChat chat (the real
bot, through `emulators.wechat.chat`); he and his spouse (李秀英) authorize the credit-report
query on the real page in Chromium, each in their own WeChat (the OAuth emulator), the face
check answered by Chromium's fake camera playing the demo face (`python -m auth_flow
demo-camera`); the reports arrive and the system approves; he signs the contract on its page;
the money is paid out through the core-banking emulator and WeChat tells him; the schedule is
shown. Then a larger loan (above the product's auto-approval limit) waits for an officer, who
logs into the console in Chromium and approves it.

It uses the stack answering at PUBLIC_BASE_URL (`make run`), else starts one as `make run`
does (the launcher with the demo data, on free ports, a fresh database in a temporary folder)
and stops it at the end. The headline figures go to var/bench/results.json:
`demo_link_to_reports_s` (the first authorization link opened to the reports in) and
`demo_apply_to_money_s` (the first chat message to the money's notice). Exit status 1 names
the step that failed and why.
"""

from __future__ import annotations

import argparse
import io
import re
import secrets
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import requests
from sqlalchemy import func, select

from bench.results import record
from emulators.wechat.chat import ChatConsole, describe_message
from emulators.wechat.user import WeChatUser
from lending.customers import by_openid
from lending.loans import loan_of_application, schedule_of
from sunshine.db import unit_of_work
from sunshine.demo import demo_faces_dir, write_demo_camera
from sunshine.models import Authorization, CreditReportRecord, LoanApplication
from sunshine.protect import mask_account
from sunshine.settings import DEMO_CHALLENGE_ORDER, Settings, demo_challenge_order, load

CHROMIUM = "/usr/bin/chromium"
CHAT_WAIT_S = 20.0  # a turn of the chat: the bot's answer through Rasa
WAIT_S = 90.0  # reports, approval, money: background jobs
OFFICER, PASSWORD = "officer01", "sunshine-demo"  # demo/officers.csv (published: development only)
T = TypeVar("T")


@dataclass(frozen=True)
class Household:
    """Who applies and who else consents: names and the ID digits each types on the page."""

    openid: str
    name: str
    id_digits: str  # the last six of the ID number, asked on the authorization page
    spouse_name: str
    spouse_id_digits: str
    spouse_unionid: str  # the spouse's WeChat (no Official Account binding: the page's OAuth finds them)
    spouse_openid: str


# demo/households.csv and wechat_bindings.csv
ZHANG = Household(
    "o_demo_zhangjianguo", "张建国", "120119", "李秀英", "050229", "u_demo_lixiuying", "o_demo_story_lixiuying"
)


@dataclass(frozen=True)
class Target:
    """The stack the story runs on."""

    web: str  # PUBLIC_BASE_URL: /wechat, the pages, the console
    wechat_api: str  # the WeChat API emulator
    database_url: str


class StepFailed(RuntimeError):
    def __init__(self, step: str, reason: str):
        super().__init__(f"{step}: {reason}")
        self.step, self.reason = step, reason


class FaceNotPassed(RuntimeError):
    pass


class Story:
    """The steps, each printed with the seconds since the story began."""

    def __init__(self, target: Target, household: Household, out, shots: Path | None, folder: Path):
        self.target, self.household, self.out, self.shots, self.folder = target, household, out, shots, folder
        self.started = time.monotonic()
        self.marks: dict[str, float] = {}
        self.settings = load()
        self.http = requests.Session()

    # -- printing ---------------------------------------------------------------------
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def line(self, text: str, indent: int = 0) -> None:
        print(f"[{self.elapsed():6.1f} s] " + " " * indent + text, file=self.out, flush=True)

    def quote(self, who: str, text: str) -> None:
        for i, part in enumerate(text.splitlines() or [""]):
            self.line(f"{who if i == 0 else ' ' * len(who)} {part}", indent=4)

    @contextmanager
    def step(self, title: str) -> Iterator[None]:
        self.line(f"== {title}")
        try:
            yield
        except StepFailed:
            raise
        except Exception as exc:  # noqa: BLE001  any failure of a step ends the story with its reason
            raise StepFailed(title, f"{type(exc).__name__}: {exc}") from exc

    def wait(self, what: str, check: Callable[[], T | None], timeout: float = WAIT_S) -> T:
        """Poll `check` until it returns something; fails after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            found = check()
            if found is not None:
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what}: nothing within {timeout:g} s")
            time.sleep(0.2)

    # -- the customer's WeChat ----------------------------------------------------------
    def chat(self) -> tuple[ChatConsole, io.StringIO]:
        heard = io.StringIO()
        user = WeChatUser(
            self.target.web + "/wechat",
            self.settings.wechat_token,
            self.settings.wechat_appid,
            self.settings.wechat_aes_key,
            openid=self.household.openid,
            timeout=10,
        )
        console = ChatConsole(user, self.target.wechat_api, heard, max_wait_s=CHAT_WAIT_S, quiet_s=2.0)
        console.skip_old_messages()
        return console, heard

    def say(self, console: ChatConsole, heard: io.StringIO, text: str, again: bool = False) -> str:
        """The customer sends `text`; the bank's answers (as `make chat` prints them)."""
        self.quote("customer:", text)
        start = heard.tell()
        if not console.handle(text):
            raise ConnectionError(f"the webhook {console.user.webhook_url} did not answer")
        heard.seek(start)
        answer = heard.read()
        if not answer.strip():
            raise TimeoutError(f"the bot did not answer {text!r} within {CHAT_WAIT_S:g} s")
        self.quote("bank:", "\n".join(line.strip() for line in answer.replace("银行：", "").strip().splitlines()))
        if "麻烦您再说一遍" in answer and not again:  # it could not handle it (e.g. warming up): once more
            return self.say(console, heard, text, again=True)
        return answer

    def messages_since(self, mark: int) -> list[dict[str, Any]]:
        return self.http.get(
            f"{self.target.wechat_api}/_emulator/messages",
            params={"touser": self.household.openid, "since": mark},
            timeout=5,
        ).json()

    def last_message_id(self) -> int:
        messages = self.messages_since(0)
        return messages[-1]["id"] if messages else 0

    def notice(self, mark: int, pattern: str) -> str:
        """Wait for a WeChat message to the customer after `mark` matching `pattern`; quote it."""

        def found() -> str | None:
            texts = [describe_message(m) for m in self.messages_since(mark)]
            return next((t for t in texts if re.search(pattern, t)), None)

        text = self.wait(f"a WeChat message matching {pattern!r}", found)
        self.quote("WeChat:", text)
        return text

    def apply(self, amount: str, opening: str) -> tuple[int, str]:
        """Apply in the chat through to the confirmation; (application id, the answer with the links)."""
        console, heard = self.chat()
        answer = self.say(console, heard, opening)
        replies = (  # what the customer answers to each question of the bot
            ("已提交", None),
            ("确认”提交", "确认"),
            ("回复序号", "1"),
            ("想借多少", amount),
            ("借多久", "一年"),
            ("用来做什么", "买化肥"),
        )
        for _ in range(8):
            reply = next((r for key, r in replies if key in answer), "")
            if reply is None:
                break
            if not reply:
                raise RuntimeError(f"the bot's answer is not a step of the application: {answer.strip()!r}")
            answer = self.say(console, heard, reply)
        else:
            raise RuntimeError("the application was not submitted within 8 turns")
        with unit_of_work(self.target.database_url) as s:
            customer = by_openid(s, self.household.openid)
            app_id = s.scalar(select(func.max(LoanApplication.id)).where(LoanApplication.customer_id == customer.id))
        return app_id, answer

    # -- the pages in Chromium ----------------------------------------------------------
    def oauth_user(self, openid: str, unionid: str | None) -> None:
        """Whose WeChat opens the next page (WeChat's web authorization, emulated)."""
        self.http.post(
            f"{self.target.wechat_api}/_emulator/oauth_user", json={"openid": openid, "unionid": unionid}, timeout=5
        ).raise_for_status()

    def shot(self, page, name: str) -> None:
        if self.shots is not None:
            self.shots.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(self.shots / f"{name}.png"), full_page=True)
            self.line(f"screenshot {self.shots / name}.png", indent=4)

    def camera_browser(self, shot: str):
        """A Chromium whose camera plays a new take of the demo face from its first frame (a browser
        per party: the fake camera goes on where it was, and the challenge's timing starts at the look)."""
        camera = demo_camera(self.folder / f"{shot}.y4m", self.settings, secrets.randbits(32))
        return self.playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--use-fake-device-for-media-stream",
                "--use-fake-ui-for-media-stream",
                f"--use-file-for-fake-video-capture={camera}",
            ],
        )

    def authorize(self, link: str, name: str, digits: str, shot: str, tries: int = 3) -> None:
        """One party on the authorization page: identity, face (the fake camera), consent; a
        failed face check is tried again from the link, as the page offers (再试)."""
        for attempt in range(1, tries + 1):
            try:
                return self.authorize_once(link, name, digits, shot)
            except FaceNotPassed:
                if attempt == tries:
                    raise
                self.line(f"the face check did not pass: {name} tries again (attempt {attempt + 1})", indent=4)

    def authorize_once(self, link: str, name: str, digits: str, shot: str) -> None:
        browser = self.camera_browser(shot)
        try:
            page = browser.new_context(viewport={"width": 390, "height": 844}, permissions=["camera"]).new_page()
            page.goto(link)
            self.marks.setdefault("link_opened", time.monotonic())
            self.line(f"page: {page.title()!r}, {page.text_content('#party-name')!r} asked to consent", indent=4)
            page.fill("#name", name)
            page.fill("#id-digits", digits)
            page.click("#identity-go")
            page.wait_for_selector("#step-biometric:not([hidden]), #message:has-text('不')")
            if page.is_hidden("#step-biometric"):
                raise RuntimeError(f"identity refused: {page.text_content('#message')!r}")
            page.click("#biometric-go")
            page.wait_for_function("() => document.getElementById('camera').readyState >= 2", timeout=15000)
            page.click("#face-go")
            page.wait_for_function(
                "() => ['人脸核验通过', '再试', '锁定', '人工核验'].some(function (t) {"
                " return document.getElementById('message').textContent.includes(t); })",
                timeout=60000,
            )
            self.quote("page:", page.text_content("#message") or "")
            if page.is_hidden("#step-consent"):
                self.shot(page, shot)
                raise FaceNotPassed(f"the face check did not pass: {page.text_content('#message')!r}")
            page.click("#consent-go")
            page.wait_for_function(
                "() => document.getElementById('message').dataset.result === 'consented'", timeout=30000
            )
            self.quote("page:", page.text_content("#message") or "")
            self.shot(page, shot)
        finally:
            browser.close()

    def authorize_all(self, answer: str) -> None:
        """Open each authorization link of the bot's answer in its party's WeChat: the applicant's
        own (after 您本人的授权链接), then the spouse's (forwarded by the applicant)."""
        links = list(dict.fromkeys(re.findall(r"(https?://\S+/auth/[A-Za-z0-9_-]{20,})", answer)))
        if not links:
            raise RuntimeError(f"no authorization links in the bot's answer: {answer.strip()!r}")
        own = re.search(r"您本人的授权链接[^\n]*\n\s*(\S+/auth/\S+)", answer)
        h = self.household
        for link in sorted(links, key=lambda x: own is None or x != own.group(1)):
            if own is not None and link == own.group(1):
                self.oauth_user(h.openid, None)
                self.line(f"{h.name} opens his own link in his WeChat", indent=2)
                self.authorize(link, h.name, h.id_digits, "auth-applicant")
            else:
                self.oauth_user(h.spouse_openid, h.spouse_unionid)
                self.line(f"{h.spouse_name} opens the link he forwarded to her, in her own WeChat", indent=2)
                self.authorize(link, h.spouse_name, h.spouse_id_digits, "auth-spouse")

    # -- the database ---------------------------------------------------------------
    def status(self, app_id: int) -> str:
        with unit_of_work(self.target.database_url) as s:
            return s.get(LoanApplication, app_id).status

    def reports_in(self, app_id: int) -> int | None:
        """The number of reports received once every party's report is in; fails on a failed query."""
        with unit_of_work(self.target.database_url) as s:
            parties = s.scalar(select(func.count()).where(Authorization.application_id == app_id))
            records = s.scalars(select(CreditReportRecord).where(CreditReportRecord.application_id == app_id)).all()
        failed = [r for r in records if r.status == "failed"]
        if failed:
            raise RuntimeError(f"the {failed[0].party_role}'s report query failed: {failed[0].error}")
        received = [r for r in records if r.status == "received"]
        return len(received) if parties and len(received) == parties else None

    def until_status(self, app_id: int, *wanted: str) -> str:
        return self.wait(
            f"application {app_id} {' or '.join(wanted)}", lambda: (st := self.status(app_id)) in wanted and st or None
        )

    def schedule(self, app_id: int) -> None:
        with unit_of_work(self.target.database_url) as s:
            loan = self.wait("the loan and its schedule", lambda: loan_of_application(s, app_id))
            plan = schedule_of(loan)
            self.line(f"loan account {mask_account(loan.account_no)}: {len(plan.instalments)} instalments", indent=4)
            for i in plan.instalments:
                amounts = f"principal {i.principal_fen / 100:>10,.2f}  interest {i.interest_fen / 100:>8,.2f} yuan"
                self.line(f"#{i.number:<2} {i.due_date}  {amounts}", indent=6)

    # -- the story -------------------------------------------------------------------
    def run(self) -> dict[str, float]:
        from playwright.sync_api import sync_playwright

        h = self.household
        with ExitStack() as stack:
            self.playwright = stack.enter_context(sync_playwright())
            browser = self.playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
            stack.callback(browser.close)

            with self.step(f"1. {h.name} applies for 30,000 yuan in the WeChat chat"):
                before = self.last_message_id()
                self.marks["applied"] = time.monotonic()
                app_id, answer = self.apply("3万", "俺想贷款3万买化肥")
                self.line(f"application {app_id}: {self.status(app_id)}", indent=2)
            with self.step("2. the applicant and the spouse authorize the credit-report query in Chromium"):
                self.authorize_all(answer)
            with self.step("3. the credit reports arrive"):
                n = self.wait("the credit reports", lambda: self.reports_in(app_id))
                self.marks["reports"] = time.monotonic()
                after = self.marks["reports"] - self.marks["link_opened"]
                self.line(f"{n} reports in, {after:.1f} s after the first link opened", indent=2)
            with self.step("4. the system approves the small loan"):
                self.line(f"application {app_id}: {self.until_status(app_id, 'approved')}", indent=2)
                contract = self.notice(before, r"/contract/")
                link = re.search(r"(https?://\S+/contract/[A-Za-z0-9_-]+)", contract)
                if link is None:
                    raise RuntimeError(f"no contract link in the approval notice: {contract!r}")
            with self.step(f"5. {h.name} signs the contract on its page in Chromium"):
                mark = self.last_message_id()
                self.oauth_user(h.openid, None)
                page = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
                page.goto(link.group(1))
                self.line(f"page: {page.title()!r}", indent=4)
                page.check("#agree")
                page.click("#sign-go")
                page.wait_for_selector("#signed:not([hidden])")
                self.quote("page:", page.inner_text("#message"))
                self.shot(page, "contract-signed")
                page.context.close()
            with self.step("6. the money is disbursed"):
                self.until_status(app_id, "disbursed")
                self.notice(mark, r"已发放|已放款")
                self.marks["money"] = time.monotonic()
            with self.step("7. the schedule"):
                console, heard = self.chat()
                self.say(console, heard, "我还要还多少")
                self.schedule(app_id)

            with self.step(f"8. {h.name} applies for 120,000 yuan: above the auto-approval limit"):
                big_id, answer = self.apply("12万", "俺还想再贷12万盖大棚")
                self.line(f"application {big_id}: {self.status(big_id)}", indent=2)
                if re.search(r"/auth/", answer):
                    self.authorize_all(answer)
                self.wait("the credit reports", lambda: self.reports_in(big_id))
                status = self.until_status(big_id, "under_review")
                self.line(f"reports in; application {big_id}: {status}, waiting for an officer", indent=2)
            with self.step(f"9. the officer ({OFFICER}) approves it in the console in Chromium"):
                mark = self.last_message_id()
                page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
                page.goto(self.target.web + "/console")
                page.fill("input[name=username]", OFFICER)
                page.fill("input[name=password]", PASSWORD)
                page.click("button[type=submit]")
                page.wait_for_selector("#queue")
                page.goto(f"{self.target.web}/console/applications/{big_id}")
                page.wait_for_selector("#decision")
                self.shot(page, "console-application")
                page.fill("#decision textarea[name=reason]", "家庭收入稳定，征信良好，同意。")
                page.click("#decision button[value=approve]")
                self.quote("console:", page.inner_text("p.flash"))
                self.shot(page, "console-approved")
                page.context.close()
                self.line(f"application {big_id}: {self.until_status(big_id, 'approved')}", indent=2)
                self.notice(mark, r"已审批通过")

        return {
            "demo_link_to_reports_s": self.marks["reports"] - self.marks["link_opened"],
            "demo_apply_to_money_s": self.marks["money"] - self.marks["applied"],
        }


def demo_camera(path: Path, settings: Settings, take: int) -> Path:
    """The demo face answering the demo challenge order, for Chromium's fake camera: a take of
    its own for each party (the page refuses frames it has seen before)."""
    faces = demo_faces_dir(settings.demo_faces_dir)
    if faces is None:
        raise RuntimeError("the demo face photos (shared/testdata/faces) are missing: set DEMO_FACES_DIR")
    order = demo_challenge_order(settings.face_challenge_demo_order or DEMO_CHALLENGE_ORDER)
    write_demo_camera(path, faces, order, take)
    return path


def tell(target: Target, household: Household, out, shots: Path | None = None) -> dict[str, float]:
    """Run the story on `target`; its figures. Raises StepFailed naming the step."""
    with tempfile.TemporaryDirectory() as tmp:
        return Story(target, household, out, shots, Path(tmp)).run()


def answering(url: str) -> bool:
    try:
        return requests.get(url.rstrip("/") + "/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


@contextmanager
def stack_to_use(out) -> Iterator[Target]:
    """The stack at PUBLIC_BASE_URL if it answers, else one started as `make run` does (stopped after)."""
    from sunshine import local_stack

    settings = load()
    if answering(settings.public_base_url):
        print(f"Using the stack at {settings.public_base_url}", file=out, flush=True)
        yield Target(settings.public_base_url, settings.wechat_api_base, settings.database_url)
        return
    with tempfile.TemporaryDirectory() as tmp:
        print(
            f"No stack at {settings.public_base_url}: starting one with the demo data (log in {tmp})",
            file=out,
            flush=True,
        )
        started = time.monotonic()
        stack = local_stack.start(
            Path(tmp), f"sqlite:///{Path(tmp) / 'demo.sqlite'}", FACE_CHALLENGE_DEMO_ORDER=DEMO_CHALLENGE_ORDER
        )
        print(f"Stack ready at {stack.web} after {time.monotonic() - started:.0f} s", file=out, flush=True)
        try:
            yield Target(stack.web, stack.wechat_api, stack.env["DATABASE_URL"])
        except StepFailed:
            print(f"\nThe stack's log, its end:\n{stack.log_tail(40)}", file=out, flush=True)
            raise
        finally:
            stack.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo.story", description=__doc__.split("\n\n")[0])
    parser.add_argument("--shots", type=Path, help="save a screenshot of each page in this folder")
    args = parser.parse_args(argv)
    out = sys.stdout
    try:
        with stack_to_use(out) as target:
            figures = tell(target, ZHANG, out, args.shots)
    except StepFailed as exc:
        print(f"\nFAILED at step {exc.step!r}: {exc.reason}", file=out, flush=True)
        return 1
    record({name: (value, "s", None) for name, value in figures.items()})
    print(
        f"\nFrom the first authorization link opened to the credit reports: {figures['demo_link_to_reports_s']:.1f} s"
        f"\nFrom the application in the chat to the money:                 {figures['demo_apply_to_money_s']:.1f} s"
        "\n(var/bench/results.json: demo_link_to_reports_s, demo_apply_to_money_s)",
        file=out,
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
