"""A deploy lock left by a run that ended (Ctrl-C, a closed terminal, a killed job): ``release.holder_gone`` (one test
per branch), the store breaking it under the directory's flock, and ``controller.identity`` on this machine's /proc."""

import contextlib
import json
import os
import subprocess
import sys
import time

import pytest

from ansible_collections.rollcall.ops.plugins.module_utils import controller, release
from ansible_collections.rollcall.ops.plugins.module_utils.release import LockHeld, ReleaseStore

T0 = 1795000000.0
RUN = {"host": "ctl", "boot_id": "b00t", "pid_ns": "pid:[4026531836]", "pid": 500, "pgid": 500, "started": 7000,
       "program": "ansible-playbook", "at": T0}


def looking(at=T0 + 60, live=None, **changes):
    """This run's identity, looking at ``at`` with ``live`` processes running."""
    own = dict(pid=900, pgid=900, started=9000, at=at, live={"900": 9000} if live is None else live, groups=[1, 900])
    return dict(RUN, **dict(own, **changes))


def lock(**changes):
    return {"holder": "alice@ctl", "version": "1.1.0", "message": "deploy 1.1.0", "token": "t", "since": "x",
            "controller": dict(RUN, **changes)}


# ---------------------------------------------------------------------------------------------- holder_gone
def test_a_lock_whose_run_was_not_running_when_this_run_looked_is_gone():
    why = release.holder_gone(lock(), looking())
    assert why.startswith("that run (ansible pid 500) is no longer running on ctl: it was interrupted or killed")


def test_a_lock_whose_run_still_runs_is_not_gone():
    assert release.holder_gone(lock(), looking(live={"500": 7000, "900": 9000})) is None


def test_a_process_left_in_its_process_group_keeps_the_lock():
    # ansible-playbook was killed, a task worker or the module it started still runs (orphans keep the group)
    assert release.holder_gone(lock(), looking(groups=[1, 500, 900])) is None
    assert release.holder_gone(lock(pgid=None), looking()) is None  # not recorded: cannot tell


def test_a_reused_pid_does_not_keep_a_lock_alive():
    # pid 500 runs, but it started at another time: not the process that took the lock
    assert release.holder_gone(lock(), looking(live={"500": 7777})) is not None


def test_a_lock_taken_after_this_run_looked_is_not_judged():
    assert release.holder_gone(lock(at=T0 + 61), looking(at=T0 + 60)) is None
    assert release.holder_gone(lock(at=T0 + 60), looking(at=T0 + 60)) is None


@pytest.mark.parametrize("key", ["boot_id", "pid_ns"])
def test_a_lock_from_another_machine_boot_or_pid_namespace_is_not_judged(key):
    assert release.holder_gone(lock(), looking(**{key: "other"})) is None
    assert release.holder_gone(lock(**{key: None}), looking(**{key: None})) is None  # unknown is not the same


def test_a_lock_taken_by_hand_with_the_ad_hoc_command_is_meant_to_outlive_it():
    assert release.holder_gone(lock(program="ansible"), looking()) is None
    assert release.holder_gone(lock(program=None), looking()) is None


def test_without_what_to_compare_nothing_is_judged():
    assert release.holder_gone(lock(), None) is None  # a controller without /proc
    old = {key: value for key, value in lock().items() if key != "controller"}  # taken by an older Rollcall
    assert release.holder_gone(old, looking()) is None
    assert release.holder_gone({"damaged": True, "controller": None}, looking()) is None
    assert release.holder_gone(lock(pid="x"), looking()) is None
    assert release.holder_gone(lock(at=None), looking()) is None


# ---------------------------------------------------------------------------------------------- the store
def store(tmp_path, now=T0):
    return ReleaseStore(str(tmp_path / "state"), "sms", clock=lambda: now, sleep=lambda s: None, hostname="app1",
                        pid=4242)


def test_the_lock_records_the_run_without_its_process_list(tmp_path):
    _, held = store(tmp_path).acquire("alice@ctl", "1.1.0", controller=dict(RUN, live={"500": 7000}))
    with open(os.path.join(str(tmp_path / "state"), "sms", "deploy.lock"), encoding="utf-8") as handle:
        assert json.load(handle)["controller"] == RUN
    assert held["controller"] == RUN
    assert "; ansible pid 500 on ctl)" in release.describe_lock(held)


