"""Mini-program sessions: the bearer tokens `/api/mp/login` hands out for a wx.login code.

A token is random (secrets.token_urlsafe); Redis keeps only its SHA-256, with the WeChat user
it stands for (the mini-program openid and the UnionID) for MP_SESSION_TTL_S. The session key
jscode2session returns is never kept: nothing here decrypts the mini-program's data.

    token = open_session(redis, "o_mp...", "u_...", ttl_s=7200)
    who = find_session(redis, token)  # MpSession, or None (unknown, forged or expired)
    end_session(redis, token)
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass

import redis as redis_lib

PREFIX = "sunshine:mp_session:"


@dataclass(frozen=True)
class MpSession:
    openid: str  # in the mini-program's AppID
    unionid: str | None


def _key(token: str) -> str:
    return PREFIX + hashlib.sha256(token.encode()).hexdigest()


def open_session(r: redis_lib.Redis, openid: str, unionid: str | None, ttl_s: int) -> str:
    token = secrets.token_urlsafe(32)
    r.set(_key(token), json.dumps({"openid": openid, "unionid": unionid}), ex=ttl_s)
    return token


def find_session(r: redis_lib.Redis, token: str) -> MpSession | None:
    if not token or len(token) > 128:
        return None
    raw = r.get(_key(token))
    if raw is None:
        return None
    data = json.loads(raw)
    return MpSession(data["openid"], data.get("unionid"))


def end_session(r: redis_lib.Redis, token: str) -> bool:
    return bool(token) and len(token) <= 128 and bool(r.delete(_key(token)))
