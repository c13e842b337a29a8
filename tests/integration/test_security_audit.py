"""The quarterly security audit against real containers (all named rc-t12b-*): a PostgreSQL server from our image
with a planted superuser, a container running as root with a port published on 0.0.0.0, a world-readable backup;
then the clean case; then playbooks/security_audit.yml for real (local connection), clean and with the planted
superuser (non-zero exit, the report names it)."""

import contextlib
import glob
import json
import os
import pathlib
import sys
import uuid

import docker.errors
import pytest
from conftest import wait_healthy
from test_deploy import DB_PASSWORD, SECRET, failures, playbook, write_inventory

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from modules import run_module  # noqa: E402

IMAGE = "rollcall/postgres:15"
PG_PASSWORD = "rc-t12b-pg-password-not-printed"


@pytest.fixture(scope="module")
def stack(docker_client, require_image):
    """<tag>-ok-db (PostgreSQL, the bootstrap superuser postgres and a plain login role sms_app),
    <tag>-ok-app (unprivileged, port on 127.0.0.1), <tag>-bad-app (root, port on 0.0.0.0)."""
    require_image(IMAGE)
    tag = "rc-t12b-%s" % uuid.uuid4().hex[:6]
    started = []

    def run(name, **kwargs):
        container = docker_client.containers.run(IMAGE, name="%s-%s" % (tag, name), detach=True, **kwargs)
        started.append(container)
        return container

    try:
        db = run("ok-db", environment={"POSTGRES_PASSWORD": PG_PASSWORD, "POSTGRES_DB": "sms"})
        run("ok-app", entrypoint=["sleep", "600"], user="65534", ports={"8000/tcp": ("127.0.0.1", None)})
        run("bad-app", entrypoint=["sleep", "600"], user="root", ports={"8000/tcp": ("0.0.0.0", None)})
        wait_healthy(db)
        psql(db, "CREATE ROLE sms_app LOGIN PASSWORD 'sms-app-pw-0123'")
        yield {"tag": tag, "db": db}
    finally:
        for container in started:
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True, v=True)


def psql(db, sql):
    result = db.exec_run(["psql", "-X", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-U", "postgres", "-d", "sms",
                          "-c", sql], environment={"PGPASSWORD": PG_PASSWORD})
    assert result.exit_code == 0, result.output.decode()


@contextlib.contextmanager
def planted_superuser(db):
    psql(db, "CREATE ROLE intruder LOGIN SUPERUSER PASSWORD 'intruder-pw-0123'")
    try:
        yield
    finally:
        psql(db, "DROP ROLE intruder")


def audit(stack, project, backups, **extra):
    args = {"project": project, "sockets": False, "backup_directory": str(backups), "environment": "production",
            "database": {"engine": "postgresql", "container": "%s-ok-db" % stack["tag"], "database": "sms",
                         "user": "postgres", "password": PG_PASSWORD},
            "expected_roles": [{"name": "sms_app", "login": True}]}
    args.update(extra)
    rc, result, output = run_module("security_audit", args, timeout=180)
    assert rc == 0, result
    assert PG_PASSWORD not in output
    return result


def backup_dir(tmp_path, mode):
    directory = tmp_path / "backups"
    directory.mkdir(mode=0o700)
    dump = directory / "postgresql-sms-20261201T020000Z-full.dump"
    dump.write_bytes(b"PGDMP")
    os.chmod(dump, mode)
    return directory


def critical(result, check=None):
    return [f for f in result["findings"] if f["severity"] == "critical" and check in (None, f["check"])]


