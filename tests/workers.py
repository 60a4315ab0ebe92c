"""Stand-ins for the worker side of the exactly-once protocol, in threads, through the real claim."""

import threading
import time

from conversation import tasks
from conversation.relay import split_for_wechat, worker_claims_passive
from sunshine.jobs import Jobs
from sunshine.redis import connect


class ThreadWorker:
    """Plays the worker: answers after `delay` seconds, in a thread, through the real claim."""

    def __init__(self, r, delay, texts=("您好",), jobs=None):
        self.r, self.delay, self.texts, self.jobs = r, delay, list(texts), jobs
        self.asked, self.sent, self.threads = [], [], []

    def __getattr__(self, name):
        """Every other job (an officer's reply, the reports...) is enqueued for real, when `jobs` is given."""
        if name == "jobs" or self.jobs is None:
            raise AttributeError(name)
        return getattr(self.jobs, name)

    def answer(self, openid, text, key):
        self.asked.append(text)

        def run():
            time.sleep(self.delay)
            if not worker_claims_passive(self.r, key, self.texts):
                self.deliver(openid, split_for_wechat(self.texts))

        t = threading.Thread(target=run)
        t.start()
        self.threads.append(t)

    def deliver(self, openid, chunks):
        self.sent.append(chunks)

    def join(self):
        for t in self.threads:
            t.join()


class EchoWorker(ThreadWorker):
    """The worker side, answering '已收到：<text>' through the real claim protocol."""

    def answer(self, openid, text, key):
        self.texts = [f"已收到：{text}"]
        super().answer(openid, text, key)


class EmulatorBot(ThreadWorker):
    """The worker side with a bot that takes `delay` seconds; what misses the passive
    window goes out through the real delivery code to the WeChat API emulator."""

    def __init__(self, settings, delay):
        super().__init__(connect(settings.redis_url), delay, ["您的额度是20万元"], Jobs(settings))
        self.settings = settings

    def deliver(self, openid, chunks, attempt=0, delay_s=0):
        tasks.deliver_texts(openid, chunks, attempt, settings=self.settings)
