"""Settings: every secret, address and limit comes from the environment.

A `.env` file in the working directory is read first when present; real
environment variables win over it. `load()` validates and returns a frozen
`Settings`; bad values raise `ConfigError` with one line that says what is
wrong and how to fix it.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import re
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from urllib.parse import urlsplit

from sunshine.redis import is_sentinel, sentinel_target

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"


class ConfigError(Exception):
    """A setting is missing or malformed; the message is for the operator: one line per problem."""

    def __init__(self, *problems: str):
        self.problems = list(problems)
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class Settings:
    database_url: str = f"sqlite:///{VAR / 'sunshine.db'}"
    # Empty: `make run` starts a private redis-server and fills this in.
    redis_url: str = ""
    rasa_url: str = "http://127.0.0.1:5005"
    action_server_url: str = "http://127.0.0.1:5055"
    public_base_url: str = "http://127.0.0.1:8000"
    secret_key: str = "dev-only-secret-change-me"  # noqa: S105  development default, refused in production
    web_port: int = 8000
    # The address the web, Rasa and the action server listen on: this machine only, or, on a node
    # of several that others reach, its private-network address.
    bind_host: str = "127.0.0.1"
    web_workers: int = 2
    # Threads per web worker: each waiting message holds one for up to the reply budget.
    web_threads: int = 64
    # Background reply workers; each customer's messages always go to the same one, in order.
    worker_processes: int = 4
    # Seconds the launcher waits before restarting a process that died (doubled while it keeps dying).
    restart_backoff_s: float = 1.0
    # This node's name in Redis (heartbeats, leases); empty: the host name. Unique per node.
    node_name: str = ""
    # Seconds after its last heartbeat that a node's process counts as dead: its reply partitions
    # and started jobs are taken over by another node's worker.
    heartbeat_ttl_s: float = 10.0

    wechat_token: str = "sunshinedevtoken"  # noqa: S105  development default, refused in production
    wechat_appid: str = "wx0000000000demo01"
    wechat_secret: str = "demo-app-secret"  # noqa: S105  development default, refused in production
    wechat_aes_key: str = ""
    wechat_max_clock_skew: int = 300
    wechat_api_base: str = "http://127.0.0.1:8100"
    wechat_reply_budget_s: float = 4.0
    wxa_appid: str = "wx0000000000demo02"
    wxa_secret: str = "demo-wxa-secret"  # noqa: S105  development default, refused in production
    # The mini-program's message push (消息推送, `/wechat/mp`): its Token and EncodingAESKey
    # (empty: plaintext), as set in the mini-program's admin page.
    wxa_push_token: str = "sunshinewxapush"  # noqa: S105  development default, refused in production
    wxa_push_aes_key: str = ""
    # The templates that carry each kind of notice (conversation/notice_templates.yml; relative to the repository).
    notice_templates_file: str = "conversation/notice_templates.yml"

    bureau_url: str = "http://127.0.0.1:8200"
    wechat_emulator_port: int = 8100
    bureau_emulator_port: int = 8200

    # Seconds an authorization QR token stays valid.
    authorization_ttl_s: int = 1800
    # Hours an officer has to decide an application sent to review (the bank's promised time).
    loan_review_hours: int = 24
    # --- the electronic loan contract (lending/contracts.py, auth_flow/signing.py) ---
    # The lender as the contract names it.
    bank_name: str = "阳光农村商业银行"
    # Hours the contract's signing link stays valid after the approval.
    contract_ttl_hours: int = 72
    # Loans above this many yuan are signed with a face check besides the WeChat or SMS proof.
    contract_face_above: int = 50000
    # Renewals of one loan contract's signing link in 24 hours (by the borrower or an officer).
    contract_renewals_per_day: int = 3
    log_level: str = "INFO"

    # --- remote credit-report authorization (auth_flow) ---
    # Largest face distance taken as the same person when the cohort is too small for the
    # cohort-normalised decision (auth_flow.face_match); face_recognition's own 0.6 matches
    # different Chinese faces far too often (README, "Face decision").
    face_tolerance: float = 0.40
    # Least non-planar head motion (landmark residual after the best planar fit, in eye
    # distances) the frames of a live face must show: a photo held up stays planar.
    face_liveness_min_motion: float = 0.07
    # Active liveness (auth_flow.liveness): seconds a face challenge may be answered in, and
    # seconds the SHA-256 of every uploaded frame is remembered to refuse replays.
    face_challenge_window_s: int = 90
    face_replay_memory_s: int = 30 * 86400
    # Failed identity or face checks before a token locks and the officer is told.
    auth_max_attempts: int = 5
    # Largest face upload (all frames together), in bytes.
    auth_upload_max_bytes: int = 8_000_000
    # Which WeChat code goes with the H5 QR code: "mp" (Official Account parametric QR code),
    # "wxa" (mini-program code) or "none".
    auth_wechat_code: str = "mp"
    # The mini-program page that opens an authorization (its scene is the token).
    wxa_auth_page: str = "pages/auth/index"
    # Credit-bureau query: seconds per attempt, and attempts before the query is marked failed.
    bureau_timeout_s: float = 5.0
    bureau_attempts: int = 3
    # -- core banking (clients/corebank.py): the bank core's open API, this channel's credentials --
    core_banking_url: str = "http://127.0.0.1:8500"
    core_banking_emulator_port: int = 8500
    # The channel id the core knows this system by, and the secret its requests are signed with (HMAC-SHA256).
    core_banking_channel_id: str = "SUNSHINE-WX"
    core_banking_secret: str = "demo-core-banking-secret"  # noqa: S105  development default, refused in production
    # Seconds per core-banking call, and attempts of a disbursement the core did not answer before the officer is told.
    core_banking_timeout_s: float = 10.0
    disbursement_attempts: int = 3
    # Repayment reminders (lending.reminders): days before each due date the first one goes (0: only on
    # the day), and the Beijing hour from which `make run`'s reminder rounds send each day's notices.
    repayment_reminder_days: int = 3
    repayment_reminder_hour: int = 9
    # -- officers: hand-off, console, WeCom notifications (handoff/, webhooks/console/) --
    wecom_api_base: str = "http://127.0.0.1:8300"
    wecom_corpid: str = "ww0000000000demo01"
    wecom_secret: str = "demo-wecom-secret"  # noqa: S105  development default, refused in production
    wecom_agentid: int = 1000002
    wecom_emulator_port: int = 8300
    # Template for an officer's reply the customer-service API refused (45015: 48 hours without a message).
    wechat_reply_template_id: str = "tpl_officer_reply_demo"
    # Minutes before a hand-off's deadline its officer is reminded in WeCom.
    handoff_warn_minutes: int = 5

    # --- auth_flow: WeChat identity on the H5 page, SMS codes, report recovery ---
    # WeChat's web-authorization host (the page's OAuth redirect goes there; the emulator in tests).
    wechat_open_base: str = "http://127.0.0.1:8100"
    # The bank's SMS gateway (codes for a party without a bound WeChat).
    sms_api_base: str = "http://127.0.0.1:8400"
    sms_api_key: str = "dev-sms-key"  # noqa: S105  development default, refused in production
    sms_emulator_port: int = 8400
    # Seconds after which a credit-report query still `querying` (its process died) is re-run.
    report_query_stale_s: int = 120
    # Reverse proxies / load balancers in front of the web process whose X-Forwarded-For and
    # X-Forwarded-Proto are believed (0: none; clients' own headers are then ignored).
    trusted_proxies: int = 0
    # Hours Rasa keeps a conversation's tracker (the customer's raw texts) in Redis after its last
    # turn; what a customer wrote to an officer is kept in the database, not here.
    tracker_retention_hours: int = 24

    # --- deployment guard: production refusals, demo data, the bank's own services (README "Threat model") ---
    # "production" turns on every production refusal (`production_problems`); "development" does not.
    # Read from `.env` like every other setting.
    sunshine_env: str = "development"
    # Load the demo officers (published password), village and WeChat bindings at start: development only
    # (`make run` turns it on; refused in production, as are demo users left in the database).
    sunshine_demo: bool = False
    # Rasa's HTTP API token (`rasa run --auth-token`; the REST channel asks for it too). Empty: the
    # launcher makes a random one per start (development); production needs a set one.
    rasa_token: str = ""
    # The token Rasa sends the action server (`Authorization: Bearer ...`), checked by bot/action_server.py.
    # Empty: the launcher makes a random one per start (development); production needs a set one.
    action_server_token: str = ""
    # Who may read /readyz and /metrics: these networks (comma-separated CIDRs) ...
    internal_networks: str = "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7"
    # ... or a request with `Authorization: Bearer INTERNAL_TOKEN` (empty: networks only).
    internal_token: str = ""
    # Password of the private Redis `make run` starts when REDIS_URL is empty (empty: a random one per start).
    private_redis_password: str = ""

    # --- officers' console: sessions, logins, first passwords (webhooks/console/auth.py) ---
    # Seconds a console login lasts at most, and without a request of the officer's before it ends.
    console_session_max_s: int = 8 * 3600
    console_session_idle_s: int = 30 * 60
    # Wrong passwords for one user name from one address before each further try must wait:
    # the first wait (seconds), doubled with each further failure up to the longest.
    login_backoff_after: int = 5
    login_backoff_base_s: int = 60
    login_backoff_max_s: int = 3600

    # --- face decision: engine, local policy, certified service (auth_flow.face_match, face_engines) ---
    # Who decides whether the selfie is the person: "local" (face_recognition, offline) or
    # "certified" (a licensed 人脸核身 service at FACEID_URL, against the authoritative ID photo).
    face_engine: str = "local"
    # Local: distance over the cohort closeness; at most FACE_PASS_RATIO passes, up to
    # FACE_REVIEW_RATIO goes to an officer's review (measured: README, "Face decision").
    face_pass_ratio: float = 0.88
    face_review_ratio: float = 1.0
    # Nearest cohort references averaged, and the fewest cohort references the ratio needs
    # (fewer: FACE_TOLERANCE decides, FACE_REVIEW_DISTANCE bounds its review band).
    face_cohort_k: int = 5
    face_cohort_min: int = 100
    face_review_distance: float = 0.50
    # Certified service (Tencent Cloud FaceID ImageRecognitionV2 wire format): its API host,
    # credentials, seconds per call, and the similarity (0-100) that passes / goes to review.
    faceid_url: str = "http://127.0.0.1:8600"
    faceid_secret_id: str = "AKIDsunshinedemo0000000000000000"  # noqa: S105  an id, not a secret
    faceid_secret_key: str = "demo-faceid-secret-key"  # noqa: S105  development default, refused in production
    faceid_timeout_s: float = 5.0
    faceid_pass_sim: float = 80.0
    faceid_review_sim: float = 70.0
    faceid_emulator_port: int = 8600
    # Officer's review of a face check (auth_flow.face_review): hours its sealed frames are kept
    # at most when nobody decides, and the minutes the waiting page says a review usually takes.
    face_review_retention_hours: int = 72
    face_review_minutes: int = 30

    # --- binding a WeChat user to a customer: name+ID, then a code to the phone on file (lending/binding.py) ---
    # Well-formed name+ID guesses one WeChat user may make per day.
    bind_guesses_per_day: int = 5
    # Texts (codes, or the notice that the customer is bound elsewhere) about one ID number per day.
    bind_codes_per_id_per_day: int = 3
    # Wrong codes before a binding code stops working, and seconds it stays valid.
    bind_code_attempts: int = 3
    bind_code_ttl_s: int = 300

    # --- auth_flow: one session per party, limited reissues (issue 17) ---
    # Fresh authorization links the bot may send one party in 24 hours beyond the first.
    auth_reissues_per_day: int = 3

    # --- the mini-program API (webhooks/mp.py) ---
    # Seconds a mini-program login's bearer token lasts.
    mp_session_ttl_s: int = 7200

    # --- reference faces (auth_flow.enrolment) ---
    # The demo's reference-face photos (shared/testdata/faces); empty: beside the checkout.
    demo_faces_dir: str = ""
    # Largest bulk import the console takes (the CSV and the zip of photos together), in bytes.
    reference_import_max_bytes: int = 200_000_000

    # --- consent-evidence chain: keys and signed checkpoints (auth_flow.evidence) ---
    # `key_id:secret` pairs, comma-separated: every key that ever sealed records (keep old ones to verify them).
    evidence_keys: str = "dev:dev-only-evidence-key-change-me"  # noqa: S105  development default, refused in production
    # The key in EVIDENCE_KEYS that seals new records and checkpoints.
    evidence_key_id: str = "dev"
    # Where `python -m auth_flow evidence-checkpoint` writes signed checkpoints of the chain's head.
    evidence_checkpoint_dir: str = str(VAR / "evidence-checkpoints")
    # Seconds between the checkpoints `make run`'s evidence-checkpointer writes.
    evidence_checkpoint_every_s: int = 3600
    # --- demo camera: a fixed face challenge (development only; README "Try it") ---
    # Comma-separated actions (`CHALLENGE_ACTIONS`, CHALLENGE_LENGTH of them, no repeats) every face
    # challenge asks for instead of a random order, so that Chromium's fake camera playing
    # `python -m auth_flow demo-camera`'s video can answer. Empty: random (the real check). Only with
    # SUNSHINE_DEMO on; refused in production. `make run` sets DEMO_CHALLENGE_ORDER unless told otherwise.
    face_challenge_demo_order: str = ""

    @property
    def wechat_mode(self) -> str:
        """'safe' (AES) when a key is set, else 'plaintext'.

        Compatible mode needs no setting of its own: with a key set, a body
        that carries both plaintext fields and `Encrypt` is decrypted.
        """
        return "safe" if self.wechat_aes_key else "plaintext"

    def evidence_key(self) -> bytes | None:
        """The secret that seals evidence now; None when EVIDENCE_KEYS is malformed or lacks EVIDENCE_KEY_ID."""
        try:
            return self.evidence_keyring().get(self.evidence_key_id)
        except ConfigError:
            return None

    def evidence_keyring(self) -> dict[str, bytes]:
        """EVIDENCE_KEYS as {key id: secret}; ConfigError when malformed."""
        keyring: dict[str, bytes] = {}
        for pair in filter(None, (p.strip() for p in self.evidence_keys.split(","))):
            key_id, colon, secret = pair.partition(":")
            if not colon:
                raise ConfigError("EVIDENCE_KEYS: an entry has no ':'; write key_id:secret pairs separated by commas")
            if not re.fullmatch(r"[A-Za-z0-9._-]{1,32}", key_id) or key_id == "legacy-sha256" or key_id in keyring:
                raise ConfigError(
                    f"EVIDENCE_KEYS: key id {key_id!r} must be 1-32 letters, digits, '.', '_' or '-', unique, "
                    "and not legacy-sha256; write key_id:secret pairs separated by commas"
                )
            if len(secret) < 16:
                raise ConfigError(f"EVIDENCE_KEYS: the secret of key {key_id!r} must be at least 16 characters")
            keyring[key_id] = secret.encode()
        return keyring

    def public(self) -> dict:
        """The settings that may be printed: secrets replaced by '***'."""
        hidden = {
            "secret_key",
            "wechat_secret",
            "wechat_aes_key",
            "wxa_secret",
            "wxa_push_token",
            "wxa_push_aes_key",
            "wechat_token",
            "wecom_secret",
            "sms_api_key",
            "rasa_token",
            "action_server_token",
            "internal_token",
            "private_redis_password",
            "faceid_secret_key",
            "evidence_keys",
        }
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = "***" if (f.name in hidden and value) else value
        out["database_url"] = _hide_password(self.database_url)
        out["redis_url"] = _hide_password(self.redis_url)
        return out


# Secrets whose development defaults (below: ruff S105) are refused when SUNSHINE_ENV=production.
DEVELOPMENT_SECRETS = (
    "secret_key",
    "wechat_token",
    "wechat_secret",
    "wxa_secret",
    "wxa_push_token",
    "wecom_secret",
    "sms_api_key",
    "faceid_secret_key",
    "core_banking_secret",
)

# --- demo camera: the face challenge's vocabulary (auth_flow.liveness) and the fixed demo order ---
CHALLENGE_ACTIONS = ("left", "right", "nod", "mouth")  # "look" always comes first
CHALLENGE_LENGTH = 3  # actions per challenge: 4*3*2 = 24 orders
DEMO_CHALLENGE_ORDER = "left,right,mouth"  # what `make run` sets; the demo-camera video answers it


def demo_challenge_order(value: str) -> tuple[str, ...]:
    """FACE_CHALLENGE_DEMO_ORDER's actions (empty: none); ValueError saying what is wrong."""
    actions = tuple(a.strip() for a in value.split(",")) if value.strip() else ()
    if not actions:
        return ()
    unknown = [a for a in actions if a not in CHALLENGE_ACTIONS]
    if unknown:
        raise ValueError(f"unknown action {unknown[0]!r} (use {', '.join(CHALLENGE_ACTIONS)})")
    if len(set(actions)) != len(actions):
        raise ValueError("an action is repeated")
    if len(actions) != CHALLENGE_LENGTH:
        raise ValueError(f"a challenge has {CHALLENGE_LENGTH} actions, got {len(actions)}")
    return actions


