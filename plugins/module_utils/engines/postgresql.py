# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL: pg_dump (custom format) / pg_restore / psql, run through a runner (on the host or in a container).

The dump and the per-table row counts share one snapshot: a psql session exports it (REPEATABLE READ), counts
every table in it, and stays open while ``pg_dump --snapshot`` reads the same data. Passwords go through
PGPASSWORD in the tool's environment; identifiers and literals are quoted by psql (``:"name"``, ``:'value'``).
"""

import hashlib
import queue
import re
import threading
import uuid

from .base import (
    LONG_QUERIES_SHOWN,
    OLD_SUFFIX,
    Engine,
    EngineError,
    check_database_name,
    check_seconds,
    parse_activity,
)

MAINTENANCE_DB = "postgres"
DUMP_MAGIC = b"PGDMP"

ROW_COUNTS_SQL = r"""
SELECT n.nspname || '.' || c.relname,
       (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM ONLY %I.%I', n.nspname, c.relname),
                                            false, true, '')))[1]::text
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'
 ORDER BY 1;
"""

PRIVILEGES_SQL = r"""
SELECT n.nspname || '.' || c.relname || ':' || c.relkind::text || ':' || pg_get_userbyid(c.relowner) || ':'
       || coalesce(c.relacl::text, '')
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_toast%'
   AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
UNION ALL
SELECT 'schema ' || nspname || ':' || pg_get_userbyid(nspowner) || ':' || coalesce(nspacl::text, '')
  FROM pg_namespace WHERE nspname NOT IN ('pg_catalog', 'information_schema') AND nspname NOT LIKE 'pg\_%'
 ORDER BY 1;
"""

# activity(): client connections vs max_connections, and statements running longer than :'secs' seconds.
# Whitespace in the statement text is collapsed (it must not break psql's tab-separated rows).
ACTIVITY_SQL = r"""
SELECT 'connections', count(*)::text, current_setting('max_connections')
  FROM pg_stat_activity WHERE backend_type = 'client backend';
SELECT 'long', pid::text, floor(extract(epoch FROM clock_timestamp() - query_start))::bigint::text,
       left(regexp_replace(coalesce(query, ''), '\s+', ' ', 'g'), 200)
  FROM pg_stat_activity
 WHERE backend_type = 'client backend' AND state NOT IN ('idle') AND pid <> pg_backend_pid()
   AND query_start < clock_timestamp() - make_interval(secs => :'secs')
 ORDER BY query_start LIMIT :limit;
"""


def _error_line(stderr):
    """The useful part of libpq / pg_dump errors: 'FATAL:  password authentication failed ...' etc."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in lines:
        match = re.search(r"(?:FATAL|ERROR):\s+(.*)", line)
        if match:
            return match.group(1).strip()
    for line in lines:
        if "error:" in line:
            return line.split("error:", 1)[1].strip()
    return lines[-1] if lines else "no error message"


