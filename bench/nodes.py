"""`python -m bench.nodes`: one node against two on one database and one Redis, and a node lost.

One shared stack (Redis, Rasa, action server, emulators; `sunshine.local_stack.start_cluster`)
and nodes of web, reply workers and duties (`python -m sunshine.launcher run --roles ...`, each
its own process group and port, as separate hosts), behind a TCP balancer
(`emulators.balancer`). The same crowd of simulated WeChat users (the soak's mix: questions,
loan applications, 转人工; `bench.soak.Visits`) talks for `--seconds` each time:
- `one_node_msgs_per_s`: through one node;
- `two_node_msgs_per_s`: through two (the same WORKER_PROCESSES partitions, half of them handed
  on to the second node's workers by stopping node-a's cleanly: `spread`); on one 2-core machine
  with one Rasa the ratio is near 1: it shows that nothing serialises the nodes, not that two
  hosts are faster;
- `node_loss_lost`, `node_loss_duplicated`: two nodes again, and a third of the way in the node
  serving the most partitions is SIGKILLed whole and not restarted; messages left without an
  answer (those kept for an officer excepted) and answered twice (targets 0 and 0).
The database is SQLite, or a scratch PostgreSQL database beside DATABASE_URL's.
"""

from __future__ import annotations

import argparse
import signal
import tempfile
import time
from pathlib import Path

from sqlalchemy import select

from bench.binding import SECRET, scratch_database
from bench.results import record
from bench.soak import Visits, load_households
from conversation.inbox import HELD_FOR_LATER
from emulators.balancer import serve_balancer
from emulators.wechat.crowd import Crowd, Result
from sunshine import leases, local_stack
from sunshine.db import unit_of_work
from sunshine.models import ConversationMessage
from sunshine.redis import connect
from sunshine.settings import Settings

HOUSEHOLDS = 300
SETTINGS = {
    "SECRET_KEY": SECRET,
    "WEB_WORKERS": "1",
    "WORKER_PROCESSES": "4",
    "HEARTBEAT_TTL_S": "5",
    "LOG_LEVEL": "WARNING",
}


def kept_for_officer(database_url: str, msg_ids: list[int]) -> set[int]:
    with unit_of_work(database_url) as session:
        keys = session.scalars(
            select(ConversationMessage.wechat_msg_key).where(
                ConversationMessage.wechat_msg_key.in_([str(i) for i in msg_ids]),
                ConversationMessage.hand_off_id.is_not(None),
            )
        ).all()
    return {int(k) for k in keys}


def crowd_run(cluster: local_stack.Cluster, nodes: list[local_stack.Stack], users: int, seconds: float, during=None):
    """The crowd through a balancer over `nodes` for `seconds`; `during(elapsed)` is called once a
    third of the way in. Returns the reconciled result."""
    s, url = Settings(), cluster.shared.env["DATABASE_URL"]
    with serve_balancer([n.web for n in nodes]) as balancer:
        crowd = Crowd(
            balancer + "/wechat",
            cluster.shared.wechat_api,
            s.wechat_token,
            s.wechat_appid,
            users=users,
            conversation=Visits(HOUSEHOLDS),
            acknowledgements=[HELD_FOR_LATER],
            kept=lambda ids: kept_for_officer(url, ids),
            notice=lambda m: m["msgtype"] == "image",  # an application's authorization QR codes
        )
        crowd.start(duration_s=seconds)
        if during is not None:
            time.sleep(seconds / 3)
            during()
        crowd.wait()
        return crowd.stop(settle_s=60)


def partitions_by_node(redis_url: str, partitions: int) -> dict[str, int]:
    """How many partitions each node's workers hold now."""
    held: dict[str, int] = {}
    for k in range(partitions):
        node = holder_node(redis_url, k)
        held[node] = held.get(node, 0) + 1
    return held


def holder_node(redis_url: str, partition: int) -> str:
    """The node whose worker holds the partition (`replies.K-<node>-<pid>`); "" for none."""
    holder = leases.Lease(connect(redis_url), f"partition:{partition}", "", 1).holder_now()
    return holder.split("-", 1)[1].rsplit("-", 1)[0] if holder else ""


