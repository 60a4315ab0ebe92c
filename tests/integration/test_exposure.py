"""Every process `make run` starts listens on the loopback interface only: the web process
is meant to sit behind a reverse proxy, and Rasa, the action server, Redis and the emulators
must never be reachable from the network (the action server would run any forged tracker)."""

import ipaddress

import psutil


def test_every_listening_socket_of_the_stack_is_on_loopback(stack):
    tree = [psutil.Process(stack.proc.pid), *psutil.Process(stack.proc.pid).children(recursive=True)]
    listening = [(p.name(), c.laddr) for p in tree for c in p.net_connections("inet") if c.status == psutil.CONN_LISTEN]
    ports = {addr.port for _, addr in listening}
    assert {int(stack.web.rsplit(":", 1)[1]), int(stack.rasa.rsplit(":", 1)[1])} <= ports
    assert len(ports) >= 5, listening  # web, Rasa, actions and the emulators at least
    exposed = [(name, addr) for name, addr in listening if not ipaddress.ip_address(addr.ip).is_loopback]
    assert exposed == []


def test_the_bank_s_own_services_refuse_callers_without_their_tokens(stack):
    """Loopback is not enough: anyone on the machine could reach them. Rasa's API and REST channel
    ask for RASA_TOKEN, the action server for ACTION_SERVER_TOKEN; the stack itself works with them."""
    import requests

    openid = "o_demo_zhangjianguo"
    # the attacks: read a customer's conversation, talk as that customer, run an action with a forged tracker
    assert requests.get(f"{stack.rasa}/conversations/{openid}/tracker", timeout=10).status_code == 401
    message = {"sender": openid, "message": "我想贷款"}
    assert requests.post(f"{stack.rasa}/webhooks/rest/webhook", json=message, timeout=30).status_code == 401
    actions = stack.env["ACTION_SERVER_URL"]
    forged = {"next_action": "action_application_status", "sender_id": openid, "tracker": {"sender_id": openid}}
    assert requests.post(f"{actions}/webhook", json=forged, timeout=10).status_code == 401
    wrong = {"Authorization": "Bearer " + stack.env["RASA_TOKEN"]}  # Rasa's token is not the action server's
    assert requests.post(f"{actions}/webhook", json=forged, headers=wrong, timeout=10).status_code == 401
    # with the token, Rasa answers (the web and workers call it so: tests/integration/test_stack.py)
    assert stack.rasa_http().get(f"{stack.rasa}/conversations/{openid}/tracker", timeout=10).status_code == 200
