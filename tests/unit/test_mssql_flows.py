"""SQL Server through the backup flows (take, verify, restore, prune) against a fake pymssql connection.

No SQL Server can run here. ``FakeServer`` stands in for one: it records every T-SQL batch Rollcall sends, writes
and reads "backup files" in the shared directory (a JSON header and the tables' row counts, then padding, so
streams span several chunks), keeps LSNs and the differential base like SQL Server does, and refuses what SQL
Server would refuse (a differential without a full backup, a restore over files in use, a chain that does not
fit, a database that is still RESTORING). What it cannot tell is whether real SQL Server accepts our T-SQL:
tests/integration/test_mssql_server.py does that against a real server.
"""

import json
import os
import re

import pytest

from ansible_collections.rollcall.ops.plugins.module_utils import artifact, backup
from ansible_collections.rollcall.ops.plugins.module_utils.engines import mssql
from ansible_collections.rollcall.ops.plugins.module_utils.engines.base import Engine, EngineError, Target

PASSWORD = "mssql-password-never-shown"  # noqa: S105 - a test credential
KEY = bytes(range(32))
SERVER_DIR = "/var/opt/mssql/backup"
MAGIC = b"FAKEMSSQLBAK\n"
PADDING = 2 * 1024 * 1024 + 12345  # the stream spans several 1 MiB chunks
FILLER = bytes(range(251)) * (PADDING // 251) + bytes(range(PADDING % 251))


class FakeError(Exception):
    pass


def unquote(text):
    return text.replace("''", "'")


class FakeServer:
    """A SQL Server as far as Rollcall can tell through pymssql."""

    def __init__(self, local_directory):
        self.local_directory = local_directory
        self.executed = []  # (database connected to, sql)
        self.databases = {"sms": self.new_database({"dbo.students": 2, "dbo.classes": 1}, "sms")}
        self.lsn = 1000
        self.base = {}  # database -> checkpoint LSN of its last full, non-copy-only backup
        self.failures = []  # [pattern, message, times left]
        self.written = {}  # server path -> bytes the server wrote

    @staticmethod
    def new_database(tables, stem, state="ONLINE"):
        return {"tables": dict(tables), "state": state, "files": ["/var/opt/mssql/data/%s.mdf" % stem,
                                                                  "/var/opt/mssql/data/%s_log.ldf" % stem]}

    # ------------------------------------------------------------------ pymssql
    def module(self):
        server = self

        class Cursor:
            def __init__(self, database):
                self.database, self.rows, self.description = database, [], None

            def execute(self, sql, params=None):
                self.rows = server.run(self.database, sql, params)
                self.description = [("x",)] if self.rows is not None else None

            def fetchall(self):
                return list(self.rows)

            def nextset(self):
                return None

        class Connection:
            def __init__(self, database):
                self.database = database

            def cursor(self, as_dict=False):
                assert as_dict
                return Cursor(self.database)

            def close(self):
                pass

        class Module:
            Error = FakeError
            __version__ = "2.4.6-fake"

            @staticmethod
            def connect(server=None, port=None, user=None, password=None, database=None, login_timeout=None,
                        autocommit=None):
                if password != PASSWORD:
                    raise FakeError(18456, b"Login failed for user 'sa'.\nDB-Lib error message 20018")
                db = self.databases.get(database)
                if database != "master" and (db is None or db["state"] != "ONLINE"):
                    raise FakeError(927, b"Database '%s' cannot be opened. It is in the middle of a restore."
                                    % database.encode())
                return Connection(database)

        return Module

    def local(self, server_path):
        assert server_path.startswith(SERVER_DIR + "/"), server_path
        return os.path.join(self.local_directory, server_path[len(SERVER_DIR) + 1:])

    def read_file(self, server_path):
        try:
            with open(self.local(server_path), "rb") as handle:
                data = handle.read()
        except FileNotFoundError:
            raise FakeError(3201, b"Cannot open backup device '%s'. Operating system error 2." % server_path.encode()) \
                from None
        if not data.startswith(MAGIC):
            raise FakeError(3241, b"The media family on device is incorrectly formed.")
        meta, _, rest = data[len(MAGIC):].partition(b"\n")
        if len(rest) != PADDING or rest != FILLER:
            raise FakeError(3189, b"Damage to the backup set was detected.")
        return json.loads(meta)

    def fail(self, pattern, message, times=1):
        self.failures.append([pattern, message, times])

    # ------------------------------------------------------------------ T-SQL
    def run(self, database, sql, params):
        self.executed.append((database, sql))
        for failure in self.failures:
            if failure[2] and re.search(failure[0], sql):
                failure[2] -= 1
                raise FakeError(50000, failure[1].encode())
        if "SERVERPROPERTY('ProductVersion')" in sql:
            return [{"v": "16.0.4135.4"}]
        if "InstanceDefaultDataPath" in sql:
            return [{"data_path": "/var/opt/mssql/data/", "log_path": "/var/opt/mssql/log/"}]
        if "FROM sys.databases WHERE name = %s" in sql:
            return [{"x": 1}] if params[0] in self.databases else []
        if "FROM sys.tables" in sql:
            return [{"schema_name": t.split(".")[0], "table_name": t.split(".")[1]}
                    for t in sorted(self.databases[database]["tables"])]
        match = re.fullmatch(r"SELECT COUNT_BIG\(\*\) AS n FROM \[(\w+)\]\.\[(\w+)\];", sql)
        if match:
            return [{"n": self.databases[database]["tables"]["%s.%s" % match.groups()]}]
        if "OBJECT_ID(N'dbo.alembic_version')" in sql:
            return [{"id": None}]
        match = re.fullmatch(r"BACKUP DATABASE \[(\w+)\] TO DISK = N'(.*?)' WITH (.*);", sql)
        if match:
            return self.backup(*match.groups())
        match = re.fullmatch(r"RESTORE HEADERONLY FROM DISK = N'(.*?)';", sql)
        if match:
            return [self.read_file(unquote(match.group(1)))["header"]]
        match = re.fullmatch(r"RESTORE VERIFYONLY FROM DISK = N'(.*?)' WITH CHECKSUM;", sql)
        if match:
            self.read_file(unquote(match.group(1)))
            return None
        match = re.fullmatch(r"RESTORE FILELISTONLY FROM DISK = N'(.*?)';", sql)
        if match:
            meta = self.read_file(unquote(match.group(1)))
            return [{"LogicalName": meta["header"]["DatabaseName"], "PhysicalName": meta["files"][0], "Type": "D"},
                    {"LogicalName": meta["header"]["DatabaseName"] + "_log", "PhysicalName": meta["files"][1],
                     "Type": "L"}]
        match = re.fullmatch(r"RESTORE DATABASE \[(\w+)\] FROM DISK = N'(.*?)' WITH (.*);", sql)
        if match:
            return self.restore(*match.groups())
        match = re.fullmatch(r"IF DB_ID\(N'(\w+)'\) IS NOT NULL BEGIN .* DROP DATABASE \[(\w+)\]; END;", sql)
        if match:
            self.databases.pop(match.group(1), None)
            return None
        match = re.fullmatch(r"ALTER DATABASE \[(\w+)\] MODIFY NAME = \[(\w+)\];", sql)
        if match:
            old, new = match.groups()
            if old not in self.databases or new in self.databases:
                raise FakeError(5030, b"The database could not be exclusively locked to perform the operation.")
            self.databases[new] = self.databases.pop(old)
            return None
        match = re.fullmatch(r"ALTER DATABASE \[(\w+)\] SET (SINGLE_USER WITH ROLLBACK IMMEDIATE|MULTI_USER);", sql)
        if match:
            self.databases[match.group(1)]["user_mode"] = match.group(2).split("_")[0]
            return None
        if sql.startswith("DBCC CHECKDB ("):
            return None
        match = re.fullmatch(r"EXECUTE master.dbo.xp_delete_file 0, N'(.*?)';", sql)
        if match:
            path = self.local(unquote(match.group(1)))
            if os.path.exists(path):
                os.unlink(path)
            return None
        raise AssertionError("the fake server does not know this T-SQL: %s" % sql)

    def backup(self, database, path, options):
        db = self.databases.get(database)
        if db is None or db["state"] != "ONLINE":
            raise FakeError(3013, b"BACKUP DATABASE is terminating abnormally.")
        differential, copy_only = "DIFFERENTIAL" in options, "COPY_ONLY" in options
        if differential and database not in self.base:
            raise FakeError(3035, b"Cannot perform a differential backup, because a current database backup "
                                  b"does not exist.")
        first, checkpoint, last = self.lsn + 1, self.lsn + 5, self.lsn + 10
        self.lsn += 10
        header = {"BackupType": 5 if differential else 1, "DatabaseName": database, "FirstLSN": first,
                  "LastLSN": last, "CheckpointLSN": checkpoint, "DatabaseBackupLSN": self.base.get(database, 0),
                  "DifferentialBaseLSN": self.base.get(database) if differential else None,
                  "HasBackupChecksums": 1 if "CHECKSUM" in options else 0, "IsCopyOnly": 1 if copy_only else 0,
                  "SoftwareVersionMajor": 16, "SoftwareVersionMinor": 0, "SoftwareVersionBuild": 4135}
        if not differential and not copy_only:
            self.base[database] = checkpoint
        meta = {"header": header, "tables": db["tables"], "files": db["files"]}
        content = MAGIC + json.dumps(meta).encode() + b"\n" + FILLER
        path = unquote(path)
        with open(self.local(path), "wb") as handle:
            handle.write(content)
        self.written[path] = content
        return None

    def restore(self, database, path, options):
        meta = self.read_file(unquote(path))
        header = meta["header"]
        assert "CHECKSUM" in options
        recovery = options.endswith("RECOVERY") and not options.endswith("NORECOVERY")
        if header["BackupType"] == 1:
            if database in self.databases:
                raise FakeError(1834, b"The file cannot be overwritten. It is being used by database.")
            moves = re.findall(r"MOVE N'(.*?)' TO N'(.*?)'", options)
            if len(moves) != 2:
                raise FakeError(1834, b"The file cannot be overwritten: it is being used by another database.")
            in_use = {f for db in self.databases.values() for f in db["files"]}
            if any(physical in in_use for _, physical in moves):
                raise FakeError(1834, b"The file '%s' cannot be overwritten." % moves[0][1].encode())
            self.databases[database] = {"tables": dict(meta["tables"]), "files": [m[1] for m in moves],
                                        "state": "ONLINE" if recovery else "RESTORING",
                                        "checkpoint": header["CheckpointLSN"]}
        else:
            db = self.databases.get(database)
            if db is None or db["state"] != "RESTORING" or db["checkpoint"] != header["DifferentialBaseLSN"]:
                raise FakeError(3136, b"This differential backup cannot be restored because the database has not "
                                      b"been restored to the correct earlier state.")
            db["tables"] = dict(meta["tables"])
            db["state"] = "ONLINE" if recovery else "RESTORING"
        return None

    # ------------------------------------------------------------------ for the tests
    def sql(self, pattern):
        return [sql for _, sql in self.executed if re.search(pattern, sql)]

    def leftovers(self):
        return sorted(os.listdir(self.local_directory))


@pytest.fixture
def server(tmp_path, monkeypatch):
    share = tmp_path / "share"
    share.mkdir()
    fake = FakeServer(str(share))
    monkeypatch.setattr(mssql, "pymssql", fake.module())
    monkeypatch.setattr(mssql, "HAS_PYMSSQL", True)
    return fake


@pytest.fixture
def directory(tmp_path):
    path = tmp_path / "backups"
    path.mkdir()
    return str(path)


def params(server, **extra):
    return dict({"engine": "mssql", "database": "sms", "host": "sql01", "port": None, "user": "sa",
                 "password": PASSWORD, "container": None, "docker_host": None, "path": None, "jobs": 1,
                 "server_directory": SERVER_DIR, "local_directory": server.local_directory}, **extra)


def open_engine(server, **extra):
    return backup.open_engine(backup.target_from_params(params(server, **extra)))


def restamp(directory, name, seconds):
    """Backups made within one second would share a name: move a manifest's stamp back in time."""
    manifest = artifact.read_manifest(directory, name)
    when = backup._parse_time(manifest["finished_at"]) - __import__("datetime").timedelta(seconds=seconds)
    new = artifact.artifact_name("mssql", manifest["database"], when, manifest["type"])
    for entry in os.listdir(directory):
        if entry.startswith(name + "."):
            os.rename(os.path.join(directory, entry), os.path.join(directory, new + entry[len(name):]))
    path = artifact.manifest_path(directory, new)
    with open(path, encoding="utf-8") as handle:
        document = json.load(handle)
    document.update(name=new, finished_at=artifact.isoformat(when),
                    data=dict(document["data"], file=new + document["data"]["file"][len(name):]))
    if "signature" in document:  # made with KEY: sign the moved manifest again
        document = artifact.sign_manifest(document, KEY)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(document, handle)
    return new


def full_then_differential(server, directory, key=None):
    engine = open_engine(server)
    full = backup.take_backup(engine, directory, "full", key=key)["name"]
    full = restamp(directory, full, 60)
    server.databases["sms"]["tables"]["dbo.students"] = 5
    diff = backup.take_backup(engine, directory, "differential", key=key)
    return engine, full, diff


# ------------------------------------------------------------------------------------------------ backup
def test_full_backup_streams_the_servers_file_records_the_header_and_deletes_the_file(server, directory):
    engine = open_engine(server)
    manifest = backup.take_backup(engine, directory, "full", compression="gzip", key=KEY)
    backups = server.sql(r"^BACKUP DATABASE")
    assert len(backups) == 1
    assert re.fullmatch(r"BACKUP DATABASE \[sms\] TO DISK = N'/var/opt/mssql/backup/rollcall-backup-[0-9a-f]{32}"
                        r"\.bak' WITH CHECKSUM, INIT, FORMAT, STATS = 10;", backups[0])
    server_path = re.search(r"N'(.*?)'", backups[0]).group(1)
    assert server.sql(r"^RESTORE HEADERONLY FROM DISK = N'%s';$" % re.escape(server_path))
    assert b"".join(backup.plain_stream(directory, manifest, KEY)) == server.written[server_path]
    assert server.leftovers() == [], "the server's temporary .bak is deleted"
    assert manifest["type"] == "full" and manifest["parent"] is None
    assert manifest["row_counts"] == {"dbo.classes": 1, "dbo.students": 2}
    header = manifest["mssql"]
    assert header["type"] == "full" and header["copy_only"] is False and header["has_checksums"]
    assert {"first_lsn", "last_lsn", "checkpoint_lsn", "database_backup_lsn", "differential_base_lsn"} <= set(header)
    assert "right after the backup" in header["row_counts_taken"]
    assert manifest["tool_versions"] == {"pymssql": "2.4.6-fake"} and manifest["server_version"] == "16.0.4135.4"
    assert manifest["format"].startswith("SQL Server native backup")


def test_a_differential_needs_a_full_backup_first(server, directory):
    with pytest.raises(artifact.ArtifactError, match="take a full backup first"):
        backup.take_backup(open_engine(server), directory, "differential")
    assert os.listdir(directory) == [] and server.sql("^BACKUP") == []


def test_differential_records_its_parent_and_the_chain(server, directory):
    _, full, diff = full_then_differential(server, directory)
    assert diff["type"] == "differential" and diff["parent"] == full
    assert "WITH DIFFERENTIAL, CHECKSUM" in server.sql("^BACKUP")[-1]
    parent = artifact.read_manifest(directory, full)
    assert diff["mssql"]["differential_base_lsn"] == parent["mssql"]["checkpoint_lsn"]
    assert diff["row_counts"]["dbo.students"] == 5
    assert server.leftovers() == []


def test_copy_only_backups_leave_the_chain_alone_and_are_never_a_parent(server, directory):
    engine = open_engine(server)
    full = restamp(directory, backup.take_backup(engine, directory, "full")["name"], 120)
    safety = backup.take_backup(engine, directory, "full", copy_only=True)
    assert "WITH COPY_ONLY, CHECKSUM" in server.sql("^BACKUP")[-1] and safety["mssql"]["copy_only"] is True
    restamp(directory, safety["name"], 60)
    diff = backup.take_backup(engine, directory, "differential")
    assert diff["parent"] == full


def test_a_full_backup_taken_outside_rollcall_breaks_the_chain_and_nothing_is_kept(server, directory):
    engine = open_engine(server)
    restamp(directory, backup.take_backup(engine, directory, "full")["name"], 60)
    before = sorted(os.listdir(directory))
    engine.query(mssql.backup_sql("sms", SERVER_DIR + "/outside.bak"))  # a DBA's own full backup
    os.unlink(os.path.join(server.local_directory, "outside.bak"))
    with pytest.raises(EngineError, match="another full backup was taken in between.*nothing was kept"):
        backup.take_backup(engine, directory, "differential")
    assert sorted(os.listdir(directory)) == before
    assert server.leftovers() == []


@pytest.mark.parametrize("failing", [r"^RESTORE HEADERONLY", r"FROM sys.tables"])
def test_the_temporary_backup_file_is_deleted_on_errors(server, directory, failing):
    server.fail(failing, "Msg 3013, something broke")
    with pytest.raises(EngineError, match="something broke"):
        backup.take_backup(open_engine(server), directory, "full")
    assert server.leftovers() == [] and os.listdir(directory) == []


def test_the_temporary_backup_file_is_deleted_when_the_artifact_cannot_be_written(server, directory, monkeypatch):
    def full_disk(self, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(artifact.ArtifactWriter, "write", full_disk)
    with pytest.raises(artifact.ArtifactError, match="No space left"):
        backup.take_backup(open_engine(server), directory, "full")
    assert server.leftovers() == [] and os.listdir(directory) == []


def test_a_backup_file_the_module_cannot_see_is_a_clear_error(server, directory, tmp_path):
    other = tmp_path / "not-the-share"
    other.mkdir()
    engine = open_engine(server, local_directory=str(other))
    with pytest.raises(EngineError, match="local_directory must be server_directory as seen from where"):
        backup.take_backup(engine, directory, "full")
    assert server.leftovers() == []


def test_differential_is_refused_for_other_engines(directory):
    class NoChains(Engine):
        name = "postgresql"

    engine = NoChains(None, Target("postgresql", "sms"))
    with pytest.raises(EngineError, match="differential is for SQL Server"):
        backup.take_backup(engine, directory, "differential")


# ------------------------------------------------------------------------------------------------ verify
def test_native_verification_of_a_differential_checks_both_files_and_the_chain(server, directory):
    engine, full, diff = full_then_differential(server, directory, key=KEY)
    server.executed.clear()
    result = backup.verify_backup(directory, diff["name"], "native", key=KEY, engine=engine)
    assert result["status"] == "passed", result
    assert "its parent %s too" % full in result["steps"][0]["detail"]
    assert "applies on top of %s" % full in result["steps"][1]["detail"]
    verify = server.sql("^RESTORE VERIFYONLY")
    assert len(verify) == 1 and re.fullmatch(r"RESTORE VERIFYONLY FROM DISK = N'/var/opt/mssql/backup/"
                                             r"rollcall-verify-[0-9a-f]{32}\.bak' WITH CHECKSUM;", verify[0])
    assert server.leftovers() == []


def test_native_verification_fails_without_the_parent(server, directory):
    engine, full, diff = full_then_differential(server, directory)
    backup.delete_backup(directory, full)
    result = backup.verify_backup(directory, diff["name"], "native", engine=engine)
    assert result["status"] == "failed" and "builds on %s, which is missing" % full in result["steps"][-1]["detail"]


def test_native_verification_fails_when_the_recorded_chain_does_not_fit(server, directory):
    engine, full, diff = full_then_differential(server, directory)
    path = artifact.manifest_path(directory, full)
    with open(path, encoding="utf-8") as handle:
        parent = json.load(handle)
    parent["mssql"]["checkpoint_lsn"] = "1"
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(parent, handle)
    result = backup.verify_backup(directory, diff["name"], "native", engine=engine)
    assert result["status"] == "failed" and "is not the full backup's checkpoint LSN 1" in result["steps"][-1]["detail"]


def test_native_verification_reports_what_the_server_says(server, directory):
    engine = open_engine(server)
    name = backup.take_backup(engine, directory, "full")["name"]
    server.fail(r"^RESTORE VERIFYONLY", "Msg 3189, Damage to the backup set was detected.")
    result = backup.verify_backup(directory, name, "native", engine=engine)
    assert result["status"] == "failed" and "Damage to the backup set" in result["steps"][-1]["detail"]
    assert server.leftovers() == []


def test_restore_verification_restores_the_chain_into_scratch_and_drops_it(server, directory):
    engine, full, diff = full_then_differential(server, directory, key=KEY)
    server.executed.clear()
    result = backup.verify_backup(directory, diff["name"], "restore", key=KEY, engine=engine)
    assert result["status"] == "passed", result
    restores = server.sql(r"^RESTORE DATABASE")
    assert len(restores) == 2
    assert re.fullmatch(r"RESTORE DATABASE \[sms__rc_scratch\] FROM DISK = N'/var/opt/mssql/backup/rollcall-restore-"
                        r"[0-9a-f]{32}\.bak' WITH CHECKSUM, "
                        r"MOVE N'sms' TO N'/var/opt/mssql/data/sms__rc_scratch_[0-9a-f]{8}_sms\.mdf', "
                        r"MOVE N'sms_log' TO N'/var/opt/mssql/log/sms__rc_scratch_[0-9a-f]{8}_sms_log\.ldf', "
                        r"NORECOVERY;", restores[0])
    assert re.fullmatch(r"RESTORE DATABASE \[sms__rc_scratch\] FROM DISK = N'[^']*' WITH CHECKSUM, RECOVERY;",
                        restores[1])
    assert server.sql(r"^DBCC CHECKDB \(\[sms__rc_scratch\]\) WITH NO_INFOMSGS;$")
    assert "sms__rc_scratch" not in server.databases and server.leftovers() == []
    assert "row counts equal the manifest" in result["steps"][-1]["detail"]


def test_restore_verification_of_a_full_backup_recovers_it_directly(server, directory):
    engine = open_engine(server)
    name = backup.take_backup(engine, directory, "full")["name"]
    result = backup.verify_backup(directory, name, "restore", engine=engine)
    assert result["status"] == "passed", result
    assert [s.endswith(", RECOVERY;") for s in server.sql(r"^RESTORE DATABASE")] == [True]


def test_a_failed_chain_restore_drops_the_restoring_scratch_database(server, directory):
    engine, _, diff = full_then_differential(server, directory)
    server.fail(r"^RESTORE DATABASE .* WITH CHECKSUM, RECOVERY;", "Msg 3136, cannot be restored")
    result = backup.verify_backup(directory, diff["name"], "restore", engine=engine)
    assert result["status"] == "failed" and "cannot be restored" in result["steps"][-1]["detail"]
    assert "sms__rc_scratch" not in server.databases and server.leftovers() == []


def test_a_corrupt_parent_fails_before_anything_reaches_the_server(server, directory):
    engine, full, diff = full_then_differential(server, directory)
    path = os.path.join(directory, artifact.read_manifest(directory, full)["data"]["file"])
    with open(path, "r+b") as handle:
        handle.seek(1000)
        handle.write(b"X")
    server.executed.clear()
    result = backup.verify_backup(directory, diff["name"], "restore", engine=engine)
    assert result["status"] == "failed" and "checksum mismatch" in result["steps"][-1]["detail"]
    assert server.sql("^RESTORE") == []


# ------------------------------------------------------------------------------------------------ restore
def test_restore_of_a_differential_swaps_it_in_after_a_copy_only_safety_backup(server, directory):
    engine, full, diff = full_then_differential(server, directory, key=KEY)
    server.databases["sms"]["tables"]["dbo.students"] = 9  # changed after the backup; the restore undoes it
    server.executed.clear()
    report = backup.restore_backup(engine, directory, diff["name"], key=KEY, safety_key=KEY)
    safety = artifact.read_manifest(directory, report["safety_backup"])
    assert safety["type"] == "full" and safety["mssql"]["copy_only"] and safety["row_counts"]["dbo.students"] == 9
    assert "COPY_ONLY" in server.sql("^BACKUP")[0]
    swap = [sql for sql in server.sql(r"^ALTER DATABASE")]
    assert swap == ["ALTER DATABASE [sms] SET SINGLE_USER WITH ROLLBACK IMMEDIATE;",
                    "ALTER DATABASE [sms] MODIFY NAME = [sms__rc_old];",
                    "ALTER DATABASE [sms__rc_scratch] MODIFY NAME = [sms];",
                    "ALTER DATABASE [sms] SET MULTI_USER;"]
    assert server.databases["sms"]["tables"] == {"dbo.classes": 1, "dbo.students": 5}
    assert set(server.databases) == {"sms"} and report["old_kept_as"] is None
    assert report["row_counts"] == diff["row_counts"] and server.leftovers() == []
    # The chain of the regular backups still holds: a new differential builds on the same full backup.
    server.databases["sms"]["tables"]["dbo.students"] = 6
    restamp(directory, report["safety_backup"], 30)
    restamp(directory, diff["name"], 20)
    again = backup.take_backup(engine, directory, "differential")
    assert again["parent"] == full


def test_a_second_restore_does_not_collide_with_the_files_of_the_first(server, directory):
    engine = open_engine(server)
    name = backup.take_backup(engine, directory, "full")["name"]
    backup.restore_backup(engine, directory, name, safety_backup=False)
    backup.restore_backup(engine, directory, name, safety_backup=False, keep_old=True)
    assert set(server.databases) == {"sms", "sms__rc_old"}
    assert server.sql(r"^ALTER DATABASE \[sms__rc_old\] SET MULTI_USER;$")


def test_when_the_second_rename_fails_the_old_database_gets_its_name_back(server, directory):
    engine = open_engine(server)
    name = backup.take_backup(engine, directory, "full")["name"]
    server.fail(r"^ALTER DATABASE \[sms__rc_scratch\] MODIFY NAME", "Msg 5030, could not be exclusively locked")
    with pytest.raises(EngineError, match="sms is back as it was"):
        backup.restore_backup(engine, directory, name, safety_backup=False)
    assert "sms" in server.databases and "sms__rc_old" not in server.databases
    assert server.sql(r"^ALTER DATABASE")[-2:] == ["ALTER DATABASE [sms__rc_old] MODIFY NAME = [sms];",
                                                   "ALTER DATABASE [sms] SET MULTI_USER;"]


def test_a_restore_that_differs_from_the_manifest_is_not_swapped_in(server, directory):
    engine = open_engine(server)
    name = backup.take_backup(engine, directory, "full")["name"]
    path = artifact.manifest_path(directory, name)
    with open(path, encoding="utf-8") as handle:
        manifest = json.load(handle)
    manifest["row_counts"]["dbo.students"] = 3
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(manifest, handle)
    with pytest.raises(EngineError, match="dbo.students: backup had 3 rows, restore has 2"):
        backup.restore_backup(engine, directory, name, safety_backup=False)
    assert set(server.databases) == {"sms"} and server.sql(r"MODIFY NAME") == []


# ------------------------------------------------------------------------------------------------ plumbing
def test_open_engine_needs_pymssql_and_the_server_directory(server, monkeypatch):
    engine = open_engine(server, local_directory=None)
    assert engine.server_directory == SERVER_DIR and engine.local_directory == SERVER_DIR
    with pytest.raises(EngineError, match="needs server_directory"):
        open_engine(server, server_directory=None)
    with pytest.raises(EngineError, match="container is not used"):
        open_engine(server, container="db")
    with pytest.raises(EngineError, match="needs database"):
        open_engine(server, database=None)
    monkeypatch.setattr(mssql, "HAS_PYMSSQL", False)
    with pytest.raises(EngineError, match="pymssql"):
        open_engine(server)


def test_no_password_in_errors(server, directory):
    engine = open_engine(server, password="wrong-" + PASSWORD)
    with pytest.raises(EngineError) as caught:
        backup.take_backup(engine, directory, "full")
    assert "cannot connect: Login failed for user 'sa'." in str(caught.value)
    assert PASSWORD not in str(caught.value)


def test_the_default_restore_chain_takes_exactly_one_stream():
    class Single(Engine):
        name = "sqlite"
        restored = None

        def restore(self, chunks, database):
            self.restored = (list(chunks), database)

    engine = Single(None, Target("sqlite", "x"))
    engine.restore_chain([iter([b"a", b"b"])], "db")
    assert engine.restored == ([b"a", b"b"], "db")
    with pytest.raises(EngineError, match="exactly one, not 2"):
        engine.restore_chain([iter([]), iter([])], "db")


def test_drop_database_also_drops_a_database_left_restoring():
    sql = []
    engine = mssql.MSSQL(None, Target("mssql", "sms"))
    engine.query = lambda text, database="master", params=None: sql.append(text)
    engine.drop_database("sms__rc_scratch")
    assert sql == ["IF DB_ID(N'sms__rc_scratch') IS NOT NULL BEGIN IF DATABASEPROPERTYEX(N'sms__rc_scratch', "
                   "'Status') = 'ONLINE' ALTER DATABASE [sms__rc_scratch] SET SINGLE_USER WITH ROLLBACK IMMEDIATE; "
                   "DROP DATABASE [sms__rc_scratch]; END;"]
