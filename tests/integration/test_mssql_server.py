"""SQL Server against a real server. Runs only when ROLLCALL_MSSQL_HOST is set (none can run on our machines):

    ROLLCALL_MSSQL_HOST=db.example ROLLCALL_MSSQL_PORT=1433 ROLLCALL_MSSQL_USER=sa ROLLCALL_MSSQL_PASSWORD=...
    ROLLCALL_MSSQL_BACKUP_DIR=/var/opt/mssql/backup   (a directory the server can write)
    .venv/bin/pytest tests/integration/test_mssql_server.py
"""

import os
import uuid

import pytest

from ansible_collections.rollcall.ops.plugins.module_utils.engines import mssql
from ansible_collections.rollcall.ops.plugins.module_utils.engines.base import Target

HOST = os.environ.get("ROLLCALL_MSSQL_HOST")
pytestmark = pytest.mark.skipif(not HOST, reason="SQL Server integration suite: set ROLLCALL_MSSQL_HOST, _PORT, "
                                                  "_USER, _PASSWORD and _BACKUP_DIR to run it against a real server")


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
