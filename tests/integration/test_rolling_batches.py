"""A rolling deploy over two app hosts that share one database (serial 50 %: two batches of one host).

The schema question (a one-off container of the target image, or an exec in the live release) is asked once per
deploy, by the first batch; the second batch takes what the first learned (roles/sms_app/tasks/release.yml): after a
release the schema it left (switch.yml), and on a deploy with nothing to do the answer itself, which needed no
migration. Each app host is a stack of its own on this machine's engine, as in bench/fleet.py."""

import subprocess
import sys

import docker
import pytest
import yaml
from test_deploy import DB_PASSWORD, SECRET, changed_tasks, failures, get_json, playbook

PREFIX = "rc-it-roll"
PORTS = (18441, 18442)
APPS = ["%s-app%d" % (PREFIX, k) for k in (1, 2)]


def write_inventory(tmp_path):
    apps = {name: {"rollcall_project": name, "rollcall_app_port": port} for name, port in zip(APPS, PORTS, strict=True)}
    values = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
              "rollcall_network": PREFIX + "-net", "rollcall_db_container": PREFIX + "-db-db",
              "rollcall_db_engine": "postgresql", "rollcall_environment": "test", "rollcall_secret_key": SECRET,
              "rollcall_db_password": DB_PASSWORD, "rollcall_seed_students": 0,
              "rollcall_state_dir": str(tmp_path / "state"), "rollcall_backup_dir": str(tmp_path / "backups"),
              "rollcall_backup_verify_level": "native", "rollcall_backup_uploads": False,
              "rollcall_report_dir": str(tmp_path / "reports"), "rollcall_incident_dir": str(tmp_path / "incidents")}
    path = tmp_path / "hosts.yml"
    path.write_text(yaml.safe_dump({"all": {"children": {
        "app": {"hosts": apps}, "db": {"hosts": {PREFIX + "-db": {"rollcall_project": PREFIX + "-db"}}}},
        "vars": values}}))
    return str(path)


def remove_all():
    client = docker.from_env()
    for container in client.containers.list(all=True, filters={"name": PREFIX}):
        container.remove(force=True, v=True)
    for volume in client.volumes.list(filters={"name": PREFIX}):
        volume.remove(force=True)
    for network in client.networks.list(names=[PREFIX + "-net"]):
        network.remove()


def ran_on(report, name):
    """The hosts where the task called ``name`` ran (was not skipped), over every batch."""
    return sorted(host for play in report["plays"] for task in play["tasks"]
                  if task["task"]["name"].split(" : ")[-1] == name
                  for host, result in task["hosts"].items() if not result.get("skipped"))


@pytest.fixture
def fleet(tmp_path):
    remove_all()
    try:
        yield write_inventory(tmp_path)
    finally:
        remove_all()
        subprocess.run(["rm", "-rf", str(tmp_path / "state")], check=False)


def test_the_second_batch_takes_the_first_batchs_schema_answer(fleet):
    proc, report = playbook(fleet)
    assert proc.returncode == 0, failures(report)
    assert ran_on(report, "Ask the target image what the schema is and what it needs (changes nothing)") == [APPS[0]]
    assert ran_on(report, "Ask the live release what the schema is (changes nothing)") == []

    # Nothing to do: the first batch asks the live release, and its answer (no migration) serves the second.
    proc, report = playbook(fleet)
    assert proc.returncode == 0, failures(report)
    assert changed_tasks(report) == []
    assert ran_on(report, "Ask the live release what the schema is (changes nothing)") == [APPS[0]]
    assert ran_on(report, "Note that the schema needs nothing (later batches need not ask again)") == [APPS[0]]
    for port in PORTS:
        status, health = get_json("http://127.0.0.1:%d/health" % port)
        assert status == 200 and health["version"] == "1.0.0", health

    # A release, then the kept 1.0.0 again while the database is at 0002: refused before anything changes on both
    # hosts, the live release asked once for the database they share (before, each host ran `sms-app migrate
    # --check` in its own live container).
    proc, report = playbook(fleet, "deploy.yml", "-e", "rollcall_app_version=1.1.0")
    assert proc.returncode == 0, failures(report)
    proc, report = playbook(fleet)
    assert proc.returncode != 0, "the deploy of 1.0.0 onto schema 0002 went ahead"
    assert ran_on(report, "Read the schema revision from the live release (changes nothing)") == [APPS[0]]
    refused = {host: result["msg"] for play in report["plays"] for task in play["tasks"]
               if task["task"]["name"].endswith("Refuse the deploy before anything changes")
               for host, result in task["hosts"].items() if result.get("failed")}
    assert sorted(refused) == APPS, failures(report)
    for message in refused.values():
        assert "Deploy of 1.0.0 refused: 1.0.0 needs schema 0001, but the database is at 0002" in message, message
    assert changed_tasks(report) == []