def demo_order_problems(s: Settings) -> list[str]:
    """FACE_CHALLENGE_DEMO_ORDER's problems: bad values, or set without SUNSHINE_DEMO (production
    refuses it in `production_problems`)."""
    if not s.face_challenge_demo_order:
        return []
    try:
        demo_challenge_order(s.face_challenge_demo_order)
    except ValueError as exc:
        return [f"FACE_CHALLENGE_DEMO_ORDER={s.face_challenge_demo_order!r}: {exc}; e.g. {DEMO_CHALLENGE_ORDER}"]
    if not s.sunshine_demo:
        return [
            "FACE_CHALLENGE_DEMO_ORDER is set but SUNSHINE_DEMO is off: the fixed face challenge is for the demo "
            "only; empty it for the random challenge"
        ]
    return []


# --- deployment guard (production refusals; README "Threat model") ---
# Settings that are http(s) URLs.
HTTP_SETTINGS = (
    "rasa_url",
    "action_server_url",
    "public_base_url",
    "wechat_api_base",
    "bureau_url",
    "wecom_api_base",
    "wechat_open_base",
    "sms_api_base",
    "faceid_url",
    "core_banking_url",
)
# The outside systems the project ships emulators of: in production each must be the real host, over TLS.
OUTSIDE_SYSTEMS = (
    "wechat_api_base",
    "wechat_open_base",
    "bureau_url",
    "sms_api_base",
    "wecom_api_base",
    "core_banking_url",
)
# Least length of SECRET_KEY and of the services' tokens in production.
MIN_SECRET_CHARS = 32
ENVIRONMENTS = ("development", "production")


