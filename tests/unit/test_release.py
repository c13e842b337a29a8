"""plugins/module_utils/release.py: deploy lock, release history, audit log; a fake clock, no Ansible."""

import json
import multiprocessing
import os
import stat

import pytest

from ansible_collections.rollcall.ops.plugins.module_utils import release
from ansible_collections.rollcall.ops.plugins.module_utils.release import LockHeld, ReleaseError, ReleaseStore

T0 = 1795000000.0  # 2026-11-18T...Z


class Clock:
    """A clock that only moves when something sleeps (or the test moves it)."""

    def __init__(self, now=T0):
        self.now = now
        self.sleeps = []
        self.on_sleep = None

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds
        if self.on_sleep:
            self.on_sleep(self)


def store(tmp_path, clock=None, app="sms", **kwargs):
    clock = clock or Clock()
    return ReleaseStore(str(tmp_path / "state"), app, clock=clock, sleep=clock.sleep, hostname="app1", pid=4242,
                        **kwargs)


def audit_lines(s):
    with open(s.audit_path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


# ---------------------------------------------------------------------------------------------- names
@pytest.mark.parametrize("app", ["..", ".", "../etc", "a/b", "/abs", "", "x" * 65, "sms\n", "s ms", None])
def test_app_names_that_could_leave_state_dir_are_refused(tmp_path, app):
    with pytest.raises(ReleaseError, match="cannot be used as a directory name"):
        store(tmp_path, app=app)
    assert not (tmp_path / "state").exists()


@pytest.mark.parametrize("app", ["sms", "SMS-2.x_test", "a..b", "x" * 64])
def test_app_names_allowed(tmp_path, app):
    assert store(tmp_path, app=app).directory == str(tmp_path / "state" / app)


def test_relative_state_dir_is_refused():
    with pytest.raises(ReleaseError, match="absolute path"):
        ReleaseStore("var/lib/rollcall", "sms")


def test_default_actor_prefers_sudo_user():
    assert release.default_actor({"SUDO_USER": "alice", "USER": "root"}, "ctl") == "alice@ctl"
    assert release.default_actor({"USER": "deploy"}, "ctl") == "deploy@ctl"
    assert release.default_actor({}, "ctl") == "unknown@ctl"


# ---------------------------------------------------------------------------------------------- lock
def test_lock_is_created_exclusively_with_its_facts_and_modes(tmp_path):
    s = store(tmp_path)
    changed, lock = s.acquire("alice@ctl", "1.1.0", "deploy 1.1.0")
    assert changed is True
    assert lock["holder"] == "alice@ctl" and lock["version"] == "1.1.0" and lock["message"] == "deploy 1.1.0"
    assert lock["pid"] == 4242 and lock["host"] == "app1" and len(lock["token"]) == 32
    assert lock["since"] == release.isoformat(T0)
    with open(s.lock_path, encoding="utf-8") as handle:
        on_disk = json.load(handle)
    assert set(on_disk) == {"holder", "version", "message", "since", "token", "pid", "host"}
    assert stat.S_IMODE(os.stat(s.lock_path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(s.directory).st_mode) == 0o700


def test_lock_excludes_a_second_holder_and_reports_who_and_how_old(tmp_path):
    clock = Clock()
    first, second = store(tmp_path, clock), store(tmp_path, clock)
    first.acquire("alice@ctl", "1.1.0", "deploy 1.1.0")
    clock.now += 125
    with pytest.raises(LockHeld) as caught:
        second.acquire("bob@ctl", "1.2.0")
    message = str(caught.value)
    assert message.startswith("deploy lock for sms is held by alice@ctl")
    assert "(version 1.1.0, 'deploy 1.1.0'; pid 4242 on app1) since %s (125 s ago)" % release.isoformat(T0) \
        in message
    # the command that breaks it, ready to run but for the host and inventory (a Ctrl-C leaves the lock behind)
    assert message.endswith("wait, or break it with action=break_lock if that deploy is dead (interrupted, or its "
                            "controller gone; audited): ansible <this host> -i <inventory> -m rollcall.ops.app_release "
                            "-a 'action=break_lock app=sms state_dir=%s'" % (tmp_path / "state")), message
    assert caught.value.lock["age_s"] == 125
    assert clock.sleeps == []  # lock_timeout 0: no waiting


def test_same_token_holds_the_lock_again_without_change(tmp_path):
    s = store(tmp_path)
    changed, lock = s.acquire("alice@ctl", token="run-1")
    assert changed and lock["token"] == "run-1"
    changed, again = s.acquire("alice@ctl", token="run-1")
    assert changed is False and again["token"] == "run-1"
    with pytest.raises(LockHeld):
        s.acquire("alice@ctl", token="run-2")


def test_waits_then_acquires_after_release(tmp_path):
    clock = Clock()
    holder, waiter = store(tmp_path, clock), store(tmp_path, clock)
    _, lock = holder.acquire("alice@ctl", "1.1.0")

    def release_after_three_polls(c):
        if len(c.sleeps) == 3:
            holder.release(lock["token"])

    clock.on_sleep = release_after_three_polls
    changed, mine = waiter.acquire("bob@ctl", "1.2.0", timeout=30)
    assert changed and mine["holder"] == "bob@ctl" and mine["token"] != lock["token"]
    assert clock.sleeps == [1.0, 1.0, 1.0]
    assert waiter.read_lock()["holder"] == "bob@ctl"


def test_timeout_waits_polling_each_second_then_names_holder_and_age(tmp_path):
    clock = Clock()
    store(tmp_path, clock).acquire("alice@ctl", "1.1.0", "deploy 1.1.0")
    clock.now += 600
    with pytest.raises(LockHeld) as caught:
        store(tmp_path, clock).acquire("bob@ctl", timeout=3.5)
    assert clock.sleeps == [1.0, 1.0, 1.0, 0.5]
    assert "held by alice@ctl" in str(caught.value) and "(603 s ago)" in str(caught.value)
    assert caught.value.waited_s == 3


def test_negative_timeout_is_refused(tmp_path):
    with pytest.raises(ReleaseError, match="0 or more"):
        store(tmp_path).acquire("alice@ctl", timeout=-1)


def _race(state_dir, barrier, results, index):
    s = ReleaseStore(state_dir, "sms", hostname="app1")
    barrier.wait()
    try:
        s.acquire("racer-%d" % index)
        results.put(("won", index))
    except LockHeld:
        results.put(("lost", index))


def test_processes_racing_for_the_lock_exactly_one_wins(tmp_path):
    ctx = multiprocessing.get_context("fork")
    state_dir = str(tmp_path / "state")
    for _ in range(5):  # a few rounds: the race is real, not scheduled
        racers = 8
        barrier, results = ctx.Barrier(racers), ctx.Queue()
        procs = [ctx.Process(target=_race, args=(state_dir, barrier, results, i)) for i in range(racers)]
        for proc in procs:
            proc.start()
        outcomes = [results.get(timeout=30) for _ in procs]
        for proc in procs:
            proc.join(30)
            assert proc.exitcode == 0
        winners = [i for what, i in outcomes if what == "won"]
        assert len(winners) == 1, outcomes
        s = ReleaseStore(state_dir, "sms")
        assert s.read_lock()["holder"] == "racer-%d" % winners[0]
        os.unlink(s.lock_path)


def test_unlock_with_wrong_token_is_refused_and_keeps_the_lock(tmp_path):
    s = store(tmp_path)
    _, lock = s.acquire("alice@ctl", "1.1.0")
    with pytest.raises(ReleaseError) as caught:
        s.release("not-the-token")
    assert "held by alice@ctl" in str(caught.value) and "break_lock" in str(caught.value)
    with pytest.raises(ReleaseError):
        s.release(None)
    assert s.read_lock()["token"] == lock["token"]
    changed, released = s.release(lock["token"])
    assert changed and released["token"] == lock["token"]
    assert s.read_lock() is None
    assert s.release(lock["token"]) == (False, None)  # not held: nothing to do


def test_break_lock_removes_any_lock_and_is_audited(tmp_path):
    clock = Clock()
    s = store(tmp_path, clock)
    s.acquire("alice@ctl", "1.1.0", "deploy 1.1.0")
    clock.now += 3600
    changed, broken, audited = s.break_lock("bob@ctl", "alice's controller crashed")
    assert changed and broken["holder"] == "alice@ctl" and broken["age_s"] == 3600
    assert s.read_lock() is None
    (line,) = audit_lines(s)
    assert audited == line
    assert line["event"] == "lock_broken" and line["actor"] == "bob@ctl" and line["version"] == "1.1.0"
    assert "alice@ctl" in line["message"] and "alice's controller crashed" in line["message"]
    assert s.break_lock("bob@ctl") == (False, None, None)
    assert len(audit_lines(s)) == 1


def test_lock_is_never_broken_automatically_however_old(tmp_path):
    clock = Clock()
    store(tmp_path, clock).acquire("alice@ctl")
    clock.now += 30 * 86400
    with pytest.raises(LockHeld, match=r"\(2592002 s ago\)"):
        store(tmp_path, clock).acquire("bob@ctl", timeout=2)
    assert store(tmp_path, clock).info()["lock"]["age_s"] == 2592002


def test_an_empty_lock_file_still_locks_and_can_be_broken(tmp_path):
    s = store(tmp_path)
    s.ensure_directory()
    open(s.lock_path, "w").close()  # the holder died between creating and writing it
    with pytest.raises(LockHeld, match="unknown holder"):
        s.acquire("bob@ctl")
    with pytest.raises(ReleaseError):
        s.release("anything")
    changed, broken, _ = s.break_lock("bob@ctl")
    assert changed and broken["damaged"] is True
    assert s.acquire("bob@ctl")[0] is True


def test_probe_lock_for_check_mode(tmp_path):
    s = store(tmp_path)
    assert s.probe_lock() == (True, False, None)
    s.acquire("alice@ctl", token="t1")
    acquirable, mine, lock = s.probe_lock("t1")
    assert acquirable and mine and lock["holder"] == "alice@ctl"
    assert s.probe_lock("t2")[:2] == (False, False)


# ---------------------------------------------------------------------------------------------- history
def deploy(s, version, outcome="success", kind="deploy", **fields):
    return s.record(dict(fields, version=version, outcome=outcome, kind=kind), "alice@ctl")[0]


def test_record_fills_in_id_time_and_defaults_and_audits(tmp_path):
    clock = Clock()
    s = store(tmp_path, clock)
    entry, history = s.record({"version": "1.0.0", "image": "sms:1.0.0", "duration_s": "12.5", "backup": ""},
                              "alice@ctl")
    assert entry == {"id": 1, "version": "1.0.0", "image": "sms:1.0.0", "image_id": None, "config_hash": None,
                     "schema_revision": None, "backup": None, "container": None, "db_login": None,
                     "deployed_at": release.isoformat(T0), "actor": "alice@ctl", "outcome": "success",
                     "kind": "deploy", "duration_s": 12.5, "reason": None}
    assert history == [entry] == s.read_history()
    clock.now += 60
    second = deploy(s, "1.1.0", "failed", reason="migrations failed", id=99, deployed_at="yesterday")
    assert second["id"] == 2 and second["deployed_at"] == release.isoformat(T0 + 60)
    assert stat.S_IMODE(os.stat(s.history_path).st_mode) == 0o600
    lines = audit_lines(s)
    assert [line["event"] for line in lines] == ["deploy_success", "deploy_failed"]
    assert lines[1]["from_version"] == "1.0.0" and lines[1]["message"] == "migrations failed"
    assert lines[1]["outcome"] == "failed" and lines[0]["duration_s"] == 12.5
    assert set(lines[0]) == set(release.AUDIT_FIELDS)
    s.record({"version": "1.2.0"}, "alice@ctl", from_version="0.9.0")
    assert audit_lines(s)[-1]["from_version"] == "0.9.0"


@pytest.mark.parametrize(("fields", "error"), [
    ({}, "version"),
    ({"version": "1", "outcome": "ok"}, "outcome must be one of"),
    ({"version": "1", "kind": "redeploy"}, "kind must be one of"),
    ({"version": "1", "outcom": "failed"}, "unknown field"),
    ({"version": "1", "duration_s": "slow"}, "duration_s"),
])
def test_bad_releases_are_refused_and_nothing_is_written(tmp_path, fields, error):
    s = store(tmp_path)
    with pytest.raises(ReleaseError, match=error):
        s.record(fields, "alice@ctl")
    assert s.read_history() == []
    assert not os.path.exists(s.audit_path)


def test_current_previous_kept(tmp_path):
    s = store(tmp_path)
    assert s.info()["current"] is None and s.info()["previous"] is None and s.info()["kept"] == []
    v1 = deploy(s, "1.0.0")
    assert s.info()["current"] == v1 and s.info()["previous"] is None
    v1b = deploy(s, "1.0.0")  # a redeploy of the same version
    v2 = deploy(s, "1.1.0")
    info = s.info()
    assert info["current"] == v2 and info["previous"] == v1b
    assert [e["id"] for e in info["kept"]] == [v2["id"], v1b["id"]]
    assert v1["id"] not in [e["id"] for e in info["kept"]]


def test_failed_and_rolled_back_releases_never_become_current_previous_or_kept(tmp_path):
    s = store(tmp_path)
    v1 = deploy(s, "1.0.0")
    v2 = deploy(s, "1.1.0")
    deploy(s, "1.2.0", "failed", reason="image pull failed")
    deploy(s, "1.3.0", "rolled_back", reason="health check failed")
    info = s.info()
    assert info["current"] == v2 and info["previous"] == v1
    assert [e["version"] for e in info["kept"]] == ["1.1.0", "1.0.0"]
    assert len(info["releases"]) == 4


def test_a_successful_rollback_becomes_current(tmp_path):
    s = store(tmp_path)
    deploy(s, "1.0.0")
    v2 = deploy(s, "1.1.0")
    v3 = deploy(s, "1.2.0")
    back = deploy(s, "1.1.0", kind="rollback")
    info = s.info()
    assert info["current"] == back and info["current"]["kind"] == "rollback"
    assert info["previous"] == v3  # newest older success with another version
    assert [e["id"] for e in info["kept"]] == [back["id"], v3["id"], 1]
    assert v2 not in info["kept"]  # each version once, its newest entry
    assert audit_lines(s)[-1]["event"] == "rollback_success"
    assert audit_lines(s)[-1]["from_version"] == "1.2.0"


def entries(*steps):
    """History entries from (kind, version[, outcome]) steps, in order."""
    return [{"kind": step[0], "version": step[1], "outcome": step[2] if len(step) > 2 else "success"}
            for step in steps]


@pytest.mark.parametrize(("steps", "target"), [
    # nothing, or one release: nothing to go back to
    ((), None),
    ((("deploy", "1.0.0"),), None),
    # a redeploy of the live version is not a release to go back to
    ((("deploy", "1.0.0"), ("deploy", "1.0.0")), None),
    # the release live before the last deploy
    ((("deploy", "1.0.0"), ("deploy", "1.1.0")), "1.0.0"),
    # run twice: the second rollback does not go forward again to the release the first one left
    ((("deploy", "1.0.0"), ("deploy", "1.1.0"), ("rollback", "1.0.0")), None),
    # ... and with an older release kept it goes one further back
    ((("deploy", "1.0.0"), ("deploy", "1.1.0"), ("deploy", "1.2.0"), ("rollback", "1.1.0")), "1.0.0"),
    ((("deploy", "1.0.0"), ("deploy", "1.1.0"), ("deploy", "1.2.0"), ("rollback", "1.1.0"), ("rollback", "1.0.0")),
     None),
    # a roll forward (rollback.yml -e to=) to a release it had left: the rollback after it goes back again
    ((("deploy", "1.0.0"), ("deploy", "1.1.0"), ("rollback", "1.0.0"), ("rollback", "1.1.0")), "1.0.0"),
    # a rollback straight to an older release (-e to=1.0.0) undoes everything deployed after it
    ((("deploy", "1.0.0"), ("deploy", "1.1.0"), ("deploy", "1.2.0"), ("rollback", "1.0.0")), None),
    # a deploy of an older version is a deploy: the rollback undoes it
    ((("deploy", "1.0.0"), ("deploy", "1.1.0"), ("deploy", "1.0.0")), "1.1.0"),
    # ... and a rollback to the copy on top of the stack keeps the one under it
    ((("deploy", "1.0.0"), ("deploy", "1.1.0"), ("deploy", "1.0.0"), ("rollback", "1.1.0")), "1.0.0"),
    # a patching image refresh is a deploy of its own version
    ((("deploy", "1.0.0"), ("deploy", "1.1.0"), ("rollback", "1.0.0"), ("deploy", "1.0.0-p20261204"),
      ("deploy", "1.0.0-p20261204")), "1.0.0"),
    # failed and rolled-back attempts are not releases
    ((("deploy", "1.0.0"), ("deploy", "1.1.0", "failed"), ("deploy", "1.2.0", "rolled_back")), None),
    ((("deploy", "1.0.0"), ("deploy", "1.1.0"), ("deploy", "1.2.0", "failed")), "1.0.0"),
])
def test_rollback_target_goes_back_never_forward(steps, target):
    assert release.rollback_target(entries(*steps)) == target


def test_info_reports_the_rollback_target(tmp_path):
    s = store(tmp_path)
    deploy(s, "1.0.0")
    deploy(s, "1.1.0")
    assert s.info()["rollback_target"] == "1.0.0"
    deploy(s, "1.0.0", kind="rollback")
    info = s.info()
    assert info["rollback_target"] is None and info["previous"]["version"] == "1.1.0"


def test_kept_is_limited_to_keep_distinct_versions(tmp_path):
    s = store(tmp_path)
    for minor in range(8):
        deploy(s, "1.%d.0" % minor)
    assert [e["version"] for e in s.info(keep=3)["kept"]] == ["1.7.0", "1.6.0", "1.5.0"]
    assert len(s.info()["kept"]) == 5
    with pytest.raises(ReleaseError, match="keep"):
        s.info(keep=0)


def test_ids_stay_monotonic(tmp_path):
    s = store(tmp_path)
    assert [deploy(s, "1.%d" % i)["id"] for i in range(4)] == [1, 2, 3, 4]


def test_temp_file_left_by_a_crash_is_ignored_and_cleaned_up(tmp_path):
    s = store(tmp_path)
    v1 = deploy(s, "1.0.0")
    # A writer that died after writing its temporary file, before the rename.
    stale = os.path.join(s.directory, ".releases.json.crashed.tmp")
    with open(stale, "w") as handle:
        handle.write('[{"id": 1, "version": "9.9.9", "outc')
    assert s.read_history() == [v1]
    assert s.info()["current"] == v1
    deploy(s, "1.1.0")
    assert [e["version"] for e in s.read_history()] == ["1.0.0", "1.1.0"]
    assert not os.path.exists(stale)


def test_crash_before_the_rename_leaves_the_old_history(tmp_path, monkeypatch):
    s = store(tmp_path)
    v1 = deploy(s, "1.0.0")

    def crash(src, dst):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(release.os, "replace", crash)
    with pytest.raises(ReleaseError, match="the history is unchanged"):
        deploy(s, "1.1.0")
    monkeypatch.undo()
    assert s.read_history() == [v1]
    assert [n for n in os.listdir(s.directory) if n.endswith(".tmp")] == []
    assert [line["event"] for line in audit_lines(s)] == ["deploy_success"]  # no audit of what was not stored


@pytest.mark.parametrize("content", ['[{"id": 1, "vers', "", '{"id": 1}', "[1, 2]"])
def test_corrupt_history_gives_a_clear_error_and_is_left_alone(tmp_path, content):
    s = store(tmp_path)
    s.ensure_directory()
    with open(s.history_path, "w") as handle:
        handle.write(content)
    for call in (s.info, s.read_history, lambda: deploy(s, "1.0.0")):
        with pytest.raises(ReleaseError) as caught:
            call()
        assert s.history_path in str(caught.value)
        assert "move it aside" in str(caught.value)
    with open(s.history_path) as handle:
        assert handle.read() == content


# ---------------------------------------------------------------------------------------------- audit
def test_audit_appends_lines_and_tail_returns_the_last_twenty(tmp_path):
    clock = Clock()
    s = store(tmp_path, clock)
    for i in range(25):
        clock.now += 1
        s.append_audit("health_check_failed", "alice@ctl", version="1.%d" % i, from_version="1.0",
                       message="try %d" % i)
    lines = audit_lines(s)
    assert len(lines) == 25 and lines[0]["message"] == "try 0"
    assert lines[0] == {"at": release.isoformat(T0 + 1), "event": "health_check_failed", "app": "sms",
                        "version": "1.0", "from_version": "1.0", "actor": "alice@ctl", "outcome": None,
                        "duration_s": None, "message": "try 0"}
    tail = s.audit_tail()
    assert [line["message"] for line in tail] == ["try %d" % i for i in range(5, 25)]
    assert stat.S_IMODE(os.stat(s.audit_path).st_mode) == 0o600


def test_audit_tail_of_a_big_log_and_a_torn_last_line(tmp_path):
    s = store(tmp_path)
    for i in range(3000):  # well over one 64 KiB read
        s.append_audit("deploy_success", "alice@ctl", version=str(i), message="x" * 40)
    with open(s.audit_path, "a") as handle:
        handle.write('{"at": "2026-')  # a crash in the middle of a line
    tail = s.audit_tail()
    assert len(tail) == 20
    assert [line.get("version") for line in tail[:-1]] == [str(i) for i in range(2981, 3000)]
    assert tail[-1] == {"unparsed": '{"at": "2026-'}
    assert s.audit_tail(1) == [{"unparsed": '{"at": "2026-'}]


def test_bad_event_names_are_refused(tmp_path):
    with pytest.raises(ReleaseError, match="not an event name"):
        store(tmp_path).append_audit("deploy failed\n", "alice@ctl")


def test_info_changes_nothing(tmp_path):
    s = store(tmp_path)
    assert s.info() == {"releases": [], "current": None, "previous": None, "kept": [], "rollback_target": None,
                        "lock": None, "audit_tail": []}
    assert not (tmp_path / "state").exists()


@pytest.mark.parametrize("host, inventories, python, cwd, collections, expected", [
    # under the working directory: relative, as a person there types it
    ("localhost", ["/srv/rc/inventories/local"], "/srv/rc/.venv/bin/python3", "/srv/rc", None,
     ".venv/bin/ansible localhost -i inventories/local"),
    # run from elsewhere, rollcall.ops found beside the playbooks only: ad hoc ansible is told where it is
    ("localhost", ["/srv/rc/inventories/local"], "/srv/rc/.venv/bin/python3", "/tmp", "/srv/rc/playbooks/collections",
     "ANSIBLE_COLLECTIONS_PATH=/srv/rc/playbooks/collections /srv/rc/.venv/bin/ansible localhost "
     "-i /srv/rc/inventories/local"),
    # elsewhere: absolute; every inventory source; quoted when it needs it
    ("app 1", ["/etc/ansible/hosts", "/srv/rc/inv/my site/"], "/usr/bin/python3", "/srv/rc", None,
     "/usr/bin/ansible 'app 1' -i /etc/ansible/hosts -i 'inv/my site'"),
    # a sibling whose name starts alike is not under it
    ("db1", ["/srv/rc2/hosts"], "/srv/rc/python", "/srv/rc", None, "./ansible db1 -i /srv/rc2/hosts"),
    # nothing known: the plain command
    ("db1", [], None, "/srv/rc", None, "ansible db1"),
])
def test_adhoc_command_reaches_the_host_the_way_the_run_did(host, inventories, python, cwd, collections, expected):
    assert release.adhoc_command(host, inventories, python, cwd, collections) == expected


def test_held_lock_message_gives_the_adhoc_command_when_known(tmp_path):
    first = ReleaseStore(str(tmp_path / "state"), "sms")
    first.acquire("alice@ctl", "1.1.0")
    second = ReleaseStore(str(tmp_path / "state"), "sms", adhoc=".venv/bin/ansible localhost -i inventories/local")
    with pytest.raises(LockHeld) as caught:
        second.acquire("bob@ctl", "1.2.0")
    assert str(caught.value).endswith(
        "audited): .venv/bin/ansible localhost -i inventories/local -m rollcall.ops.app_release "
        "-a 'action=break_lock app=sms state_dir=%s'" % (tmp_path / "state")), str(caught.value)


LIVE = {"version": "1.0.0", "image": "sms:1.0.0", "image_id": "sha256:1", "config_hash": "h", "schema_revision": "0001",
        "container": "rollcall-app", "db_login": "sms", "Labels": "not a release field"}


def test_adoption_records_the_live_release_only_when_the_history_has_none():
    adopted = release.adoption([], LIVE)
    assert adopted["kind"] == "adopt" and adopted["outcome"] == "success" and adopted["version"] == "1.0.0"
    assert "Labels" not in adopted and adopted["schema_revision"] == "0001" and "had no record" in adopted["reason"]
    failed_only = [{"version": "1.1.0", "outcome": "failed", "kind": "deploy"}]
    assert release.adoption(failed_only, LIVE)["version"] == "1.0.0", "a failed deploy never became current"
    known = [{"version": "0.9.0", "outcome": "success", "kind": "deploy"}]
    assert release.adoption(known, LIVE) is None, "the history is the authority when it has a current release"
    assert release.adoption([], dict(LIVE, version="")) is None and release.adoption([], None) is None
    entry = release.new_entry([], adopted, "root@vm", 1796659200)
    assert entry["kind"] == "adopt" and release.record_event(entry) == "adopt_success"
