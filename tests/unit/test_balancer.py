"""The TCP balancer of the multi-node tests: each connection to the next node, a refusing node skipped."""

from __future__ import annotations

import requests
from flask import Flask

from emulators import serve_in_thread
from emulators.balancer import serve_balancer


def node(name: str) -> Flask:
    app = Flask(name)
    app.add_url_rule("/wechat", "wechat", lambda: name, methods=["GET", "POST"])
    return app


def test_connections_go_to_the_nodes_in_turn_and_skip_one_that_refuses(closed_address):
    with serve_in_thread(node("a")) as a, serve_in_thread(node("b")) as b:
        with serve_balancer([a, b]) as balancer:
            # a new connection each (as WeChat's retry after a timeout): the nodes in turn
            answers = [requests.post(balancer + "/wechat", data=b"x", timeout=5).text for _ in range(4)]
            assert sorted(answers) == ["a", "a", "b", "b"] and answers[0] != answers[1]
        with serve_balancer([closed_address, b]) as balancer:
            assert [requests.get(balancer + "/wechat", timeout=5).text for _ in range(3)] == ["b"] * 3