def test_planted_superuser_root_container_and_readable_backup_are_found(stack, tmp_path):
    backups = backup_dir(tmp_path, 0o644)
    with planted_superuser(stack["db"]):
        result = audit(stack, "%s-bad" % stack["tag"], backups)
    assert result["critical"] is True
    assert set(result["checked"]) == {"database", "containers", "files", "backups"}
    (db,) = critical(result, "database")
    assert db["subject"] == "role intruder" and "SUPERUSER" in db["message"]
    bad = "container %s-bad-app" % stack["tag"]
    containers = [f for f in result["findings"] if f["subject"] == bad]
    assert any("runs as root" in f["message"] and f["severity"] == "warning" for f in containers), containers
    assert any("0.0.0.0:" in f["message"] and f["severity"] == "warning" for f in containers), containers
    (files,) = critical(result, "files")
    assert files["subject"].endswith(".dump") and "world-readable backup data" in files["message"]
    # The backup has no manifest, so no encryption finding beyond "no complete backup".
    assert [f["severity"] for f in result["findings"] if f["check"] == "backups"] == ["info"]


def test_the_clean_case_has_no_critical_finding(stack, tmp_path):
    backups = backup_dir(tmp_path, 0o600)
    result = audit(stack, "%s-ok" % stack["tag"], backups)
    assert critical(result) == [], critical(result)
    assert result["critical"] is False
    app = [f for f in result["findings"] if f["subject"] == "container %s-ok-app" % stack["tag"]]
    assert app == [], app
    db = [f for f in result["findings"] if f["subject"] == "container %s-ok-db" % stack["tag"]]
    # Our PostgreSQL image starts as root and drops to postgres; POSTGRES_PASSWORD is in its environment.
    assert {f["severity"] for f in db} == {"info", "warning"}
    assert any("POSTGRES_PASSWORD" in f["message"] for f in db) and PG_PASSWORD not in json.dumps(result)
    assert not [f for f in result["findings"] if f["check"] == "database" and f["severity"] != "info"]


def test_the_playbook_writes_one_report_and_fails_on_a_critical_finding(stack, tmp_path):
    backups = backup_dir(tmp_path, 0o600)
    reports = tmp_path / "reports"
    inventory = write_inventory(
        tmp_path, rollcall_project="%s-ok" % stack["tag"], rollcall_db_container="%s-ok-db" % stack["tag"],
        rollcall_db_user="postgres", rollcall_security_audit_db_password=PG_PASSWORD,
        rollcall_backup_dir=str(backups), rollcall_report_dir=str(reports), rollcall_state_dir=str(tmp_path / "st"),
        rollcall_environment="production", rollcall_app_port=18999,
        rollcall_db_expected_roles=[{"name": "sms_app", "login": True}])

    proc, report = playbook(inventory, "security_audit.yml")
    assert proc.returncode == 0, failures(report) or proc.stderr[-2000:]
    (first,) = glob.glob(str(reports / "security-*.json"))
    document = json.loads(pathlib.Path(first).read_text())
    assert document["status"] in ("ok", "warning") and document["counts"]["critical"] == 0, document["failing"]
    checks = {f["check"] for h in document["hosts"] for f in h["findings"]}
    assert {"tls", "log_audit", "accounts"} <= checks, checks  # http endpoint, no app container, PostgreSQL
    stats = report["global_custom_stats"]["rollcall_result"]
    assert stats["playbook"] == "security_audit" and stats["counts"]["critical"] == 0

    with planted_superuser(stack["db"]):
        proc, report = playbook(inventory, "security_audit.yml")
    assert proc.returncode != 0
    (name, msg), = failures(report)
    assert "critical finding" in msg and "role intruder" in msg
    second = sorted(set(glob.glob(str(reports / "security-*.json"))) - {first})
    assert len(second) == 1, "a second report, the first one kept"
    document = json.loads(pathlib.Path(second[0]).read_text())
    assert document["critical"] and any(f["subject"] == "role intruder" for f in document["hosts"][0]["findings"])
    html = pathlib.Path(second[0][:-5] + ".html").read_text()
    assert "role intruder" in html and pathlib.Path(second[0][:-5] + ".md").is_file()
    assert report["global_custom_stats"]["rollcall_result"]["status"] == "critical"
    for secret in (PG_PASSWORD, SECRET, DB_PASSWORD):
        assert secret not in proc.stdout + proc.stderr
        assert secret not in pathlib.Path(second[0]).read_text() + html
