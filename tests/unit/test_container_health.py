"""docker.wait_health_test (rollcall.ops.container_health, the database role's wait) against a stand-in Docker API,
and the module against this machine's engine when one answers: passes, keeps asking, a stopped container, a missing
one, one without a health test, the time-out."""

import re
import subprocess
import uuid

import docker.errors
import pytest
from fake_clock import Clock

from ansible_collections.rollcall.ops.plugins.module_utils import docker as dockerlib
from ansible_collections.rollcall.ops.plugins.module_utils.runner import RunnerError

SHELL_TEST = {"Test": ["CMD-SHELL", "pg_isready -q || exit 1"]}


class FakeApi:
    """States: the container's State per inspect (the last one repeats); answers: (exit code, output) per exec."""

    def __init__(self, states, answers=(), healthcheck=SHELL_TEST, missing=False):
        self.states, self.answers, self.healthcheck, self.missing = list(states), list(answers), healthcheck, missing
        self.ran = []

    def inspect_container(self, name):
        if self.missing:
            raise docker.errors.NotFound("no such container")
        state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        return {"Id": "abc", "State": state, "Config": {"Healthcheck": self.healthcheck} if self.healthcheck else {}}

    def exec_create(self, container, cmd, stdout, stderr):
        self.ran.append(cmd)
        return {"Id": "e%d" % len(self.ran)}

    def exec_start(self, exec_id):
        return self.answers[len(self.ran) - 1][1]

    def exec_inspect(self, exec_id):
        return {"ExitCode": self.answers[len(self.ran) - 1][0]}


RUNNING = {"Status": "running", "Running": True}


def wait(api, timeout=10):
    clock = Clock()
    return dockerlib.wait_health_test(api, "db", timeout, 1.0, clock=clock, sleep=clock.sleep)


def test_passes_at_the_first_try_without_waiting():
    api = FakeApi([RUNNING], [(0, b"")])
    found = wait(api)
    assert found == {"passed": True, "attempts": 1, "waited_s": 0.0, "output": "", "state": "running",
                     "reason": None}
    assert api.ran == [["/bin/sh", "-c", "pg_isready -q || exit 1"]]


def test_keeps_asking_until_the_server_answers():
    api = FakeApi([RUNNING],
                  [(2, b"no response"), (2, b"no response"), (0, b"accepting")])
    found = wait(api)
    assert found["passed"] and found["attempts"] == 3 and found["waited_s"] == 2.0


def test_a_restarting_container_is_waited_for_not_asked():
    restarting = {"Status": "restarting", "Running": True, "Restarting": True, "ExitCode": 1}
    api = FakeApi([restarting, restarting, RUNNING], [(0, b"")])
    found = wait(api)
    assert found["passed"] and found["attempts"] == 1 and found["waited_s"] == 2.0


def test_a_paused_container_ends_the_wait_at_once_and_says_how():
    """docker pause: every exec is refused ("is paused, unpause the container before exec"); a deploy ran the test
    121 times over 120 s before it said so."""
    paused = {"Status": "paused", "Running": True, "Paused": True}
    api = FakeApi([paused], [(0, b"")])
    found = wait(api, timeout=120)
    assert not found["passed"] and found["attempts"] == 0 and found["waited_s"] == 0.0 and api.ran == []
    assert found["reason"] == ("it is paused (docker pause): docker unpause db, or restart it "
                               "(playbooks/incident.yml -e restart=true), then run again")


def test_a_container_that_stops_ends_the_wait_at_once_and_says_how():
    stopped = {"Status": "exited", "Running": False, "ExitCode": 1, "OOMKilled": True}
    api = FakeApi([RUNNING, stopped], [(2, b"starting up")])
    found = wait(api)
    assert not found["passed"] and found["state"] == "exited" and found["attempts"] == 1
    assert found["reason"] == "the container stopped (exited, exit code 1, killed for lack of memory)"
    assert found["output"] == "starting up"


def test_gives_up_after_the_timeout_with_the_tests_last_words():
    api = FakeApi([RUNNING], [(1, b"FATAL: the database system is starting up")] * 20)
    found = wait(api, timeout=5)
    assert not found["passed"] and found["waited_s"] == 5.0 and found["attempts"] == 6
    assert found["reason"] == "its health test did not pass within 5 s"
    assert found["output"] == "FATAL: the database system is starting up"


@pytest.mark.parametrize("api, words", [
    (FakeApi([RUNNING], missing=True), "container db does not exist; deploy the stack first"),
    (FakeApi([RUNNING], healthcheck=None), "container db has no health test (its image has no HEALTHCHECK)"),
    (FakeApi([RUNNING], healthcheck={"Test": ["NONE"]}), "has no health test"),
], ids=["missing", "no-healthcheck", "healthcheck-disabled"])
def test_what_cannot_be_waited_for_is_an_error(api, words):
    with pytest.raises(RunnerError, match=re.escape(words)):
        wait(api)


def _engine():
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except Exception:  # noqa: BLE001 - no engine here: the module test below is skipped
        return False


@pytest.mark.skipif(not _engine(), reason="no Docker engine answers on this machine")
def test_the_module_on_a_real_engine_passes_fails_and_names_the_container():
    from modules import run_module
    image = subprocess.run(["docker", "images", "-q", "rollcall/host:bookworm"], capture_output=True,
                           text=True).stdout.strip()
    if not image:
        pytest.skip("rollcall/host:bookworm is not built (make images)")
    name = "rc-u-health-" + uuid.uuid4().hex[:8]
    subprocess.run(["docker", "run", "-d", "--name", name, "--health-cmd", "test -e /tmp/ready || (echo not yet; "
                    "exit 1)", "--health-interval", "30s", "rollcall/host:bookworm", "sleep", "120"],
                   check=True, capture_output=True)
    try:
        rc, result, _ = run_module("container_health", {"name": name, "timeout": 2, "interval": 0.5}, "--check")
        assert rc != 0 and result["failed"]
        assert result["msg"].startswith("Container %s is not healthy: its health test did not pass within 2 s" % name)
        assert "last said: not yet" in result["msg"] and result["attempts"] >= 2
        subprocess.run(["docker", "exec", name, "touch", "/tmp/ready"], check=True)
        rc, result, _ = run_module("container_health", {"name": name, "timeout": 5})
        assert rc == 0 and result["changed"] is False and result["attempts"] == 1, result
        rc, result, _ = run_module("container_health", {"name": name + "-gone", "timeout": 5})
        assert rc != 0 and result["msg"] == "container %s-gone does not exist; deploy the stack first" % name
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
