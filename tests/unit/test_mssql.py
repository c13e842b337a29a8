"""SQL Server support without a server: the T-SQL we generate and the results we parse."""

import pytest

from ansible_collections.rollcall.ops.plugins.module_utils.engines import mssql
from ansible_collections.rollcall.ops.plugins.module_utils.engines.base import EngineError, Target


def test_quoting_follows_quotename_rules():
    assert mssql.quote_name("sms") == "[sms]"
    assert mssql.quote_name("we]ird; DROP DATABASE x--") == "[we]]ird; DROP DATABASE x--]"
    assert mssql.quote_string("C:\\bak\\it's.bak") == "N'C:\\bak\\it''s.bak'"
    with pytest.raises(EngineError):
        mssql.quote_name("x" * 129)
    with pytest.raises(EngineError):
        mssql.quote_string("nul\0")


def test_full_and_differential_backup_statements():
    assert mssql.backup_sql("sms", "/var/opt/mssql/backup/sms-full.bak") == (
        "BACKUP DATABASE [sms] TO DISK = N'/var/opt/mssql/backup/sms-full.bak' WITH CHECKSUM, INIT, FORMAT, "
        "STATS = 10;")
    assert mssql.backup_sql("sms", "D:\\b\\d.bak", kind="differential") == (
        "BACKUP DATABASE [sms] TO DISK = N'D:\\b\\d.bak' WITH DIFFERENTIAL, CHECKSUM, INIT, FORMAT, STATS = 10;")
    assert "COPY_ONLY" in mssql.backup_sql("sms", "x.bak", copy_only=True)
    with pytest.raises(EngineError, match="full or differential"):
        mssql.backup_sql("sms", "x.bak", kind="log")


def test_verify_and_header_statements():
    assert mssql.verifyonly_sql("/b/x.bak") == "RESTORE VERIFYONLY FROM DISK = N'/b/x.bak' WITH CHECKSUM;"
    assert mssql.headeronly_sql("/b/x.bak") == "RESTORE HEADERONLY FROM DISK = N'/b/x.bak';"
    assert mssql.filelistonly_sql("/b/x.bak") == "RESTORE FILELISTONLY FROM DISK = N'/b/x.bak';"


def test_restore_into_a_side_database_moves_every_file():
    filelist = [{"LogicalName": "sms", "PhysicalName": "/var/opt/mssql/data/sms.mdf", "Type": "D"},
                {"LogicalName": "sms_log", "PhysicalName": "/var/opt/mssql/data/sms_log.ldf", "Type": "L"}]
    moves = mssql.plan_moves(filelist, "sms__rc_scratch", "/var/opt/mssql/data")
    assert moves == [("sms", "/var/opt/mssql/data/sms__rc_scratch_sms.mdf"),
                     ("sms_log", "/var/opt/mssql/data/sms__rc_scratch_sms_log.ldf")]
    sql = mssql.restore_sql("sms__rc_scratch", "/b/x.bak", moves)
    assert sql == ("RESTORE DATABASE [sms__rc_scratch] FROM DISK = N'/b/x.bak' WITH CHECKSUM, "
                   "MOVE N'sms' TO N'/var/opt/mssql/data/sms__rc_scratch_sms.mdf', "
                   "MOVE N'sms_log' TO N'/var/opt/mssql/data/sms__rc_scratch_sms_log.ldf', RECOVERY;")
    assert mssql.restore_sql("sms", "/b/x.bak", [], replace=True, norecovery=True).endswith(
        "WITH CHECKSUM, REPLACE, NORECOVERY;")


def test_windows_paths_are_planned_with_windows_separators():
    moves = mssql.plan_moves([{"LogicalName": "Data File", "PhysicalName": "D:\\SQL\\sms.mdf", "Type": "D"}],
                             "sms__rc_scratch", "E:\\Restore")
    assert moves == [("Data File", "E:\\Restore\\sms__rc_scratch_Data_File.mdf")]


def header(kind, **extra):
    row = {"BackupType": kind, "DatabaseName": "sms", "FirstLSN": 100, "LastLSN": 200, "CheckpointLSN": 150,
           "DatabaseBackupLSN": 90, "DifferentialBaseLSN": None, "HasBackupChecksums": 1,
           "SoftwareVersionMajor": 16, "SoftwareVersionMinor": 0, "SoftwareVersionBuild": 4135}
    row.update(extra)
    return mssql.parse_header([row])


