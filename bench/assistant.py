"""`python -m bench.assistant`: what the Rasa assistant costs.

1. `rasa train` of bot/ + nlu_data/ from scratch into a temporary folder:
   wall time and peak memory (resident set of the process and its children,
   sampled every 0.2 s). Its in-run baseline is a fixed TensorFlow training
   (the same kind of work as DIET's, independent of the project), timed just
   before and just after: the machine's speed in that hour, since the same
   `rasa train` has taken from 125 to 276 s on this kind of machine.
2. With the whole stack running (`sunshine.local_stack`), one customer at a
   time: `/model/parse` (NLU only) and a full turn through Rasa's REST channel
   (NLU, dialogue policies, the action server and its database), over the
   held-out messages. The parse is the in-run baseline of the turn.

3. The loan form when a bound customer says everything at once ("我想用阳光e贷借5万一年买化肥"):
   the questions asked before the confirmation (the most over three such chats; target <= 1).

Figures: rasa_train_s (baseline: the reference training), rasa_train_peak_mb, parse_p50_ms, parse_p95_ms,
turn_p50_ms, turn_p95_ms (target < 300 ms), form_turns_all_in_one. It also prints the held-out intents
of the slowest 5% of turns (the tail the p95 is made of). A message the bot does not answer is
recorded, the run goes on, and the benchmark exits 1 at the end naming them.
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from rasa.shared.nlu.training_data.loading import load_data

from bench.results import percentile, record
from sunshine import local_stack
from sunshine.settings import ROOT

RASA = str(Path(sys.executable).with_name("rasa"))
HELDOUT = ROOT / "tests" / "nlu" / "heldout.yml"
# Everything said at once by a bound farmer (the demo's 张建国); the form should go straight to the
# confirmation, or ask one question at most.
ALL_IN_ONE = ("我想用阳光e贷借5万一年买化肥", "用阳光e贷贷3万，借两年，盖大棚", "我要贷款，阳光e贷，8万，一年，买农机")
ALL_IN_ONE_SENDER = "o_demo_zhangjianguo"
CONFIRMATION = "请核对您的申请"
# The scripted customer's answer to a question the form asks anyway (words of the question -> answer).
SCRIPTED_ANSWERS = {"哪个产品": "阳光e贷", "选一个": "阳光e贷", "借多少": "5万", "借多久": "一年", "做什么": "买化肥"}
MAX_QUESTIONS = 6


def measure_training(out: Path) -> tuple[float, float]:
    """(seconds, peak MB) of one `rasa train` from scratch."""
    started = time.monotonic()
    proc = subprocess.Popen(
        [
            RASA,
            "train",
            "--config",
            "bot/config.yml",
            "--domain",
            "bot/domain.yml",  # noqa: S603  our own fixed argv (rasa train), no shell
            "--data",
            "bot/data",
            "nlu_data",
            "--out",
            str(out),
            "--force",
            "--quiet",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    root, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        try:
            rss = sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
            peak = max(peak, rss)
        except psutil.Error:
            pass
        time.sleep(0.2)
    if proc.returncode != 0:
        raise SystemExit(f"rasa train failed with exit code {proc.returncode}")
    return time.monotonic() - started, peak / 2**20


def reference_training(steps: int = 600) -> float:
    """Seconds of a fixed TensorFlow training: a dense network of DIET's sizes over
    8,000 sparse features (as many as the NLU's n-grams), `steps` batches of 128."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    features = tf.constant((rng.random((128, 8000)) < 0.003).astype("float32"))
    labels = tf.constant(rng.integers(0, 20, 128))
    model = tf.keras.Sequential(
        [
            tf.keras.layers.Dense(256, activation="relu"),
            tf.keras.layers.Dense(128, activation="relu"),
            tf.keras.layers.Dense(20),
        ]
    )
    optimizer = tf.keras.optimizers.Adam(0.001)
    loss = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function
    def step() -> None:
        with tf.GradientTape() as tape:
            value = loss(labels, model(features, training=True))
        gradients = tape.gradient(value, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables, strict=True))

    step()  # graph compilation, not timed
    started = time.perf_counter()
    for _ in range(steps):
        step()
    return time.perf_counter() - started


