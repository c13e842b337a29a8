"""SQL Server against a real server. Runs only when ROLLCALL_MSSQL_HOST is set (none can run on our machines):

    ROLLCALL_MSSQL_HOST=db.example ROLLCALL_MSSQL_PORT=1433 ROLLCALL_MSSQL_USER=sa ROLLCALL_MSSQL_PASSWORD=...
    ROLLCALL_MSSQL_BACKUP_DIR=/var/opt/mssql/backup   (a directory the server can write)
    ROLLCALL_MSSQL_LOCAL_DIR=/mnt/sql-backup          (the same directory as seen from here; default: _BACKUP_DIR)
    .venv/bin/pytest -rs tests/integration/test_mssql_server.py tests/integration/test_mssql_playbooks.py

The end-to-end test drives the backup flows the modules use (module_utils/backup.py): a full backup, a
differential on top of it, verification at native and restore level, and a restore over the live database.
tests/integration/test_mssql_playbooks.py runs the playbooks themselves against the same server (docs/sqlserver.md).
"""

import os
import time
import uuid

import pytest

from ansible_collections.rollcall.ops.plugins.module_utils import backup
from ansible_collections.rollcall.ops.plugins.module_utils.engines import mssql
from ansible_collections.rollcall.ops.plugins.module_utils.engines.base import Target

HOST = os.environ.get("ROLLCALL_MSSQL_HOST")
BACKUP_DIR = os.environ.get("ROLLCALL_MSSQL_BACKUP_DIR", "/var/opt/mssql/backup")
LOCAL_DIR = os.environ.get("ROLLCALL_MSSQL_LOCAL_DIR", BACKUP_DIR)
KEY = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
pytestmark = pytest.mark.skipif(not HOST, reason="SQL Server integration suite: set ROLLCALL_MSSQL_HOST, _PORT, "
                                                  "_USER, _PASSWORD, _BACKUP_DIR (and _LOCAL_DIR) to run it against a "
                                                  "real server")


@pytest.fixture(scope="module")
def engine():
    target = Target("mssql", "master", host=HOST, port=int(os.environ.get("ROLLCALL_MSSQL_PORT", "1433")),
                    user=os.environ.get("ROLLCALL_MSSQL_USER", "sa"), password=os.environ["ROLLCALL_MSSQL_PASSWORD"])
    return mssql.MSSQL(None, target)


@pytest.fixture(scope="module")
def database(engine):
    name = "rc_it_%s" % uuid.uuid4().hex[:8]
    engine.query("CREATE DATABASE %s;" % mssql.quote_name(name))
    engine.query("CREATE TABLE dbo.students (id int PRIMARY KEY, name nvarchar(50)); "
                 "INSERT INTO dbo.students VALUES (1, N'Zoë'), (2, N'Ünal');", name)
    yield name
    engine.drop_database(name)


def test_full_then_differential_chain_verifies(engine, database):
    directory = os.environ.get("ROLLCALL_MSSQL_BACKUP_DIR", "/var/opt/mssql/backup")
    full_path = "%s/%s-full.bak" % (directory, database)
    diff_path = "%s/%s-diff.bak" % (directory, database)
    engine.query(mssql.backup_sql(database, full_path))
    engine.query("INSERT INTO dbo.students VALUES (3, N'Ola');", database)
    engine.query(mssql.backup_sql(database, diff_path, kind="differential"))
    assert engine.native_verify(full_path)[0] == "passed"
    assert engine.native_verify(diff_path)[0] == "passed"
    full = mssql.parse_header(engine.query(mssql.headeronly_sql(full_path)))
    diff = mssql.parse_header(engine.query(mssql.headeronly_sql(diff_path)))
    assert mssql.chain_problem(full, diff) is None
    assert engine.row_counts(database) == {"dbo.students": 3}


def test_restore_into_a_side_database_and_checkdb(engine, database):
    directory = os.environ.get("ROLLCALL_MSSQL_BACKUP_DIR", "/var/opt/mssql/backup")
    path = "%s/%s-side.bak" % (directory, database)
    engine.query(mssql.backup_sql(database, path, copy_only=True))
    scratch = database + "__rc_scratch"
    files = engine.query(mssql.filelistonly_sql(path))
    data_dir = os.path.dirname(files[0]["PhysicalName"])
    try:
        engine.query(mssql.restore_sql(scratch, path, mssql.plan_moves(files, scratch, data_dir)))
        assert engine.row_counts(scratch) == engine.row_counts(database)
        assert engine.integrity_check(scratch)[0] == "passed"
    finally:
        engine.drop_database(scratch)


