# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""SQL Server: native BACKUP / RESTORE through pymssql, with the differential chain recorded.

SQL Server writes its backup files itself, on a path the *server* can reach. Rollcall asks for
``BACKUP DATABASE ... TO DISK ... WITH CHECKSUM`` into ``server_directory`` and, when that directory is also
readable from the managed host (``local_directory``, e.g. a share or the same machine), streams the file into
the usual artifact (checksum, compression, encryption, manifest).

A differential backup records its parent (the newest full, non-COPY_ONLY backup of the database in the same
directory) and the LSNs from RESTORE HEADERONLY, so the chain is checked when it is taken, verified and restored
(``check_chain``, ``restore_chain``). Verification and restore copy the stored, checked stream back into
``local_directory`` for the server to read, and delete the copy afterwards.

No SQL Server runs on our machines: the T-SQL built here and the result parsing are unit-tested
(tests/unit/test_mssql.py), the flows against a fake pymssql connection (tests/unit/test_mssql_flows.py);
tests/integration/test_mssql_server.py runs against a real server when ROLLCALL_MSSQL_HOST (and _PORT, _USER,
_PASSWORD, _BACKUP_DIR) are set, and is skipped, visibly, otherwise.
"""

import contextlib
import ntpath
import os
import posixpath
import re
import uuid

from .base import LONG_QUERIES_SHOWN, OLD_SUFFIX, Engine, EngineError, check_database_name, check_seconds, long_query
from .upkeep import MSSQLUpkeep

try:
    import pymssql

    HAS_PYMSSQL = True
except ImportError:
    HAS_PYMSSQL = False

BACKUP_TYPES = {1: "full", 5: "differential", 2: "log"}  # RESTORE HEADERONLY BackupType


def quote_name(name):
    """QUOTENAME(): [name] with ] doubled."""
    if not isinstance(name, str) or len(name) > 128 or "\0" in name:
        raise EngineError("invalid SQL Server identifier %r" % (name,))
    return "[%s]" % name.replace("]", "]]")


def quote_string(value):
    """An N'unicode' literal with ' doubled."""
    if "\0" in value:
        raise EngineError("NUL in a SQL Server string literal")
    return "N'%s'" % value.replace("'", "''")


def backup_sql(database, path, kind="full", copy_only=False):
    if kind not in ("full", "differential"):
        raise EngineError("SQL Server backup type must be full or differential, not %r" % kind)
    options = ["CHECKSUM", "INIT", "FORMAT", "STATS = 10"]
    if kind == "differential":
        options.insert(0, "DIFFERENTIAL")
    elif copy_only:
        options.insert(0, "COPY_ONLY")
    parts = (quote_name(database), quote_string(path), ", ".join(options))
    return "BACKUP DATABASE %s TO DISK = %s WITH %s;" % parts


def verifyonly_sql(path):
    return "RESTORE VERIFYONLY FROM DISK = %s WITH CHECKSUM;" % quote_string(path)


def headeronly_sql(path):
    return "RESTORE HEADERONLY FROM DISK = %s;" % quote_string(path)


def filelistonly_sql(path):
    return "RESTORE FILELISTONLY FROM DISK = %s;" % quote_string(path)


def restore_sql(database, path, moves, replace=False, norecovery=False):
    """RESTORE DATABASE with MOVE for every file; ``moves`` is [(logical name, new physical path)]."""
    options = ["CHECKSUM"] + ["MOVE %s TO %s" % (quote_string(logical), quote_string(physical))
                              for logical, physical in moves]
    if replace:
        options.append("REPLACE")
    options.append("NORECOVERY" if norecovery else "RECOVERY")
    parts = (quote_name(database), quote_string(path), ", ".join(options))
    return "RESTORE DATABASE %s FROM DISK = %s WITH %s;" % parts


def count_sql(schema, table):
    return "SELECT COUNT_BIG(*) AS n FROM %s.%s;" % (quote_name(schema), quote_name(table))


def plan_moves(filelist, database, data_directory, log_directory=None):
    """New physical paths for a restore under another name: <dir>/<database>_<logical><ext>."""
    moves = []
    for row in filelist:
        logical, physical, kind = row["LogicalName"], row["PhysicalName"], row.get("Type", "D")
        directory = log_directory if kind == "L" and log_directory else data_directory
        ext = ntpath.splitext(physical)[1] if "\\" in physical else os.path.splitext(physical)[1]
        ext = ext or (".ldf" if kind == "L" else ".mdf")
        safe_logical = "".join(c if c.isalnum() or c in "_-" else "_" for c in logical)
        join = ntpath.join if "\\" in directory else os.path.join
        moves.append((logical, join(directory, "%s_%s%s" % (database, safe_logical, ext))))
    return moves


