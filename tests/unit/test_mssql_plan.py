"""Issue 17: SQL Server through the playbooks, without a server. The plans (mssql_plan.py), the health facts and
their judgement, and the post-restore validation, with the T-SQL they send through a mocked pymssql cursor."""

import pytest

from ansible_collections.rollcall.ops.plugins.module_utils import health, mssql_plan
from ansible_collections.rollcall.ops.plugins.module_utils.engines import mssql
from ansible_collections.rollcall.ops.plugins.module_utils.engines.base import Target

SETTINGS = {"host": "sql01.school.example", "port": 1433, "user": "rollcall", "password": "pw-never-shown",
            "database": "sms", "server_directory": "D:\\Backup\\Rollcall", "local_directory": "/mnt/sql01-backup",
            "directory": "/var/backups/rollcall"}
KEEP = {"last": 7, "daily": 7, "weekly": 4, "monthly": 6}
T = health.merge_thresholds()


# ------------------------------------------------------------------------------------------------ plans
def test_settings_that_cannot_work_are_named_by_their_inventory_variable():
    assert mssql_plan.problems(SETTINGS) == []
    found = mssql_plan.problems(dict(SETTINGS, host="", server_directory=None, password="", database="a]" * 70))
    assert [f.split(" ", 1)[0] for f in found] == ["rollcall_mssql_host", "rollcall_mssql_backup_dir",
                                                   "rollcall_mssql_user", "rollcall_db_name"]
    with pytest.raises(mssql_plan.PlanError, match="^Nothing was changed: rollcall_mssql_backup_dir .*sqlserver.md"):
        mssql_plan.plan("backup", dict(SETTINGS, server_directory=""))
    with pytest.raises(mssql_plan.PlanError, match="action must be"):
        mssql_plan.plan("deploy", SETTINGS)


@pytest.mark.parametrize("requested, parent, kind, words", [
    ("full", None, "full", "base of the differentials"),
    ("full", "mssql-sms-20261201T020000Z-full", "full", "base of the differentials"),
    ("differential", "mssql-sms-20261201T020000Z-full", "differential", "since the full backup mssql-sms-2026"),
    ("differential", None, "full", "no full backup to build it on"),
])
def test_backup_type_follows_the_cadence_and_starts_a_chain_when_there_is_none(requested, parent, kind, words):
    got, reason = mssql_plan.backup_type(requested, parent)
    assert got == kind and words in reason
    with pytest.raises(mssql_plan.PlanError, match="full or differential"):
        mssql_plan.backup_type("log", None)


def test_backup_plan_has_the_t_sql_the_module_sends_and_no_compression_asked_of_the_server():
    steps, facts = mssql_plan.plan("backup", SETTINGS, type="differential", parent="mssql-sms-X-full",
                                   verify_level="restore", keep=KEEP, compression="gzip", encrypted=True)
    assert facts == {"type": "differential", "reason": "the changes since the full backup mssql-sms-X-full "
                     "(restored on top of it)", "parent": "mssql-sms-X-full"}
    text = "\n".join(steps)
    assert ("BACKUP DATABASE [sms] TO DISK = N'D:\\Backup\\Rollcall\\rollcall-backup-<id>.bak' WITH DIFFERENTIAL, "
            "CHECKSUM, INIT, FORMAT, STATS = 10;") in steps
    assert "RESTORE VERIFYONLY FROM DISK = N'D:\\Backup\\Rollcall\\rollcall-verify-<id>.bak' WITH CHECKSUM;" in text
    assert "DBCC CHECKDB ([sms__rc_scratch]) WITH NO_INFOMSGS" in text
    assert "read here as /mnt/sql01-backup (a share" in text and "gzip, encrypted and signed" in text
    assert "keep the last 7, 7 daily, 4 weekly, 6 monthly" in text and "differential builds on is always kept" in text
    assert "COMPRESSION" not in " ".join(s for s in steps if s.startswith("BACKUP"))
    assert "no SQL Server Agent" in steps[-1] and "10 GB" in steps[-1]
    assert "pw-never-shown" not in text


