"""`python -m conversation menu publish [--file PATH]`: publish the Official Account's menu from
conversation/menu.yml (nothing is sent when WeChat has it already). Exit status 0: published
or unchanged; 1: WeChat refused; 2: the file or the settings are wrong."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from clients.wechat import WeChatApi, WeChatApiError
from conversation.menu import MENU_FILE, MenuError, load_menu, publish
from sunshine.settings import load_for_command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m conversation", description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("menu",))
    parser.add_argument("command", choices=("publish",))
    parser.add_argument("--file", type=Path, default=MENU_FILE, help="the menu file (default: conversation/menu.yml)")
    args = parser.parse_args(argv)
    settings = load_for_command()
    try:
        menu = load_menu(settings, args.file)
    except MenuError as exc:
        print(f"菜单文件有误，未发布：{exc}", file=sys.stderr)
        return 2
    try:
        published = publish(WeChatApi.from_settings(settings), menu)
    except WeChatApiError as exc:
        print(f"微信拒绝了菜单：{exc}", file=sys.stderr)
        return 1
    print("菜单已发布" if published else "菜单与微信上的一致，未改动")
    return 0


if __name__ == "__main__":
    sys.exit(main())
