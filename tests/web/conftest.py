import pytest

from tests.unit.test_relay import ThreadWorker
from sunshine.redis import connect
from webhooks import create_app


@pytest.fixture
def bot(monkeypatch, demo_settings):
    """The worker side, answering '已收到：<text>' through the real claim protocol."""
    r = connect(demo_settings.redis_url)

    class EchoWorker(ThreadWorker):
        def answer(self, openid, text, key):
            self.texts = [f"已收到：{text}"]
            super().answer(openid, text, key)

    worker = EchoWorker(r, 0.01)
    monkeypatch.setattr("webhooks.wechat.Jobs", lambda settings: worker)
    yield worker
    worker.join()


@pytest.fixture
def make_client(demo_settings):
    def make(**overrides):
        from dataclasses import replace
        return create_app(replace(demo_settings, **overrides)).test_client()
    return make