def measure_turns(stack: local_stack.Stack, texts: list[str]) -> tuple[list[float], list[float], list[str]]:
    """(parse ms, turn ms, the messages the bot did not answer): a message without an answer is
    recorded and the run goes on, so that one failure does not hide the others."""
    parse_ms, turn_ms, silent = [], [], []
    with stack.rasa_http() as http:
        for i, text in enumerate(texts):
            t0 = time.perf_counter()
            http.post(f"{stack.rasa}/model/parse", json={"text": text}, timeout=30).raise_for_status()
            t1 = time.perf_counter()
            answer = http.post(
                f"{stack.rasa}/webhooks/rest/webhook",
                json={"sender": f"bench_turn_{i % 20}", "message": text},
                timeout=30,
            )
            t2 = time.perf_counter()
            answer.raise_for_status()
            if not answer.json():
                silent.append(text)
            parse_ms.append((t1 - t0) * 1000)
            turn_ms.append((t2 - t1) * 1000)
    return parse_ms, turn_ms, silent


def questions_before_confirmation(stack: local_stack.Stack, sender: str, said: str) -> int:
    """How many questions the loan form asks a bound customer who said everything in `said`
    before it shows the application to confirm (each answered as a customer would)."""
    asked = 0
    with stack.rasa_http() as http:

        def turn(text: str) -> str:
            resp = http.post(
                f"{stack.rasa}/webhooks/rest/webhook", json={"sender": sender, "message": text}, timeout=30
            )
            resp.raise_for_status()
            return "\n".join(m.get("text") or "" for m in resp.json())

        answer = turn(said)
        while CONFIRMATION not in answer and asked < MAX_QUESTIONS:
            asked += 1
            reply = next((r for question, r in SCRIPTED_ANSWERS.items() if question in answer), None)
            if reply is None:  # not a question of the form: the form did not follow
                return MAX_QUESTIONS
            answer = turn(reply)
        turn("取消")  # the next chat starts afresh
    return asked


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=300, help="held-out messages to send (default 300)")
    parser.add_argument("--skip-training", action="store_true", help="measure parse and turn only")
    args = parser.parse_args(argv)
    figures: dict = {}
    with tempfile.TemporaryDirectory(prefix="bench-assistant-") as tmp:
        folder = Path(tmp)
        if not args.skip_training:
            print("reference training, rasa train from scratch, reference training ...", flush=True)
            before = reference_training()
            seconds, peak_mb = measure_training(folder / "models")
            reference = (before + reference_training()) / 2
            figures.update(rasa_train_s=(seconds, "s", reference), rasa_train_peak_mb=(peak_mb, "MB", None))
            print(
                f"rasa train: {seconds:.0f} s, peak {peak_mb:.0f} MB; reference training {before:.1f} s before,"
                f" {2 * reference - before:.1f} s after (ratio {seconds / reference:.1f})",
                flush=True,
            )
        examples = load_data(str(HELDOUT)).intent_examples[: args.messages]
        texts = [e.get("text") for e in examples]
        print("starting the stack ...", flush=True)
        stack = local_stack.start(folder, f"sqlite:///{folder / 'bench.sqlite'}")
        try:
            measure_turns(stack, texts[:10])  # warm up: models, connections
            parse_ms, turn_ms, silent = measure_turns(stack, texts)
            form_questions = [questions_before_confirmation(stack, ALL_IN_ONE_SENDER, said) for said in ALL_IN_ONE]
        finally:
            stack.stop()
    p50, p95 = percentile(parse_ms, 50), percentile(parse_ms, 95)
    figures.update(
        parse_p50_ms=(p50, "ms", None),
        parse_p95_ms=(p95, "ms", None),
        turn_p50_ms=(percentile(turn_ms, 50), "ms", p50),
        turn_p95_ms=(percentile(turn_ms, 95), "ms", p95),
        form_turns_all_in_one=(max(form_questions), "questions", None),
    )
    record(figures)
    print(f"{'figure':<22}{'value':>10}  baseline (same run: reference training; parse)")
    for name, (value, unit, baseline) in figures.items():
        print(f"{name:<22}{value:>10.1f} {unit:<3}{'' if baseline is None else f'{baseline:>8.1f}'}")
    slowest = sorted(range(len(turn_ms)), key=turn_ms.__getitem__)[-max(1, len(turn_ms) // 20) :]
    tail = collections.Counter(examples[i].get("intent") for i in slowest)
    print("slowest 5% of turns by intent: " + ", ".join(f"{intent} {n}" for intent, n in tail.most_common()))
    print(f"questions before confirmation, everything said at once (target <= 1): {form_questions}")
    if silent:
        print(f"FAILED: no answer to {len(silent)} of {len(texts)} messages: {silent[:10]}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
