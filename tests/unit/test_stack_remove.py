"""docker.remove_stack (rollcall.ops.stack_remove, playbooks/teardown.yml) against a stand-in Docker client, and the
module against this machine's engine when one answers: order, graceful stop, what is not there, check mode."""

import subprocess
import uuid

import docker.errors
import pytest

from ansible_collections.rollcall.ops.plugins.module_utils import docker as dockerlib


class FakeContainer:
    def __init__(self, log, name, status="running", stop_timeout=None, stop_fails=False):
        self.log, self.name, self.status, self.stop_fails = log, name, status, stop_fails
        self.attrs = {"Config": {"StopTimeout": stop_timeout} if stop_timeout else {}}

    def stop(self, timeout):
        self.log.append(("stop", self.name, timeout))
        if self.stop_fails:
            raise docker.errors.APIError("cannot stop")

    def remove(self, v, force):
        self.log.append(("remove", self.name, v, force))


class FakeNetwork:
    def __init__(self, log, name, endpoints, busy=0):
        self.log, self.name, self.busy = log, name, busy
        self.attrs = {"Containers": {e: {} for e in endpoints}}

    def disconnect(self, endpoint, force):
        self.log.append(("disconnect", self.name, endpoint, force))

    def reload(self):
        self.log.append(("reload network", self.name))

    def remove(self):
        if self.busy:  # the engine has not released an endpoint of a container removed just before
            self.busy -= 1
            self.log.append(("remove network refused", self.name))
            raise docker.errors.APIError("error while removing network: network %s id 0123 has active endpoints"
                                         % self.name)
        self.log.append(("remove network", self.name))


class FakeVolume:
    def __init__(self, log, name):
        self.log, self.name = log, name

    def remove(self, force):
        self.log.append(("remove volume", self.name, force))


class Collection:
    def __init__(self, items):
        self.items = items

    def get(self, name):
        if name not in self.items:
            raise docker.errors.NotFound(name)
        return self.items[name]


class FakeClient:
    def __init__(self, containers=(), networks=(), volumes=()):
        self.log = []
        self.containers = Collection({c[0]: FakeContainer(self.log, *c) for c in containers})
        self.networks = Collection({n[0]: FakeNetwork(self.log, *n) for n in networks})
        self.volumes = Collection({v: FakeVolume(self.log, v) for v in volumes})


@pytest.fixture
def fake(monkeypatch):
    def install(**kwargs):
        api = FakeClient(**kwargs)
        monkeypatch.setattr(dockerlib, "client", lambda docker_host=None, timeout=60: api)
        return api
    return install


def test_removes_in_order_stops_running_ones_gracefully_and_skips_what_is_not_there(fake):
    api = fake(containers=[("p-db", "running", 30), ("p-proxy", "running"), ("p-app", "exited")],
               networks=[("p-net", ["leftover-endpoint"])], volumes=["p-dbdata"])
    removed = dockerlib.remove_stack(["p-proxy", "p-app", "p-app-next", "p-db"], ["p-dbdata", "p-uploads"], "p-net")
    assert removed == {"containers": ["p-proxy", "p-app", "p-db"], "network": "p-net", "volumes": ["p-dbdata"],
                       "network_kept": None}
    assert api.log == [
        ("stop", "p-proxy", 10), ("remove", "p-proxy", True, True),   # Docker's 10 s when the container sets none
        ("remove", "p-app", True, True),                             # not running: no stop
        ("stop", "p-db", 30), ("remove", "p-db", True, True),        # its own stop timeout
        ("disconnect", "p-net", "leftover-endpoint", True), ("remove network", "p-net"),
        ("remove volume", "p-dbdata", True)]


def test_a_network_the_engine_still_counts_an_endpoint_in_is_removed_once_it_is_released(fake, monkeypatch):
    monkeypatch.setattr(dockerlib.time, "sleep", lambda seconds: None)
    api = fake(containers=[("p-app", "exited")], networks=[("p-net", [], 2)])
    removed = dockerlib.remove_stack(["p-app"], [], "p-net")
    assert removed["network"] == "p-net"
    assert api.log == [("remove", "p-app", True, True),
                       ("remove network refused", "p-net"), ("reload network", "p-net"),
                       ("remove network refused", "p-net"), ("reload network", "p-net"),
                       ("remove network", "p-net")]


