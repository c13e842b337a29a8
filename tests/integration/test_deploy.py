"""playbooks/deploy.yml run by real ansible-playbook against the real Docker engine of this machine.

Each test uses its own project prefix (rc-it-*), so it never touches the demo stack, and removes what it made.
"""

import json
import os
import subprocess
import sys
import urllib.request

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
SECRET = "it-secret-key-do-not-print-0123456789abcdef-012345"
DB_PASSWORD = "it-db-password-never-printed-42"


def write_inventory(tmp_path, **overrides):
    values = {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "rollcall_secret_key": SECRET,
        "rollcall_db_password": DB_PASSWORD,
        "rollcall_seed_students": 7,
    }
    values.update(overrides)
    db_hosts = {} if values.pop("no_db_host", False) else {"localhost": None}
    inventory = {"all": {"children": {"app": {"hosts": {"localhost": None}}, "db": {"hosts": db_hosts}},
                         "vars": values}}
    path = tmp_path / "hosts.yml"
    path.write_text(yaml.safe_dump(inventory))
    return str(path)


def playbook(inventory, name="deploy.yml", *extra):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
               ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               PATH=BIN + os.pathsep + os.environ["PATH"])
    argv = [os.path.join(BIN, "ansible-playbook"), "-i", inventory, os.path.join(ROOT, "playbooks", name), *extra]
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        pytest.fail("ansible-playbook printed no JSON report:\n%s\n%s" % (proc.stdout[-3000:], proc.stderr[-3000:]))
    return proc, report


def failures(report):
    """(task name, msg) of every failed, not ignored, task."""
    found = []
    for play in report["plays"]:
        for task in play["tasks"]:
            for result in task["hosts"].values():
                if result.get("failed") and not result.get("_ansible_ignore_errors") and not task["task"].get(
                        "ignore_errors"):
                    msg = result.get("msg", "")
                    # a loop: "One or more items failed" says nothing; add what each failed item said
                    items = [str(r.get("msg", "")) for r in result.get("results", []) if r.get("failed")]
                    found.append((task["task"]["name"], "; ".join([msg] + items) if items else msg))
    return [f for f in found if "ignoring" not in f[1]]


def said_by(report, name):
    """The messages of the tasks called name (without their role's prefix) that ran, not skipped, in order."""
    return [result.get("msg") for play in report["plays"] for task in play["tasks"]
            for result in task["hosts"].values()
            if task["task"]["name"].split(" : ", 1)[-1] == name and not result.get("skipped")]


def changed_tasks(report):
    """Names of the tasks that changed something, without their role's prefix."""
    return [task["task"]["name"].split(" : ", 1)[-1] for play in report["plays"] for task in play["tasks"]
            for result in task["hosts"].values() if result.get("changed")]


def task_result(report, prefix):
    """The localhost result of the one task whose name starts with prefix (the JSON callback's report)."""
    found = [task["hosts"]["localhost"] for play in report["plays"] for task in play["tasks"]
             if task["task"]["name"].split(" : ")[-1].startswith(prefix) and "localhost" in task["hosts"]]
    assert len(found) == 1, (prefix, len(found))
    return found[0]


def task_names(report):
    """The names of the tasks that ran (not skipped) on localhost, in order."""
    return [task["task"]["name"].split(" : ")[-1] for play in report["plays"] for task in play["tasks"]
            if "localhost" in task["hosts"] and not task["hosts"]["localhost"].get("skipped")]


def teardown(inventory):
    playbook(inventory, "teardown.yml", "-e", "teardown_volumes=true", "-e", "confirm=yes")


def get_json(url):
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback test URL
        return response.status, json.loads(response.read())