def test_backup_plan_when_the_db_host_is_the_server_itself():
    steps, facts = mssql_plan.plan("backup", dict(SETTINGS, server_directory="/var/opt/mssql/backup",
                                                  local_directory=None), keep=KEEP, verify_level="checksum")
    assert facts["type"] == "full" and facts["parent"] is None
    assert "WITH CHECKSUM, INIT, FORMAT, STATS = 10;" in steps[2]
    assert "/var/opt/mssql/backup/rollcall-backup" in steps[2]
    assert "this host's own directory (the db host is the server)" in steps[4]
    assert not any("VERIFYONLY" in s or "CHECKDB" in s for s in steps), "checksum level reads no server"


@pytest.mark.parametrize("level, verifyonly, checkdb", [("checksum", False, False), ("native", True, False),
                                                        ("restore", True, True)])
def test_verify_plan_per_level(level, verifyonly, checkdb):
    steps, _ = mssql_plan.plan("verify", SETTINGS, verify_level=level, name="mssql-sms-X-differential")
    text = "\n".join(steps)
    assert "backup mssql-sms-X-differential" in text
    assert ("RESTORE VERIFYONLY" in text) is verifyonly and ("DBCC CHECKDB" in text) is checkdb
    with pytest.raises(mssql_plan.PlanError, match="verify_level"):
        mssql_plan.verify_steps(SETTINGS, "quick", "it")


def test_restore_plan_has_three_stages_the_copy_only_safety_backup_swap_and_validation():
    steps, _ = mssql_plan.plan("restore", SETTINGS)
    text = "\n".join(steps)
    assert [s.split(",")[0] for s in steps if s.startswith("stage")] == ["stage 1", "stage 2", "stage 3"]
    assert "WITH COPY_ONLY, CHECKSUM, INIT, FORMAT, STATS = 10;" in text
    assert "SET SINGLE_USER WITH ROLLBACK IMMEDIATE" in text and "sms__rc_old" in text
    assert "the newest backup of sms in /var/backups/rollcall" in text
    assert "DBCC CHECKCONSTRAINTS WITH ALL_CONSTRAINTS" in text and "without its login" in text
    assert "grants and role memberships" in steps[1]


def test_health_plan():
    steps, facts = mssql_plan.plan("health", SETTINGS)
    assert facts == {} and "log space" in steps[1] and "msdb" in steps[2] and "10 GB" in steps[3]


# ------------------------------------------------------------------------------------------------ health facts
def history(*rows):
    return [{"type": t, "is_copy_only": c, "age_s": a, "device": d} for t, c, a, d in rows]


SERVER = [{"edition": "Express Edition (64-bit)", "engine_edition": 4, "version": "16.0.4135.4"}]
STATE = [{"name": "sms", "state_desc": "ONLINE", "user_access_desc": "MULTI_USER", "is_read_only": False,
          "recovery_model_desc": "SIMPLE"}]


def test_our_backups_are_told_from_others_by_directory_and_name():
    assert mssql.is_ours("D:\\Backup\\Rollcall\\rollcall-backup-ab.bak", "D:\\Backup\\Rollcall\\")
    assert mssql.is_ours("/var/opt/mssql/backup/rollcall-backup-ab.bak", "/var/opt/mssql/backup")
    assert mssql.is_ours("/x/rollcall-backup-ab.bak", None)
    assert not mssql.is_ours("D:\\Other\\rollcall-backup-ab.bak", "D:\\Backup\\Rollcall")
    assert not mssql.is_ours("D:\\Backup\\Rollcall\\sms_full.bak", "D:\\Backup\\Rollcall")
    assert not mssql.is_ours(None, "D:\\Backup")