def is_loopback(host: str | None) -> bool:
    """Whether `host` names this machine only (localhost, 127.0.0.0/8, ::1)."""
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def internal_networks(s: Settings) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """INTERNAL_NETWORKS parsed (ValueError for a bad entry)."""
    return [ipaddress.ip_network(part.strip(), strict=False) for part in s.internal_networks.split(",") if part.strip()]


def guard_problems(s: Settings) -> list[str]:
    """The guard's settings that cannot work, in any environment."""
    problems = []
    if s.sunshine_env not in ENVIRONMENTS:
        problems.append(f"SUNSHINE_ENV={s.sunshine_env!r} must be development or production")
    try:
        internal_networks(s)
    except ValueError as exc:
        problems.append(f"INTERNAL_NETWORKS: {exc}; use comma-separated networks, e.g. 127.0.0.0/8,10.0.0.0/8")
    return problems


def production_problems(s: Settings) -> list[str]:
    """Every setting not safe in production, one line each (SUNSHINE_ENV=production refuses to start)."""
    problems = []
    unused = {"faceid_secret_key"} if s.face_engine != "certified" else set()  # the local engine calls no service
    for name in DEVELOPMENT_SECRETS:
        if name not in unused and getattr(s, name) == getattr(Settings, name):
            problems.append(f"{name.upper()} is still the development default; set a real value")
    if s.secret_key != Settings.secret_key and len(s.secret_key) < MIN_SECRET_CHARS:
        problems.append(
            f"SECRET_KEY is {len(s.secret_key)} characters; use at least {MIN_SECRET_CHARS} random ones "
            "(python -c 'import secrets; print(secrets.token_urlsafe(48))')"
        )
    if not s.wechat_aes_key:
        problems.append(
            "WECHAT_AES_KEY is empty (plaintext mode: messages unencrypted); set the EncodingAESKey and choose "
            "safe mode in the WeChat admin page"
        )
    if s.wechat_max_clock_skew == 0:
        problems.append("WECHAT_MAX_CLOCK_SKEW=0 turns off the replay check of WeChat's timestamps; use e.g. 300")
    if not s.public_base_url.startswith("https://") or is_loopback(urlsplit(s.public_base_url).hostname):
        problems.append(f"PUBLIC_BASE_URL={s.public_base_url!r} must be the bank's public https:// address")
    for name in OUTSIDE_SYSTEMS + (("faceid_url",) if s.face_engine == "certified" else ()):
        url = getattr(s, name)
        if is_loopback(urlsplit(url).hostname):
            problems.append(f"{name.upper()}={url!r} is the emulator on this machine; set the real https:// host")
        elif not url.startswith("https://"):
            problems.append(f"{name.upper()}={url!r} must be an https:// URL")
    if s.sunshine_demo:
        problems.append(
            "SUNSHINE_DEMO is on (demo officers with a published password); set SUNSHINE_DEMO=0 (make run DEMO=0)"
        )
    if s.face_challenge_demo_order:
        problems.append(
            "FACE_CHALLENGE_DEMO_ORDER fixes the face challenge (a recorded video passes); empty it for the random one"
        )
    for name in ("rasa_token", "action_server_token"):
        if len(getattr(s, name)) < MIN_SECRET_CHARS:
            problems.append(f"{name.upper()} must be set to at least {MIN_SECRET_CHARS} random characters")
    if s.internal_token and len(s.internal_token) < MIN_SECRET_CHARS:
        problems.append(f"INTERNAL_TOKEN must be empty or at least {MIN_SECRET_CHARS} random characters")
    for name in ("rasa_url", "action_server_url"):
        url = getattr(s, name)
        if not is_loopback(urlsplit(url).hostname) and not url.startswith("https://"):
            problems.append(f"{name.upper()}={url!r} is another machine over plain http; use https:// (its token)")
    problems += remote_redis_problems(s.redis_url)
    if s.evidence_key() == Settings().evidence_key():
        problems.append("EVIDENCE_KEY_ID names the development evidence key; add a real key to EVIDENCE_KEYS")
    return problems


