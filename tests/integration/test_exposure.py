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
