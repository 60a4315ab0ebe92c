"""Shared fixtures: a real database (SQLite, or PostgreSQL when DATABASE_URL
names one) migrated with Alembic, a real Redis server, the emulators and web
app the web and security tests talk to, a three-party loan application, and
the whole stack (started once per session, for the integration and browser
tests)."""

from __future__ import annotations

import functools
import os
import shutil
import socket
import uuid
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from werkzeug.security import check_password_hash, generate_password_hash

from auth_flow.enrolment import enroll_reference
from auth_flow.tokens import reissue_for_application
from clients.corebank import CoreBankingClient
from clients.sms import SmsClient
from emulators import serve_in_thread
from emulators.bureau.api import create_app as bureau_app
from emulators.corebank.api import create_app as corebank_app
from emulators.sms.api import create_app as sms_app
from emulators.wechat.api import create_app as create_wechat_emulator
from emulators.wechat.user import WeChatUser
from lending.customers import by_openid
from sunshine import local_stack, redis_server
from sunshine.db import engine_for, engine_url, unit_of_work
from sunshine.demo import load_demo
from sunshine.jobs import Jobs, per_process
from sunshine.local_stack import free_port  # noqa: F401  (tests import it from here)
from sunshine.migrate import upgrade
from sunshine.models import Base
from sunshine.redis import connect
from sunshine.settings import DEMO_CHALLENGE_ORDER, Settings
from tests import TEST_REDIS_DB, TEST_SECRET
from tests.unit import auth_media as media
from tests.unit.lending_helpers import service as lending_service
from tests.workers import EchoWorker, EmulatorBot
from webhooks import create_app


@contextmanager
def fresh_database(folder: Path):
    """A new, empty database: a file in `folder`, or a new PostgreSQL
    database beside the one DATABASE_URL names (dropped afterwards)."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgresql"):
        yield f"sqlite:///{folder / 'sunshine.sqlite'}"
        return
    name = f"sunshine_test_{uuid.uuid4().hex[:8]}"
    url = engine_url(url)  # a list of hosts (failover) in the form SQLAlchemy parses
    admin = create_engine(url, isolation_level="AUTOCOMMIT", future=True)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    test_url = make_url(url).set(database=name).render_as_string(hide_password=False)
    try:
        yield test_url
    finally:
        engine_for(test_url).dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def database_template(tmp_path_factory):
    """A migrated database for this test session: its URL."""
    with fresh_database(tmp_path_factory.mktemp("db")) as url:
        upgrade(url)
        if url.startswith("postgresql"):
            # Without vacuuming, few of the rows `db_url` deletes leave room that new rows fill, so
            # rows mostly come back in the order they were written, as from the new tables TRUNCATE
            # made. Mostly: a test that compares rows in order asks for the order (ORDER BY id).
            with unit_of_work(url) as session:
                for table in Base.metadata.sorted_tables:
                    session.execute(text(f'ALTER TABLE "{table.name}" SET (autovacuum_enabled = false)'))
        yield url


@pytest.fixture
def db_url(database_template, tmp_path):
    """An empty, migrated database for one test."""
    if database_template.startswith("sqlite"):
        path = tmp_path / "test.sqlite"  # a copy of the migrated template: fast and isolated
        shutil.copy(database_template.split("///", 1)[1], path)
        return f"sqlite:///{path}"
    with unit_of_work(database_template) as session:
        # the superuser's maintenance role: neither the consent-evidence table's append-only trigger
        # nor the foreign keys' fire. DELETE, not TRUNCATE: a test leaves a few rows, which DELETE
        # removes in 7 ms where TRUNCATE makes new files for every table (80 ms, and the server's CPU;
        # make test on PostgreSQL: the server's CPU -70 s, the fast tier 191 s -> 150 s).
        session.execute(text("SET LOCAL session_replication_role = replica"))
        for table in reversed(Base.metadata.sorted_tables):
            session.execute(table.delete())
        session.execute(text("SELECT setval(oid, 1, false) FROM pg_class WHERE relkind = 'S'"))  # ids from 1
    return database_template


@pytest.fixture(scope="session")
def demo_template(database_template, tmp_path_factory) -> Path:
    """SQLite: the migrated template with the demo loaded, once per session (a file)."""
    path = tmp_path_factory.mktemp("demo") / "demo.sqlite"
    shutil.copy(database_template.split("///", 1)[1], path)
    url = f"sqlite:///{path}"
    with unit_of_work(url) as session:
        load_demo(session, TEST_SECRET)
    engine_for(url).dispose()  # the last connection closed: everything is in the file (no WAL left)
    return path


@pytest.fixture(scope="session")
def demo_password_hashes():
    """PostgreSQL: the demo officers' password hashes computed once per session (the same
    salted PBKDF2 hashes, reused), so that loading the demo for each test is fast."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("sunshine.demo.generate_password_hash", functools.cache(generate_password_hash))
        yield