def redis_url_problems(url: str) -> list[str]:
    """REDIS_URL's problem, if any: a scheme redis-py does not know, or a Sentinel URL that is malformed."""
    if not url:
        return []
    if is_sentinel(url):
        try:
            sentinel_target(url)
        except ValueError as exc:
            return [f"REDIS_URL={_hide_password(url)!r}: {exc}"]
        return []
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return [f"REDIS_URL={_hide_password(url)!r} must start with redis://, rediss://, unix:// or redis+sentinel://"]
    return []


def remote_redis_problems(url: str) -> list[str]:
    """Production: a Redis (or a Sentinel) on another machine needs a password and TLS."""
    if redis_url_problems(url):
        return []  # setting_problems says what is wrong
    if is_sentinel(url):
        target = sentinel_target(url)
        if all(is_loopback(host) for host, _ in target.sentinels):
            return []
        password, tls, form = target.password, target.tls, "rediss+sentinel://:PASSWORD@host:26379,.../MASTER"
    else:
        parts = urlsplit(url)
        if not url.startswith(("redis://", "rediss://")) or is_loopback(parts.hostname):
            return []
        password, tls, form = parts.password, parts.scheme == "rediss", "rediss://:PASSWORD@host"
    problems = []
    if not password:
        problems.append(f"REDIS_URL names another machine without a password; add one ({form})")
    if not tls:
        problems.append(f"REDIS_URL names another machine over plain TCP; use TLS ({form})")
    return problems


