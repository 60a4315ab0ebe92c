"""The Official Account's menu as code: `conversation/menu.yml`, checked against WeChat's
limits and the CLICK keys the webhook understands, published when it differs from the
menu WeChat has (menu/get), so publishing twice changes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from clients.wechat import WeChatApi
from conversation.inbound import MENU_INTENTS
from sunshine.settings import ROOT, Settings
from sunshine.yaml_files import read_yaml

MENU_FILE = ROOT / "conversation" / "menu.yml"
BUTTONS, SUB_BUTTONS, NAME_BYTES, SUB_NAME_BYTES, URL_BYTES = 3, 5, 16, 60, 1024


class MenuError(ValueError):
    """The menu file cannot be published: the message says which button and why (in Chinese, for staff)."""


def _button(raw: Any, where: str, sub: bool, settings: Settings) -> dict:
    if not isinstance(raw, dict):
        raise MenuError(f"{where}：应为一个按钮（name、type ……）")
    name = raw.get("name")
    limit = SUB_NAME_BYTES if sub else NAME_BYTES
    if not isinstance(name, str) or not name.strip():
        raise MenuError(f"{where}：缺少按钮名称 name")
    if len(name.encode("utf-8")) > limit:
        raise MenuError(f"{where}「{name}」：名称太长（最多{limit}字节，约{limit // 3}个汉字）")
    where = f"{where}「{name}」"
    if "sub_button" in raw:
        children = raw["sub_button"]
        if sub:
            raise MenuError(f"{where}：子菜单不能再有子菜单")
        if not isinstance(children, list) or not 1 <= len(children) <= SUB_BUTTONS:
            raise MenuError(f"{where}：子菜单应有1到{SUB_BUTTONS}个按钮")
        return {
            "name": name,
            "sub_button": [_button(c, f"{where}第{i}个子菜单", True, settings) for i, c in enumerate(children, 1)],
        }
    kind = raw.get("type")
    if kind == "click":
        if raw.get("key") not in MENU_INTENTS:
            raise MenuError(f"{where}：key 应为机器人能处理的菜单键之一（{'、'.join(MENU_INTENTS)}）")
        return {"type": "click", "name": name, "key": raw["key"]}
    if kind not in ("view", "miniprogram"):
        raise MenuError(f"{where}：type 应为 click、view 或 miniprogram")
    url = str(raw.get("url") or "").replace("{public_base_url}", settings.public_base_url.rstrip("/"))
    if not url.startswith(("http://", "https://")) or len(url.encode("utf-8")) > URL_BYTES:
        raise MenuError(f"{where}：url 应为 http(s) 网址（最多{URL_BYTES}字节）")
    if kind == "view":
        return {"type": "view", "name": name, "url": url}
    if not settings.wxa_appid:
        raise MenuError(f"{where}：小程序按钮需要设置 WXA_APPID")
    if not isinstance(raw.get("pagepath"), str) or not raw["pagepath"].strip():
        raise MenuError(f"{where}：小程序按钮缺少页面路径 pagepath")
    return {"type": "miniprogram", "name": name, "url": url, "appid": settings.wxa_appid, "pagepath": raw["pagepath"]}


def load_menu(settings: Settings, path: Path = MENU_FILE) -> dict:
    """The menu in `path` as menu/create takes it; MenuError when WeChat or the webhook could not use it."""
    try:
        raw = read_yaml(path)
    except (OSError, yaml.YAMLError) as exc:
        raise MenuError(f"{path}：无法读取（{type(exc).__name__}）") from None
    buttons = raw.get("button") if isinstance(raw, dict) else None
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= BUTTONS:
        raise MenuError(f"{path}：button 应有1到{BUTTONS}个一级菜单")
    return {"button": [_button(b, f"第{i}个菜单", False, settings) for i, b in enumerate(buttons, 1)]}


def _comparable(buttons: list[dict]) -> list[dict]:
    """Buttons as menu/get shows them, without the empty `sub_button` lists it adds."""
    return [
        {k: (_comparable(v) if k == "sub_button" else v) for k, v in b.items() if not (k == "sub_button" and not v)}
        for b in buttons
    ]


def publish(api: WeChatApi, menu: dict) -> bool:
    """Create `menu` unless WeChat has it already; True when it was published."""
    current = api.current_menu()
    if current is not None and _comparable(current.get("menu", {}).get("button", [])) == _comparable(menu["button"]):
        return False
    api.create_menu(menu)
    return True
