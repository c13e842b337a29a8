"""health_check through real ansible against real containers, with faults injected: database stopped, app made
slow, backup too old, a container restarting, a long query. Secrets given to the module or living in the
containers' environment are grepped for in the whole output (-vvv included)."""

import contextlib
import time
import uuid

import docker.errors
import pytest
from conftest import host_port, wait_healthy
from modules import run_module as shared_run_module

PASSWORD = "health-db-password-not-in-output"
APP_SECRET = "health-app-secret-key-0123456789abcdef-never-shown"
BAD_SECRET = "too-short-secret-4242"
DELAY_MS = 700


def run_module(module, args, *extra):
    """modules.run_module with this file's bounds (a -vvv run gets 300 s)."""
    return shared_run_module(module, args, *extra, timeout=300 if "-vvv" in extra else 600)


def name(kind):
    return "it-health-%s-%s" % (kind, uuid.uuid4().hex[:8])


def grep_secrets(output):
    for secret in (PASSWORD, APP_SECRET, BAD_SECRET):
        assert secret not in output, "secret %r leaked into the module output" % secret


def check(result, kind, name=None):
    found = [c for c in result["checks"] if c["kind"] == kind and (name is None or c["name"] == name)]
    assert len(found) == 1, result["checks"]
    return found[0]


@pytest.fixture(scope="module")
def pg(docker_client, require_image):
    require_image("rollcall/postgres:15")
    container = docker_client.containers.run("rollcall/postgres:15", detach=True, name=name("pg"), environment={
        "POSTGRES_USER": "sms", "POSTGRES_PASSWORD": PASSWORD, "POSTGRES_DB": "sms"})
    try:
        wait_healthy(container)
        yield container
    finally:
        container.remove(force=True, v=True)


@pytest.fixture(scope="module")
def slow_app(docker_client, require_image):
    """The SMS on SQLite, every /api request delayed by SMS_DEBUG_DELAY_MS (the test-only fault knob)."""
    require_image("rollcall/sms-app:1.0.0")
    container = docker_client.containers.run(
        "rollcall/sms-app:1.0.0", detach=True, name=name("app"),
        command=["sh", "-c", "sms-app migrate && exec sms-app serve"],
        environment={"DATABASE_URL": "sqlite:////data/db/sms.sqlite3", "SECRET_KEY": APP_SECRET,
                     "RATE_LIMIT_PER_MINUTE": "0", "SMS_DEBUG_DELAY_MS": str(DELAY_MS)},
        ports={"8000/tcp": ("127.0.0.1", None)})
    try:
        wait_healthy(container)
        yield container, "http://127.0.0.1:%d" % host_port(container, "8000/tcp")
    finally:
        container.remove(force=True, v=True)


def database(pg, **extra):
    return dict({"engine": "postgresql", "container": pg.name, "user": "sms", "password": PASSWORD,
                 "database": "sms"}, **extra)


def test_healthy_host_is_ok_with_every_metric(pg, slow_app):
    app, base = slow_app
    rc, result, output = run_module("health_check", {
        "url": base + "/health", "wait_timeout": 10,
        "containers": [pg.name, app.name],
        "endpoints": [{"name": "live", "url": base + "/health/live", "samples": 5}],
        "database": database(pg), "disk_paths": ["/"], "memory": True, "cpu": True,
        "logs": {"containers": [app.name, pg.name], "since_minutes": 10},
        # How busy this machine is is not the module's doing: the host's own metrics may warn, never fail the test.
        "thresholds": {"cpu_used_percent": [80, None], "memory_used_percent": [85, None],
                       "disk_used_percent": [80, None]},
    }, "-vvv")
    grep_secrets(output)
    assert rc == 0, result
    # -vvv shows the module's arguments: the password is there only as Ansible's no_log placeholder.
    assert "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" in output and '"module_args"' in output
    assert result["app_status"] == "healthy" and result["attempts"] >= 1  # the gate keys are still there
    for container in (pg.name, app.name):
        assert check(result, "container", container)["status"] == "ok"
        assert check(result, "container", container)["metrics"] == {"running": 1, "restart_count": 0}
    db = check(result, "database")
    assert db["status"] == "ok", db
    assert db["metrics"]["max_connections"] > 0 and db["metrics"]["active_connections"] >= 1
    assert db["metrics"]["long_queries"] == 0
    assert check(result, "http", "live")["status"] == "ok"  # /health is not delayed
    assert {c["kind"] for c in result["checks"]} >= {"container", "http", "database", "disk", "memory", "cpu",
                                                     "logs"}
    failed = [c for c in result["checks"] if c["status"] not in ("ok", "warning")]
    assert not failed and result["summary"]["ok"] + result["summary"]["warning"] == len(result["checks"]), failed