# MariaDB's deploy, re-deploy without changes and rows are asserted by test_db_roles_mariadb.py on its stack (one
# MariaDB deploy for both files: the suite's time is mostly Ansible's).
@pytest.mark.parametrize("engine,port", [("sqlite", 18292)])
def test_deploy_is_healthy_and_idempotent(tmp_path, engine, port):
    project = "rc-it-%s" % engine
    inventory = write_inventory(tmp_path, rollcall_project=project, rollcall_db_engine=engine, rollcall_app_port=port,
                                rollcall_state_dir=str(tmp_path / "state"))  # its job metrics stay out of /var/lib
    try:
        proc, report = playbook(inventory)
        assert proc.returncode == 0, failures(report) or proc.stderr[-2000:]
        assert report["stats"]["localhost"]["changed"] > 0
        status, health = get_json("http://127.0.0.1:%d/health" % port)
        assert status == 200 and health["status"] == "healthy" and health["version"] == "1.0.0"
        _, students = get_json("http://127.0.0.1:%d/api/v1/students" % port)
        assert students["total"] == 7

        proc, report = playbook(inventory)
        assert proc.returncode == 0, failures(report)
        assert report["stats"]["localhost"]["changed"] == 0, [
            t["task"]["name"] for p in report["plays"] for t in p["tasks"] if t["hosts"]["localhost"].get("changed")]
        assert SECRET not in proc.stdout and DB_PASSWORD not in proc.stdout

        # Found on the demo: the stack's containers removed (teardown keeping the volumes), a restore was refused
        # with "The live release changed while this restore waited for the deploy lock" (planned under no live
        # container, the lock's history naming 1.0.0), and "run the restore again" refused again, every time.
        proc, report = playbook(inventory, "backup.yml")
        assert proc.returncode == 0, failures(report)
        proc, report = playbook(inventory, "teardown.yml", "-e", "confirm=yes")
        assert proc.returncode == 0, failures(report)
        proc, report = playbook(inventory, "restore.yml", "-e", "confirm=sms")
        assert proc.returncode == 0, failures(report)
        proc, report = playbook(inventory)
        assert proc.returncode == 0, failures(report)
        _, students = get_json("http://127.0.0.1:%d/api/v1/students" % port)
        assert students["total"] == 7
    finally:
        teardown(inventory)


def test_check_mode_on_a_new_stack_says_what_it_would_start_and_starts_nothing(tmp_path):
    """A newcomer's first `deploy.yml --check`: it used to wait a minute for a database check mode never started
    (or fail on the network check mode never made)."""
    inventory = write_inventory(tmp_path, rollcall_project="rc-it-newcheck", rollcall_db_engine="postgresql",
                                rollcall_app_port=18295)
    proc, report = playbook(inventory, "deploy.yml", "--check")
    assert proc.returncode == 0, failures(report)
    said = [t["hosts"]["localhost"].get("msg", "") for p in report["plays"] for t in p["tasks"]
            if "localhost" in t["hosts"]]
    assert any("the network rc-it-newcheck-net does not exist yet" in str(m) for m in said), said
    for kind in ("ps", "volume", "network"):
        assert not subprocess.run(["docker", kind, "ls" if kind != "ps" else "-a", "-q", "--filter",
                                   "name=rc-it-newcheck"], capture_output=True, text=True, check=True).stdout.strip()


def test_short_secret_key_stops_before_anything_runs(tmp_path):
    inventory = write_inventory(tmp_path, rollcall_project="rc-it-short", rollcall_secret_key="too-short",
                                rollcall_db_engine="sqlite", rollcall_app_port=18293)
    proc, report = playbook(inventory)
    assert proc.returncode != 0
    (name, msg), = failures(report)
    assert "rollcall_secret_key is missing or shorter than 48 characters" in msg
    assert "\n" not in msg.strip()
    assert not subprocess.run(["docker", "ps", "-aq", "--filter", "name=rc-it-short"], capture_output=True,
                              text=True, check=True).stdout.strip()


def test_unreachable_database_is_one_clear_line(tmp_path):
    inventory = write_inventory(tmp_path, rollcall_project="rc-it-nodb", rollcall_db_engine="postgresql",
                                rollcall_db_host="127.0.0.1", rollcall_db_port=1, rollcall_app_port=18294,
                                no_db_host=True)
    try:
        proc, report = playbook(inventory)
        assert proc.returncode != 0
        found = failures(report)
        # The schema check fails first (rescued); the release then fails with that reason, in one line.
        assert found[0][0].endswith("Stop when the schema cannot be read"), found
        name, msg = found[-1]
        assert name.startswith("rollcall.ops.sms_app : Fail with the reason"), found
        assert "Deploy of 1.0.0 failed: Could not ask the database" in msg
        assert "cannot connect to the database at 127.0.0.1:1" in msg
        assert "\n" not in msg.strip()
        assert DB_PASSWORD not in proc.stdout + proc.stderr
        assert not subprocess.run(["docker", "ps", "-aq", "--filter", "name=rc-it-nodb-app"], capture_output=True,
                                  text=True, check=True).stdout.strip(), "the app must not start without its database"
    finally:
        teardown(inventory)


def test_stopped_engine_is_one_clear_line(tmp_path):
    inventory = write_inventory(tmp_path, rollcall_project="rc-it-noengine",
                                rollcall_docker_host="unix://%s/no-engine.sock" % tmp_path)
    proc, report = playbook(inventory)
    assert proc.returncode != 0
    (name, msg), = failures(report)
    assert "does not answer at unix://" in msg and "start it" in msg
    assert "\n" not in msg.strip()