def spread(cluster: local_stack.Cluster, partitions: int) -> None:
    """Hand partitions on until each node serves its share: a worker stopped cleanly (SIGTERM) gives
    its lease up, another node's standby takes it, and the supervisor restarts the stopped one as a
    standby (the way to move a partition by hand)."""
    redis_url, share = cluster.shared.redis_url, -(-partitions // len(cluster.nodes))
    nodes = {n.env["NODE_NAME"]: n for n in cluster.nodes}
    for k in range(partitions):
        held = partitions_by_node(redis_url, partitions)
        owner = holder_node(redis_url, k)
        if held.get(owner, 0) <= share or all(held.get(name, 0) >= share for name in nodes):
            continue
        nodes[owner].processes(f"worker.{k}")[0].send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        while holder_node(redis_url, k) in (owner, "") and time.monotonic() < deadline:
            time.sleep(0.2)


def unanswered(url: str, result: Result) -> int:
    """Messages left without an answer, those kept for an officer excepted."""
    return len(set(result.lost_ids) - kept_for_officer(url, result.lost_ids))


def line(name: str, result: Result, lost: int) -> str:
    return (
        f"{name:<10} {result.sent:>6} {result.msgs_per_s:>8.1f} {result.passive:>8} {result.asynchronous:>6} "
        f"{result.retried:>8} {result.failed:>7} {lost:>5} {result.duplicated:>5}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.nodes", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=40.0, help="length of each crowd run")
    parser.add_argument("--users", type=int, default=12, help="simulated WeChat users at once")
    args = parser.parse_args(argv)
    partitions = int(SETTINGS["WORKER_PROCESSES"])
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-nodes-") as tmp, scratch_database(Path(tmp)) as url:
        folder = Path(tmp)
        load_households(url, SECRET, folder, HOUSEHOLDS)
        print("starting the shared stack (Redis, Rasa, action server, emulators) and node-a ...", flush=True)
        cluster = local_stack.start_cluster(folder, url, nodes=1, **SETTINGS)
        try:
            one = crowd_run(cluster, cluster.nodes, args.users, args.seconds)
            losts = [unanswered(url, one)]
            rows.append(line("one node", one, losts[-1]))
            cluster.nodes.append(local_stack.add_node(cluster, folder, 1, **SETTINGS))
            spread(cluster, partitions)
            print(f"two nodes; partitions held: {partitions_by_node(cluster.shared.redis_url, partitions)}", flush=True)
            two = crowd_run(cluster, cluster.nodes, args.users, args.seconds)
            losts.append(unanswered(url, two))
            rows.append(line("two nodes", two, losts[-1]))
            lost_node: list[str] = []

            def lose_a_node() -> None:
                held = partitions_by_node(cluster.shared.redis_url, partitions)
                victim = next(n for n in cluster.nodes if n.env["NODE_NAME"] == max(held, key=lambda name: held[name]))
                lost_node.append(victim.env["NODE_NAME"])
                victim.kill_all()

            loss = crowd_run(cluster, cluster.nodes, args.users, args.seconds, during=lose_a_node)
            loss_lost = unanswered(url, loss)
            losts.append(loss_lost)
            rows.append(line("node lost", loss, loss_lost))
        finally:
            cluster.stop()
    print(
        f"\n{args.users} users, {args.seconds:g} s each run, WORKER_PROCESSES={partitions}, {lost_node[0]} killed "
        f"a third into the last run\n"
        f"{'run':<10} {'msgs':>6} {'msg/s':>8} {'passive':>8} {'async':>6} {'retried':>8} {'failed':>7} "
        f"{'lost':>5} {'dup':>5}\n" + "\n".join(rows)
    )
    record(
        {
            "one_node_msgs_per_s": (one.msgs_per_s, "msg/s", None),
            "two_node_msgs_per_s": (two.msgs_per_s, "msg/s", one.msgs_per_s),
            "node_loss_lost": (loss_lost, "messages", None),
            "node_loss_duplicated": (loss.duplicated, "messages", None),
        }
    )
    return 1 if any(losts) or any(r.duplicated or r.failed for r in (one, two, loss)) else 0


if __name__ == "__main__":
    raise SystemExit(main())