def test_slow_endpoint_is_a_latency_warning(slow_app):
    _, base = slow_app
    rc, result, output = run_module("health_check", {
        "endpoints": [{"name": "students", "url": base + "/api/v1/students", "samples": 3}]})
    assert rc == 0
    http = check(result, "http", "students")
    assert http["status"] == "warning", http
    assert DELAY_MS <= http["metrics"]["p95_ms"] < 1000
    assert http["reason"].startswith("p95 latency") and ">= 500 ms" in http["reason"]
    assert http["metrics"]["error_rate"] == 0 and result["status"] == "warning"
    grep_secrets(output)


def test_long_running_query_is_listed(pg):
    pg.exec_run(["psql", "-h", "127.0.0.1", "-U", "sms", "-d", "sms", "-c", "SELECT pg_sleep(20) /* slow */"],
                environment={"PGPASSWORD": PASSWORD}, detach=True)
    time.sleep(2.5)
    rc, result, output = run_module("health_check", {"database": database(pg, long_query_seconds=1)}, "-vvv")
    grep_secrets(output)
    db = check(result, "database")
    assert db["status"] == "warning" and db["metrics"]["long_queries"] >= 1, db
    slow = db["details"]["long_queries"][0]
    assert slow["duration_s"] >= 1 and slow["query"].startswith("SELECT pg_sleep(20)") and slow["pid"] > 0


def test_backup_older_than_the_threshold_is_a_warning(pg, tmp_path):
    directory = tmp_path / "backups"
    directory.mkdir()
    args = dict(database(pg), directory=str(directory))
    rc, made, output = run_module("db_backup", args)
    assert rc == 0, made.get("msg")
    rc, result, output = run_module("health_check", {"backup_directory": str(directory), "backup_database": "sms"})
    backup = check(result, "backup")
    assert backup["status"] == "warning" and "no verified backup" in backup["reason"]  # fresh, never verified
    rc, verified, _ = run_module("backup_verify", dict(args, name=made["name"], level="checksum"))
    assert rc == 0, verified.get("msg")
    rc, result, output = run_module("health_check", {"backup_directory": str(directory), "thresholds": {
        "backup_age_hours": [0, None]}}, "-vvv")
    backup = check(result, "backup")
    assert backup["status"] == "warning", backup
    assert backup["reason"].startswith("newest backup age") and ">= 0 h" in backup["reason"]
    assert 0 <= backup["metrics"]["newest_age_s"] < 300 and "newest_verified_age_s" in backup["metrics"]
    rc, result, _ = run_module("health_check", {"backup_directory": str(directory)})
    assert check(result, "backup")["status"] == "ok"
    grep_secrets(output)


def test_restarting_container_is_reported_with_its_restart_count(docker_client, require_image):
    require_image("rollcall/sms-app:1.0.0")
    container = docker_client.containers.run(
        "rollcall/sms-app:1.0.0", detach=True, name=name("restart"), restart_policy={"Name": "always"},
        environment={"DATABASE_URL": "postgresql+psycopg2://sms:%s@127.0.0.1:1/sms" % PASSWORD,
                     "SECRET_KEY": BAD_SECRET})
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            container.reload()
            if container.attrs["RestartCount"] >= 2:
                break
            time.sleep(0.3)
        rc, result, output = run_module("health_check", {
            "containers": [container.name, "it-health-missing-%s" % uuid.uuid4().hex[:6]],
            "logs": {"containers": [container.name], "patterns": ["SECRET_KEY", "sms-app:"]}}, "-vvv")
        grep_secrets(output)
        assert rc == 0
        restarting = check(result, "container", container.name)
        assert restarting["status"] == "warning", restarting
        assert restarting["metrics"]["restart_count"] >= 2 and "restart" in restarting["reason"]
        missing = result["checks"][1]
        assert missing["status"] == "critical" and "does not exist" in missing["reason"]
        logs = check(result, "logs")
        assert logs["metrics"]["error_lines"] >= 1 and "SECRET_KEY is missing" in logs["details"]["samples"][0]
        assert result["status"] == "critical" and result["summary"]["critical"] == 1
    finally:
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True, v=True)


def test_database_stopped_is_critical_with_that_reason(pg):
    """Last: it stops the module's database container."""
    pg.stop(timeout=10)
    rc, result, output = run_module("health_check", {"containers": [pg.name], "database": database(pg),
                                                     "fail_on": "critical"}, "-vvv")
    grep_secrets(output)
    assert rc != 0 and result["failed"] is True and result["status"] == "critical"
    db = check(result, "database")
    assert db["status"] == "critical"
    assert db["reason"] == "could not reach the postgresql database sms in container %s: container %s is not " \
                           "running (exited); start it (playbooks/incident.yml -e restart=true restarts what is " \
                           "failing, or docker start %s) and run again" % (pg.name, pg.name, pg.name)
    assert check(result, "container")["status"] == "critical"
    assert "is exited" in check(result, "container")["reason"]
    assert "health is critical (2 critical)" in result["msg"]


