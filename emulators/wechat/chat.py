"""`make chat`: talk to the bank's Official Account as a WeChat user.

    .venv/bin/python -m emulators.wechat.chat [--openid OPENID] [--url WEBHOOK_URL] [--api-base URL]
    printf '你好\\n我想贷款\\n' | .venv/bin/python -m emulators.wechat.chat

Each line is sent to the webhook (default http://127.0.0.1:{WEB_PORT}/wechat)
as WeChat would send a text message from OPENID — signed, and encrypted when
WECHAT_AES_KEY is set, with the same settings as the server. The passive
reply is printed, then the customer-service messages the bank sent to that
user through WeChat's API (read from the API emulator at WECHAT_API_BASE,
`/_emulator/messages`) as they arrive.

Lines starting with these commands are not sent as text:
  /voice TEXT      send a voice message whose speech recognition is TEXT
  /event NAME [KEY] send an event (subscribe, unsubscribe, CLICK KEY, ...)
  /scan SCENE      scan a parametric QR code (SCAN event) for SCENE
  /quit            leave (so do Ctrl-D and the end of piped input)
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import TextIO

import requests

from emulators.wechat.user import BadReply, DeliveryError, PassiveReply, WebhookUnreachable, WeChatUser

DEFAULT_OPENID = "o_demo_zhangjianguo"
YOU = "你："
BANK = "银行："
EXIT_UNREACHABLE = 2


def describe_message(msg: dict) -> str:
    """One line for a customer-service message as the emulator recorded it."""
    kind = msg.get("msgtype")
    payload = msg.get("payload") or {}
    if kind == "text":
        return msg.get("content") or payload.get("content", "")
    if kind == "news":
        return "；".join(
            f"[图文] {a.get('title', '')} {a.get('url', '')}".strip() for a in payload.get("articles") or []
        )
    if kind == "miniprogrampage":
        return f"[小程序] {payload.get('title', '')} {payload.get('pagepath', '')}".strip()
    if kind == "image":
        return f"[图片] {payload.get('media_id', '')}".strip()
    if kind == "template":
        values = "；".join(str(v.get("value", "")) for v in (payload.get("data") or {}).values() if isinstance(v, dict))
        return f"[模板消息] {values} {payload.get('url') or ''}".strip()
    return f"[{kind}]"


class ChatConsole:
    """The console's loop, separate from argument parsing so tests can drive it."""

    def __init__(
        self,
        user: WeChatUser,
        api_base: str,
        out: TextIO,
        err: TextIO | None = None,
        *,
        interactive: bool = False,
        max_wait_s: float = 8.0,
        short_wait_s: float = 1.5,
        quiet_s: float = 1.0,
        poll_s: float = 0.2,
        read: Callable[[str], str] = input,
    ):
        self.user = user
        self.api_base = api_base.rstrip("/")
        self.out = out
        self.err = err or out
        self.interactive = interactive
        self.max_wait_s = max_wait_s
        self.short_wait_s = short_wait_s
        self.quiet_s = quiet_s
        self.poll_s = poll_s
        self.read = read
        self.http = requests.Session()
        self.mark = 0  # id of the last customer-service message already shown
        self.emulator_ok = True
        self.failures = 0

    def say(self, text: str, prefix: str = BANK) -> None:
        indent = " " * len(prefix) * 2  # the prefix is full-width: two columns a character
        for line in text.splitlines() or [""]:
            print(f"{prefix}{line}", file=self.out, flush=True)
            prefix = indent

    # -- customer-service messages -----------------------------------------
    def _fetch(self) -> list[dict] | None:
        try:
            resp = self.http.get(
                f"{self.api_base}/_emulator/messages",
                params={"touser": self.user.openid, "since": self.mark},
                timeout=2,
            )
            resp.raise_for_status()
            messages = resp.json()
        except (requests.RequestException, ValueError) as exc:
            if self.emulator_ok:
                print(
                    f"（看不到客服消息：WeChat API emulator at {self.api_base} did not answer: "
                    f"{type(exc).__name__}）",
                    file=self.err,
                    flush=True,
                )
            self.emulator_ok = False
            return None
        self.emulator_ok = True
        return messages

    def skip_old_messages(self) -> None:
        messages = self._fetch()
        if messages:
            self.mark = messages[-1]["id"]

    def show_messages(self, long_wait: bool) -> int:
        """Print new customer-service messages until ~quiet_s of quiet after some arrived, or
        until the wait (long after an empty passive reply) passes without any. Returns how many."""
        start = time.monotonic()
        wait = self.max_wait_s if long_wait else self.short_wait_s
        last_arrival = None
        shown = 0
        while True:
            messages = self._fetch()
            if messages is None:
                return shown
            now = time.monotonic()
            for msg in messages:
                self.say(describe_message(msg))
                self.mark = max(self.mark, msg["id"])
                shown += 1
                last_arrival = now
            if last_arrival is not None and now - last_arrival >= self.quiet_s:
                return shown
            if last_arrival is None and now - start >= wait:
                return shown
            if now - start >= wait + self.max_wait_s:  # a steady trickle: stop eventually
                return shown
            time.sleep(self.poll_s)

    # -- one line ------------------------------------------------------------
    def _send(self, line: str) -> PassiveReply:
        if line.startswith("/voice "):
            return self.user.send_voice(line[len("/voice ") :].strip())
        if line.startswith("/event "):
            parts = line.split()
            return self.user.send_event(parts[1], parts[2] if len(parts) > 2 else "")
        if line.startswith("/scan "):
            return self.user.scan_qrcode(line[len("/scan ") :].strip())
        return self.user.send_text(line)

    def handle(self, line: str) -> bool:
        """Send one line and print the answers; False when the webhook cannot be reached."""
        try:
            reply = self._send(line)
        except WebhookUnreachable:
            print(
                f"无法连接 {self.user.webhook_url}：服务没有运行。请先运行 `make run`，再运行 `make chat`。",
                file=self.err,
                flush=True,
            )
            return False
        except BadReply as exc:
            self.failures += 1
            print(f"（公众号的回复 WeChat 无法识别：{exc}）", file=self.err, flush=True)
            reply = None
        except DeliveryError as exc:
            self.failures += 1
            hint = " — check WECHAT_TOKEN / WECHAT_AES_KEY match the server" if exc.status == 403 else ""
            print(f"（该公众号暂时无法提供服务：{exc}{hint}）", file=self.err, flush=True)
            reply = None
        if reply is not None and not reply.empty:
            self.say(reply.describe())
        self.show_messages(long_wait=reply is None or reply.empty)
        return True

    def run(self, stream: TextIO) -> int:
        self.skip_old_messages()
        if self.interactive:
            print(
                f"以 {self.user.openid} 的身份和公众号聊天（{self.user.webhook_url}）；/quit 退出。",
                file=self.out,
                flush=True,
            )
        while True:
            if self.interactive:
                try:
                    line = self.read(YOU)
                except (EOFError, KeyboardInterrupt):
                    print(file=self.out)
                    break
            else:
                line = stream.readline()
                if not line:
                    break
            line = line.strip()
            if not line:
                continue
            if line in ("/quit", "/exit"):
                break
            if not self.interactive:
                print(f"{YOU}{line}", file=self.out, flush=True)
            if not self.handle(line):
                return EXIT_UNREACHABLE
        return 1 if self.failures else 0