def parse_header(rows):
    """The first backup set of RESTORE HEADERONLY as the facts Rollcall records."""
    if not rows:
        raise EngineError("RESTORE HEADERONLY returned nothing: not a SQL Server backup")
    row = rows[0]
    return {
        "type": BACKUP_TYPES.get(int(row["BackupType"]), "other"),
        "database": row["DatabaseName"],
        "first_lsn": str(row["FirstLSN"]),
        "last_lsn": str(row["LastLSN"]),
        "checkpoint_lsn": str(row["CheckpointLSN"]),
        "database_backup_lsn": str(row["DatabaseBackupLSN"]),
        "differential_base_lsn": str(row.get("DifferentialBaseLSN") or ""),
        "has_checksums": bool(row.get("HasBackupChecksums")),
        "copy_only": bool(row.get("IsCopyOnly")),
        "server_version": "%s.%s.%s" % (row.get("SoftwareVersionMajor"), row.get("SoftwareVersionMinor"),
                                        row.get("SoftwareVersionBuild")),
    }


def chain_problem(full, differential):
    """Why ``differential`` does not apply on top of ``full`` (None when it does)."""
    if full["type"] != "full":
        return "the parent is a %s backup, not a full one" % full["type"]
    if differential["type"] != "differential":
        return "the child is a %s backup, not a differential" % differential["type"]
    if full["database"] != differential["database"]:
        return "the backups are of different databases (%s, %s)" % (full["database"], differential["database"])
    if differential["differential_base_lsn"] != full["checkpoint_lsn"]:
        return ("the differential's base LSN %s is not the full backup's checkpoint LSN %s (another full backup "
                "was taken in between)" % (differential["differential_base_lsn"], full["checkpoint_lsn"]))
    if not full["has_checksums"] or not differential["has_checksums"]:
        return "a backup in the chain was taken without CHECKSUM"
    return None


# activity(): user sessions vs the 'user connections' setting (0 = the server's maximum, @@MAX_CONNECTIONS).
CONNECTIONS_SQL = """
SELECT (SELECT COUNT(*) FROM sys.dm_exec_sessions WHERE is_user_process = 1) AS active_connections,
       (SELECT CASE WHEN CAST(value_in_use AS int) = 0 THEN @@MAX_CONNECTIONS ELSE CAST(value_in_use AS int) END
          FROM sys.configurations WHERE name = N'user connections') AS max_connections;
"""


def long_requests_sql(long_query_seconds):
    """Requests of user sessions running for at least N seconds, longest first (statement text, no parameters)."""
    seconds = check_seconds(long_query_seconds)
    return ("SELECT TOP (%d) r.session_id AS pid, DATEDIFF(SECOND, r.start_time, GETDATE()) AS duration_s, "
            "LEFT(t.text, 200) AS query "
            "FROM sys.dm_exec_requests r JOIN sys.dm_exec_sessions s ON s.session_id = r.session_id "
            "OUTER APPLY sys.dm_exec_sql_text(r.sql_handle) t "
            "WHERE s.is_user_process = 1 AND r.session_id <> @@SPID "
            "AND r.start_time <= DATEADD(SECOND, -%d, GETDATE()) "
            "ORDER BY r.start_time;" % (LONG_QUERIES_SHOWN, seconds))


def parse_activity(connections, requests):
    """``activity()`` from the rows of CONNECTIONS_SQL and long_requests_sql()."""
    row = connections[0] if connections else {}
    found = {"active_connections": None if row.get("active_connections") is None else int(row["active_connections"]),
             "max_connections": None if row.get("max_connections") is None else int(row["max_connections"]),
             "long_queries": []}
    for request in requests:
        found["long_queries"].append(long_query(request["pid"], request["duration_s"], request.get("query")))
    return found


ROW_COUNTS_SQL = """
SELECT s.name AS schema_name, t.name AS table_name
  FROM sys.tables t JOIN sys.schemas s ON s.schema_id = t.schema_id
 WHERE t.is_ms_shipped = 0 ORDER BY 1;
"""