@pytest.fixture
def demo_db_url(db_url, request):
    """The test's database holding the demo village, products and officers: on SQLite a copy
    of the session's demo template, on PostgreSQL the demo loaded into the emptied database."""
    if db_url.startswith("sqlite"):
        shutil.copy(request.getfixturevalue("demo_template"), db_url.split("///", 1)[1])
        return db_url
    request.getfixturevalue("demo_password_hashes")
    with unit_of_work(db_url) as session:
        load_demo(session, TEST_SECRET)
    return db_url


@pytest.fixture(scope="session")
def redis_base_url(tmp_path_factory):
    """A real Redis server: the one at REDIS_URL, else a private one started here."""
    url = os.environ.get("REDIS_URL", "")
    if url and redis_server.reachable(url):
        base, _, db = url.rpartition("/")
        yield base if (not db or db.isdigit()) and url.count("/") > 2 else url  # Sentinel: .../MASTER_NAME/DB
        return
    port = free_port()
    proc = redis_server.start(port, tmp_path_factory.mktemp("redis"))
    yield f"redis://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def redis_url(redis_base_url):
    """A flushed Redis database reserved for tests."""
    url = f"{redis_base_url}/{TEST_REDIS_DB}"
    connect(url).flushdb()
    return url


# The services `make run` serves on fixed ports; a test reaches one only when it starts it.
SERVICE_ADDRESSES = (
    "rasa_url",
    "action_server_url",
    "wechat_api_base",
    "wechat_open_base",
    "bureau_url",
    "wecom_api_base",
    "sms_api_base",
    "faceid_url",
    "core_banking_url",
)


@pytest.fixture(scope="session", autouse=True)
def password_checks_remembered():
    """The console's password check remembers each (hash, password) pair's answer in this test
    process: scrypt costs about half a second by design, and the tests log the same demo officers
    (their hashes copied from the session's template) in hundreds of times."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("webhooks.console.auth.check_password_hash", functools.cache(check_password_hash))
        yield


@pytest.fixture(scope="session", autouse=True)
def faces_remembered():
    """Face detection, encodings and landmarks computed once per frame in this test process
    (`auth_media.RememberedFaces`), and kept in SUNSHINE_CACHE_DIR when set (`make test` sets it) for
    the other test processes and the next runs; processes the tests start compute their own."""
    kept = os.environ.get("SUNSHINE_CACHE_DIR")
    remembered = media.RememberedFaces(Path(kept) if kept else None)
    with pytest.MonkeyPatch.context() as mp:
        for module in ("auth_flow.faces", "auth_flow.liveness"):
            mp.setattr(f"{module}._face_recognition", lambda: remembered)
        yield


@pytest.fixture(scope="session")
def closed_address():
    """http://127.0.0.1:<port> where nothing listens: a socket bound for the session and never
    listening, so that connecting is refused at once and no other process can take the port."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{held.getsockname()[1]}"


@pytest.fixture(autouse=True)
def services_closed(closed_address, monkeypatch):
    """Settings loaded from the environment point at a closed port for every service (a
    `make run` on the same machine is never reached); a test serving one sets its address."""
    for name in SERVICE_ADDRESSES:
        monkeypatch.setenv(name.upper(), closed_address)


@pytest.fixture
def settings(db_url, redis_url, closed_address) -> Settings:
    return replace(
        Settings(),
        database_url=db_url,
        redis_url=redis_url,
        secret_key=TEST_SECRET,
        # The flow tests' reference face is a small, blurred frame of a video clip (not an ID photo),
        # which its own other frames match at up to 0.5; the decision itself is measured by
        # tests/unit/test_face_decision.py and `python -m auth_flow evaluate-faces`.
        face_tolerance=0.5,
        face_review_distance=0.6,
        **dict.fromkeys(SERVICE_ADDRESSES, closed_address),
    )


@pytest.fixture
def demo_settings(settings, demo_db_url) -> Settings:
    return replace(settings, database_url=demo_db_url)


@pytest.fixture
def bureau():
    app = bureau_app()
    with serve_in_thread(app) as url:
        yield url, app.extensions["bureau_emulator"]


@pytest.fixture
def corebank():
    """The core-banking emulator over real HTTP: (a client of it, its base URL, its state)."""
    s = Settings()
    app = corebank_app(s.core_banking_channel_id, s.core_banking_secret)
    with serve_in_thread(app) as url:
        client = CoreBankingClient(url, s.core_banking_channel_id, s.core_banking_secret, timeout=5)
        yield client, url, app.extensions["corebank_emulator"]


@pytest.fixture
def sms():
    """The SMS-gateway emulator over real HTTP: (a client of it, the texts it received)."""
    app = sms_app(api_key="test-sms-key")
    with serve_in_thread(app) as url:
        yield SmsClient(url, "test-sms-key"), app.extensions["sms_emulator"]["messages"]


