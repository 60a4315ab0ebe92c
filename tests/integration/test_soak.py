"""`make soak` in small: a few seconds of the crowd against the integration stack."""

from bench import soak


def test_a_short_soak_answers_every_message_once_and_samples_every_process(stack, tmp_path):
    soak.load_households(stack.env["DATABASE_URL"], stack.env["SECRET_KEY"], tmp_path, households=40)
    run = soak.soak(stack, minutes=0.2, users=4, warmup_s=0, households=40, progress=lambda line: None)
    result = run.result
    assert result.sent >= 8 and len({m.openid for m in result.messages}) >= 4
    assert (result.lost, result.duplicated, result.failed) == (0, 0, 0), result.summary()
    assert all(m.answer for m in result.messages) and run.apologies == 0
    assert len(result.answer_times_ms) == result.sent
    sampled = set(run.memory[0][1])
    assert {"launcher", "redis", "rasa", "actions", "web", "web.worker", "worker.0", "duties"} <= sampled
    assert all(v for v in run.memory[-1][1].values()), "a process of the stack is gone"
    ratio, which = run.growth_ratio()
    assert ratio > 0 and which.split("#")[0] not in soak.DATA_HOLDERS
    assert run.errors_logged == []
    text = soak.report(run)
    assert f"{result.sent} messages" in text and "lost 0" in text and "rasa" in text
