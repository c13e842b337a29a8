"""Issue 17: SQL Server through the playbooks.

Always (no server needed, seconds): ``ansible-playbook ... --check`` against an inventory whose db host has a SQL
Server prints the plan for SQL Server - the T-SQL, the chain, retention, the three restore stages - and not a
connection error; preflight refuses what SQL Server cannot do before anything runs.

Gated (someone with a server; docs/sqlserver.md): with ROLLCALL_MSSQL_HOST, _PORT, _USER, _PASSWORD, _BACKUP_DIR
(and _LOCAL_DIR, the same directory as seen from here) set, the PLAYBOOKS run against the real server: backup.yml
full, then differential, verify_backup.yml (a scratch restore with DBCC CHECKDB), restore.yml (safety backup, swap,
validation) and health.yml. Skipped, visibly (-rs), otherwise:

    ROLLCALL_MSSQL_HOST=... ROLLCALL_MSSQL_PASSWORD=... ROLLCALL_MSSQL_BACKUP_DIR=... ROLLCALL_IT_SWEEP=0 \\
    .venv/bin/pytest -rs tests/integration/test_mssql_server.py tests/integration/test_mssql_playbooks.py
"""

import json
import os
import sys
import time
import uuid

import pytest
import yaml
from test_deploy import failures, playbook

HOST = os.environ.get("ROLLCALL_MSSQL_HOST")
BACKUP_DIR = os.environ.get("ROLLCALL_MSSQL_BACKUP_DIR", "/var/opt/mssql/backup")
LOCAL_DIR = os.environ.get("ROLLCALL_MSSQL_LOCAL_DIR", BACKUP_DIR)
KEY = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"


def mssql_inventory(tmp_path, app_host=False, **overrides):
    """A db host reached by the local connection whose database is a SQL Server (a documentation address when
    there is none: nothing may connect in check mode)."""
    values = {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
        "rollcall_project": "rc-mssql", "rollcall_db_engine": "mssql", "rollcall_db_name": "sms",
        "rollcall_mssql_host": "192.0.2.1", "rollcall_mssql_user": "rollcall",
        "rollcall_mssql_password": "never-used-in-check-mode",
        "rollcall_mssql_backup_dir": "D:\\Backup\\Rollcall", "rollcall_mssql_local_dir": str(tmp_path / "share"),
        "rollcall_backup_dir": str(tmp_path / "backups"), "rollcall_state_dir": str(tmp_path / "state"),
        "rollcall_report_dir": str(tmp_path / "reports"),
    }
    values.update(overrides)
    inventory = {"all": {"children": {"app": {"hosts": {"localhost": None} if app_host else {}},
                                      "db": {"hosts": {"localhost": None}}}, "vars": values}}
    path = tmp_path / "hosts.yml"
    path.write_text(yaml.safe_dump(inventory))
    return str(path)


def debug_lines(report, task_suffix):
    """The msg lines of the debug task whose name ends with ``task_suffix``."""
    for play in report["plays"]:
        for task in play["tasks"]:
            if task["task"]["name"].endswith(task_suffix):
                for result in task["hosts"].values():
                    msg = result.get("msg")
                    return msg if isinstance(msg, list) else [msg]
    return None


# ------------------------------------------------------------------------------------ always: the plan
def test_check_mode_prints_the_plan_without_a_server(tmp_path):
    """The acceptance of issue 17: backup.yml --check prints the plan for SQL Server, not a connection error."""
    inventory = mssql_inventory(tmp_path)
    proc, report = playbook(inventory, "backup.yml", "--check")
    assert proc.returncode == 0 and not failures(report), failures(report)
    plan = debug_lines(report, "Show the plan for SQL Server")
    assert plan[0] == "SQL Server backup (check mode: nothing is done):"
    assert ("BACKUP DATABASE [sms] TO DISK = N'D:\\Backup\\Rollcall\\rollcall-backup-<id>.bak' WITH CHECKSUM, INIT, "
            "FORMAT, STATS = 10;") in plan
    text = "\n".join(plan)
    assert "connect to SQL Server at 192.0.2.1:1433 as rollcall with pymssql" in text
    assert "DBCC CHECKDB ([sms__rc_scratch])" in text and "differential builds on is always kept" in text
    assert "no SQL Server Agent" in text and "never-used-in-check-mode" not in proc.stdout
    assert not os.path.exists(tmp_path / "backups") and not os.path.exists(tmp_path / "share"), "nothing was made"

    # A differential with no full backup to build on starts the chain with a full one, and says so.
    proc, report = playbook(inventory, "backup.yml", "--check", "-e", "rollcall_backup_type=differential")
    assert proc.returncode == 0 and not failures(report), failures(report)
    plan = debug_lines(report, "Show the plan for SQL Server")
    assert "full backup of sms: a differential was asked for, but there is no full backup" in "\n".join(plan)

    # The restore's three stages, the COPY_ONLY safety backup, the swap and the validation.
    proc, report = playbook(inventory, "restore.yml", "--check", "-e", "confirm=sms")
    assert proc.returncode == 0 and not failures(report), failures(report)
    text = "\n".join(debug_lines(report, "Show the plan for SQL Server"))
    for words in ("stage 1, verify the newest backup of sms", "stage 2, test restore into sms__rc_scratch",
                  "WITH COPY_ONLY, CHECKSUM", "SET SINGLE_USER WITH ROLLBACK IMMEDIATE",
                  "DBCC CHECKCONSTRAINTS WITH ALL_CONSTRAINTS"):
        assert words in text, text