class PostgreSQL(Engine):
    name = "postgresql"
    dump_format = "pg_dump custom (-Fc)"
    tools = ("pg_dump", "pg_restore", "psql")
    # "custom": one pg_dump -Fc stream. "directory": pg_dump -Fd with ``jobs`` parallel workers into a work
    # directory where the tools run, streamed as tar; restored with pg_restore -j.
    archive_format = "custom"
    jobs = 1

    def prepare_for(self, manifest):
        self.archive_format = manifest.get("archive_format", "custom")

    def _workdir(self):
        return "/tmp/rollcall-%s" % uuid.uuid4().hex  # noqa: S108 - unguessable name, created 0700 below

    def _run_checked(self, argv, what, **kwargs):
        result = self.runner.run(argv, env=self._env(), **kwargs)
        if result.rc != 0:
            self._fail(what, result)
        return result

    def _unpack(self, chunks, workdir):
        """Directory format: the tar stream back into a directory where the tools run."""
        self._run_checked(["mkdir", "-m", "0700", workdir], "creating %s" % workdir)
        self._run_checked(["tar", "-C", workdir, "-xf", "-"], "unpacking the directory-format dump", stdin=chunks)

    # ---------------------------------------------------------------- plumbing
    def _conn_args(self, database):
        t = self.target
        return ["-h", t.host or "127.0.0.1", "-p", str(t.port or 5432), "-U", t.user or "postgres", "-d", database]

    def _env(self):
        env = {"PGCONNECT_TIMEOUT": "10", "PGAPPNAME": "rollcall"}
        if self.target.password:
            env["PGPASSWORD"] = self.target.password
        return env

    def _fail(self, what, result):
        raise EngineError("PostgreSQL at %s: %s failed: %s" % (self.target.where(), what, _error_line(result.stderr)))

    def psql(self, sql, database=None, variables=None, what="query"):
        """Run SQL (read from stdin, so psql quotes :"ident" / :'literal'); returns rows as lists of fields."""
        argv = ["psql", "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-w"]
        for key, value in sorted((variables or {}).items()):
            argv += ["-v", "%s=%s" % (key, value)]
        argv += self._conn_args(database or self.target.database)
        result = self.runner.run(argv, stdin=[sql.encode()], env=self._env())
        if result.rc != 0:
            self._fail(what, result)
        return [line.split("\t") for line in result.text.splitlines() if line]

    # ---------------------------------------------------------------- introspection
    def server_version(self):
        return self.psql("SHOW server_version;", MAINTENANCE_DB, what="reading the server version")[0][0]

    def database_exists(self, database):
        rows = self.psql("SELECT 1 FROM pg_database WHERE datname = :'d';", MAINTENANCE_DB, {"d": database},
                         what="looking up database %s" % database)
        return bool(rows)

    def row_counts(self, database):
        return {name: int(count) for name, count in self.psql(ROW_COUNTS_SQL, database, what="counting rows")}

    def activity(self, long_query_seconds=60):
        rows = self.psql(ACTIVITY_SQL, self.target.database or MAINTENANCE_DB,
                         {"secs": check_seconds(long_query_seconds), "limit": LONG_QUERIES_SHOWN},
                         what="reading pg_stat_activity")
        return parse_activity(rows)

    def privileges(self, database):
        """sha256 over owners and grants of every schema and relation (compared after a restore)."""
        rows = self.psql(PRIVILEGES_SQL, database, what="reading owners and grants")
        return hashlib.sha256("\n".join(r[0] for r in rows).encode()).hexdigest()

    def schema_revision(self, database):
        exists = self.psql("SELECT to_regclass('public.alembic_version') IS NOT NULL;", database,
                           what="looking for alembic_version")
        if exists[0][0] != "t":
            return None
        rows = self.psql("SELECT version_num FROM public.alembic_version;", database, what="reading the revision")
        return rows[0][0] if rows else None

    # ---------------------------------------------------------------- backup
    def dump(self, sink):
        database = self.target.database
        lines, done = queue.Queue(), threading.Event()
        session = {}

        def statements():
            yield ("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;\n"
                   "SELECT 'snapshot', pg_export_snapshot();\n" + ROW_COUNTS_SQL + "SELECT 'counted', '';\n").encode()
            done.wait()
            yield b"COMMIT;\n"

        def receive(data):
            for line in data.decode("utf-8", "replace").splitlines():
                lines.put(line)

        def hold_snapshot():
            try:
                argv = ["psql", "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-w"]
                session["result"] = self.runner.run(argv + self._conn_args(database), stdin=statements(),
                                                    sink=receive, env=self._env())
            except Exception as exc:  # noqa: BLE001 - re-raised in the calling thread
                session["error"] = exc
            finally:
                lines.put(None)

        holder = threading.Thread(target=hold_snapshot, daemon=True)
        holder.start()
        counts = {}
        failed = False

        def next_line(wait):
            try:
                line = lines.get(timeout=wait)
            except queue.Empty:
                raise EngineError("PostgreSQL at %s: the snapshot session did not answer within %d s"
                                  % (self.target.where(), wait)) from None
            return (None, None) if line is None else line.partition("\t")[::2]

        def session_failed(what):
            holder.join(30)
            if "error" in session:
                raise session["error"]
            self._fail(what, session["result"])

        try:
            name, snapshot = next_line(120)
            if name != "snapshot":
                session_failed("opening the snapshot")
            # pg_dump reads the exported snapshot while the session counts every table in the same snapshot.
            head = bytearray()

            def checked_sink(data):
                if len(head) < len(DUMP_MAGIC):
                    head.extend(data[:len(DUMP_MAGIC)])
                sink(data)

            if self.archive_format == "directory":
                result = self._dump_directory(snapshot, database, checked_sink)
            else:
                argv = ["pg_dump", "-Fc", "-w", "--snapshot=%s" % snapshot] + self._conn_args(database)
                result = self.runner.run(argv, sink=checked_sink, env=self._env())
            if result.rc != 0 or "error:" in result.stderr:
                # pg_dump failed (the server went away?): do not wait for a snapshot session that may hang.
                failed = True
                self._fail("pg_dump", result)
            while True:
                name, value = next_line(3600)
                if name == "counted":
                    break
                if name is None:
                    session_failed("counting rows in the snapshot")
                counts[name] = int(value)
        finally:
            done.set()
            holder.join(5 if failed else 60)
        if result.rc != 0 or "error:" in result.stderr:
            self._fail("pg_dump", result)
        if self.archive_format != "directory" and bytes(head[:len(DUMP_MAGIC)]) != DUMP_MAGIC:
            raise EngineError("PostgreSQL at %s: pg_dump exited 0 but wrote no archive (%s)"
                              % (self.target.where(), _error_line(result.stderr)))
        if "error" in session:
            raise session["error"]
        if self.archive_format == "directory":
            return {"row_counts": counts, "format": "pg_dump directory (-Fd -j %d), as tar" % self.jobs,
                    "archive_format": "directory", "snapshot": snapshot}
        return {"row_counts": counts, "format": self.dump_format, "archive_format": "custom", "snapshot": snapshot}

    def _dump_directory(self, snapshot, database, sink):
        workdir = self._workdir()
        try:
            argv = ["pg_dump", "-Fd", "-j", str(self.jobs), "-w", "--snapshot=%s" % snapshot, "-f", workdir]
            result = self.runner.run(argv + self._conn_args(database), env=self._env())
            if result.rc != 0 or "error:" in result.stderr:
                return result
            if self.runner.run(["test", "-s", workdir + "/toc.dat"]).rc != 0:
                raise EngineError("PostgreSQL at %s: pg_dump exited 0 but wrote no toc.dat" % self.target.where())
            return self._run_checked(["tar", "-C", workdir, "-cf", "-", "."], "streaming the dump directory",
                                     sink=sink)
        finally:
            self.runner.run(["rm", "-rf", workdir])

    # ---------------------------------------------------------------- verify and restore
    def native_check(self, chunks):
        if self.archive_format == "directory":
            workdir = self._workdir()
            try:
                self._unpack(chunks, workdir)
                result = self.runner.run(["pg_restore", "--file=/dev/null", workdir])
            finally:
                self.runner.run(["rm", "-rf", workdir])
        else:
            result = self.runner.run(["pg_restore", "--file=/dev/null"], stdin=chunks)
        if result.rc != 0:
            return "failed", "pg_restore could not read the whole archive: %s" % _error_line(result.stderr)
        return "passed", "pg_restore read the whole archive"

    def create_database(self, database, like=None):
        check_database_name(database)
        owner = self.target.user or "postgres"
        if like:
            rows = self.psql("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = :'d';",
                             MAINTENANCE_DB, {"d": like}, what="reading the owner of %s" % like)
            owner = rows[0][0] if rows else owner
        self.psql('CREATE DATABASE :"d" OWNER :"o" TEMPLATE template0 ENCODING \'UTF8\';', MAINTENANCE_DB,
                  {"d": database, "o": owner}, what="creating database %s" % database)

    def drop_database(self, database):
        check_database_name(database)
        self.psql('DROP DATABASE IF EXISTS :"d" WITH (FORCE);', MAINTENANCE_DB, {"d": database},
                  what="dropping database %s" % database)

    def restore(self, chunks, database):
        check_database_name(database)
        argv = ["pg_restore", "--exit-on-error", "-w"] + self._conn_args(database)
        if self.archive_format != "directory":
            self._run_checked(argv, "pg_restore into %s" % database, stdin=chunks)
            return
        workdir = self._workdir()
        try:
            self._unpack(chunks, workdir)
            what = "pg_restore -j %d into %s" % (self.jobs, database)
            self._run_checked(argv + ["-j", str(self.jobs), workdir], what)
        finally:
            self.runner.run(["rm", "-rf", workdir])

    def swap_in(self, scratch, database, keep_old):
        old = check_database_name(database + OLD_SUFFIX, "database name")
        self.drop_database(old)
        self.psql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname IN (:'d', :'s') "
            "AND pid <> pg_backend_pid();\n"
            'BEGIN;\nALTER DATABASE :"d" RENAME TO :"old";\nALTER DATABASE :"s" RENAME TO :"d";\nCOMMIT;\n',
            MAINTENANCE_DB, {"d": database, "s": scratch, "old": old}, what="swapping in the restored database")
        if not keep_old:
            self.drop_database(old)
            return None
        return old

    def integrity_check(self, database):
        rows = self.psql(
            "SELECT 'constraint ' || conrelid::regclass || '.' || conname FROM pg_constraint WHERE NOT convalidated "
            "UNION ALL SELECT 'index ' || indexrelid::regclass FROM pg_index WHERE NOT indisvalid;",
            database, what="checking constraints and indexes")
        if rows:
            return "failed", "not valid: %s" % ", ".join(r[0] for r in rows)
        return "passed", "all constraints validated, all indexes valid"