def test_a_lock_whose_run_ended_is_broken_audited_and_taken(tmp_path):
    store(tmp_path).acquire("alice@ctl", "1.1.0", "deploy 1.1.0", controller=dict(RUN, live={"500": 7000}))
    s = store(tmp_path, T0 + 60)
    changed, held = s.acquire("bob@ctl", "1.1.0", "deploy 1.1.0", controller=looking())
    assert changed is True and held["holder"] == "bob@ctl" and held["controller"]["pid"] == 900
    (old, why, line), = s.broken_stale
    assert old["holder"] == "alice@ctl" and "no longer running on ctl" in why
    assert line["event"] == "lock_broken" and line["actor"] == "bob@ctl" and why in line["message"]
    with open(s.audit_path, encoding="utf-8") as handle:
        assert [json.loads(text)["event"] for text in handle] == ["lock_broken"]


def test_a_lock_whose_run_still_runs_is_waited_for_and_kept(tmp_path):
    store(tmp_path).acquire("alice@ctl", "1.1.0", "deploy 1.1.0", controller=dict(RUN, live={}))
    s = store(tmp_path, T0 + 60)
    with pytest.raises(LockHeld, match="held by alice@ctl"):
        s.acquire("bob@ctl", controller=looking(live={"500": 7000}))
    assert s.broken_stale == [] and s.read_lock()["holder"] == "alice@ctl"
    assert not os.path.exists(s.audit_path)


def test_the_break_decides_on_the_lock_as_it_is_under_the_flock(tmp_path):
    # another waiter broke the dead lock and took it between our look and our break: its lock stays
    s = store(tmp_path, T0 + 60)
    s.acquire("carol@ctl", controller=looking(at=T0 + 70, pid=950, started=9500))  # after our look
    assert s._break_ended(looking(), "bob@ctl") is False
    assert s.read_lock()["holder"] == "carol@ctl" and s.broken_stale == []


# ---------------------------------------------------------------------------------------------- controller.identity
FAKE = """import os, sys, time
child = os.fork()  # a task worker: a fork of the run, with its command line
if child == 0:
    time.sleep(60)
    os._exit(0)
print(child, flush=True)
time.sleep(60)
"""


@pytest.fixture
def fake_run(tmp_path):
    """A process that looks like ansible-playbook (its script's name) with one forked worker."""
    script = tmp_path / "ansible-playbook"
    script.write_text(FAKE)
    # its own process group, as a shell with job control starts it
    proc = subprocess.Popen([sys.executable, str(script), "site.yml"], stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    worker = int(proc.stdout.readline())
    yield proc, worker
    proc.kill()
    proc.wait()
    with contextlib.suppress(ProcessLookupError):
        os.kill(worker, 9)


def test_identity_names_the_run_above_its_workers_and_lists_it(fake_run):
    proc, worker = fake_run
    before = time.time()
    run = controller.identity(pid=worker)
    assert run["pid"] == proc.pid and run["started"] == controller.stat(proc.pid)[2]
    assert run["program"] == "ansible-playbook" and run["pgid"] == proc.pid and proc.pid in run["groups"]
    assert run["boot_id"] and run["pid_ns"].startswith("pid:[") and run["at"] >= before
    assert run["live"][str(proc.pid)] == run["started"] and str(worker) in run["live"]
    assert str(os.getpid()) not in run["live"]  # pytest is not an Ansible run


def test_a_run_that_ended_is_judged_gone_and_one_that_runs_is_not(fake_run):
    proc, worker = fake_run
    taken = controller.identity(pid=worker)
    held = {"controller": {key: taken[key] for key in release.RUN_FIELDS}}
    time.sleep(0.01)
    assert release.holder_gone(held, controller.identity()) is None
    proc.kill()
    proc.wait()
    time.sleep(0.01)
    assert release.holder_gone(held, controller.identity()) is None  # its worker still runs, in its group
    os.kill(worker, 9)
    for _ in range(100):  # until the orphan is reaped
        if controller.stat(worker) is None:
            break
        time.sleep(0.05)
    assert "ansible pid %d" % proc.pid in release.holder_gone(held, controller.identity())


def test_identity_without_proc_is_none(tmp_path):
    assert controller.identity(proc=str(tmp_path)) is None
    assert controller.program(b"/usr/bin/python3\0/opt/venv/bin/ansible-playbook\0x.yml\0") == "ansible-playbook"
    assert controller.program(b"ansible\0localhost\0") == "ansible"
    assert controller.program(b"python3\0-m\0pytest\0ansible-playbook\0") is None


# ---------------------------------------------------------------------------------------------- real ansible-playbook
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")


def playbook(tmp_path, name, tasks):
    path = tmp_path / (name + ".yml")
    path.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}]))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
               ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_DEPRECATION_WARNINGS="0")
    return [PLAYBOOK, "-i", "localhost,", "-c", "local", "-e", "ansible_python_interpreter=" + sys.executable,
            str(path)], env