def test_preflight_refuses_what_sql_server_cannot_do_before_anything_runs(tmp_path):
    inventory = mssql_inventory(tmp_path, app_host=True, rollcall_mssql_backup_dir="")
    proc, report = playbook(inventory, "rotate_db_passwords.yml", "--check", "-e", "rollcall_backup_type=log")
    assert proc.returncode != 0
    (msg,) = [m for _task, m in failures(report)]
    assert msg.startswith("Nothing was changed on localhost: ")
    for words in ("rollcall_backup_type 'log' must be full or differential",
                  "does not run rotate_db_passwords.yml on it", "needs rollcall_mssql_backup_dir"):
        assert words in msg, msg


# ------------------------------------------------------------------------------------ gated: a real server
needs_server = pytest.mark.skipif(not HOST, reason="SQL Server playbook suite: set ROLLCALL_MSSQL_HOST, _PORT, _USER, "
                                                   "_PASSWORD, _BACKUP_DIR (and _LOCAL_DIR) to run the playbooks "
                                                   "against a real server (docs/sqlserver.md)")


@pytest.fixture
def server_database():
    from ansible_collections.rollcall.ops.plugins.module_utils.engines import mssql
    from ansible_collections.rollcall.ops.plugins.module_utils.engines.base import Target

    target = Target("mssql", "master", host=HOST, port=int(os.environ.get("ROLLCALL_MSSQL_PORT", "1433")),
                    user=os.environ.get("ROLLCALL_MSSQL_USER", "sa"), password=os.environ["ROLLCALL_MSSQL_PASSWORD"])
    engine = mssql.MSSQL(None, target)
    name = "rc_it_%s" % uuid.uuid4().hex[:8]
    engine.query("CREATE DATABASE %s;" % mssql.quote_name(name))
    engine.query("CREATE TABLE dbo.classes (id int PRIMARY KEY, name nvarchar(50)); "
                 "CREATE TABLE dbo.students (id int PRIMARY KEY, name nvarchar(50), "
                 "class_id int REFERENCES dbo.classes (id)); "
                 "INSERT INTO dbo.classes VALUES (1, N'7B'); "
                 "INSERT INTO dbo.students VALUES (1, N'Zoë', 1), (2, N'Ünal', 1);", name)
    yield engine, name
    for leftover in (name + "__rc_scratch", name + "__rc_old", name):
        engine.drop_database(leftover)


@needs_server
def test_the_playbooks_against_a_real_server(tmp_path, server_database):
    engine, name = server_database
    if not os.path.isdir(LOCAL_DIR):
        pytest.skip("ROLLCALL_MSSQL_LOCAL_DIR %s is not a directory here: the playbooks read the server's backup "
                    "files through it" % LOCAL_DIR)
    inventory = mssql_inventory(
        tmp_path, rollcall_db_name=name, rollcall_mssql_host=HOST,
        rollcall_mssql_port=int(os.environ.get("ROLLCALL_MSSQL_PORT", "1433")),
        rollcall_mssql_user=os.environ.get("ROLLCALL_MSSQL_USER", "sa"),
        rollcall_mssql_password=os.environ["ROLLCALL_MSSQL_PASSWORD"], rollcall_mssql_backup_dir=BACKUP_DIR,
        rollcall_mssql_local_dir=LOCAL_DIR, rollcall_backup_key=KEY, rollcall_backup_compression="gzip")
    backups = tmp_path / "backups"

    def run(name_, *extra):
        proc, report = playbook(inventory, name_, *extra)
        assert proc.returncode == 0 and not failures(report), (name_, failures(report), proc.stderr[-2000:])
        return report

    def manifests():
        return sorted((json.loads(p.read_text()) for p in backups.glob("*.manifest.json")), key=lambda m: m["name"])

    run("backup.yml")
    (full,) = [m for m in manifests() if m["type"] == "full"]
    assert full["mssql"]["type"] == "full" and not full["mssql"]["copy_only"]
    time.sleep(1.1)  # backup names have one-second resolution
    engine.query("INSERT INTO dbo.students VALUES (3, N'Ola', 1);", name)
    run("backup.yml", "-e", "rollcall_backup_type=differential", "-e", "rollcall_backup_verify_level=native")
    (diff,) = [m for m in manifests() if m["type"] == "differential"]
    assert diff["parent"] == full["name"] and diff["row_counts"]["dbo.students"] == 3

    run("verify_backup.yml")  # the differential on top of its full backup, restored with DBCC CHECKDB
    assert not engine.database_exists(name + "__rc_scratch")

    engine.query("DELETE FROM dbo.students;", name)
    report = run("restore.yml", "-e", "confirm=%s" % name)
    assert engine.row_counts(name)["dbo.students"] == 3
    said = debug_lines(report, "Say what was restored")
    assert said[0].startswith("Restored %s; safety backup mssql-%s-" % (diff["name"], name)), said

    # A differential after the restore still builds on the same full backup (the safety backup was COPY_ONLY).
    time.sleep(1.1)
    run("backup.yml", "-e", "rollcall_backup_type=differential", "-e", "rollcall_backup_verify_level=checksum")
    assert {m["parent"] for m in manifests() if m["type"] == "differential"} == {full["name"]}

    proc, report = playbook(inventory, "health.yml")
    checks = {c["name"]: c for play in report["plays"] for task in play["tasks"]
              for result in task["hosts"].values() for c in result.get("checks", [])}
    sqlserver = checks["sqlserver %s" % name]
    assert sqlserver["status"] in ("ok", "warning") and "ONLINE" in sqlserver["reason"], sqlserver
    assert "msdb newest backups: full" in sqlserver["reason"]
    assert checks["database mssql %s" % name]["status"] != "critical"