def test_server_health_facts_from_the_rows():
    facts = mssql.parse_server_health(
        SERVER, STATE, [{"data_bytes": 9 * 1024 ** 3}], [{"log_bytes": 1048576, "log_used_percent": 42.456}],
        [{"pid": 61, "blocked_by": 55, "wait_s": 30, "wait_type": "LCK_M_X", "database_name": "sms",
          "query": "UPDATE dbo.students SET name = @p1"}],
        history(("I", False, 3600, "D:\\Backup\\Rollcall\\rollcall-backup-2.bak"),
                ("D", True, 7200, "D:\\Backup\\Rollcall\\rollcall-backup-safety.bak"),
                ("D", False, 9000, "D:\\Backup\\Rollcall\\rollcall-backup-1.bak"),
                ("D", False, 99000, "D:\\Manual\\sms.bak")),
        "D:\\Backup\\Rollcall")
    assert facts["express"] and facts["state"] == "ONLINE" and facts["recovery_model"] == "SIMPLE"
    assert facts["data_bytes"] == 9 * 1024 ** 3 and facts["log_used_percent"] == 42.5
    assert facts["blocked"] == [{"pid": 61, "blocked_by": 55, "wait_s": 30, "wait_type": "LCK_M_X", "database": "sms",
                                 "query": "UPDATE dbo.students SET name = @p1"}]
    assert facts["newest"]["differential"]["age_s"] == 3600 and facts["newest"]["full"]["copy_only"]
    assert facts["outside_full"] is None, "the manual full backup is older than Rollcall's newest full"


def test_a_full_backup_outside_rollcall_newer_than_ours_is_noticed():
    facts = mssql.parse_server_health(SERVER, STATE, [], [], [], history(
        ("D", False, 600, "D:\\Manual\\sms.bak"), ("D", False, 9000, "D:\\Backup\\Rollcall\\rollcall-backup-1.bak")),
        "D:\\Backup\\Rollcall")
    assert facts["outside_full"]["device"] == "D:\\Manual\\sms.bak"
    check = health.evaluate_sqlserver("sqlserver sms", "mssql database sms", facts, T)
    assert check["status"] == "warning" and "differential base" in check["reason"]


def test_a_missing_or_restoring_database():
    missing = mssql.parse_server_health(SERVER, [], [], [], [], [])
    assert health.evaluate_sqlserver("s", "w", missing, T)["status"] == "critical"
    restoring = mssql.parse_server_health(SERVER, [dict(STATE[0], state_desc="RESTORING",
                                                        user_access_desc="SINGLE_USER")], [], [], [], [])
    check = health.evaluate_sqlserver("s", "w", restoring, T)
    assert check["status"] == "critical" and check["reason"].startswith("the database is RESTORING, not ONLINE; "
                                                                        "the database is SINGLE_USER")


@pytest.mark.parametrize("gib, log, blocked, status, words", [
    (1, 10, 0, "ok", "1.0 GiB (10 % of Express's 10 GB limit)"),
    (8, 10, 0, "warning", "Express edition capacity: data files at 80 % of the 10 GB limit >= 80"),
    (9.5, 10, 0, "critical", "data files at 95 % of the 10 GB limit >= 95"),
    (1, 70, 0, "warning", "transaction log 70 % used >= 70"),
    (1, 91, 0, "critical", "transaction log 91 % used >= 90"),
    (1, 10, 2, "warning", "sessions blocked: 2 >= 1 (session 61 waits 30 s on session 55"),
])
def test_sqlserver_judgement(gib, log, blocked, status, words):
    facts = mssql.parse_server_health(
        SERVER, STATE, [{"data_bytes": int(gib * 1024 ** 3)}], [{"log_bytes": 1, "log_used_percent": log}],
        [{"pid": 61, "blocked_by": 55, "wait_s": 30, "wait_type": "LCK_M_X", "database_name": "sms", "query": "q"}]
        * blocked, history(("D", False, 3600, "/b/rollcall-backup-1.bak")), "/b")
    check = health.evaluate_sqlserver("sqlserver sms", "mssql database sms", facts, T)
    assert check["status"] == status and words in check["reason"], check["reason"]
    assert "msdb newest backups: full 1 h" in check["reason"] or "msdb newest backups: full 60 min" in check["reason"]
    assert "no SQL Server Agent (schedules from AWX)" in check["reason"]