DEFAULT_PATHS_SQL = ("SELECT CAST(SERVERPROPERTY('InstanceDefaultDataPath') AS nvarchar(4000)) AS data_path, "
                     "CAST(SERVERPROPERTY('InstanceDefaultLogPath') AS nvarchar(4000)) AS log_path;")
CHUNK = 1024 * 1024
ROW_COUNTS_TAKEN = "right after the backup finished (not in the backup's own snapshot)"


# ----------------------------------------------------------------------------- health (issue 17)
# EngineEdition 4 is Express: no SQL Server Agent, no backup compression, 10 GB of data per database.
EXPRESS_EDITION = 4
EXPRESS_DATA_LIMIT_BYTES = 10 * 1024 ** 3
SERVER_FACTS_SQL = ("SELECT CAST(SERVERPROPERTY('Edition') AS nvarchar(128)) AS edition, "
                    "CAST(SERVERPROPERTY('EngineEdition') AS int) AS engine_edition, "
                    "CAST(SERVERPROPERTY('ProductVersion') AS nvarchar(64)) AS version;")
DATABASE_STATE_SQL = ("SELECT name, state_desc, user_access_desc, is_read_only, recovery_model_desc "
                      "FROM sys.databases WHERE name = %s;")
# Run inside the database: the data files (what Express limits to 10 GB) and the log's use.
DATA_SIZE_SQL = "SELECT SUM(CAST(size AS bigint)) * 8192 AS data_bytes FROM sys.database_files WHERE type = 0;"
LOG_SPACE_SQL = ("SELECT total_log_size_in_bytes AS log_bytes, used_log_space_in_percent AS log_used_percent "
                 "FROM sys.dm_db_log_space_usage;")
BLOCKING_SQL = ("SELECT TOP (%d) r.session_id AS pid, r.blocking_session_id AS blocked_by, "
                "r.wait_time / 1000 AS wait_s, r.wait_type, DB_NAME(r.database_id) AS database_name, "
                "LEFT(t.text, 200) AS query "
                "FROM sys.dm_exec_requests r OUTER APPLY sys.dm_exec_sql_text(r.sql_handle) t "
                "WHERE r.blocking_session_id <> 0 ORDER BY r.wait_time DESC;" % LONG_QUERIES_SHOWN)
# The server's own record of every backup of the database (ours and anyone else's), newest first; ages in
# seconds by the server's clock (backup_finish_date is the server's local time).
BACKUP_HISTORY_SQL = ("SELECT TOP (50) b.type, b.is_copy_only, DATEDIFF(SECOND, b.backup_finish_date, GETDATE()) "
                      "AS age_s, m.physical_device_name AS device FROM msdb.dbo.backupset b "
                      "JOIN msdb.dbo.backupmediafamily m ON m.media_set_id = b.media_set_id "
                      "WHERE b.database_name = %s ORDER BY b.backup_finish_date DESC;")
HISTORY_TYPES = {"D": "full", "I": "differential", "L": "log"}
OUR_BACKUP_PREFIXES = ("rollcall-backup-",)


def is_ours(device, server_directory):
    """Whether a backup file named in msdb was written by Rollcall (its directory and file name prefix)."""
    if not device:
        return False
    name = (ntpath.basename if "\\" in device else posixpath.basename)(device)
    if not name.startswith(OUR_BACKUP_PREFIXES):
        return False
    if not server_directory:
        return True
    folder = (ntpath.dirname if "\\" in device else posixpath.dirname)(device)
    return folder.rstrip("\\/").lower() == server_directory.rstrip("\\/").lower()


