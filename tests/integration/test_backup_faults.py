"""Faults in the middle of things: the database killed during a backup, SIGTERM during a restore."""

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid

import pytest
from conftest import wait_healthy
from modules import ROOT, run_module

PASSWORD = "faults-password"
ROWS = 1_500_000


@pytest.fixture
def big_pg(docker_client, require_image):
    """A PostgreSQL with enough data that dumping and restoring take a few seconds."""
    require_image("rollcall/postgres:15")
    container = docker_client.containers.run("rollcall/postgres:15", detach=True,
                                             name="it-faults-%s" % uuid.uuid4().hex[:8],
                                             environment={"POSTGRES_USER": "sms", "POSTGRES_PASSWORD": PASSWORD,
                                                          "POSTGRES_DB": "sms"})
    try:
        wait_healthy(container)
        sql = ("CREATE TABLE filler (id bigint PRIMARY KEY, v text); INSERT INTO filler SELECT g, md5(g::text) || "
               "md5((g * 7)::text) FROM generate_series(1, %d) g;" % ROWS)
        result = container.exec_run(["psql", "-h", "127.0.0.1", "-U", "sms", "-d", "sms", "-qc", sql],
                                    environment={"PGPASSWORD": PASSWORD})
        assert result.exit_code == 0, result.output
        yield container
    finally:
        container.remove(force=True, v=True)


def args(container, directory, **extra):
    return dict({"engine": "postgresql", "container": container.name, "database": "sms", "user": "sms",
                 "password": PASSWORD, "directory": str(directory)}, **extra)


def test_database_killed_mid_backup_leaves_nothing(big_pg, tmp_path):
    directory = tmp_path / "b"
    directory.mkdir()
    older = "postgresql-sms-20200101T000000Z-full"
    (directory / (older + ".dump")).write_bytes(b"older backup")
    (directory / (older + ".manifest.json")).write_text("{}")

    def kill_when_dumping():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if any(name.endswith(".tmp") for name in os.listdir(directory)):
                time.sleep(0.3)
                big_pg.kill()
                return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_when_dumping)
    killer.start()
    rc, result, _ = run_module("db_backup", args(big_pg, directory))
    killer.join()
    assert rc != 0
    assert "backup failed" in result["msg"]
    assert sorted(os.listdir(directory)) == [older + ".dump", older + ".manifest.json"]
    assert (directory / (older + ".dump")).read_bytes() == b"older backup"


def test_sigterm_mid_restore_leaves_the_database_as_it_was(big_pg, tmp_path):
    directory = tmp_path / "b"
    directory.mkdir()
    rc, made, _ = run_module("db_backup", args(big_pg, directory))
    assert rc == 0, made.get("msg")
    marker = "INSERT INTO filler VALUES (0, 'written after the backup')"
    big_pg.exec_run(["psql", "-h", "127.0.0.1", "-U", "sms", "-d", "sms", "-qc", marker],
                    environment={"PGPASSWORD": PASSWORD})
    script = textwrap.dedent("""
        import sys
        sys.path.insert(0, %r)
        from ansible_collections.rollcall.ops.plugins.module_utils import backup
        from ansible_collections.rollcall.ops.plugins.module_utils.engines.base import Target
        engine = backup.open_engine(Target("postgresql", "sms", user="sms", password=%r, container=%r))
        try:
            backup.restore_backup(engine, %r, %r, safety_backup=False)
        except backup.Interrupted as exc:
            print("INTERRUPTED:", exc)
            sys.exit(3)
        print("FINISHED")
    """) % (os.path.join(ROOT, ".collections"), PASSWORD, big_pg.name, str(directory), made["name"])
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)

    def databases():
        result = big_pg.exec_run(["psql", "-h", "127.0.0.1", "-U", "sms", "-d", "postgres", "-qAtc",
                                  "SELECT string_agg(datname, ',') FROM pg_database"],
                                 environment={"PGPASSWORD": PASSWORD})
        return result.output.decode()

    deadline = time.monotonic() + 60
    while "sms__rc_scratch" not in databases():
        assert proc.poll() is None and time.monotonic() < deadline, "the restore never reached its scratch database"
        time.sleep(0.05)
    time.sleep(0.5)  # pg_restore is loading the scratch database now
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 3, output
    assert "interrupted by SIGTERM" in output
    assert "sms__rc_scratch" not in databases()
    check = big_pg.exec_run(["psql", "-h", "127.0.0.1", "-U", "sms", "-d", "sms", "-qAtc",
                             "SELECT count(*), count(*) FILTER (WHERE id = 0) FROM filler"],
                            environment={"PGPASSWORD": PASSWORD})
    assert check.output.decode().strip() == "%d|1" % (ROWS + 1), "the live database is untouched"