def test_wrong_password_is_a_clear_error():
    target = Target("mssql", "master", host=HOST, port=int(os.environ.get("ROLLCALL_MSSQL_PORT", "1433")),
                    user=os.environ.get("ROLLCALL_MSSQL_USER", "sa"), password="wrong-password")
    with pytest.raises(mssql.EngineError, match="cannot connect"):
        mssql.MSSQL(None, target).server_version()


def test_backup_flows_full_differential_verify_and_restore(engine, database, tmp_path):
    if not os.path.isdir(LOCAL_DIR):
        pytest.skip("ROLLCALL_MSSQL_LOCAL_DIR %s is not a directory here: the flows stream backup files through "
                    "it" % LOCAL_DIR)
    params = {"engine": "mssql", "database": database, "host": HOST,
              "port": int(os.environ.get("ROLLCALL_MSSQL_PORT", "1433")),
              "user": os.environ.get("ROLLCALL_MSSQL_USER", "sa"), "password": os.environ["ROLLCALL_MSSQL_PASSWORD"],
              "server_directory": BACKUP_DIR, "local_directory": LOCAL_DIR}
    flows = backup.open_engine(backup.target_from_params(params))
    directory = str(tmp_path)
    key = bytes.fromhex(KEY)
    before = set(os.listdir(LOCAL_DIR))

    full = backup.take_backup(flows, directory, "full", compression="gzip", key=key)
    assert full["mssql"]["type"] == "full" and not full["mssql"]["copy_only"]
    time.sleep(1.1)  # backup names have one-second resolution
    engine.query("INSERT INTO dbo.students VALUES (4, N'Kwame'), (5, N'Ilse');", database)
    diff = backup.take_backup(flows, directory, "differential", key=key)
    assert diff["parent"] == full["name"]
    assert diff["mssql"]["differential_base_lsn"] == full["mssql"]["checkpoint_lsn"]
    assert diff["row_counts"]["dbo.students"] == full["row_counts"]["dbo.students"] + 2

    for level in ("native", "restore"):
        result = backup.verify_backup(directory, diff["name"], level, key=key, engine=flows)
        assert result["status"] == "passed", result
    assert not flows.database_exists(database + "__rc_scratch")

    time.sleep(1.1)
    engine.query("DELETE FROM dbo.students;", database)
    report = backup.restore_backup(flows, directory, diff["name"], key=key, safety_key=key)
    assert engine.row_counts(database) == diff["row_counts"]
    assert report["old_kept_as"] is None and not flows.database_exists(database + "__rc_old")
    safety = [m for m in backup.describe(directory) if m["name"] == report["safety_backup"]]
    assert safety and safety[0]["type"] == "full"

    # The safety backup was COPY_ONLY: a new differential still builds on the same full backup.
    time.sleep(1.1)
    again = backup.take_backup(flows, directory, "differential", key=key)
    assert again["parent"] == full["name"]
    assert set(os.listdir(LOCAL_DIR)) == before, "every temporary .bak was deleted"


def test_role_matrix_applies_once_and_then_changes_nothing(engine, database):
    """issue 12: the matrix on a real server; the second run plans nothing, and the roles can do what they should."""
    from ansible_collections.rollcall.ops.plugins.module_utils.engines import mssql_roles

    user = "rc_it_teacher_%s" % uuid.uuid4().hex[:6]
    engine.query("CREATE USER %s WITHOUT LOGIN;" % mssql.quote_name(user), database)
    desired = mssql_roles.desired_matrix(members={"teachers": [user]}, absent_roles=["rc_it_gone"])
    engine.query("CREATE ROLE [rc_it_gone];", database)
    side = mssql.MSSQL(None, Target("mssql", database, host=engine.target.host, port=engine.target.port,
                                    user=engine.target.user, password=engine.target.password))
    first = mssql_roles.manage(side, desired)
    assert first["changed"] is True and "DROP ROLE [rc_it_gone];" in first["statements"]
    second = mssql_roles.manage(side, desired)
    assert second["changed"] is False and second["statements"] == [], second["statements"]
    assert second["diff"]["before"] == second["diff"]["after"]
    # A teacher reads through the teaching schema's view (ownership chain) and not the table itself.
    engine.query("EXEC(N'CREATE VIEW teaching.pupils AS SELECT id, name FROM dbo.students');", database)
    as_teacher = "EXECUTE AS USER = %s; %%s; REVERT;" % mssql.quote_string(user)
    assert engine.query(as_teacher % "SELECT COUNT(*) AS n FROM teaching.pupils", database)[0]["n"] >= 1
    with pytest.raises(mssql.EngineError, match="SELECT permission was denied"):
        engine.query(as_teacher % "SELECT COUNT(*) AS n FROM dbo.students", database)