def parse_server_health(server, state, size, log, blocking, history, server_directory=None):
    """The facts health judges, from the rows of the queries above (``size``/``log`` empty when not ONLINE)."""
    server = server[0] if server else {}
    engine_edition = server.get("engine_edition")
    facts = {
        "edition": server.get("edition"), "version": server.get("version"),
        "express": engine_edition is not None and int(engine_edition) == EXPRESS_EDITION,
        "state": None, "user_access": None, "read_only": None, "recovery_model": None,
        "data_bytes": None, "log_bytes": None, "log_used_percent": None, "blocked": [], "newest": {},
        "outside_full": None,
    }
    if state:
        row = state[0]
        facts.update(state=row["state_desc"], user_access=row["user_access_desc"],
                     read_only=bool(row["is_read_only"]), recovery_model=row["recovery_model_desc"])
    if size and size[0].get("data_bytes") is not None:
        facts["data_bytes"] = int(size[0]["data_bytes"])
    if log:
        facts["log_bytes"] = int(log[0]["log_bytes"])
        facts["log_used_percent"] = round(float(log[0]["log_used_percent"]), 1)
    for row in blocking:
        facts["blocked"].append({"pid": int(row["pid"]), "blocked_by": int(row["blocked_by"]),
                                 "wait_s": int(row.get("wait_s") or 0), "wait_type": row.get("wait_type"),
                                 "database": row.get("database_name"), "query": (row.get("query") or "")[:80]})
    newest_ours_full = None
    for row in history:  # newest first
        kind = HISTORY_TYPES.get(str(row["type"]).strip(), "other")
        entry = {"type": kind, "age_s": int(row["age_s"]), "copy_only": bool(row["is_copy_only"]),
                 "device": row.get("device"), "ours": is_ours(row.get("device"), server_directory)}
        facts["newest"].setdefault(kind, entry)
        if kind == "full" and not entry["copy_only"]:
            if entry["ours"]:
                newest_ours_full = newest_ours_full or entry
            elif newest_ours_full is None and facts["outside_full"] is None:
                # A full, non-copy-only backup newer than Rollcall's newest is the differential base now.
                facts["outside_full"] = entry
    return facts


# ----------------------------------------------------------------------- post-restore validation
ORPHANED_USERS_SQL = ("SELECT dp.name FROM sys.database_principals dp "
                      "LEFT JOIN sys.server_principals sp ON sp.sid = dp.sid "
                      "WHERE dp.type = 'S' AND dp.authentication_type = 1 AND dp.principal_id > 4 "
                      "AND sp.sid IS NULL ORDER BY dp.name;")
UNTRUSTED_CONSTRAINTS_SQL = (
    "SELECT OBJECT_SCHEMA_NAME(parent_object_id) AS schema_name, OBJECT_NAME(parent_object_id) AS table_name, "
    "name, is_disabled FROM sys.foreign_keys WHERE is_disabled = 1 OR is_not_trusted = 1 "
    "UNION ALL SELECT OBJECT_SCHEMA_NAME(parent_object_id), OBJECT_NAME(parent_object_id), name, is_disabled "
    "FROM sys.check_constraints WHERE is_disabled = 1 OR is_not_trusted = 1 ORDER BY 1, 2, 3;")
CHECK_CONSTRAINTS_SQL = "DBCC CHECKCONSTRAINTS WITH ALL_CONSTRAINTS, NO_INFOMSGS;"
PERMISSIONS_SQL = (
    "SELECT pr.name AS principal, pe.state_desc AS state, pe.permission_name AS permission, "
    "pe.class_desc AS class, CASE pe.class WHEN 1 THEN OBJECT_SCHEMA_NAME(pe.major_id) + N'.' + "
    "OBJECT_NAME(pe.major_id) WHEN 3 THEN SCHEMA_NAME(pe.major_id) ELSE N'' END AS object_name "
    "FROM sys.database_permissions pe JOIN sys.database_principals pr ON pr.principal_id = pe.grantee_principal_id "
    "WHERE pr.name <> N'public' AND NOT (pr.name = N'dbo' AND pe.permission_name = N'CONNECT');")
ROLE_MEMBERS_SQL = ("SELECT r.name AS role_name, m.name AS member FROM sys.database_role_members rm "
                    "JOIN sys.database_principals r ON r.principal_id = rm.role_principal_id "
                    "JOIN sys.database_principals m ON m.principal_id = rm.member_principal_id;")


def permission_lines(permissions, members):
    """Every grant and role membership of a database as sorted, comparable lines."""
    lines = set()
    for row in permissions:
        state = "GRANT" if row["state"] == "GRANT_WITH_GRANT_OPTION" else row["state"]
        if row["class"] == "DATABASE":
            on = ""
        elif row["class"] == "SCHEMA":
            on = " ON SCHEMA::%s" % quote_name(row["object_name"] or "?")
        else:
            on = " ON %s" % (row["object_name"] or "%s ?" % row["class"])
        lines.add("%s %s%s TO %s" % (state, row["permission"], on, quote_name(row["principal"])))
    for row in members:
        lines.add("MEMBER %s OF %s" % (quote_name(row["member"]), quote_name(row["role_name"])))
    return sorted(lines)


