"""The app_release module run by real ansible on localhost (one playbook run, a few seconds, no Docker)."""

import json
import os
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")


def task(name, args, **extra):
    return dict({"name": name, "rollcall.ops.app_release": args, "ignore_errors": True}, **extra)


LIVE = {"version": "1.1.0", "image": "sms:1.1.0", "image_id": "sha256:abc", "config_hash": "c0ffee",
        "schema_revision": "0002", "container": "sms-app", "db_login": "sms_alt"}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Run every step in one play; return {task name: result} and the state directory."""
    tmp = tmp_path_factory.mktemp("release")
    state = str(tmp / "state")
    base = {"app": "sms", "state_dir": state}
    tasks = [
        task("lock", dict(base, action="lock", version="1.1.0", msg="deploy 1.1.0", actor="alice@ctl")),
        task("lock_held", dict(base, action="lock", actor="bob@ctl",
                               adhoc="{{ 'app1' | rollcall.ops.adhoc_command(['" + ROOT + "/inventories/my site'], "
                                     "ansible_playbook_python) }}")),
        task("lock_check", dict(base, action="lock"), check_mode=True),
        task("unlock_wrong_token", dict(base, action="unlock", token="not-mine")),
        task("record_v1", dict(base, action="record", release={"version": "1.0.0", "image": "sms:1.0.0"})),
        task("record_failed", dict(base, action="record", version="1.1.0",
                                   release={"outcome": "rolled_back", "reason": "health check failed"})),
        task("record_check", dict(base, action="record", release={"version": "9.9.9"}), check_mode=True),
        task("unlock", dict(base, action="unlock", token="{{ results_lock.token }}")),
        task("lock_bob", dict(base, action="lock", actor="bob@ctl", version="1.2.0")),
        task("break", dict(base, action="break_lock", actor="carol@ctl", msg="bob's run died")),
        task("info", dict(base, action="info", keep=3)),
        task("traversal", dict(base, app="..", action="info")),
        # a lost history: the live release adopted once (check mode writes nothing), never over a known current one
        task("adopt_check", dict(base, app="lost", action="adopt", release=LIVE), check_mode=True),
        task("adopt", dict(base, app="lost", action="adopt", release=LIVE)),
        task("adopt_again", dict(base, app="lost", action="adopt", release=dict(LIVE, version="9.9.9"))),
        task("adopt_known", dict(base, action="adopt", release=LIVE)),
    ]
    for step in tasks:
        step["register"] = "results_" + step["name"]
    playbook = tmp / "play.yml"
    playbook.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}]))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
               ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_PIPELINING="1")
    proc = subprocess.run(
        [PLAYBOOK, "-i", "localhost,", "-c", "local", "-e", "ansible_python_interpreter=" + sys.executable,
         str(playbook)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    try:
        plays = json.loads(proc.stdout)["plays"]
    except ValueError:
        raise AssertionError("no playbook result:\n%s\n%s" % (proc.stdout[-2000:], proc.stderr[-2000:])) from None
    results = {t["task"]["name"]: t["hosts"]["localhost"] for t in plays[0]["tasks"]}
    assert list(results) == [t["name"] for t in tasks], proc.stdout[-3000:]
    return results, os.path.join(state, "sms")


def test_lock_returns_what_is_live_once_it_is_held(run):
    """A restore plans before it waits for the lock: the lock's answer says whether a release ran meanwhile."""
    results, _ = run
    assert results["lock"]["current"] is None  # nothing recorded yet
    assert results["lock_bob"]["current"]["version"] == "1.0.0"  # record_v1 (the rolled-back 1.1.0 is not live)
    assert "current" not in results["lock_check"]


def test_lock_returns_a_token(run):
    results, _ = run
    assert results["lock"]["changed"] is True and results["lock"]["lock"]["holder"] == "alice@ctl"
    assert len(results["lock"]["token"]) == 32 and results["lock"]["lock"]["token"] == results["lock"]["token"]