def test_a_network_the_engine_holds_with_no_container_attached_stays_and_says_why(fake, monkeypatch):
    monkeypatch.setattr(dockerlib.time, "sleep", lambda seconds: None)
    monkeypatch.setattr(dockerlib, "NETWORK_RELEASE_S", 0.0)
    api = fake(containers=[("p-app", "exited")], networks=[("p-net", [], 5)], volumes=["p-dbdata"])
    removed = dockerlib.remove_stack(["p-app"], ["p-dbdata"], "p-net")
    assert removed["network"] is None and removed["containers"] == ["p-app"] and removed["volumes"] == ["p-dbdata"]
    assert "still counts an endpoint on network p-net although no container is attached" in removed["network_kept"]
    assert ("remove volume", "p-dbdata", True) in api.log  # the rest of the stack still goes


def test_a_network_with_a_container_still_attached_after_the_wait_fails(fake, monkeypatch):
    monkeypatch.setattr(dockerlib.time, "sleep", lambda seconds: None)
    monkeypatch.setattr(dockerlib, "NETWORK_RELEASE_S", 0.0)
    fake(networks=[("p-net", ["someone-else"], 5)])
    with pytest.raises(docker.errors.APIError, match="active endpoints"):
        dockerlib.remove_stack([], [], "p-net")


def test_check_mode_lists_and_changes_nothing(fake):
    api = fake(containers=[("p-app", "running")], networks=[("p-net", [])], volumes=["p-dbdata"])
    removed = dockerlib.remove_stack(["p-app"], ["p-dbdata"], "p-net", check_mode=True)
    assert removed == {"containers": ["p-app"], "network": "p-net", "volumes": ["p-dbdata"], "network_kept": None}
    assert api.log == []


def test_nothing_there_and_a_kept_network(fake):
    api = fake(networks=[("p-net", [])])
    assert dockerlib.remove_stack(["p-app"], [], None) == {"containers": [], "network": None, "volumes": [],
                                                           "network_kept": None}
    assert api.log == []


def test_a_container_that_will_not_stop_is_removed_by_force_and_the_timeout_given_wins(fake):
    api = fake(containers=[("p-app", "running", 30, True)])
    dockerlib.remove_stack(["p-app"], stop_timeout=2)
    assert api.log == [("stop", "p-app", 2), ("remove", "p-app", True, True)]


def _engine():
    try:
        return docker.from_env(timeout=10).ping()
    except Exception:  # noqa: BLE001 - no engine here: the module test below is skipped
        return False


@pytest.mark.skipif(not _engine(), reason="no Docker engine answers on this machine")
def test_the_module_on_a_real_engine_removes_then_says_unchanged():
    from modules import run_module

    api = docker.from_env()
    name = "rc-unit-rm-%s" % uuid.uuid4().hex[:6]
    api.volumes.create(name + "-data")
    api.networks.create(name + "-net")
    try:
        args = {"containers": [name + "-app"], "network": name + "-net", "volumes": [name + "-data"]}
        rc, result, _ = run_module("stack_remove", args, "--check")
        assert rc == 0 and result["changed"] is True and result["removed"]["volumes"] == [name + "-data"]
        assert api.volumes.get(name + "-data")  # check mode left it
        rc, result, _ = run_module("stack_remove", args)
        assert rc == 0 and result["changed"] is True, result
        assert result["removed"] == {"containers": [], "network": name + "-net", "volumes": [name + "-data"],
                                     "network_kept": None}
        with pytest.raises(docker.errors.NotFound):
            api.volumes.get(name + "-data")
        rc, result, _ = run_module("stack_remove", args)
        assert rc == 0 and result["changed"] is False, result
        rc, result, _ = run_module("stack_remove", dict(args, docker_host="unix:///nonexistent.sock"))
        assert rc != 0 and "does not answer at unix:///nonexistent.sock" in result["msg"], result
    finally:
        subprocess.run(["docker", "volume", "rm", "-f", name + "-data"], capture_output=True, check=False)
        subprocess.run(["docker", "network", "rm", name + "-net"], capture_output=True, check=False)