def test_wal_archiving_that_fails_is_a_warning_naming_the_segment(docker_client, require_image):
    """Point-in-time recovery's archiving broken (the repository unwritable, full, gone): health.yml said "ok"
    while the recovery point stood still and pg_wal grew. A server whose archive_command fails stands in for it."""
    require_image("rollcall/postgres:15")
    container = docker_client.containers.run(
        "rollcall/postgres:15", ["postgres", "-c", "archive_mode=on", "-c", "archive_command=/bin/false"],
        detach=True, name=name("pgarch"),
        environment={"POSTGRES_USER": "sms", "POSTGRES_PASSWORD": PASSWORD, "POSTGRES_DB": "sms"})
    try:
        wait_healthy(container)
        rc, result, _ = run_module("health_check", {"database": database(container)})
        assert rc == 0 and check(result, "database")["status"] == "ok", result["checks"]
        assert check(result, "database")["reason"].endswith("WAL archiving on (nothing archived yet)")
        code, out = container.exec_run(["psql", "-h", "127.0.0.1", "-U", "sms", "-d", "sms", "-Atc",
                                        "CREATE TABLE t(x int); INSERT INTO t VALUES (1); "
                                        "SELECT pg_walfile_name(pg_switch_wal())"],
                                       environment={"PGPASSWORD": PASSWORD})
        assert code == 0, out
        segment = out.decode().split()[-1]
        deadline = time.monotonic() + 30
        while True:
            rc, result, output = run_module("health_check", {"database": database(container)})
            found = check(result, "database")
            if found["metrics"].get("archive_failing") or time.monotonic() > deadline:
                break
            time.sleep(1)
        grep_secrets(output)
        assert found["status"] == "critical", found  # nothing ever archived: stuck for good
        assert ("WAL archiving to the point-in-time repository fails (last failure " in found["reason"]
                and "segment %s; nothing archived since archiving was turned on)" % segment in found["reason"]), found
    finally:
        container.remove(force=True, v=True)


def test_mariadb_changes_not_shipped_are_named_until_the_archive_holds_them(docker_client, require_image, tmp_path):
    """MariaDB point-in-time recovery: archive_log.yml's schedule off (or failing), the changes a lost db host would
    take with it piled up while health.yml said "ok". A server writing its binary log, a user with the monitor
    role's privileges only (PROCESS, SLAVE MONITOR), an archive that does not hold the last change: a warning
    naming it; once archived (rollcall.ops.binlog), ok."""
    require_image("rollcall/mariadb:10.11")
    root = "health-root-password-not-in-output"
    container = docker_client.containers.run(
        "rollcall/mariadb:10.11", ["mariadbd", "--log-bin=mariadb-bin", "--binlog-format=ROW"], detach=True,
        name=name("binlog"), environment={"MARIADB_ROOT_PASSWORD": root, "MARIADB_DATABASE": "sms"})
    try:
        wait_healthy(container)

        def sql(query):
            code, out = container.exec_run(["mariadb", "--protocol=TCP", "-h", "127.0.0.1", "-u", "root", "sms",
                                            "-e", query], environment={"MYSQL_PWD": root})
            assert code == 0, out

        sql("CREATE USER mon@'%%' IDENTIFIED BY '%s'; GRANT PROCESS, SLAVE MONITOR ON *.* TO mon@'%%'; "
            "CREATE TABLE t (v INT); INSERT INTO t VALUES (1)" % PASSWORD)
        repo = tmp_path / "pitr"
        target = {"engine": "mysql", "container": container.name, "user": "mon", "password": PASSWORD,
                  "database": "sms", "binlog_repo": str(repo), "binlog_required": True}
        args = {"database": target, "thresholds": {"binlog_unshipped_minutes": [0, 60]}}
        rc, result, output = run_module("health_check", args)
        grep_secrets(output)
        found = check(result, "database")
        assert rc == 0 and found["status"] == "warning", found
        assert ("that the archive %s does not (nothing archived yet; 1 file(s) not archived): losing the database "
                "host now loses them" % repo) in found["reason"], found
        assert found["metrics"]["binlog_unshipped_s"] < 120

        rc, archived, _ = run_module("binlog", {"action": "archive", "container": container.name, "repo": str(repo),
                                                "login_password": root, "encryption_key": "ab" * 32})
        assert rc == 0 and archived["copied"], archived
        rc, result, _ = run_module("health_check", args)
        found = check(result, "database")
        assert found["status"] == "ok" and found["reason"].endswith(", binary log archived up to its last change")

        sql("INSERT INTO t VALUES (2)")
        found = check(run_module("health_check", args)[1], "database")
        assert found["status"] == "warning" and "the newest archived file mariadb-bin.000001" in found["reason"]
    finally:
        container.remove(force=True, v=True)
