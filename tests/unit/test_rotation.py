"""plugins/module_utils/rotation.py: who takes the live name after a switch, who stays warm, who goes (one test per
branch of plan), the steps carried out in order, and the wait for a release retired by a signal."""

import docker.errors
import pytest
from fake_clock import Clock

from ansible_collections.rollcall.ops.plugins.module_utils import rotation

LIVE, NEXT, STANDBY = "sms-app", "sms-app-next", "sms-app-standby"
RETIRING, SWAP = "sms-app-retiring", "sms-app-swap"


def c(ident, running=True, version=None):
    return {"id": ident, "running": running, "version": version}


def test_deploy_keeps_the_live_release_warm_and_retires_the_standby_before_it():
    found = {NEXT: c("n", version="1.1.0"), LIVE: c("l", version="1.0.0"), STANDBY: c("s", version="0.9.0")}
    steps, summary = rotation.plan(NEXT, LIVE, STANDBY, found, keep_old=True)
    assert steps == [("retire", STANDBY), ("rename", LIVE, STANDBY), ("rename", NEXT, LIVE)]
    assert summary == "1.1.0 is sms-app (1.0.0 stays warm as sms-app-standby)"


def test_first_release_only_takes_the_live_name():
    steps, summary = rotation.plan(NEXT, LIVE, STANDBY, {NEXT: c("n", version="1.0.0")})
    assert steps == [("rename", NEXT, LIVE)]
    assert summary == "1.0.0 is sms-app"


def test_a_live_release_that_does_not_run_is_retired_not_kept():
    found = {NEXT: c("n", version="1.1.0"), LIVE: c("l", running=False, version="1.0.0")}
    steps, summary = rotation.plan(NEXT, LIVE, STANDBY, found, keep_old=True)
    assert steps == [("retire", LIVE), ("rename", NEXT, LIVE)]
    assert summary.endswith("(1.0.0 retired)")


def test_keep_old_false_retires_the_live_release_now():
    found = {NEXT: c("n"), LIVE: c("l")}
    steps, _ = rotation.plan(NEXT, LIVE, STANDBY, found, keep_old=False)
    assert steps == [("retire", LIVE), ("rename", NEXT, LIVE)]


def test_rollback_to_the_standby_whose_schema_goes_down_signals_the_newer_release_instead_of_waiting():
    found = {STANDBY: c("s", version="1.0.0"), LIVE: c("l", version="1.1.0")}
    steps, summary = rotation.plan(STANDBY, LIVE, STANDBY, found, keep_old=False, retire_later=True)
    assert steps == [("rename", STANDBY, SWAP), ("rename", LIVE, RETIRING), ("signal", RETIRING),
                     ("rename", SWAP, LIVE)]
    assert summary == "1.0.0 is sms-app (1.1.0 stops as sms-app-retiring)"


def test_a_newer_release_that_does_not_run_is_retired_now_not_signalled():
    found = {STANDBY: c("s", version="1.0.0"), LIVE: c("l", running=False, version="1.1.0")}
    steps, summary = rotation.plan(STANDBY, LIVE, STANDBY, found, keep_old=False, retire_later=True)
    assert steps == [("rename", STANDBY, SWAP), ("retire", LIVE), ("rename", SWAP, LIVE)]
    assert summary.endswith("(1.1.0 retired)")


def test_code_only_rollback_to_the_standby_swaps_the_two():
    found = {STANDBY: c("s", version="1.0.0"), LIVE: c("l", version="1.1.0")}
    steps, _ = rotation.plan(STANDBY, LIVE, STANDBY, found, keep_old=True, retire_later=True)
    assert steps == [("rename", STANDBY, SWAP), ("rename", LIVE, STANDBY), ("rename", SWAP, LIVE)]


def test_a_retiring_release_left_by_an_earlier_run_is_retired_first():
    found = {STANDBY: c("s"), LIVE: c("l"), RETIRING: c("r", running=False)}
    steps, _ = rotation.plan(STANDBY, LIVE, STANDBY, found, keep_old=False, retire_later=True)
    assert steps[0] == ("retire", RETIRING)
    assert ("rename", LIVE, RETIRING) in steps and steps.index(("rename", LIVE, RETIRING)) > 0


