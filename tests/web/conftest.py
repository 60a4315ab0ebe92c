from contextlib import ExitStack
from dataclasses import replace

import pytest

from emulators import serve_in_thread
from emulators.wechat.user import WeChatUser
from sunshine.redis import connect
from tests.unit.test_relay import ThreadWorker
from webhooks import create_app


class EchoWorker(ThreadWorker):
    """The worker side, answering '已收到：<text>' through the real claim protocol."""

    def answer(self, openid, text, key):
        self.texts = [f"已收到：{text}"]
        super().answer(openid, text, key)


@pytest.fixture
def bot(demo_settings):
    """The worker side the web apps of this test enqueue to (make_client, serve_webhook)."""
    worker = EchoWorker(connect(demo_settings.redis_url), 0.01)
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