@pytest.fixture
def application(demo_settings):
    """A guaranteed farm loan of 张建国 (spouse 李秀英, guarantor 王春华), each party's
    reference face enrolled (the singer's clip frame for all three)."""
    svc, _ = lending_service()
    with unit_of_work(demo_settings.database_url) as s:
        head, guarantor = by_openid(s, "o_demo_zhangjianguo"), by_openid(s, "o_demo_wangchunhua")
        app = svc.apply(
            s, head.id, "guaranteed_farm_loan", 100_000, 24, idempotency_key="auth1", guarantor_id=guarantor.id
        )
        issued = reissue_for_application(s, app, "officer01", timedelta(minutes=30)).issued
        for i in issued:
            enroll_reference(
                s, TEST_SECRET, s.get(type(head), i.authorization.party_customer_id), media.reference(), "officer01"
            )
        tokens = {i.authorization.party_role: i.token for i in issued}
        names = {i.authorization.party_role: i.authorization.party_name for i in issued}
    return app.id, tokens, names


@pytest.fixture
def bot(demo_settings):
    """The worker side the web apps of this test enqueue to (make_client, serve_webhook)."""
    worker = EchoWorker(connect(demo_settings.redis_url), 0.01, jobs=Jobs(demo_settings))
    yield worker
    worker.join()


def bot_of(request):
    """The `bot` fixture's worker when the test uses it, else None (the app's own jobs)."""
    return request.getfixturevalue("bot") if "bot" in request.fixturenames else None


@pytest.fixture
def make_client(demo_settings, request):
    def make(jobs=None, **overrides):
        return create_app(replace(demo_settings, **overrides), jobs or bot_of(request)).test_client()

    return make


@pytest.fixture
def serve_webhook(demo_settings, request):
    """Serve the web app over real HTTP; returns a factory of WeChat users talking to it."""
    with ExitStack() as servers:

        def serve(openid="o_demo_zhangjianguo", jobs=None, **overrides):
            settings = replace(demo_settings, **overrides)
            url = servers.enter_context(serve_in_thread(create_app(settings, jobs or bot_of(request))))
            return WeChatUser(
                f"{url}/wechat", settings.wechat_token, settings.wechat_appid, settings.wechat_aes_key, openid=openid
            )

        yield serve


@pytest.fixture
def emulated(demo_settings):
    """(settings pointing at a live WeChat API emulator, its URL, a factory of slow bots)."""
    per_process.cache_clear()
    with serve_in_thread(create_wechat_emulator(demo_settings)) as base:
        settings = replace(demo_settings, wechat_api_base=base)
        bots = []

        def slow_bot(delay):
            bot = EmulatorBot(settings, delay)
            bots.append(bot)
            return bot

        yield settings, base, slow_bot
        for bot in bots:
            bot.join()
    per_process.cache_clear()


# The tests on a whole stack run in two groups, each in one process on a stack of its own (`make
# test` runs the groups beside each other and beside the rest): the conversations and the faults on
# the first; the browser, the demo story, the assistant's checks, the stack's own checks, the soak
# and the fault tests that start servers of their own (tests/faults/test_nodes.py, test_failover.py)
# on the second. The two take about as long (4:40 and 4:30 of make test's 5:40, session 13).
SECOND_STACK = (
    "tests/browser/",
    "tests/integration/test_demo_story.py",
    "tests/integration/test_assistant.py",
    "tests/integration/test_stack.py",
    "tests/integration/test_soak.py",
    "tests/faults/test_nodes.py",
    "tests/faults/test_failover.py",
)


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's hook reads the groups (it is registered later)
def pytest_collection_modifyitems(items):
    """The tests on a stack in order: those that only use it, then the fault tests (they kill
    and slow its processes), then those that stop it (`last_on_stack`), then the fault tests that
    start servers of their own. With pytest-xdist each group is one unit that one process runs in
    this order while the other processes run the rest."""

    def tier(item: pytest.Item) -> int:
        if "stack" not in getattr(item, "fixturenames", ()):
            return 3 if item.get_closest_marker("faults") else 4
        if item.get_closest_marker("last_on_stack"):
            return 2
        return 1 if item.get_closest_marker("faults") else 0

    items.sort(key=tier)
    for item in items:
        if tier(item) < 4:
            second = item.nodeid.startswith(SECOND_STACK)
            item.add_marker(pytest.mark.xdist_group("stack2" if second else "stack"))


# The shared stack's settings beyond the launcher's: two web workers (the fault tests kill one), two
# reply workers, a short passive budget so that answers also go through the customer-service API, and a
# bureau timeout long enough for a slow query to be in flight when its worker dies (tests/faults).
STACK_SETTINGS = {
    "SECRET_KEY": TEST_SECRET,
    "FACE_CHALLENGE_DEMO_ORDER": DEMO_CHALLENGE_ORDER,  # as `make run` starts it, with the demo switch
    "WEB_WORKERS": "2",
    "WORKER_PROCESSES": "2",
    "WECHAT_REPLY_BUDGET_S": "1.5",
    "RESTART_BACKOFF_S": "1",
    "BUREAU_TIMEOUT_S": "20",
}


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    """The whole stack, started by the same launcher as `make run`, on free ports (see
    `sunshine.local_stack`): once per session, for the integration, browser and fault tests."""
    folder = tmp_path_factory.mktemp("stack")
    with fresh_database(folder) as db_url:
        try:
            s = local_stack.start(folder, db_url, **STACK_SETTINGS)
        except local_stack.StackFailed as exc:
            pytest.fail(str(exc))
        yield s
        s.stop()