def test_the_serving_container_already_live_changes_nothing():
    steps, summary = rotation.plan(LIVE, LIVE, STANDBY, {LIVE: c("l", version="1.0.0")})
    assert steps == []
    assert summary == "1.0.0 is sms-app"


def test_a_missing_serving_container_is_refused():
    with pytest.raises(rotation.RotationError, match="sms-app-next does not exist"):
        rotation.plan(NEXT, LIVE, STANDBY, {LIVE: c("l")})


class FakeContainer:
    def __init__(self, api, name, status="running", statuses=None):
        self.api, self.name, self.id, self.status = api, name, "id-" + name, status
        self.labels = {"rollcall.version": "1.0.0"}
        self.statuses = list(statuses or [])

    def rename(self, new):
        self.api.calls.append(("rename", self.name, new))
        self.api.containers.items[new] = self.api.containers.items.pop(self.name)
        self.name = new

    def stop(self, timeout):
        self.api.calls.append(("stop", self.name, timeout))
        self.status = "exited"

    def kill(self, signal="SIGKILL"):
        self.api.calls.append(("kill", self.name, signal))
        if signal == "SIGKILL":
            self.status = "exited"

    def remove(self, v=False, force=False):
        self.api.calls.append(("remove", self.name))
        del self.api.containers.items[self.name]

    def reload(self):
        if self.statuses:
            self.status = self.statuses.pop(0)


class FakeContainers:
    def __init__(self):
        self.items = {}

    def get(self, name):
        if name not in self.items:
            raise docker.errors.NotFound("no such container: " + name)
        return self.items[name]


class FakeApi:
    def __init__(self, **containers):
        self.calls = []
        self.containers = FakeContainers()
        for name, kwargs in containers.items():
            self.containers.items[name] = FakeContainer(self, name, **kwargs)


def test_apply_carries_out_the_steps_in_order():
    api = FakeApi(**{STANDBY: {}, LIVE: {}})
    steps, _ = rotation.plan(STANDBY, LIVE, STANDBY, rotation.find(api, [STANDBY, LIVE, RETIRING]),
                             keep_old=False, retire_later=True)
    rotation.apply(api, steps)
    assert api.calls == [("rename", STANDBY, SWAP), ("rename", LIVE, RETIRING), ("kill", RETIRING, "SIGTERM"),
                         ("rename", SWAP, LIVE)]
    assert sorted(api.containers.items) == [LIVE, RETIRING]


def test_apply_retires_with_a_graceful_stop_then_removes():
    api = FakeApi(**{NEXT: {}, LIVE: {}})
    rotation.apply(api, [("retire", LIVE), ("rename", NEXT, LIVE)])
    assert api.calls == [("stop", LIVE, rotation.STOP_TIMEOUT_S), ("remove", LIVE), ("rename", NEXT, LIVE)]


def test_wait_retired_with_nothing_to_wait_for():
    assert rotation.wait_retired(FakeApi(), LIVE, 40) == "none"


def test_wait_retired_removes_a_release_once_it_stopped_by_itself():
    api = FakeApi(**{RETIRING: {"statuses": ["running", "exited"]}})
    clock = Clock()
    assert rotation.wait_retired(api, LIVE, 40, clock=clock, sleep=clock.sleep) == "removed"
    assert api.calls == [("remove", RETIRING)]
    assert clock.now < 1


def test_wait_retired_kills_a_release_still_running_after_the_timeout():
    api = FakeApi(**{RETIRING: {"statuses": ["running"] * 1000}})
    clock = Clock()
    assert rotation.wait_retired(api, LIVE, 2, clock=clock, sleep=clock.sleep) == "killed"
    assert api.calls == [("kill", RETIRING, "SIGKILL"), ("remove", RETIRING)]
    assert 2 <= clock.now < 2.2