def judge_restore(expected_counts, counts, violations, untrusted, orphaned, before=None, after=None):
    """The post-restore validation (issue 17): (problems, notes). Problems fail the restore's last step.

    Row counts of the restored, live database equal the backup's manifest; no constraint is violated
    (DBCC CHECKCONSTRAINTS) and none is disabled or untrusted; no database user lost its login (an orphaned
    user cannot log in after a restore onto another server). Grants that differ from the database's before the
    restore are notes: a restore of an older backup brings that backup's grants back.
    """
    problems, notes = [], []
    differ = []
    for table in sorted(set(expected_counts) | set(counts)):
        want, got = expected_counts.get(table), counts.get(table)
        if want != got:
            shown_got = "no table" if got is None else got
            shown_want = "no table" if want is None else want
            differ.append("%s: %s rows, the backup had %s" % (table, shown_got, shown_want))
    if differ:
        problems.append("row counts differ from the backup: " + "; ".join(differ[:10]))
    if violations:
        shown = ["%s %s (%s)" % (v.get("Table"), v.get("Constraint"), v.get("Where")) for v in violations[:5]]
        problems.append("%d row(s) violate constraints (DBCC CHECKCONSTRAINTS): %s"
                        % (len(violations), "; ".join(shown)))
    if untrusted:
        shown = ["%s.%s %s (%s)" % (u["schema_name"], u["table_name"], u["name"],
                                    "disabled" if u["is_disabled"] else "not trusted") for u in untrusted[:5]]
        problems.append("%d constraint(s) disabled or not trusted: %s; re-enable them WITH CHECK"
                        % (len(untrusted), "; ".join(shown)))
    if orphaned:
        problems.append("database user(s) without a login on this server: %s; map each to its login with "
                        "ALTER USER [name] WITH LOGIN = [name]" % ", ".join(orphaned))
    if before is not None and after is not None:
        gone, new = sorted(set(before) - set(after)), sorted(set(after) - set(before))
        if gone or new:
            notes.append("grants differ from the database's before the restore (the backup's grants are back): "
                         "no longer %s; now also %s" % (", ".join(gone[:10]) or "-", ", ".join(new[:10]) or "-"))
        else:
            notes.append("grants and role memberships are the same as before the restore (%d)" % len(after))
    return problems, notes


def server_join(directory, name):
    """``directory``/``name`` with the server's separator (Windows paths keep their backslashes)."""
    return (ntpath.join if "\\" in directory else posixpath.join)(directory, name)