def test_held_lock_fails_naming_holder_and_age(run):
    results, app_dir = run
    held = results["lock_held"]
    assert held["failed"] is True
    assert held["msg"].startswith("deploy lock for sms is held by alice@ctl (version 1.1.0, 'deploy 1.1.0'")
    assert "s ago); wait, or break it with action=break_lock if that deploy is dead" in held["msg"]
    # the command as it can be pasted at the directory the playbook ran from (adhoc, from the filter)
    ansible = os.path.relpath(os.path.join(os.path.dirname(sys.executable), "ansible"), ROOT)
    assert held["msg"].endswith(": %s app1 -i 'inventories/my site' -m rollcall.ops.app_release -a 'action=break_lock "
                                "app=sms state_dir=%s'" % (ansible, os.path.dirname(app_dir))), held["msg"]
    assert held["lock"]["holder"] == "alice@ctl" and held["waited_s"] == 0


def test_check_mode_lock_reports_and_changes_nothing(run):
    results, _ = run
    assert results["lock_check"]["acquirable"] is False and results["lock_check"]["changed"] is False
    assert "held by alice@ctl" in results["lock_check"]["msg"]
    assert results["record_check"]["changed"] is True and results["record_check"]["release"]["version"] == "9.9.9"


def test_unlock_refuses_another_token_then_releases_its_own(run):
    results, _ = run
    assert results["unlock_wrong_token"]["failed"] is True
    assert "not with the token given" in results["unlock_wrong_token"]["msg"]
    assert results["unlock"]["changed"] is True and results["unlock"]["lock"]["holder"] == "alice@ctl"


def test_record_and_info(run):
    results, directory = run
    assert results["record_v1"]["changed"] is True and results["record_v1"]["release"]["id"] == 1
    assert results["record_v1"]["current"]["version"] == "1.0.0"
    failed = results["record_failed"]["release"]
    assert failed["version"] == "1.1.0" and failed["outcome"] == "rolled_back" and failed["id"] == 2
    info = results["info"]
    assert info["changed"] is False
    assert [r["version"] for r in info["releases"]] == ["1.0.0", "1.1.0"]  # the check-mode record wrote nothing
    assert info["current"]["version"] == "1.0.0" and info["previous"] is None
    assert [r["version"] for r in info["kept"]] == ["1.0.0"]
    assert info["lock"] is None
    events = [line["event"] for line in info["audit_tail"]]
    assert events == ["deploy_success", "deploy_rolled_back", "lock_broken"]
    assert info["audit_tail"][1]["from_version"] == "1.0.0" and "@" in info["audit_tail"][1]["actor"]
    assert oct(os.stat(directory).st_mode & 0o777) == "0o700"
    assert sorted(os.listdir(directory)) == [".history.lock", "audit.jsonl", "releases.json"]


def test_break_lock_returns_what_it_broke_and_audits_it(run):
    results, _ = run
    assert results["lock_bob"]["changed"] is True
    broke = results["break"]
    assert broke["changed"] is True and broke["lock"]["holder"] == "bob@ctl"
    assert broke["audit"]["event"] == "lock_broken" and broke["audit"]["actor"] == "carol@ctl"
    assert "bob's run died" in broke["audit"]["message"]


def test_traversal_is_refused(run):
    results, _ = run
    assert results["traversal"]["failed"] is True
    assert "cannot be used as a directory name" in results["traversal"]["msg"]


def test_adopt_records_the_live_release_once_and_only_into_a_history_without_one(run):
    results, directory = run
    check, adopted = results["adopt_check"], results["adopt"]
    assert check["changed"] is True and check["release"]["id"] == 1, check
    assert adopted["changed"] is True and adopted["release"]["id"] == 1, "check mode wrote nothing"
    entry = adopted["release"]
    assert {k: entry[k] for k in LIVE} == LIVE and entry["kind"] == "adopt" and entry["outcome"] == "success"
    assert adopted["current"]["version"] == "1.1.0" and [r["version"] for r in adopted["kept"]] == ["1.1.0"]
    assert results["adopt_again"]["changed"] is False and results["adopt_again"]["current"]["version"] == "1.1.0"
    assert results["adopt_known"]["changed"] is False and results["adopt_known"]["current"]["version"] == "1.0.0"
    with open(os.path.join(os.path.dirname(directory), "lost", "audit.jsonl")) as handle:
        assert [json.loads(line)["event"] for line in handle] == ["adopt_success"]