def _hide_password(url: str) -> str:
    """`url` with the password after the user name, and any `...password=` option, as ***."""
    url = re.sub(r"([?&][a-z_]*password=)[^&]*", r"\1***", url)
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url


def _read_dotenv(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def _convert(name: str, raw: str, kind: type):
    if kind is bool:
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name.upper()}={raw!r} is neither 1 nor 0; set it to 1 (on) or 0 (off)")
    if kind is int:
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"{name.upper()}={raw!r} is not a whole number; set it to e.g. 300") from None
    if kind is float:
        try:
            return float(raw)
        except ValueError:
            raise ConfigError(f"{name.upper()}={raw!r} is not a number; set it to e.g. 4.0") from None
    return raw


def validate(s: Settings) -> None:
    """Raise ConfigError listing every setting that cannot work (and, in production, every one
    that is not safe: `production_problems`), one line each."""
    problems = setting_problems(s)
    if s.sunshine_env == "production":
        problems += production_problems(s)
    if problems:
        raise ConfigError(*problems)


def _aes_key_problems(name: str, key: str) -> list[str]:
    """The problem with an EncodingAESKey setting (empty: plaintext mode), if any."""
    problems: list[str] = []
    if key:
        if len(key) != 43:
            problems.append(
                f"{name} must be the 43-character EncodingAESKey from the WeChat admin page "
                f"(got {len(key)} characters); leave it empty for plaintext mode"
            )
        else:
            try:
                if len(base64.b64decode(key + "=", validate=True)) != 32:
                    raise binascii.Error
            except binascii.Error:
                problems.append(
                    f"{name} is not valid base64 of a 32-byte key; copy the EncodingAESKey again "
                    "from the WeChat admin page"
                )
    return problems


