# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL: pg_dump (custom format) / pg_restore / psql, run through a runner (on the host or in a container).

The dump and the per-table row counts share one snapshot: a psql session exports it (REPEATABLE READ), counts
every table in it, and stays open while ``pg_dump --snapshot`` reads the same data. Passwords go through
PGPASSWORD in the tool's environment; identifiers and literals are quoted by psql (``:"name"``, ``:'value'``).

Row counts are for tables only. A materialized view holds what its last refresh computed (pg_restore refreshes
it, and one created WITH NO DATA cannot be counted at all), so the manifest records whether each one is
populated, and the integrity check compares that.

pg_dump without --create leaves out the database's own properties (encoding and locale, owner, connection limit,
CONNECT/CREATE/TEMPORARY grants, comment, ALTER DATABASE / ALTER ROLE ... IN DATABASE settings). dump() records
them in the manifest (``postgresql.database``); a restore creates its database with them and puts the rest back
after pg_restore, so a restore into a new server gets them too. ``privileges()`` covers them.
"""

import contextlib
import hashlib
import json
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
from .upkeep import PostgreSQLUpkeep

MAINTENANCE_DB = "postgres"
DUMP_MAGIC = b"PGDMP"

# JIT off for the session first: the server would compile each count over a large table (a cost above jit_above_cost)
# for one scan, 20-40 ms per such table on a 930 MB one (PostgreSQL 11 added JIT; older servers have no such setting).
NO_JIT_SQL = r"""
DO $nojit$ BEGIN
  IF current_setting('server_version_num')::int >= 110000 THEN PERFORM set_config('jit', 'off', false); END IF;
END $nojit$;
"""
# One table's rows (n: its namespace, c: its pg_class row), and the tables that are counted: the same for the
# backup's counts and every count compared with them.
COUNT_SQL = ("(xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM ONLY %I.%I', "
             "n.nspname, c.relname),\n                                            false, true, '')))[1]::text")
USER_TABLES_SQL = r"""  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace{joins}
 WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'
 ORDER BY 1;
"""
ROW_COUNTS_SQL = (NO_JIT_SQL + "SELECT n.nspname || '.' || c.relname,\n       " + COUNT_SQL + "\n"
                  + USER_TABLES_SQL.format(joins=""))
# Right after pg_restore loaded a database, the server's statistics already hold each table's rows: a COPY's rows
# count in n_tup_ins, and in n_live_tup once its transaction committed (pg_restore's session reports them at the
# latest when it ends). A table whose statistics show exactly the backup's count (more than none), all of them
# inserted and live, nothing updated, deleted or dead, takes that figure; every other table (the statistics not
# reported yet or turned off, an autovacuum estimate, an empty table, a real difference) is counted as above. pg_restore
# writes each table's data with one COPY and creates triggers and rules after the data, so nothing else inserts
# there. This spares the scan of every restored table (0.3 s of a 930 MB one). :expected is the backup's counts as
# JSON; the third column says which way each figure was found.
EXPECTED_COUNTS_MAX = 64 * 1024
LOADED_ROW_COUNTS_SQL = (NO_JIT_SQL + "SELECT n.nspname || '.' || c.relname,\n"
                         "       CASE WHEN f.from_stats THEN s.n_live_tup::text ELSE " + COUNT_SQL + " END,\n"
                         "       CASE WHEN f.from_stats THEN 'statistics' ELSE 'counted' END\n"
                         + USER_TABLES_SQL.format(joins=r"""
  LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
  CROSS JOIN LATERAL (SELECT coalesce(
      s.n_live_tup > 0 AND s.n_tup_ins = s.n_live_tup AND s.n_tup_upd = 0 AND s.n_tup_del = 0 AND s.n_dead_tup = 0
      AND s.n_live_tup = (:'expected'::jsonb ->> (n.nspname || '.' || c.relname))::bigint, false) AS from_stats) f"""))
# Backups made before matviews had their own rule counted the populated ones like tables; restoring one of
# those compares counts the same way.
LEGACY_ROW_COUNTS_SQL = ROW_COUNTS_SQL.replace("c.relkind IN ('r', 'p')",
                                               "(c.relkind IN ('r', 'p') OR (c.relkind = 'm' AND c.relispopulated))")

MATVIEWS_SQL = r"""
SELECT n.nspname || '.' || c.relname, CASE WHEN c.relispopulated THEN 't' ELSE 'f' END
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'm' AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'
 ORDER BY 1;