def main(argv: list[str] | None = None) -> int:
    from sunshine.settings import load_for_command

    settings = load_for_command()  # exit status 2, as EXIT_UNREACHABLE
    parser = argparse.ArgumentParser(
        prog="python -m emulators.wechat.chat", description="Talk to the Official Account as a WeChat user."
    )
    parser.add_argument(
        "--openid",
        default=DEFAULT_OPENID,
        help=f"the WeChat user (default {DEFAULT_OPENID}, a demo customer with a credit file)",
    )
    parser.add_argument(
        "--url",
        default=f"http://127.0.0.1:{settings.web_port}/wechat",
        help="the webhook URL (default http://127.0.0.1:WEB_PORT/wechat)",
    )
    parser.add_argument(
        "--api-base",
        default=settings.wechat_api_base,
        help="the WeChat API emulator, for customer-service messages (default WECHAT_API_BASE)",
    )
    parser.add_argument(
        "--max-wait",
        type=float,
        default=8.0,
        help="seconds to wait for customer-service messages after an empty reply (default 8)",
    )
    args = parser.parse_args(argv)
    user = WeChatUser(
        args.url, settings.wechat_token, settings.wechat_appid, settings.wechat_aes_key, openid=args.openid
    )
    console = ChatConsole(
        user, args.api_base, sys.stdout, sys.stderr, interactive=sys.stdin.isatty(), max_wait_s=args.max_wait
    )
    return console.run(sys.stdin)


if __name__ == "__main__":
    sys.exit(main())
