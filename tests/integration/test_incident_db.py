"""incident.yml when the database is what is down (issue 9 item 5), on a throw-away PostgreSQL stack (rc-e-inc):
the bundle holds the database container (it carries no rollcall.project label), and -e restart=true restarts
the database, recorded in the audit log under the one actor rule (ROLLCALL_ACTOR)."""

import glob
import json
import os
import subprocess
import tarfile

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


def test_database_down_is_in_the_bundle_and_restarted(stack, monkeypatch):
    tmp_path, inventory = stack
    monkeypatch.setenv("ROLLCALL_ACTOR", "night-operator@school")
    subprocess.run(["docker", "stop", "-t", "2", "rc-e-inc-db"], check=True, capture_output=True)
    try:
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
        assert host["restarted"][0] == "rc-e-inc-db", actions  # the database first: it is what is down
        assert state("rc-e-inc-db") == "running"
        with open(os.path.join(str(tmp_path), "state", "rc-e-inc", "audit.jsonl"), encoding="utf-8") as handle:
            last = json.loads(handle.read().splitlines()[-1])
        assert last["event"] == "incident_restart" and "rc-e-inc-db" in last["message"], last
        assert last["actor"] == "night-operator@school", last
    finally:
        subprocess.run(["docker", "start", "rc-e-inc-db"], check=False, capture_output=True)