"""

# One JSON line: the pg_database row (columns differ between versions: read by name in Python), the owner,
# grants (grantee, privilege, grantable; PUBLIC for grantee 0; NULL datacl = the defaults), comment, settings
# (role NULL: ALTER DATABASE ... SET; else ALTER ROLE ... IN DATABASE ... SET).
DATABASE_SQL = r"""
SELECT json_build_object(
  'row', row_to_json(d),
  'owner', pg_get_userbyid(d.datdba),
  'encoding', pg_encoding_to_char(d.encoding),
  'acl', CASE WHEN d.datacl IS NULL THEN NULL ELSE (
    SELECT coalesce(json_agg(json_build_array(g.grantee, g.privilege_type, g.is_grantable) ORDER BY g.grantee,
                             g.privilege_type), '[]'::json)
      FROM (SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END AS grantee,
                   a.privilege_type, a.is_grantable FROM aclexplode(d.datacl) a) g) END,
  'comment', shobj_description(d.oid, 'pg_database'),
  'settings', (SELECT coalesce(json_agg(json_build_array(r.rolname, c.item) ORDER BY r.rolname NULLS FIRST,
                                        c.n), '[]'::json)
                 FROM pg_db_role_setting s LEFT JOIN pg_roles r ON r.oid = s.setrole,
                      unnest(s.setconfig) WITH ORDINALITY AS c(item, n)
                WHERE s.setdatabase = d.oid))
  FROM pg_database d WHERE d.datname = :'d';
"""
# Settings whose value is a list of quoted names: ALTER ... SET takes each element as its own literal (as pg_dump
# does); any other value is one literal.
LIST_QUOTE_SETTINGS = ("local_preload_libraries", "search_path", "session_preload_libraries",
                       "shared_preload_libraries", "temp_tablespaces", "unix_socket_directories")
DATABASE_PRIVILEGES = ("CONNECT", "CREATE", "TEMPORARY")

# Owners and grants of every relation and schema. An ACL's entries are sorted: the same grants can be stored in
# another order (REASSIGN OWNED keeps the old order, pg_restore writes its own), which is not a difference.
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
SORTED_ACL = "coalesce((SELECT '{' || string_agg(a::text, ',' ORDER BY a::text) || '}' FROM unnest(ACL) a), '')"
PRIVILEGES_SORTED_SQL = (PRIVILEGES_SQL.replace("coalesce(c.relacl::text, '')", SORTED_ACL.replace("ACL", "c.relacl"))
                         .replace("coalesce(nspacl::text, '')", SORTED_ACL.replace("ACL", "nspacl")))


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
SELECT 'archiver', current_setting('archive_mode'),
       coalesce(extract(epoch FROM last_archived_time)::bigint::text, ''), coalesce(last_failed_wal, ''),
       coalesce(extract(epoch FROM last_failed_time)::bigint::text, ''), extract(epoch FROM now())::bigint::text
  FROM pg_stat_archiver;
"""


# pg_restore's "Command was:" after an error: an object the backup gives to a role the restore's login may not
# give objects to (it is not a superuser): a table made by hand as postgres in the app's database.
OWNER_COMMAND = re.compile(r"Command was: ALTER ([A-Z][A-Z ]*?) (\S+) OWNER TO (\S+?);")