class MSSQL(MSSQLUpkeep, Engine):
    name = "mssql"
    dump_format = "SQL Server native backup (BACKUP DATABASE ... WITH CHECKSUM)"
    tools = ()
    # The backup flows read these (backup.take_backup): SQL Server keeps differential chains; the next dump is
    # ``backup_kind`` (full / differential), COPY_ONLY when ``copy_only`` (a full that leaves the chain alone).
    backup_chains = True
    backup_kind = "full"
    copy_only = False

    def __init__(self, runner, target, server_directory=None, local_directory=None):
        super().__init__(runner, target)
        self.server_directory = server_directory
        self.local_directory = local_directory or server_directory
        self.manifest = None

    def prepare_for(self, manifest):
        self.manifest = manifest

    # ---------------------------------------------------------------- plumbing
    def connect(self, database="master"):
        if not HAS_PYMSSQL:
            raise EngineError("SQL Server support needs the Python package pymssql on the managed host")
        t = self.target
        try:
            return pymssql.connect(server=t.host or "127.0.0.1", port=str(t.port or 1433), user=t.user,
                                   password=t.password, database=database, login_timeout=10, autocommit=True)
        except pymssql.Error as exc:
            raise EngineError("SQL Server at %s: cannot connect: %s" % (t.where(), _first_line(exc))) from None

    def query(self, sql, database="master", params=None):
        connection = self.connect(database)
        try:
            cursor = connection.cursor(as_dict=True)
            cursor.execute(sql, params)
            rows = []
            while True:
                if cursor.description:
                    rows.extend(cursor.fetchall())
                if not cursor.nextset():
                    break
            return rows
        except pymssql.Error as exc:
            raise EngineError("SQL Server at %s: %s" % (self.target.where(), _first_line(exc))) from None
        finally:
            connection.close()

    def _directories(self):
        """(server_directory, local_directory), checked: the server writes and reads there, we stream."""
        if not self.server_directory:
            raise EngineError("engine mssql needs server_directory: a directory on the SQL Server machine where "
                              "the server writes and reads backup files (and local_directory, the same directory "
                              "as seen from where the module runs, when that is another machine)")
        if not os.path.isdir(self.local_directory):
            raise EngineError("local_directory %s does not exist here; it must be server_directory %s as seen from "
                              "where the module runs (a share or the same machine)"
                              % (self.local_directory, self.server_directory))
        return self.server_directory, self.local_directory

    def _scratch_file(self, prefix):
        """(server path, local path) of a new, unique backup file name in the shared directory."""
        server, local = self._directories()
        name = "%s-%s.bak" % (prefix, uuid.uuid4().hex)
        return server_join(server, name), os.path.join(local, name)

    def _remove(self, server_path, local_path):
        """Delete a temporary backup file: here first; if we may not, ask the server (it wrote the file)."""
        try:
            os.unlink(local_path)
            return
        except OSError:
            pass  # not ours to delete, or not visible from here (then the server may still have it)
        with contextlib.suppress(EngineError):
            self.query("EXECUTE master.dbo.xp_delete_file 0, %s;" % quote_string(server_path))
        if os.path.exists(local_path):
            raise EngineError("could not delete the temporary backup file %s; delete it by hand" % local_path)

    def _write_local(self, chunks, local_path):
        """Stream ``chunks`` into a new file the server can read (given to the owner of the directory)."""
        directory = os.path.dirname(local_path)
        fd = os.open(local_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if os.geteuid() == 0 else 0o640)
        with os.fdopen(fd, "wb") as handle:
            if os.geteuid() == 0:
                owner = os.stat(directory)
                os.fchown(handle.fileno(), owner.st_uid, owner.st_gid)
            for data in chunks:
                handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())

    def header(self, server_path):
        return parse_header(self.query(headeronly_sql(server_path)))

    # ---------------------------------------------------------------- introspection
    def server_version(self):
        return self.query("SELECT CAST(SERVERPROPERTY('ProductVersion') AS nvarchar(64)) AS v;")[0]["v"]

    def tool_versions(self):
        return {"pymssql": getattr(pymssql, "__version__", "unknown") if HAS_PYMSSQL else "missing"}

    def database_exists(self, database):
        return bool(self.query("SELECT 1 AS x FROM sys.databases WHERE name = %s;", params=(database,)))

    def row_counts(self, database):
        counts = {}
        for row in self.query(ROW_COUNTS_SQL, database):
            schema, table = row["schema_name"], row["table_name"]
            total = self.query(count_sql(schema, table), database)
            counts["%s.%s" % (schema, table)] = int(total[0]["n"])
        return counts

    def schema_revision(self, database):
        rows = self.query("SELECT OBJECT_ID(N'dbo.alembic_version') AS id;", database)
        if rows[0]["id"] is None:
            return None
        rows = self.query("SELECT version_num FROM dbo.alembic_version;", database)
        return rows[0]["version_num"] if rows else None

    def privileges(self, database):
        return None

    def activity(self, long_query_seconds=60):
        requests_sql = long_requests_sql(long_query_seconds)
        return parse_activity(self.query(CONNECTIONS_SQL), self.query(requests_sql))

    # ---------------------------------------------------------------- backup
    def dump(self, sink):
        """BACKUP DATABASE into server_directory, read its header, count rows, stream the file, delete it."""
        database = self.target.database
        kind = self.backup_kind
        server_path, local_path = self._scratch_file("rollcall-backup")
        try:
            self.query(backup_sql(database, server_path, kind, copy_only=self.copy_only))
            header = self.header(server_path)
            if header["type"] != kind or header["database"] != database:
                raise EngineError("SQL Server at %s wrote a %s backup of %s where a %s backup of %s was asked for"
                                  % (self.target.where(), header["type"], header["database"], kind, database))
            # BACKUP cannot run inside a transaction, so the rows are counted right after it, not in its snapshot.
            counts = self.row_counts(database)
            try:
                handle = open(local_path, "rb")  # noqa: SIM115 - closed by the with block below
            except FileNotFoundError:
                raise EngineError("SQL Server wrote %s, but it is not at %s here: local_directory must be "
                                  "server_directory as seen from where the module runs"
                                  % (server_path, local_path)) from None
            with handle:
                for data in iter(lambda: handle.read(CHUNK), b""):
                    sink(data)
        finally:
            self._remove(server_path, local_path)
        header = dict(header, copy_only=header["copy_only"] or bool(self.copy_only), row_counts_taken=ROW_COUNTS_TAKEN)
        kind_text = "differential" if kind == "differential" else ("copy-only full" if self.copy_only else "full")
        return {"row_counts": counts, "format": "%s, %s" % (self.dump_format, kind_text),
                "archive_format": "bak", "engine_facts": header}

    def check_chain(self, parent, child):
        """Why the backup ``child`` (a manifest) does not apply on top of ``parent`` (its manifest), or None."""
        for manifest in (parent, child):
            if not manifest.get(self.name):
                return "backup %s has no SQL Server header in its manifest" % manifest.get("name", "?")
        return chain_problem(parent[self.name], child[self.name])

    # ---------------------------------------------------------------- verify and restore
    def native_check(self, chunks):
        """Copy the backup where the server reads it, RESTORE VERIFYONLY WITH CHECKSUM, compare its header."""
        server_path, local_path = self._scratch_file("rollcall-verify")
        try:
            self._write_local(chunks, local_path)
            status, detail = self.native_verify(server_path)
            if status != "passed":
                return status, detail
            header = self.header(server_path)
        finally:
            self._remove(server_path, local_path)
        recorded = (self.manifest or {}).get(self.name) or {}
        for key in ("type", "database", "first_lsn", "last_lsn", "checkpoint_lsn", "differential_base_lsn"):
            if key in recorded and str(recorded[key]) != str(header[key]):
                return "failed", ("the backup's header says %s %s, its manifest %s" % (key, header[key], recorded[key]))
        if not header["has_checksums"]:
            return "failed", "the backup was taken without CHECKSUM"
        return "passed", "%s; %s backup, LSNs %s-%s as in the manifest" % (detail, header["type"], header["first_lsn"],
                                                                           header["last_lsn"])

    def native_verify(self, server_path):
        try:
            self.query(verifyonly_sql(server_path))
        except EngineError as exc:
            return "failed", str(exc)
        return "passed", "RESTORE VERIFYONLY WITH CHECKSUM: the backup set is complete and readable"

    def default_paths(self):
        rows = self.query(DEFAULT_PATHS_SQL)
        row = rows[0] if rows else {}
        return row.get("data_path"), row.get("log_path")

    def restore(self, chunks, database):
        self.restore_chain([chunks], database)

    def restore_chain(self, streams, database):
        """Restore a full backup (and the differential on top of it) into the new ``database``.

        Each stream is copied where the server reads it, restored, and deleted before the next: the full one
        WITH NORECOVERY when a differential follows, the last one WITH RECOVERY. Every file is MOVEd to a new,
        unique name in the server's default data / log directory.
        """
        check_database_name(database)
        if not 1 <= len(streams) <= 2:
            raise EngineError("a SQL Server restore takes a full backup and at most one differential, not %d "
                              "backups" % len(streams))
        data_dir, log_dir = self.default_paths()
        headers = []
        for index, chunks in enumerate(streams):
            last = index == len(streams) - 1
            server_path, local_path = self._scratch_file("rollcall-restore")
            try:
                self._write_local(chunks, local_path)
                header = self.header(server_path)
                expected = "full" if index == 0 else "differential"
                if header["type"] != expected:
                    raise EngineError("backup %d of the chain is a %s backup, not a %s one"
                                      % (index + 1, header["type"], expected))
                if headers:
                    problem = chain_problem(headers[0], header)
                    if problem:
                        raise EngineError("the differential does not apply to its full backup: %s" % problem)
                headers.append(header)
                moves = []
                if index == 0:
                    filelist = self.query(filelistonly_sql(server_path))
                    if not filelist:
                        raise EngineError("RESTORE FILELISTONLY listed no files")
                    original = filelist[0]["PhysicalName"]
                    fallback = (ntpath.dirname if "\\" in original else posixpath.dirname)(original)
                    # A unique file name: the live database may still use files named after an earlier scratch.
                    moves = plan_moves(filelist, "%s_%s" % (database, uuid.uuid4().hex[:8]), data_dir or fallback,
                                       log_dir or data_dir or fallback)
                self.query(restore_sql(database, server_path, moves, norecovery=not last))
            finally:
                self._remove(server_path, local_path)

    def create_database(self, database, like=None):
        check_database_name(database)  # RESTORE DATABASE creates it

    def drop_database(self, database):
        """Drop ``database`` if it exists; one left RESTORING (by a failed chain) cannot be ALTERed, only dropped."""
        check_database_name(database)
        self.query("IF DB_ID(%s) IS NOT NULL BEGIN IF DATABASEPROPERTYEX(%s, 'Status') = 'ONLINE' "
                   "ALTER DATABASE %s SET SINGLE_USER WITH ROLLBACK IMMEDIATE; DROP DATABASE %s; END;"
                   % (quote_string(database), quote_string(database), quote_name(database), quote_name(database)))

    def swap_in(self, scratch, database, keep_old):
        """Rename the live database aside, the scratch one into its place; on failure the old one goes back."""
        old = check_database_name(database + OLD_SUFFIX)
        check_database_name(scratch)
        check_database_name(database)
        if not self.database_exists(database):
            self.query("ALTER DATABASE %s MODIFY NAME = %s;" % (quote_name(scratch), quote_name(database)))
            return None
        self.drop_database(old)
        self.query("ALTER DATABASE %s SET SINGLE_USER WITH ROLLBACK IMMEDIATE;" % quote_name(database))
        try:
            self.query("ALTER DATABASE %s MODIFY NAME = %s;" % (quote_name(database), quote_name(old)))
        except EngineError:
            self.query("ALTER DATABASE %s SET MULTI_USER;" % quote_name(database))
            raise
        try:
            self.query("ALTER DATABASE %s MODIFY NAME = %s;" % (quote_name(scratch), quote_name(database)))
        except EngineError as exc:
            self.query("ALTER DATABASE %s MODIFY NAME = %s;" % (quote_name(old), quote_name(database)))
            self.query("ALTER DATABASE %s SET MULTI_USER;" % quote_name(database))
            raise EngineError("swapping in the restored database failed (%s); %s is back as it was"
                              % (exc, database)) from None
        self.query("ALTER DATABASE %s SET MULTI_USER;" % quote_name(database))
        if not keep_old:
            self.drop_database(old)
            return None
        self.query("ALTER DATABASE %s SET MULTI_USER;" % quote_name(old))
        return old

    def server_health(self, database, server_directory=None):
        """The facts of health.sqlserver_check: edition, state, data size, log use, blocking, msdb history."""
        check_database_name(database)
        state = self.query(DATABASE_STATE_SQL, params=(database,))
        online = bool(state) and state[0]["state_desc"] == "ONLINE"
        return parse_server_health(self.query(SERVER_FACTS_SQL), state,
                                   self.query(DATA_SIZE_SQL, database) if online else [],
                                   self.query(LOG_SPACE_SQL, database) if online else [],
                                   self.query(BLOCKING_SQL), self.query(BACKUP_HISTORY_SQL, params=(database,)),
                                   server_directory)

    def permission_lines(self, database):
        return permission_lines(self.query(PERMISSIONS_SQL, database), self.query(ROLE_MEMBERS_SQL, database))

    def validate_restored(self, database, expected_counts, before=None):
        """judge_restore() of the live ``database`` after a restore; (problems, notes, permission lines)."""
        check_database_name(database)
        after = self.permission_lines(database)
        problems, notes = judge_restore(expected_counts, self.row_counts(database),
                                        self.query(CHECK_CONSTRAINTS_SQL, database),
                                        self.query(UNTRUSTED_CONSTRAINTS_SQL, database),
                                        [row["name"] for row in self.query(ORPHANED_USERS_SQL, database)],
                                        before, after)
        return problems, notes, after

    def integrity_check(self, database):
        try:
            self.query("DBCC CHECKDB (%s) WITH NO_INFOMSGS;" % quote_name(database))
        except EngineError as exc:
            return "failed", str(exc)
        return "passed", "DBCC CHECKDB found no errors"


def _first_line(exc):
    """The server's message from a pymssql error, without DB-Lib noise: (code, b"text") or ((code, b"text"),)."""
    args = getattr(exc, "args", ())
    if len(args) == 1 and isinstance(args[0], tuple):
        args = args[0]
    text = args[1] if len(args) > 1 else (args[0] if args else "")
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    lines = []
    for line in str(text).splitlines():
        line = re.sub(r"\s*DB-Lib error message \d+(, severity \d+)?:?\s*$", "", line).strip()
        if line and not line.startswith("General SQL Server error") and line not in lines:
            lines.append(line)
    return "; ".join(lines[:3]) if lines else type(exc).__name__
