"""Who may call the bank's own services: the shared-token check of Rasa's REST channel and of the
action server, and the internal-network check of /readyz and /metrics (README "Threat model")."""

from __future__ import annotations

import hmac
import ipaddress

from sunshine.settings import Settings, internal_networks


def bearer_matches(authorization: str | None, token: str) -> bool:
    """Whether an `Authorization` header is `Bearer <token>` (compared in constant time).
    An empty `token` matches nothing: a caller cannot authenticate against an unset secret."""
    if not token or not authorization:
        return False
    scheme, _, given = authorization.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def internal_caller(s: Settings, address: str | None, authorization: str | None) -> bool:
    """Whether a request from `address` (the client address, after TRUSTED_PROXIES) with this
    `Authorization` header may read internal pages: from INTERNAL_NETWORKS, or INTERNAL_TOKEN."""
    if bearer_matches(authorization, s.internal_token):
        return True
    try:
        ip = ipaddress.ip_address((address or "").split("%", 1)[0])
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped:  # ::ffff:10.0.0.5 is 10.0.0.5
        ip = ip.ipv4_mapped
    return any(ip in net for net in internal_networks(s))