def test_standard_edition_has_no_size_limit():
    facts = mssql.parse_server_health([{"edition": "Standard Edition (64-bit)", "engine_edition": 2, "version": "16"}],
                                      STATE, [{"data_bytes": 50 * 1024 ** 3}], [], [], [])
    check = health.evaluate_sqlserver("s", "w", facts, T)
    assert check["status"] == "ok" and "Standard Edition" in check["reason"] and "Agent" not in check["reason"]
    assert "express_size_percent" not in check["metrics"] and "msdb newest backups: none" in check["reason"]


def test_sqlserver_check_that_cannot_connect_is_critical():
    def refuse(params):
        raise mssql.EngineError("SQL Server at sql01:1433: cannot connect: Login failed")
    check = health.sqlserver_check({"engine": "mssql", "database": "sms"}, T, refuse)
    assert check["status"] == "critical" and "could not reach the mssql database sms: SQL Server" in check["reason"]


# ------------------------------------------------------------------------------------------------ the cursor
class Cursors:
    """pymssql as far as the adapter sees it: answers by the first words of the T-SQL, records every batch."""

    def __init__(self, answers):
        self.answers, self.executed = answers, []

    def module(self):
        outer = self

        class Cursor:
            description = None

            def execute(self, sql, params=None):
                outer.executed.append((self.database, sql, params))
                for start, rows in outer.answers.items():
                    if sql.strip().startswith(start):
                        self.rows = rows
                        break
                else:
                    raise AssertionError("unexpected T-SQL: %s" % sql)
                self.description = [("x",)]

            def fetchall(self):
                return list(self.rows)

            def nextset(self):
                return None

        class Connection:
            def __init__(self, database):
                self.database = database

            def cursor(self, as_dict=False):
                cursor = Cursor()
                cursor.database = self.database
                return cursor

            def close(self):
                pass

        class Module:
            Error = mssql.EngineError

            @staticmethod
            def connect(database="master", **_kwargs):
                return Connection(database)

        return Module


def engine(monkeypatch, answers):
    cursors = Cursors(answers)
    monkeypatch.setattr(mssql, "pymssql", cursors.module())
    monkeypatch.setattr(mssql, "HAS_PYMSSQL", True)
    return mssql.MSSQL(None, Target("mssql", "sms", host="sql01", user="rollcall", password="pw")), cursors


def test_server_health_reads_in_the_database_only_when_it_is_online(monkeypatch):
    answers = {"SELECT CAST(SERVERPROPERTY('Edition')": SERVER, "SELECT name, state_desc": STATE,
               "SELECT SUM(CAST(size": [{"data_bytes": 8192}],
               "SELECT total_log_size_in_bytes": [{"log_bytes": 1, "log_used_percent": 5}],
               "SELECT TOP (%d) r.session_id" % mssql.LONG_QUERIES_SHOWN: [], "SELECT TOP (50) b.type": []}
    adapter, cursors = engine(monkeypatch, answers)
    facts = adapter.server_health("sms", "/b")
    assert facts["data_bytes"] == 8192 and facts["log_used_percent"] == 5.0
    assert [(db, params) for db, sql, params in cursors.executed if params] == [("master", ("sms",))] * 2
    assert {db for db, sql, _ in cursors.executed if "sys.database_files" in sql or "log_space" in sql} == {"sms"}
    assert "msdb.dbo.backupset" in cursors.executed[-1][1]
    answers["SELECT name, state_desc"] = [dict(STATE[0], state_desc="OFFLINE")]
    adapter, cursors = engine(monkeypatch, answers)
    assert adapter.server_health("sms")["data_bytes"] is None
    assert not any(db == "sms" for db, _, _ in cursors.executed), "an OFFLINE database is not opened"


