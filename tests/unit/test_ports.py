"""Who holds a host port (plugins/module_utils/ports.py): the decisions branch by branch, the bind on a real socket."""

import socket

from ansible_collections.rollcall.ops.plugins.module_utils import ports

PROMETHEUS = {"name": "Prometheus", "container": "sms-prometheus", "address": "127.0.0.1", "port": 9090}


def test_another_container_publishing_the_port_is_named_whatever_ours_does():
    for state in ("running", "absent"):
        said = ports.service_taken(PROMETHEUS, state, [("grafana", "0.0.0.0:9090")], None)
        assert said == "Prometheus's port 127.0.0.1:9090 is published by container grafana"


def test_our_running_container_holds_its_own_port():
    assert ports.service_taken(PROMETHEUS, "running", [("sms-prometheus", "127.0.0.1:9090")], None) is None
    assert ports.service_taken(PROMETHEUS, "running", [], None) is None  # host network: no published ports


def test_a_free_port_is_none_and_another_program_is_named():
    assert ports.service_taken(PROMETHEUS, "absent", [], None) is None
    said = ports.service_taken(PROMETHEUS, "stopped", [], "Address already in use")
    assert said == "Prometheus's port 127.0.0.1:9090 is taken by another program (Address already in use)"


def test_our_restarting_container_is_pointed_at_its_logs():
    said = ports.service_taken(dict(PROMETHEUS, address=""), "restarting", [], "Address already in use")
    assert said.startswith("Prometheus's port 0.0.0.0:9090 is taken by another program")
    assert said.endswith("its container sms-prometheus keeps restarting (docker logs sms-prometheus)")


def test_the_refusal_names_every_port_and_the_keys_that_move_ours():
    assert ports.refusal("mon1", [], "rollcall_monitoring_ports") is None
    one = ports.refusal("mon1", ["A"], "rollcall_monitoring_ports", ["prometheus"])
    assert one == "Nothing was changed on mon1: A. Stop what holds it, or move ours with rollcall_monitoring_ports: " \
                  "{prometheus: PORT}."
    two = ports.refusal("mon1", ["A", "B"], "the ports")
    assert two == "Nothing was changed on mon1: A; B. Stop what holds them, or move ours with the ports."


class FakeApi:
    def __init__(self, states=None, listed=()):
        self.states, self.listed = states or {}, list(listed)

    def inspect_container(self, name):
        import docker.errors
        if name not in self.states:
            raise docker.errors.NotFound("no such container")
        return {"State": self.states[name]}

    def containers(self):
        return self.listed


class FakeClient:
    def __init__(self, states=None, listed=()):
        self.api = FakeApi(states, listed)


def test_container_state():
    client = FakeClient(states={"up": {"Running": True}, "loop": {"Running": True, "Restarting": True},
                                "down": {"Running": False}})
    assert [ports.container_state(client, n) for n in ("up", "loop", "down", "gone")] == \
        ["running", "restarting", "stopped", "absent"]


def running(name, *published):
    return {"Names": ["/" + name],
            "Ports": [dict(zip(("IP", "PublicPort", "Type"), p, strict=True)) for p in published]}


def test_port_holders_match_the_address_that_would_bind():
    client = FakeClient(listed=[
        running("loop", ("127.0.0.1", 8080, "tcp")),
        running("everywhere", ("0.0.0.0", 8081, "tcp"), ("::", 8081, "tcp")),
        running("private", ("10.0.0.5", 8082, "tcp")),
        running("udp", ("127.0.0.1", 8083, "udp")),
        {"Names": ["/internal"], "Ports": [{"PrivatePort": 8080, "Type": "tcp"}]},  # exposed only
    ])
    assert ports.port_holders(client, "127.0.0.1", 8080) == [("loop", "127.0.0.1:8080")]
    assert ports.port_holders(client, "127.0.0.1", 8081) == [("everywhere", "0.0.0.0:8081")]
    assert ports.port_holders(client, "0.0.0.0", 8082) == [("private", "10.0.0.5:8082")]
    assert ports.port_holders(client, "127.0.0.1", 8082) == []
    assert ports.port_holders(client, "127.0.0.1", 8083) == []


def test_bind_error_sees_a_listener_and_not_a_free_port():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert "in use" in ports.bind_error("127.0.0.1", port)
        assert ports.bind_error("0.0.0.0", port)
    assert ports.bind_error("127.0.0.1", port) is None
    assert ports.bind_error("192.0.2.1", port) is None  # not this machine's address: the engine says so
