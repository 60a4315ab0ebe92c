"""Personal data in the logs of every process, in background jobs and in Rasa's tracker store."""

import io
import logging

import pytest
from rq import Queue

from sunshine.jobs import Jobs, queue_name
from sunshine.launcher import rasa_endpoints
from sunshine.protect import mask_records
from sunshine.redis import connect
from sunshine.settings import ConfigError, Settings, load

ID_NUMBER, PHONE = "321283197503120119", "13912345678"


@pytest.fixture
def masked_records():
    before = logging.getLogRecordFactory()
    mask_records()
    mask_records()  # installing twice masks once
    yield
    logging.setLogRecordFactory(before)


def test_every_log_record_is_masked_whatever_handler_writes_it(masked_records):
    """Rasa's, Sanic's and RQ's handlers are not ours: the records themselves are masked."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)  # a framework's plain handler, no MaskingFormatter
    logger = logging.getLogger("rasa.core.processor.privacy-test")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        logger.debug("processor.message.parse text=%s", f"我的身份证是{ID_NUMBER}，手机{PHONE}")
        logger.info({"event": "structlog dict", "text": ID_NUMBER})
    finally:
        logger.removeHandler(handler)
    written = out.getvalue()
    assert ID_NUMBER not in written and PHONE not in written
    assert "3212**********0119" in written and "139****5678" in written


def test_the_rasa_process_masks_its_records(monkeypatch):
    """`python -m bot.server` (Rasa) installs the masking before Rasa sets up its logging."""
    import rasa.__main__

    from bot import server

    before = logging.getLogRecordFactory()
    monkeypatch.setattr(rasa.__main__, "main", lambda: None)
    try:
        server.main(["--version"])
        record = logging.getLogger("rasa").makeRecord("rasa", logging.INFO, __file__, 1, ID_NUMBER, None, None)
        assert record.getMessage() == "3212**********0119"
    finally:
        logging.setLogRecordFactory(before)


def test_background_jobs_are_described_by_their_name_only(demo_settings):
    """RQ logs every job's description at INFO; by default it is the call with its arguments."""
    openid = "o_privacy_test"
    Jobs(demo_settings).answer(openid, f"我的身份证是{ID_NUMBER}", "privacy-1")
    queue = Queue(queue_name(openid, demo_settings.worker_processes), connection=connect(demo_settings.redis_url))
    [job] = [j for j in queue.jobs if j.args and j.args[0] == openid]
    assert job.description == "conversation.tasks.answer_message"
    assert ID_NUMBER not in repr(job)
    assert job.args[1] == f"我的身份证是{ID_NUMBER}"  # the job itself still has the customer's text
    job.delete()


def test_tracker_retention_is_a_setting_with_a_short_default(tmp_path):
    redis = "redis://127.0.0.1:6379/0"
    assert "record_exp: 86400\n" in rasa_endpoints(Settings(redis_url=redis))
    assert "record_exp: 21600\n" in rasa_endpoints(Settings(redis_url=redis, tracker_retention_hours=6))
    assert load({"TRACKER_RETENTION_HOURS": "6"}, dotenv=tmp_path / ".env").tracker_retention_hours == 6
    with pytest.raises(ConfigError, match="TRACKER_RETENTION_HOURS"):
        load({"TRACKER_RETENTION_HOURS": "0"}, dotenv=tmp_path / ".env")