def _error_line(stderr, login=None):
    """The useful part of libpq / pg_dump errors: 'FATAL:  password authentication failed ...' etc."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in lines:
        match = re.search(r"(?:FATAL|ERROR):\s+(.*)", line)
        if match:
            said = match.group(1).strip()
            owned = OWNER_COMMAND.search(stderr) if said.startswith("must be member of role") else None
            if owned:
                kind, name, role = owned.groups()
                said += ("; the backup has %s %s owned by %s, and the restore's login %s may not give objects to "
                         "that role: give it to the database's owner role (as a superuser: ALTER %s %s OWNER TO "
                         "%s;) or drop it, then back up again (docs/roles.md)"
                         % (kind.lower(), name, role, login or "?", kind, name, login or "<owner role>"))
            return said
    for line in lines:
        if "error:" in line:
            return line.split("error:", 1)[1].strip()
    return lines[-1] if lines else "no error message"


def database_properties(document):
    """The properties we keep of a database, from DATABASE_SQL's JSON: stable across versions and names."""
    row = document["row"]
    provider = row.get("datlocprovider") or "c"
    return {
        "owner": document["owner"],
        "encoding": document["encoding"],
        "collate": row.get("datcollate"),
        "ctype": row.get("datctype"),
        "locale_provider": {"i": "icu", "b": "builtin"}.get(provider, "libc"),
        "icu_locale": row.get("daticulocale", row.get("datlocale")) if provider != "c" else None,
        "connection_limit": int(row.get("datconnlimit", -1)),
        "acl": None if document["acl"] is None else sorted([str(g), str(p), bool(o)] for g, p, o in document["acl"]),
        "comment": document["comment"],
        "settings": [[role, item] for role, item in document["settings"]],
    }


def split_setting(item):
    """'name=value' as stored in pg_db_role_setting -> (name, [literal values])."""
    name, _sep, value = item.partition("=")
    if name.lower() not in LIST_QUOTE_SETTINGS:
        return name, [value]
    return name, split_quoted_list(value)


def split_quoted_list(value):
    """A list setting's stored text ('"$user", public', '"a,b", c') -> its elements (SplitGUCList's rules)."""
    elements, i, n = [], 0, len(value)
    while i < n:
        while i < n and value[i].isspace():
            i += 1
        if i >= n:
            break
        if value[i] == '"':
            j, element = i + 1, []
            while j < n:
                if value[j] == '"':
                    if j + 1 < n and value[j + 1] == '"':
                        element.append('"')
                        j += 2
                        continue
                    break
                element.append(value[j])
                j += 1
            elements.append("".join(element))
            i = j + 1
        else:
            j = i
            while j < n and value[j] != ",":
                j += 1
            elements.append(value[i:j].strip())
            i = j
        while i < n and value[i].isspace():
            i += 1
        if i < n and value[i] == ",":
            i += 1
    return elements


def restore_properties_sql(properties):
    """(SQL, psql variables) that give database :"d" the kept properties other than those of CREATE DATABASE.

    Every name and value goes through a psql variable, so psql quotes it.
    """
    statements, variables = [], {}

    def var(value):
        key = "v%d" % len(variables)
        variables[key] = value
        return key

    limit = int(properties.get("connection_limit", -1))
    if limit != -1:
        statements.append('ALTER DATABASE :"d" WITH CONNECTION LIMIT %d;' % limit)
    if properties.get("comment") is not None:
        statements.append('COMMENT ON DATABASE :"d" IS :\'%s\';' % var(properties["comment"]))
    for role, item in properties.get("settings") or []:
        name, values = split_setting(item)
        name = var(name)
        target = 'DATABASE :"d"' if role is None else 'ROLE :"%s" IN DATABASE :"d"' % var(role)
        literals = ", ".join(":'%s'" % var(v) for v in values) if values else "''"
        statements.append('ALTER %s SET :"%s" TO %s;' % (target, name, literals))
    if properties.get("acl") is not None:
        # From the defaults (PUBLIC: CONNECT, TEMPORARY; the owner: all) to exactly the kept grants.
        statements.append('REVOKE ALL ON DATABASE :"d" FROM PUBLIC;')
        statements.append('REVOKE ALL ON DATABASE :"d" FROM :"%s";' % var(properties["owner"]))
        for grantee, privilege, grantable in properties["acl"]:
            if privilege not in DATABASE_PRIVILEGES:
                raise EngineError("unknown database privilege %r in the backup" % privilege)
            to = "PUBLIC" if grantee == "PUBLIC" else ':"%s"' % var(grantee)
            option = " WITH GRANT OPTION" if grantable else ""
            statements.append('GRANT %s ON DATABASE :"d" TO %s%s;' % (privilege, to, option))
    return "\n".join(statements) + "\n", variables