VALIDATION = {
    "SELECT pr.name AS principal": [
        {"principal": "rc_teachers", "state": "GRANT", "permission": "SELECT", "class": "SCHEMA",
         "object_name": "teaching"},
        {"principal": "sms", "state": "GRANT", "permission": "CONNECT", "class": "DATABASE", "object_name": ""},
        {"principal": "rc_report", "state": "DENY", "permission": "SELECT", "class": "OBJECT_OR_COLUMN",
         "object_name": "dbo.grades"}],
    "SELECT r.name AS role_name": [{"role_name": "db_owner", "member": "sms"}],
    "SELECT s.name AS schema_name": [{"schema_name": "dbo", "table_name": "students"}],
    "SELECT COUNT_BIG(*)": [{"n": 3}],
    "DBCC CHECKCONSTRAINTS": [],
    "SELECT OBJECT_SCHEMA_NAME": [],
    "SELECT dp.name": [],
}


def test_permission_lines_are_comparable_statements(monkeypatch):
    adapter, _ = engine(monkeypatch, VALIDATION)
    assert adapter.permission_lines("sms") == ["DENY SELECT ON dbo.grades TO [rc_report]", "GRANT CONNECT TO [sms]",
                                               "GRANT SELECT ON SCHEMA::[teaching] TO [rc_teachers]",
                                               "MEMBER [sms] OF [db_owner]"]


def test_a_restored_database_that_passes(monkeypatch):
    adapter, cursors = engine(monkeypatch, VALIDATION)
    before = adapter.permission_lines("sms")
    problems, notes, after = adapter.validate_restored("sms", {"dbo.students": 3}, before)
    assert problems == [] and after == before and notes == ["grants and role memberships are the same as before the "
                                                            "restore (4)"]
    assert ("sms", "DBCC CHECKCONSTRAINTS WITH ALL_CONSTRAINTS, NO_INFOMSGS;", None) in cursors.executed


def test_every_validation_problem_is_named():
    problems, notes = mssql.judge_restore(
        {"dbo.students": 3, "dbo.classes": 1}, {"dbo.students": 2, "dbo.extra": 0},
        [{"Table": "[dbo].[grades]", "Constraint": "[FK_grades_students]", "Where": "[student_id] = '9'"}],
        [{"schema_name": "dbo", "table_name": "grades", "name": "FK_grades_students", "is_disabled": True},
         {"schema_name": "dbo", "table_name": "grades", "name": "CK_mark", "is_disabled": False}],
        ["sms_app"], ["GRANT CONNECT TO [old]"], ["GRANT CONNECT TO [new]"])
    assert problems == [
        "row counts differ from the backup: dbo.classes: no table rows, the backup had 1; dbo.extra: 0 rows, the "
        "backup had no table; dbo.students: 2 rows, the backup had 3",
        "1 row(s) violate constraints (DBCC CHECKCONSTRAINTS): [dbo].[grades] [FK_grades_students] "
        "([student_id] = '9')",
        "2 constraint(s) disabled or not trusted: dbo.grades FK_grades_students (disabled); dbo.grades CK_mark (not "
        "trusted); re-enable them WITH CHECK",
        "database user(s) without a login on this server: sms_app; map each to its login with ALTER USER [name] "
        "WITH LOGIN = [name]"]
    assert notes == ["grants differ from the database's before the restore (the backup's grants are back): no longer "
                     "GRANT CONNECT TO [old]; now also GRANT CONNECT TO [new]"]
    assert mssql.judge_restore({}, {}, [], [], []) == ([], [])