def setting_problems(s: Settings) -> list[str]:
    """One line for each setting that cannot work, whatever the environment."""
    problems = []
    for name, key in (("WECHAT_AES_KEY", s.wechat_aes_key), ("WXA_PUSH_AES_KEY", s.wxa_push_aes_key)):
        problems += _aes_key_problems(name, key)
    if not re.fullmatch(r"[A-Za-z0-9]{3,32}", s.wechat_token):
        problems.append("WECHAT_TOKEN must be 3-32 letters or digits, the same as in the WeChat admin page")
    if not re.fullmatch(r"[A-Za-z0-9]{3,32}", s.wxa_push_token):
        problems.append("WXA_PUSH_TOKEN must be 3-32 letters or digits, the same as in the mini-program's admin page")
    if s.wechat_max_clock_skew < 0:
        problems.append("WECHAT_MAX_CLOCK_SKEW must be 0 (off) or a positive number of seconds")
    if not 1 <= s.web_threads <= 1000:
        problems.append("WEB_THREADS must be between 1 and 1000")
    if not 1 <= s.worker_processes <= 64:
        problems.append("WORKER_PROCESSES must be between 1 and 64")
    if not 3 <= s.heartbeat_ttl_s <= 300:
        problems.append("HEARTBEAT_TTL_S must be between 3 and 300 seconds")
    if not re.fullmatch(r"[A-Za-z0-9._-]{0,64}", s.node_name):
        problems.append("NODE_NAME must be up to 64 letters, digits, '.', '_' or '-' (empty: the host name)")
    if not 1 <= s.loan_review_hours <= 720:
        problems.append("LOAN_REVIEW_HOURS must be between 1 and 720 hours")
    if not 1 <= s.contract_ttl_hours <= 720:
        problems.append("CONTRACT_TTL_HOURS must be between 1 and 720 hours")
    if s.contract_face_above < 0:
        problems.append("CONTRACT_FACE_ABOVE must be 0 (a face check for every loan) or more yuan")
    if not 0 <= s.contract_renewals_per_day <= 20:
        problems.append("CONTRACT_RENEWALS_PER_DAY must be between 0 and 20")
    if not s.bank_name.strip():
        problems.append("BANK_NAME must name the lender, as the loan contract says it")
    if not 0.5 <= s.wechat_reply_budget_s <= 4.5:
        problems.append("WECHAT_REPLY_BUDGET_S must be between 0.5 and 4.5 seconds (WeChat waits 5 s)")
    if not 0.2 <= s.face_tolerance <= 0.6:
        problems.append("FACE_TOLERANCE must be between 0.2 and 0.6 (face_recognition's own default is 0.6)")
    if s.face_engine not in ("local", "certified"):
        problems.append("FACE_ENGINE must be local (face_recognition) or certified (the service at FACEID_URL)")
    if not 0.5 <= s.face_pass_ratio <= s.face_review_ratio <= 1.5:
        problems.append("FACE_PASS_RATIO and FACE_REVIEW_RATIO must satisfy 0.5 <= pass <= review <= 1.5")
    if not s.face_tolerance <= s.face_review_distance <= 0.6:
        problems.append("FACE_REVIEW_DISTANCE must be between FACE_TOLERANCE and 0.6")
    if not 1 <= s.face_cohort_k <= 50 or s.face_cohort_min < s.face_cohort_k:
        problems.append("FACE_COHORT_K must be 1-50 and FACE_COHORT_MIN at least FACE_COHORT_K")
    if not 0 <= s.faceid_review_sim <= s.faceid_pass_sim <= 100:
        problems.append("FACEID_REVIEW_SIM and FACEID_PASS_SIM must satisfy 0 <= review <= pass <= 100")
    if not 15 <= s.face_challenge_window_s <= 600:
        problems.append("FACE_CHALLENGE_WINDOW_S must be between 15 and 600 seconds")
    if s.face_replay_memory_s < s.face_challenge_window_s:
        problems.append("FACE_REPLAY_MEMORY_S must be at least FACE_CHALLENGE_WINDOW_S")
    if not 1 <= s.auth_max_attempts <= 20:
        problems.append("AUTH_MAX_ATTEMPTS must be between 1 and 20")
    if s.auth_wechat_code not in ("mp", "wxa", "none"):
        problems.append("AUTH_WECHAT_CODE must be mp, wxa or none")
    if not 1 <= s.bureau_attempts <= 10:
        problems.append("BUREAU_ATTEMPTS must be between 1 and 10")
    if not 1 <= s.disbursement_attempts <= 10:
        problems.append("DISBURSEMENT_ATTEMPTS must be between 1 and 10")
    if not 0 <= s.repayment_reminder_days <= 30:
        problems.append("REPAYMENT_REMINDER_DAYS must be between 0 (only on the due date) and 30")
    if not 0 <= s.repayment_reminder_hour <= 23:
        problems.append("REPAYMENT_REMINDER_HOUR must be an hour of the day, 0-23 (Beijing time)")
    if s.report_query_stale_s < 10:
        problems.append("REPORT_QUERY_STALE_S must be at least 10 seconds (longer than one bureau query)")
    if "://" not in s.database_url:
        problems.append(
            f"DATABASE_URL={s.database_url!r} is not a URL; use e.g. sqlite:///var/sunshine.db or "
            "postgresql://user@host/db"
        )
    problems += redis_url_problems(s.redis_url)
    if not 0 <= s.trusted_proxies <= 5:
        problems.append("TRUSTED_PROXIES must be 0 (no proxy) to 5: the number of proxies in front of the web")
    if not 1 <= s.bind_guesses_per_day <= 50:
        problems.append("BIND_GUESSES_PER_DAY must be between 1 and 50 (name+ID guesses per WeChat user per day)")
    if not 1 <= s.bind_codes_per_id_per_day <= 20:
        problems.append("BIND_CODES_PER_ID_PER_DAY must be between 1 and 20")
    if not 1 <= s.bind_code_attempts <= 10:
        problems.append("BIND_CODE_ATTEMPTS must be between 1 and 10")
    if not 60 <= s.bind_code_ttl_s <= 1800:
        problems.append("BIND_CODE_TTL_S must be between 60 and 1800 seconds")
    if not 0 <= s.auth_reissues_per_day <= 20:
        problems.append("AUTH_REISSUES_PER_DAY must be between 0 and 20")
    if not 300 <= s.mp_session_ttl_s <= 86400:
        problems.append("MP_SESSION_TTL_S must be between 300 and 86400 seconds")
    if not 1 <= s.handoff_warn_minutes <= 240:
        problems.append("HANDOFF_WARN_MINUTES must be between 1 and 240 minutes")
    if not 1 <= s.tracker_retention_hours <= 720:
        problems.append("TRACKER_RETENTION_HOURS must be between 1 and 720 hours (30 days)")
    if not 1 <= s.face_review_retention_hours <= 720:
        problems.append("FACE_REVIEW_RETENTION_HOURS must be between 1 and 720 hours (30 days)")
    if not 1 <= s.face_review_minutes <= 24 * 60:
        problems.append("FACE_REVIEW_MINUTES must be between 1 and 1440 minutes")
    if not 300 <= s.console_session_max_s <= 7 * 86400:
        problems.append("CONSOLE_SESSION_MAX_S must be between 300 seconds and 7 days (604800)")
    if not 60 <= s.console_session_idle_s <= s.console_session_max_s:
        problems.append("CONSOLE_SESSION_IDLE_S must be at least 60 seconds and at most CONSOLE_SESSION_MAX_S")
    if not 1 <= s.login_backoff_after <= 50:
        problems.append("LOGIN_BACKOFF_AFTER must be between 1 and 50 wrong passwords")
    if not 1 <= s.login_backoff_base_s <= s.login_backoff_max_s <= 86400:
        problems.append("need 1 <= LOGIN_BACKOFF_BASE_S <= LOGIN_BACKOFF_MAX_S <= 86400 seconds")
    if not 10_000_000 <= s.reference_import_max_bytes <= 2_000_000_000:
        problems.append("REFERENCE_IMPORT_MAX_BYTES must be between 10000000 and 2000000000 bytes")
    try:
        if s.evidence_key_id not in s.evidence_keyring():
            problems.append(f"EVIDENCE_KEY_ID={s.evidence_key_id!r} names no key of EVIDENCE_KEYS (key_id:secret)")
    except ConfigError as exc:
        problems += exc.problems
    if s.evidence_checkpoint_every_s < 60:
        problems.append("EVIDENCE_CHECKPOINT_EVERY_S must be at least 60 seconds")
    problems += demo_order_problems(s)
    for name in HTTP_SETTINGS:
        value = getattr(s, name)
        if not value.startswith(("http://", "https://")):
            problems.append(f"{name.upper()}={value!r} must be an http:// or https:// URL")
    problems += guard_problems(s)
    return problems