def results(argv, env):
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    try:
        plays = json.loads(proc.stdout)["plays"]
    except ValueError:
        raise AssertionError("no playbook result:\n%s\n%s" % (proc.stdout[-2000:], proc.stderr[-2000:])) from None
    return {t["task"]["name"]: t["hosts"]["localhost"] for t in plays[0]["tasks"]}


def test_an_interrupted_run_s_lock_is_taken_over_and_a_running_one_is_not(tmp_path):
    """ansible-playbook holding the lock, Ctrl-C'd: the next run breaks it at once; while it ran, it was waited for."""
    lock = {"app": "sms", "state_dir": str(tmp_path / "state"), "action": "lock", "lock_timeout": 0}
    go = tmp_path / "go"
    argv, env = playbook(tmp_path, "holder", [
        {"name": "lock", "rollcall.ops.app_release": dict(lock, actor="alice@ctl", version="1.1.0")},
        {"name": "deploy", "ansible.builtin.wait_for": {"path": str(go), "timeout": 60}}])
    # its own process group, as a shell with job control starts it (in pytest's, pytest would keep the group alive)
    holder = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        path = tmp_path / "state" / "sms" / "deploy.lock"
        for _ in range(300):
            if path.exists() and path.stat().st_size:
                break
            time.sleep(0.1)
        assert json.loads(path.read_text())["controller"]["pid"] == holder.pid  # ansible-playbook, not its worker
        waiter = [{"name": "lock", "rollcall.ops.app_release": dict(lock, actor="bob@ctl"), "ignore_errors": True},
                  {"name": "check", "rollcall.ops.app_release": dict(lock, actor="bob@ctl"), "check_mode": True}]
        running = results(*playbook(tmp_path, "waiter", waiter))
        assert running["lock"]["failed"] is True and "held by alice@ctl" in running["lock"]["msg"]
        assert running["check"]["acquirable"] is False
    finally:
        holder.send_signal(2)  # Ctrl-C
        holder.wait(timeout=60)
    assert path.exists()  # an interrupted run leaves its lock behind
    ended = results(*playbook(tmp_path, "after", list(reversed(waiter))))
    assert ended["check"]["acquirable"] is True and ended["check"]["msg"].startswith("would break the deploy lock")
    assert ended["lock"]["changed"] is True and ended["lock"]["lock"]["holder"] == "bob@ctl"
    assert ended["lock"]["broken"][0]["holder"] == "alice@ctl"
    assert "ansible pid %d) is no longer running" % holder.pid in ended["lock"]["warnings"][0]
    audit = [json.loads(text) for text in (tmp_path / "state" / "sms" / "audit.jsonl").read_text().splitlines()]
    assert [(line["event"], line["actor"]) for line in audit] == [("lock_broken", "bob@ctl")]


def test_a_lock_taken_by_hand_ad_hoc_is_kept_after_its_command_ends(tmp_path):
    """`ansible HOST -m rollcall.ops.app_release -a action=lock` holds deploys off until `unlock`: not a dead run."""
    state = str(tmp_path / "state")
    argv, env = playbook(tmp_path, "unused", [])
    adhoc = [os.path.join(os.path.dirname(sys.executable), "ansible"), "localhost", "-c", "local", "-e",
             "ansible_python_interpreter=" + sys.executable, "-m", "rollcall.ops.app_release", "-a",
             json.dumps({"app": "sms", "state_dir": state, "action": "lock", "actor": "ops@ctl", "msg": "exams"})]
    subprocess.run(adhoc, cwd=ROOT, env=env, capture_output=True, timeout=120, check=True)
    held = json.loads((tmp_path / "state" / "sms" / "deploy.lock").read_text())
    assert held["controller"]["program"] == "ansible"
    after = results(*playbook(tmp_path, "after", [{"name": "lock", "ignore_errors": True, "rollcall.ops.app_release": {
        "app": "sms", "state_dir": state, "action": "lock", "lock_timeout": 0}}]))
    assert after["lock"]["failed"] is True and "held by ops@ctl (version unknown, 'exams'" in after["lock"]["msg"]