# The swap, while the app keeps serving: a leftover <db>__rc_old goes, the live database stops taking new connections
# (the app waits through that; sms-app retries such a connection for a few seconds), its idle sessions end at once,
# busy sessions get up to :drain seconds to finish their work before they are ended too; then both renames in one
# transaction. A request sees at most a short wait, not an error. pg_stat_activity is re-read on every turn
# (pg_stat_clear_snapshot). Autovacuum workers (busy after a bulk load, and no one's work: autovacuum comes back) are
# neither waited for nor ended here: the restore's login is not a superuser, and pg_terminate_backend refuses it for
# them ("must be a superuser to terminate superuser process": a restore failed so whenever autovacuum was working on
# the live or the side database); ALTER DATABASE ... RENAME ends them itself (the server signals autovacuum workers of
# a database it needs to itself, whoever asks).
DRAIN_SECONDS = 5
SWAP_SQL = """DROP DATABASE IF EXISTS :"old" WITH (FORCE);
ALTER DATABASE :"d" ALLOW_CONNECTIONS false;
SELECT set_config('rollcall.swap_db', :'d', false), set_config('rollcall.swap_side', :'s', false),
       set_config('rollcall.swap_drain', :'drain', false);
DO $swap$
DECLARE
  busy_until timestamptz := clock_timestamp() + make_interval(secs => current_setting('rollcall.swap_drain')::int);
BEGIN
  LOOP
    PERFORM pg_stat_clear_snapshot();
    PERFORM pg_terminate_backend(pid) FROM pg_stat_activity
      WHERE datname IN (current_setting('rollcall.swap_db'), current_setting('rollcall.swap_side'))
        AND pid <> pg_backend_pid() AND backend_type <> 'autovacuum worker'
        AND (state = 'idle' OR clock_timestamp() > busy_until);
    EXIT WHEN NOT EXISTS (SELECT 1 FROM pg_stat_activity
      WHERE datname IN (current_setting('rollcall.swap_db'), current_setting('rollcall.swap_side'))
        AND pid <> pg_backend_pid() AND backend_type <> 'autovacuum worker');
    IF clock_timestamp() > busy_until + interval '10 seconds' THEN
      RAISE EXCEPTION 'sessions of % did not end within % s', current_setting('rollcall.swap_db'),
        current_setting('rollcall.swap_drain')::int + 10;
    END IF;
    PERFORM pg_sleep(0.02);
  END LOOP;
END
$swap$;
BEGIN;
ALTER DATABASE :"d" RENAME TO :"old";
ALTER DATABASE :"s" RENAME TO :"d";
COMMIT;
"""

# The whole swap_in is one psql session (each psql is a process started in the database's container: about 0.05 s):
# whether the live database exists (\gset, \if), then the swap above and the old database dropped or opened, or,
# on a new server (disaster recovery) or after the database was dropped, the restored one renamed into place. The
# session prints a mark as it passes each point (SWAP_MARKS), so a failure is told apart from one after the swap
# committed (then the restored database is live).
SWAP_MARKS = ("rollcall:swapping", "rollcall:swapped", "rollcall:renaming", "rollcall:renamed", "rollcall:done")
AFTER_SWAP_SQL = {True: 'ALTER DATABASE :"old" ALLOW_CONNECTIONS true;\n',
                  False: 'DROP DATABASE :"old" WITH (FORCE);\n'}


