# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""SQL Server: native BACKUP / RESTORE through pymssql, with the differential chain recorded.

SQL Server writes its backup files itself, on a path the *server* can reach. Rollcall asks for
``BACKUP DATABASE ... TO DISK ... WITH CHECKSUM`` into ``server_directory`` and, when that directory is also
readable from the managed host (``local_directory``, e.g. a share or the same machine), streams the file into
the usual artifact (checksum, compression, encryption, manifest).

No SQL Server runs on our machines: the T-SQL built here and the result parsing are unit-tested
(tests/unit/test_mssql.py); tests/integration/test_mssql_server.py runs against a real server when ROLLCALL_MSSQL_HOST
(and _PORT, _USER, _PASSWORD) are set, and is skipped, visibly, otherwise.
"""

import ntpath
import os

from .base import Engine, EngineError, check_database_name

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


ROW_COUNTS_SQL = """
SELECT s.name AS schema_name, t.name AS table_name
  FROM sys.tables t JOIN sys.schemas s ON s.schema_id = t.schema_id
 WHERE t.is_ms_shipped = 0 ORDER BY 1;
"""


class MSSQL(Engine):
    name = "mssql"
    dump_format = "SQL Server native backup (BACKUP DATABASE ... WITH CHECKSUM)"
    tools = ()

    def __init__(self, runner, target, server_directory=None, local_directory=None):
        super().__init__(runner, target)
        self.server_directory = server_directory
        self.local_directory = local_directory

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

    def native_verify(self, server_path):
        try:
            self.query(verifyonly_sql(server_path))
        except EngineError as exc:
            return "failed", str(exc)
        return "passed", "RESTORE VERIFYONLY WITH CHECKSUM: the backup set is complete and readable"

    def native_check(self, chunks):
        raise EngineError("SQL Server checks its backups where the server can read them; use native_verify")

    def dump(self, sink):
        raise EngineError("SQL Server backups are written by the server; the backup modules do not drive them yet")

    def restore(self, chunks, database):
        raise EngineError("SQL Server restores read from the server's disk; the restore module does not drive them "
                          "yet")

    def create_database(self, database, like=None):
        check_database_name(database)

    def drop_database(self, database):
        check_database_name(database)
        self.query("IF DB_ID(%s) IS NOT NULL BEGIN ALTER DATABASE %s SET SINGLE_USER WITH ROLLBACK IMMEDIATE; "
                   "DROP DATABASE %s; END;" % (quote_string(database), quote_name(database), quote_name(database)))

    def swap_in(self, scratch, database, keep_old):
        raise EngineError("not implemented for SQL Server yet")

    def integrity_check(self, database):
        try:
            self.query("DBCC CHECKDB (%s) WITH NO_INFOMSGS;" % quote_name(database))
        except EngineError as exc:
            return "failed", str(exc)
        return "passed", "DBCC CHECKDB found no errors"


def _first_line(exc):
    args = getattr(exc, "args", ())
    text = args[1] if len(args) > 1 else str(exc)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return str(text).strip().splitlines()[0] if str(text).strip() else type(exc).__name__