def test_header_parsing_and_the_differential_chain():
    full = header(1)
    assert full["type"] == "full" and full["checkpoint_lsn"] == "150" and full["server_version"] == "16.0.4135"
    assert full["copy_only"] is False and header(1, IsCopyOnly=1)["copy_only"] is True
    good = header(5, DifferentialBaseLSN=150, CheckpointLSN=300)
    assert mssql.chain_problem(full, good) is None
    broken = header(5, DifferentialBaseLSN=170)
    assert "not the full backup's checkpoint LSN 150" in mssql.chain_problem(full, broken)
    assert "without CHECKSUM" in mssql.chain_problem(full, header(5, DifferentialBaseLSN=150,
                                                                  HasBackupChecksums=0))
    assert "different databases" in mssql.chain_problem(full, header(5, DifferentialBaseLSN=150,
                                                                     DatabaseName="other"))
    assert "not a full one" in mssql.chain_problem(good, good)
    with pytest.raises(EngineError, match="not a SQL Server backup"):
        mssql.parse_header([])


def test_count_statement_quotes_both_parts():
    assert mssql.count_sql("dbo", "odd]name") == "SELECT COUNT_BIG(*) AS n FROM [dbo].[odd]]name];"


def test_server_paths_keep_the_servers_separator():
    assert mssql.server_join("/var/opt/mssql/backup", "x.bak") == "/var/opt/mssql/backup/x.bak"
    assert mssql.server_join("D:\\Backup", "x.bak") == "D:\\Backup\\x.bak"


def test_pymssql_errors_are_reduced_to_the_servers_words():
    refused = Exception((20009, b"DB-Lib error message 20009, severity 9:\nUnable to connect: TDS server is "
                                b"unavailable or does not exist (db)\nNet-Lib error during Connection refused (111)\n"
                                b"DB-Lib error message 20009, severity 9:\nUnable to connect: TDS server is "
                                b"unavailable or does not exist (db)\n"))
    assert mssql._first_line(refused) == ("Unable to connect: TDS server is unavailable or does not exist (db); "
                                          "Net-Lib error during Connection refused (111)")
    login = Exception(18456, b"Login failed for user 'sa'.DB-Lib error message 20018, severity 14:\n"
                             b"General SQL Server error: Check messages from the SQL Server\n")
    assert mssql._first_line(login) == "Login failed for user 'sa'."
    assert mssql._first_line(Exception()) == "Exception"


def test_activity_statements_and_parsing():
    assert "sys.dm_exec_sessions WHERE is_user_process = 1" in mssql.CONNECTIONS_SQL
    assert "N'user connections'" in mssql.CONNECTIONS_SQL and "@@MAX_CONNECTIONS" in mssql.CONNECTIONS_SQL
    assert mssql.long_requests_sql(60) == (
        "SELECT TOP (20) r.session_id AS pid, DATEDIFF(SECOND, r.start_time, GETDATE()) AS duration_s, "
        "LEFT(t.text, 200) AS query FROM sys.dm_exec_requests r JOIN sys.dm_exec_sessions s ON s.session_id = "
        "r.session_id OUTER APPLY sys.dm_exec_sql_text(r.sql_handle) t WHERE s.is_user_process = 1 AND "
        "r.session_id <> @@SPID AND r.start_time <= DATEADD(SECOND, -60, GETDATE()) ORDER BY r.start_time;")
    with pytest.raises(EngineError):
        mssql.long_requests_sql(-5)
    with pytest.raises(ValueError):
        mssql.long_requests_sql("60; DROP TABLE x")
    found = mssql.parse_activity([{"active_connections": 12, "max_connections": 32767}],
                                 [{"pid": 55, "duration_s": 301, "query": "WAITFOR DELAY\r\n'00:10:00'"},
                                  {"pid": 56, "duration_s": 70, "query": None}])
    assert found == {"active_connections": 12, "max_connections": 32767, "long_queries": [
        {"pid": 55, "duration_s": 301, "query": "WAITFOR DELAY '00:10:00'"},
        {"pid": 56, "duration_s": 70, "query": ""}]}


def test_activity_runs_both_queries():
    engine = mssql.MSSQL(None, Target("mssql", "sms", user="sa", password="x"))
    seen = []

    def query(sql, database="master", params=None):
        seen.append(sql)
        return [{"active_connections": 3, "max_connections": 100}] if len(seen) == 1 else []

    engine.query = query
    assert engine.activity(30) == {"active_connections": 3, "max_connections": 100, "long_queries": []}
    assert seen[0] == mssql.CONNECTIONS_SQL and "-30," in seen[1]