RENAME_INTO_PLACE_SQL = """SELECT pg_terminate_backend(pid) FROM pg_stat_activity
 WHERE datname = :'s' AND pid <> pg_backend_pid() AND backend_type <> 'autovacuum worker';
ALTER DATABASE :"s" RENAME TO :"d";
"""


def swap_script(keep_old):
    """The psql input of PostgreSQL.swap_in (keep_old: the old database stays, taking connections again)."""
    parts = ["SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'d') AS live \\gset\n",
             "\\if :live\n\\echo rollcall:swapping\n", SWAP_SQL, "\\echo rollcall:swapped\n",
             AFTER_SWAP_SQL[bool(keep_old)], "\\echo rollcall:done\n",
             "\\else\n\\echo rollcall:renaming\n", RENAME_INTO_PLACE_SQL, "\\echo rollcall:renamed\n\\endif\n"]
    return "".join(parts)  # constants only: names and values go in as psql variables


class _SnapshotSession:
    """The input of the psql session that exports and holds a dump's snapshot: the snapshot and row counts, then,
    once ``done`` is set (the dump ended), COMMIT. When psql ends first (the server went away), the runner calls
    ``command_ended()`` and the input stops waiting."""

    def __init__(self, done):
        self.done, self.ended = done, threading.Event()

    def command_ended(self):
        self.ended.set()

    def __iter__(self):
        yield ("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;\n"
               "SELECT 'snapshot', pg_export_snapshot();\n" + ROW_COUNTS_SQL + "SELECT 'counted', '';\n").encode()
        while not self.done.wait(0.2):
            if self.ended.is_set():
                return
        yield b"COMMIT;\n"


