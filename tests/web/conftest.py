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
def bot(monkeypatch, demo_settings):
    worker = EchoWorker(connect(demo_settings.redis_url), 0.01)
    monkeypatch.setattr("conversation.inbound.Jobs", lambda settings: worker)
    yield worker
    worker.join()


@pytest.fixture
def make_client(demo_settings):
    def make(**overrides):
        return create_app(replace(demo_settings, **overrides)).test_client()

    return make


@pytest.fixture
def serve_webhook(demo_settings):
    """Serve the web app over real HTTP; returns a factory of WeChat users talking to it."""
    with ExitStack() as servers:

        def serve(openid="o_demo_zhangjianguo", **overrides):
            settings = replace(demo_settings, **overrides)
            url = servers.enter_context(serve_in_thread(create_app(settings)))
            return WeChatUser(
                f"{url}/wechat", settings.wechat_token, settings.wechat_appid, settings.wechat_aes_key, openid=openid
            )

        yield serve