def raw_setting(name: str, default: str = "") -> str:
    """One setting's text (the environment, else `.env`), for the few modules that need it before
    `load()` can run (the clock, read when the models are imported)."""
    return os.environ.get(name, _read_dotenv(Path.cwd() / ".env").get(name, default))


def load(
    env: dict[str, str] | None = None, dotenv: Path | None = None, defaults: dict[str, str] | None = None
) -> Settings:
    """Build Settings from `.env` and the environment (environment wins; `defaults`, e.g. the
    launcher's `--demo`, count only where neither sets a value)."""
    source = dict(defaults or {})
    source.update(_read_dotenv(dotenv if dotenv is not None else Path.cwd() / ".env"))
    source.update(os.environ if env is None else env)
    kwargs = {}
    for f in fields(Settings):
        raw = source.get(f.name.upper())
        if raw is None or raw == "" and f.name not in ("wechat_aes_key", "wxa_push_aes_key", "redis_url"):
            continue
        kind = type(f.default) if f.default is not None else str
        kwargs[f.name] = _convert(f.name, raw.strip(), kind)
    settings = Settings(**kwargs)
    validate(settings)
    return settings


def load_for_command() -> Settings:
    """The settings for a command (`python -m ...`): on a configuration problem, the problem on
    standard error and exit status 2."""
    try:
        return load()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