class PostgreSQL(PostgreSQLUpkeep, Engine):
    name = "postgresql"
    dump_format = "pg_dump custom (-Fc)"
    tools = ("pg_dump", "pg_restore", "psql")
    # "custom": one pg_dump -Fc stream. "directory": pg_dump -Fd with ``jobs`` parallel workers into a work
    # directory where the tools run, streamed as tar; restored with pg_restore -j.
    archive_format = "custom"
    jobs = 1

    def __init__(self, runner, target):
        super().__init__(runner, target)
        self._kept = None  # what the backup being restored recorded (manifest["postgresql"])
        self._legacy = False  # that backup predates the database properties and the rule for matviews
        self._created = {}  # databases created for that backup -> properties to put back after pg_restore

    def prepare_for(self, manifest):
        self.archive_format = manifest.get("archive_format", "custom")
        self._kept = manifest.get(self.name) or {}
        self._legacy = "database" not in self._kept
        self._created = {}

    def _restored_legacy(self, database):
        """True for a database made for restoring a backup from before database properties were kept."""
        return self._legacy and database in self._created

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

    def _env(self, application="rollcall"):
        env = {"PGCONNECT_TIMEOUT": "10", "PGAPPNAME": application}
        if self.target.password:
            env["PGPASSWORD"] = self.target.password
        return env

    def _fail(self, what, result):
        # result.explained adds what the runner knows: killed by a signal, the container stopped
        reason = result.explained(_error_line(result.stderr, self.target.user))
        raise EngineError("PostgreSQL at %s: %s failed: %s" % (self.target.where(), what, reason))

    def psql(self, sql, database=None, variables=None, what="query"):
        """Run SQL (read from stdin, so psql quotes :"ident" / :'literal'); returns rows as lists of fields."""
        result = self._psql_result(sql, database, variables)
        if result.rc != 0:
            self._fail(what, result)
        return [line.split("\t") for line in result.text.splitlines() if line]

    def _psql_result(self, sql, database=None, variables=None):
        """psql's Result, whatever its exit code (psql() fails on an error)."""
        argv = ["psql", "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-w"]
        for key, value in sorted((variables or {}).items()):
            argv += ["-v", "%s=%s" % (key, value)]
        argv += self._conn_args(database or self.target.database)
        return self.runner.run(argv, stdin=[sql.encode()], env=self._env())

    # ---------------------------------------------------------------- introspection
    def server_version(self):
        return self.psql("SHOW server_version;", MAINTENANCE_DB, what="reading the server version")[0][0]

    def database_exists(self, database):
        rows = self.psql("SELECT 1 FROM pg_database WHERE datname = :'d';", MAINTENANCE_DB, {"d": database},
                         what="looking up database %s" % database)
        return bool(rows)

    def row_counts(self, database):
        sql = LEGACY_ROW_COUNTS_SQL if self._restored_legacy(database) else ROW_COUNTS_SQL
        return {name: int(count) for name, count in self.psql(sql, database, what="counting rows")}

    def loaded_row_counts(self, database, expected):
        """Row counts of a database pg_restore has just loaded, each from the load's statistics where they show
        ``expected``'s figure, else counted (LOADED_ROW_COUNTS_SQL); and how many were found which way."""
        figures = json.dumps(expected, sort_keys=True)
        # psql takes them as one argument, which the kernel caps at 128 KiB (some 2,500 tables): above, all counted
        if self._restored_legacy(database) or len(figures) > EXPECTED_COUNTS_MAX:
            return super().loaded_row_counts(database, expected)
        rows = self.psql(LOADED_ROW_COUNTS_SQL, database, {"expected": figures}, what="counting rows")
        counts = {row[0]: int(row[1]) for row in rows}
        from_stats = sum(1 for row in rows if row[2] == "statistics")
        return counts, "%d of %d tables' rows as the load's statistics recorded them, %d counted" % (
            from_stats, len(rows), len(rows) - from_stats)

    def matviews(self, database):
        """{materialized view: populated?}"""
        rows = self.psql(MATVIEWS_SQL, database, what="listing materialized views")
        return {name: flag == "t" for name, flag in rows}

    def database_properties(self, database):
        """The database's own properties (see database_properties()), or None when it does not exist."""
        rows = self.psql(DATABASE_SQL, MAINTENANCE_DB, {"d": database},
                         what="reading the properties of database %s" % database)
        return database_properties(json.loads(rows[0][0])) if rows else None

    def activity(self, long_query_seconds=60):
        rows = self.psql(ACTIVITY_SQL, self.target.database or MAINTENANCE_DB,
                         {"secs": check_seconds(long_query_seconds), "limit": LONG_QUERIES_SHOWN},
                         what="reading pg_stat_activity")
        return parse_activity(rows)

    def privileges(self, database, sql=PRIVILEGES_SORTED_SQL):
        """sha256 over owners and grants of every schema and relation, and the database's own properties."""
        rows = self.psql(sql, database, what="reading owners and grants")
        lines = [r[0] for r in rows]
        if not self._restored_legacy(database):
            properties = self.database_properties(database)
            lines.append("database " + json.dumps(properties, sort_keys=True))
        return hashlib.sha256("\n".join(lines).encode()).hexdigest()

    def earlier_privileges(self, database):
        """privileges() as backups made before ACL entries were sorted recorded it (their stored order)."""
        return [self.privileges(database, PRIVILEGES_SQL)]

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
        kept = {"database": self.database_properties(database), "matviews": self.matviews(database)}
        facts = self._dump(sink, database)
        facts["engine_facts"] = kept
        return facts

    def _terminate(self, application):
        """End the server sessions of an abandoned dump: stopping the client does not stop a backend that waits
        for a lock, and it would hold the snapshot until then. Best effort: the server may be gone."""
        with contextlib.suppress(Exception):  # EngineError, RunnerError (engines do not import the runners)
            self.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :'a' "
                      "AND pid <> pg_backend_pid();", MAINTENANCE_DB, {"a": application},
                      what="ending the sessions of the interrupted dump")

    def _dump(self, sink, database):
        lines, done = queue.Queue(), threading.Event()
        # Its own application_name: an interrupted dump's server sessions can be found and ended.
        application = "rollcall-dump-%s" % uuid.uuid4().hex[:12]
        env = self._env(application)
        session = {}

        statements = _SnapshotSession(done)

        def receive(data):
            for line in data.decode("utf-8", "replace").splitlines():
                lines.put(line)

        def hold_snapshot():
            try:
                argv = ["psql", "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-w"]
                session["result"] = self.runner.run(argv + self._conn_args(database), stdin=statements,
                                                    sink=receive, env=env)
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
            return (None, None) if line is None else line.rpartition("\t")[::2]

        def session_failed(what):
            # The session may still wait for the end of the statements it reads (the server died under it):
            # let it end rather than wait for it.
            done.set()
            holder.join(30)
            if "error" in session:
                raise session["error"]
            if "result" not in session:
                raise EngineError("PostgreSQL at %s: the snapshot session stopped answering while %s (did the "
                                  "server go away? check that it is up, then run the backup again)"
                                  % (self.target.where(), what))
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
                result = self._dump_directory(snapshot, database, checked_sink, env)
            else:
                argv = ["pg_dump", "-Fc", "-w", "--snapshot=%s" % snapshot] + self._conn_args(database)
                result = self.runner.run(argv, sink=checked_sink, env=env)
            if result.rc != 0 or "error:" in result.stderr:
                # pg_dump failed (the server went away?): do not wait for a snapshot session that may hang.
                failed = True
                if "invalid snapshot identifier" in result.stderr:
                    # The session's own error ended the snapshot (a table this login may not read, say): that is
                    # what to say, not pg_dump's "invalid snapshot identifier".
                    done.set()
                    holder.join(30)
                    if "result" in session and session["result"].rc != 0:
                        self._fail("counting the rows of the snapshot pg_dump reads", session["result"])
                self._fail("pg_dump", result)
            while True:
                name, value = next_line(3600)
                if name == "counted":
                    break
                if name is None or not value.isdigit():
                    session_failed("counting rows in the snapshot")
                counts[name] = int(value)
        except BaseException:
            # Interrupted (SIGTERM, a full disk, pg_dump failed): the session may be stuck (counting a locked
            # table, say); stop it rather than leave it holding the snapshot.
            failed = True
            done.set()
            self.runner.stop_running()
            self._terminate(application)
            raise
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

    def _dump_directory(self, snapshot, database, sink, env):
        workdir = self._workdir()
        try:
            argv = ["pg_dump", "-Fd", "-j", str(self.jobs), "-w", "--snapshot=%s" % snapshot, "-f", workdir]
            result = self.runner.run(argv + self._conn_args(database), env=env)
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

    checks_in_parallel = True

    def create_database(self, database, like=None, replace=False):
        """An empty database with the properties the backup being restored recorded; for a backup that has
        none (older ones), those of ``like``; without either, owned by the login user, in UTF8. ``replace``:
        drop one of that name first, in the same psql call."""
        check_database_name(database)
        properties = (self._kept or {}).get("database")
        if properties is None and like:
            properties = self.database_properties(like)
        variables = {"d": database, "o": (properties or {}).get("owner") or self.target.user or "postgres"}
        sql = 'CREATE DATABASE :"d" OWNER :"o" TEMPLATE template0 ENCODING '
        if properties:
            sql += ":'enc' LC_COLLATE :'collate' LC_CTYPE :'ctype'"
            variables.update(enc=properties["encoding"], collate=properties["collate"], ctype=properties["ctype"])
            if properties.get("locale_provider") == "icu":
                sql += " LOCALE_PROVIDER icu ICU_LOCALE :'icu'"
                variables["icu"] = properties["icu_locale"]
        else:
            sql += "'UTF8'"
        if replace:
            sql = 'DROP DATABASE IF EXISTS :"d" WITH (FORCE);\n' + sql
        self.psql(sql + ";", MAINTENANCE_DB, variables, what="creating database %s" % database)
        self._created[database] = properties

    def recreate_database(self, database, like=None):
        self.create_database(database, like=like, replace=True)

    def _put_back_properties(self, database):
        """After pg_restore: connection limit, comment, settings and grants of a database we created."""
        properties = self._created.get(database)
        if not properties:
            return
        sql, variables = restore_properties_sql(properties)
        if not sql.strip():
            return  # nothing beyond what CREATE DATABASE set
        self.psql(sql, MAINTENANCE_DB, dict(variables, d=database),
                  what="restoring the properties of database %s (comment, settings, grants)" % database)

    def drop_database(self, database):
        check_database_name(database)
        self.psql('DROP DATABASE IF EXISTS :"d" WITH (FORCE);', MAINTENANCE_DB, {"d": database},
                  what="dropping database %s" % database)

    def restore(self, chunks, database):
        check_database_name(database)
        argv = ["pg_restore", "--exit-on-error", "-w"] + self._conn_args(database)
        if self.archive_format != "directory":
            self._run_checked(argv, "pg_restore into %s" % database, stdin=chunks)
        else:
            workdir = self._workdir()
            try:
                self._unpack(chunks, workdir)
                what = "pg_restore -j %d into %s" % (self.jobs, database)
                self._run_checked(argv + ["-j", str(self.jobs), workdir], what)
            finally:
                self.runner.run(["rm", "-rf", workdir])
        self._put_back_properties(database)

    def swap_in(self, scratch, database, keep_old):
        old = check_database_name(database + OLD_SUFFIX, "database name")
        result = self._psql_result(swap_script(keep_old), MAINTENANCE_DB,
                                   {"d": database, "s": scratch, "old": old, "drain": DRAIN_SECONDS})
        marks = {line for line in result.text.splitlines() if line in SWAP_MARKS}
        if "rollcall:renamed" in marks:  # there was no live database: the restored one took its name
            return None
        if "rollcall:swapped" in marks:
            # Committed: the restored database is live. When dropping (or opening) the old one failed after that,
            # it is still there: reported as kept, and the next restore's swap drops it first.
            return old if keep_old or "rollcall:done" not in marks or result.rc != 0 else None
        if "rollcall:renaming" in marks:
            self._fail("renaming the restored database", result)
        with contextlib.suppress(EngineError):  # the live database takes connections again, as it was
            self.psql('ALTER DATABASE :"d" ALLOW_CONNECTIONS true;', MAINTENANCE_DB, {"d": database},
                      what="letting connections into %s again" % database)
        self._fail("swapping in the restored database", result)
        return None  # not reached: _fail raises

    def integrity_check(self, database):
        rows = self.psql(
            "SELECT 'constraint ' || conrelid::regclass || '.' || conname FROM pg_constraint WHERE NOT convalidated "
            "UNION ALL SELECT 'index ' || indexrelid::regclass FROM pg_index WHERE NOT indisvalid;",
            database, what="checking constraints and indexes")
        if rows:
            return "failed", "not valid: %s" % ", ".join(r[0] for r in rows)
        detail = "all constraints validated, all indexes valid"
        expected = (self._kept or {}).get("matviews")
        if expected is None or database not in self._created:
            return "passed", detail
        problems = matview_problems(expected, self.matviews(database))
        if problems:
            return "failed", "; ".join(problems[:10])
        return "passed", detail + "; %d materialized views populated as in the backup" % len(expected)


def matview_problems(expected, actual):
    """Materialized views whose populated state differs between the backup and a restore, as text lines."""
    problems = []
    for name in sorted(set(expected) | set(actual)):
        if name not in actual:
            problems.append("materialized view %s is missing after the restore" % name)
        elif name not in expected:
            problems.append("materialized view %s was not in the backup" % name)
        elif expected[name] != actual[name]:
            was, now = ("populated" if flag else "not populated (WITH NO DATA)"
                        for flag in (expected[name], actual[name]))
            problems.append("materialized view %s was %s in the backup, %s after the restore" % (name, was, now))
    return problems
