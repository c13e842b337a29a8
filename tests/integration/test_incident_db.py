"""incident.yml when the database is what is down (issue 9 item 5), on a throw-away PostgreSQL stack (rc-e-inc):
the bundle holds the database container (it carries no rollcall.project label), and -e restart=true restarts
the database (not the app, which failed because of it), waits for it, and says the state after it; recorded in
the audit log under the one actor rule (ROLLCALL_ACTOR)."""

import glob
import json
import os
import subprocess
import tarfile
import urllib.error
import urllib.request

import pytest
from test_deploy import DB_PASSWORD, SECRET, failures, playbook, teardown, write_inventory

PORT = 18481


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("incident")
    inventory = write_inventory(tmp_path, rollcall_project="rc-e-inc", rollcall_db_engine="postgresql",
                                rollcall_app_port=PORT, rollcall_state_dir=str(tmp_path / "state"),
                                rollcall_backup_dir=str(tmp_path / "bk"), rollcall_report_dir=str(tmp_path / "reports"),
                                rollcall_incident_dir=str(tmp_path / "incidents"), rollcall_environment="test")
    try:
        proc, report = playbook(inventory)
        assert proc.returncode == 0, failures(report)
        yield tmp_path, inventory
    finally:
        teardown(inventory)


def state(name):
    return subprocess.run(["docker", "inspect", "-f", "{{.State.Status}}", name], capture_output=True, text=True,
                          check=True).stdout.strip()


def started(name):
    return subprocess.run(["docker", "inspect", "-f", "{{.State.StartedAt}}", name], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_database_down_is_in_the_bundle_and_restarted(stack, monkeypatch):
    tmp_path, inventory = stack
    monkeypatch.setenv("ROLLCALL_ACTOR", "night-operator@school")
    app_started = started("rc-e-inc-app")
    subprocess.run(["docker", "stop", "-t", "2", "rc-e-inc-db"], check=True, capture_output=True)
    try:
        # The app says what is wrong: the database is unavailable (503, try again), not an internal error (500).
        try:
            urllib.request.urlopen("http://127.0.0.1:%d/api/v1/students" % PORT, timeout=30)  # noqa: S310
            raise AssertionError("the API answered while its database was stopped")
        except urllib.error.HTTPError as exc:
            assert exc.code == 503 and exc.headers.get("Retry-After") == "5", (exc.code, exc.read()[:200])
            assert json.loads(exc.read())["error"] == "database unavailable, try again shortly"
        proc, report = playbook(inventory, "incident.yml", "-e", "restart=true")
        assert proc.returncode == 0, failures(report)
        (bundle,) = glob.glob(str(tmp_path / "incidents" / "*.tar.gz"))
        with tarfile.open(bundle) as archive:
            names = archive.getnames()
            actions = json.load(archive.extractfile(next(n for n in names if n.endswith("actions.json"))))
            inspect = archive.extractfile(next(n for n in names if n.endswith("inspect-rc-e-inc-db.json"))).read()
        assert any(n.endswith("logs-rc-e-inc-db.txt") for n in names), names
        assert SECRET.encode() not in inspect and DB_PASSWORD.encode() not in inspect
        (host,) = actions["hosts"]
        assert host["status_at_collection"] == "critical", actions
        # The database only: the app failed because of it, and a restart of the app would only add downtime. The
        # check after the restart waits for the database and judges the app's log lines since the restart.
        assert host["restarted"] == ["rc-e-inc-db"], actions
        # nothing of the outage is critical any more (this stack has no backup yet: that stays critical)
        critical_now = [f for f in actions["failing"] if " critical (" in f]
        assert critical_now and all(f.startswith("localhost: backup ") for f in critical_now), actions["failing"]
        assert state("rc-e-inc-db") == "running" and started("rc-e-inc-app") == app_started
        said = [r["msg"] for play in report["plays"] for t in play["tasks"] for r in t["hosts"].values()
                if t["task"]["name"] == "Say where the bundle is"]
        assert said and "(critical when collected; restarted rc-e-inc-db)" in said[0], said
        with open(os.path.join(str(tmp_path), "state", "rc-e-inc", "audit.jsonl"), encoding="utf-8") as handle:
            last = json.loads(handle.read().splitlines()[-1])
        assert last["event"] == "incident_restart" and "rc-e-inc-db" in last["message"], last
        assert last["actor"] == "night-operator@school", last
    finally:
        subprocess.run(["docker", "start", "rc-e-inc-db"], check=False, capture_output=True)


def test_a_removed_container_is_named_with_the_playbook_that_recreates_it(stack):
    """`docker rm -f` of the app container by hand: -e restart=true restarted nothing, ended rc 0 and said only
    "critical", so the operator did not learn that no restart could help."""
    tmp_path, inventory = stack
    subprocess.run(["docker", "rm", "-f", "rc-e-inc-app"], check=True, capture_output=True)
    try:
        proc, report = playbook(inventory, "incident.yml", "-e", "restart=true")
        assert proc.returncode == 0, failures(report)
        said = [r["msg"] for play in report["plays"] for t in play["tasks"] for r in t["hosts"].values()
                if t["task"]["name"] == "Say where the bundle is"]
        assert said and "does not exist (a restart cannot bring it back): rc-e-inc-app on localhost; " \
            "playbooks/deploy.yml recreates it" in " ".join(said[0].split()), said
        bundle = max(glob.glob(str(tmp_path / "incidents" / "*.tar.gz")), key=os.path.getmtime)
        with tarfile.open(bundle) as archive:
            actions = json.load(archive.extractfile(next(n for n in archive.getnames()
                                                         if n.endswith("actions.json"))))
        assert actions["hosts"][0]["missing"] == ["rc-e-inc-app"] and actions["hosts"][0]["restarted"] == [], actions
    finally:
        proc, report = playbook(inventory)  # what the message says: the deploy recreates it
        assert proc.returncode == 0, failures(report)
        assert state("rc-e-inc-app") == "running"
