# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""MySQL / MariaDB: mysqldump --single-transaction (routines, triggers, events, hex blobs) and the mysql client.

The row counts in the manifest come from the dump itself (rows counted as they stream past), so they describe
exactly the snapshot mysqldump read. The password goes through MYSQL_PWD in the tool's environment;
identifiers are quoted with backticks (doubled inside), literals with the driver's escaping rules.

The database's own properties (default character set, collation, MariaDB's comment) are not in a dump of its
tables: the manifest records them (``manifest["mysql"]["database"]``), a restore creates its database with them
(also where the target does not exist yet), and their fingerprint is what ``privileges()`` returns, so the
check after a restore compares them.
"""

import contextlib
import hashlib
import json
import re
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
from .upkeep import MySQLUpkeep

try:
    from pymysql.converters import escape_string
except ImportError:  # the managed host may not have PyMySQL; the fallback follows the same rules
    escape_string = None

INSERT = re.compile(rb"^INSERT INTO `((?:[^`]|``)+)` VALUES ?(.*)$", re.S)
CREATE = re.compile(rb"^CREATE TABLE `((?:[^`]|``)+)` \(")
STRING = re.compile(rb"'(?:[^'\\]|\\.)*'", re.S)
HEADERS = (b"-- MariaDB dump", b"-- MySQL dump")
COMPLETED = b"-- Dump completed"
# --master-data=2 (binary logging on: point-in-time recovery, module_utils/binlog.py): the dump's snapshot position.
MASTER_DATA = re.compile(rb"^-- CHANGE MASTER TO MASTER_LOG_FILE='([^']+)', MASTER_LOG_POS=(\d+);")
CHARSET_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")
# What a new database gets when neither the backup nor a live database says otherwise (the app's settings).
DEFAULT_PROPERTIES = {"charset": "utf8mb4", "collation": "utf8mb4_unicode_ci"}

# activity(): client threads vs max_connections, and statements running for at least N seconds (the mysql
# client's --batch output escapes tabs and newlines inside the statement text).
ACTIVITY_SQL = """SELECT 'connections', COUNT(*), @@GLOBAL.max_connections FROM information_schema.processlist
 WHERE command NOT IN ('Daemon', 'Binlog Dump', 'Binlog Dump GTID') AND user NOT IN ('system user', 'event_scheduler');
SELECT 'long', id, time, LEFT(COALESCE(info, ''), 200) FROM information_schema.processlist
 WHERE command NOT IN ('Sleep', 'Daemon', 'Binlog Dump', 'Binlog Dump GTID') AND id <> CONNECTION_ID()
   AND user NOT IN ('system user', 'event_scheduler') AND time >= %d
 ORDER BY time DESC LIMIT %d;
"""


# The objects RENAME TABLE cannot move, in the order they are re-created: routines, views, triggers (per table, in
# firing order), events. One query; the name is the last column.
KINDS = {1: "PROCEDURE", 2: "FUNCTION", 3: "VIEW", 4: "TRIGGER", 5: "EVENT"}
OBJECTS_SQL = (
    "SELECT 1, '', '', '', 0, routine_name FROM information_schema.routines WHERE routine_schema = {schema} AND "
    "routine_type = 'PROCEDURE' UNION ALL "
    "SELECT 2, '', '', '', 0, routine_name FROM information_schema.routines WHERE routine_schema = {schema} AND "
    "routine_type = 'FUNCTION' UNION ALL "
    "SELECT 3, '', '', '', 0, table_name FROM information_schema.views WHERE table_schema = {schema} UNION ALL "
    "SELECT 4, event_object_table, action_timing, event_manipulation, action_order, trigger_name FROM "
    "information_schema.triggers WHERE trigger_schema = {schema} UNION ALL "
    "SELECT 5, '', '', '', 0, event_name FROM information_schema.events WHERE event_schema = {schema} "
    "ORDER BY 1, 2, 3, 4, 5, 6;")


def activity_sql(long_query_seconds):
    return ACTIVITY_SQL % (check_seconds(long_query_seconds), LONG_QUERIES_SHOWN)


def quote_ident(name):
    return "`%s`" % name.replace("`", "``")


def quote_literal(value):
    """A MySQL string literal, escaped by PyMySQL when it is installed (else by the same rules)."""
    if escape_string is not None:
        return "'%s'" % escape_string(value)
    escaped = value.replace("\\", "\\\\").replace("'", "\\'").replace("\0", "\\0").replace("\n", "\\n")
    return "'%s'" % escaped.replace("\r", "\\r").replace("\x1a", "\\Z").replace('"', '\\"')


def unescape_batch(field):
    """Undo the mysql client's --batch escaping (\\n, \\t, \\0, \\\\) of one output field."""
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t", "0": "\0"}.get(m.group(1), m.group(1)), field)


def _error_line(stderr):
    lines = [line.strip() for line in stderr.splitlines() if line.strip() and "Warning" not in line]
    for line in lines:
        match = re.search(r"(?:ERROR \d+ \(\w+\)(?: at line \d+)?|Got error: \d+):?\s*(.*)", line)
        if match:
            return match.group(1).strip()
    return lines[-1] if lines else "no error message"


def properties_sql(database, properties, comments, create=True):
    """CREATE (or ALTER) DATABASE text giving ``database`` ``properties`` (see MySQL.properties()); ``comments``:
    the server keeps database comments (MariaDB 10.5+), so an absent comment is set to ''."""
    for key in ("charset", "collation"):
        if not CHARSET_NAME.fullmatch(str(properties.get(key) or "")):
            raise EngineError("database %s: %s %r is not a character set or collation name"
                              % (database, key, properties.get(key)))
    text = "%s DATABASE %s CHARACTER SET %s COLLATE %s" % ("CREATE" if create else "ALTER", quote_ident(database),
                                                           properties["charset"], properties["collation"])
    if comments:
        text += " COMMENT %s" % quote_literal(properties.get("comment") or "")
    return text + ";"


def properties_fingerprint(properties):
    """sha256 of a database's own properties (what ``privileges()`` returns), None for an absent database."""
    if properties is None:
        return None
    return hashlib.sha256(json.dumps(properties, sort_keys=True).encode()).hexdigest()


def retarget(chunks, source, target):
    """The dump stream with mysqldump's ``ALTER DATABASE `source` CHARACTER SET ...`` lines (written around
    routines whose collation differs from the database's) aimed at ``target``, the database being loaded:
    as dumped they would change ``source`` (the live database, or fail when it is absent). Chunks pass
    through uncopied unless a line that may be one of those is cut by the end of a chunk."""
    line = b"ALTER DATABASE " + quote_ident(source).encode("utf-8") + b" CHARACTER SET "
    aimed = b"ALTER DATABASE " + quote_ident(target).encode("utf-8") + b" CHARACTER SET "
    pending, at_line_start = b"", False  # pending: the start of a line, maybe of such a line
    for chunk in chunks:
        if pending:
            chunk, pending = pending + chunk, b""
        if at_line_start and chunk.startswith(line):
            chunk = aimed + chunk[len(line):]
        if b"\n" + line in chunk:
            chunk = chunk.replace(b"\n" + line, b"\n" + aimed)
        cut = chunk.rfind(b"\n", max(0, len(chunk) - len(line)))
        last = cut + 1 if cut >= 0 else (0 if at_line_start else None)  # where the chunk's last line starts
        at_line_start = False
        if last is not None and line.startswith(chunk[last:]):
            chunk, pending, at_line_start = chunk[:last], chunk[last:], True
        if chunk:
            yield chunk
    if pending:
        yield pending


class DumpCounter:
    """Counts rows per table in a mysqldump stream as it passes (tuples of INSERT statements)."""

    def __init__(self):
        self.counts = {}
        self.partial = b""
        self.table = None  # inside a multi-line INSERT (MariaDB 10.11 writes one tuple per line)
        self.head = b""
        self.tail = b""
        self.binlog = None  # {"file", "position"}: the binary log position of the dump's snapshot

    def feed(self, data):
        if len(self.head) < 200:
            self.head += data[:200]
        self.tail = (self.tail + data)[-200:]
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()
        for line in lines:
            self._line(line)

    def _line(self, line):
        if self.table is not None:
            self.counts[self.table] += 1
            if line.endswith(b";"):
                self.table = None
            return
        if self.binlog is None and line.startswith(b"-- CHANGE MASTER"):
            found = MASTER_DATA.match(line)
            if found:
                self.binlog = {"file": found.group(1).decode("utf-8", "replace"), "position": int(found.group(2))}
            return
        match = CREATE.match(line)
        if match:
            self.counts.setdefault(match.group(1).replace(b"``", b"`").decode("utf-8", "replace"), 0)
            return
        match = INSERT.match(line)
        if match:
            table = match.group(1).replace(b"``", b"`").decode("utf-8", "replace")
            self.counts.setdefault(table, 0)
            rest = match.group(2)
            if rest:
                self.counts[table] += STRING.sub(b"''", rest).count(b"),(") + 1
            else:
                self.table = table

    def close(self):
        if self.partial:
            self._line(self.partial)
            self.partial = b""

    def complete(self):
        return self.head.lstrip().split(b"\n", 1)[0].startswith(b"/*M!") or any(
            h in self.head for h in HEADERS), COMPLETED in self.tail


class MySQL(MySQLUpkeep, Engine):
    name = "mysql"
    dump_format = "mysqldump SQL (--single-transaction, routines, triggers, events, hex blobs)"
    tools = ("mysqldump", "mysql")

    def _conn_args(self):
        t = self.target
        return ["--protocol=TCP", "-h", t.host or "127.0.0.1", "-P", str(t.port or 3306), "-u", t.user or "root"]

    # The root password a MariaDB/MySQL container was made with. roles/database keeps root@127.0.0.1 on it (the
    # container's health check logs in with it), while the inventory's admin password, which rotate_db_passwords.yml
    # changes, is rollcall_admin's from the host. So root inside the container, given no password, logs in with the
    # container's own (the roles give none there); a password given is used as it is (a wrong one is refused).
    ROOT_PASSWORD_ENV = ("MARIADB_ROOT_PASSWORD", "MYSQL_ROOT_PASSWORD")

    def _env(self):
        password = self.target.password
        if not password and (self.target.user or "root") == "root":
            password = self._container_root_password()
        return {"MYSQL_PWD": password} if password else {}

    def _container_root_password(self):
        """root's password in the container's own environment (None outside a container, or when it has none).
        Before (2026-12-06) the roles gave the inventory's admin password, and after a password rotation the
        security audit, the binary log's archiving and maintenance's admin failed with "Access denied for user
        'root'@'127.0.0.1'"."""
        if not hasattr(self, "_own_root"):
            lookup = getattr(self.runner, "env_value", None)
            try:
                self._own_root = lookup(*self.ROOT_PASSWORD_ENV) if lookup else None
            except Exception:  # noqa: BLE001  (the container's state is the runner's to report, at its next run)
                self._own_root = None
        return self._own_root

    def _fail(self, what, result):
        reason = result.explained(_error_line(result.stderr))
        raise EngineError("MySQL at %s: %s failed: %s" % (self.target.where(), what, reason))

    def sql(self, statements, database=None, what="query"):
        argv = ["mysql", "--batch", "--skip-column-names", "--default-character-set=utf8mb4",
                "--connect-timeout=10"] + self._conn_args() + ([database] if database else [])
        result = self.runner.run(argv, stdin=[statements.encode()], env=self._env())
        if result.rc != 0:
            self._fail(what, result)
        return [line.split("\t") for line in result.text.splitlines() if line]

    def server_version(self):
        return self.sql("SELECT VERSION();", what="reading the server version")[0][0]

    def database_exists(self, database):
        rows = self.sql("SELECT 1 FROM information_schema.schemata WHERE schema_name = %s;" % quote_literal(database),
                        what="looking up database %s" % database)
        return bool(rows)

    def _tables(self, database):
        rows = self.sql("SELECT table_name FROM information_schema.tables WHERE table_schema = %s AND table_type = "
                        "'BASE TABLE' ORDER BY table_name;" % quote_literal(database), what="listing tables")
        return [r[0] for r in rows]

    def row_counts(self, database):
        tables = self._tables(database)
        if not tables:
            return {}
        selects = ["SELECT %s, COUNT(*) FROM %s.%s" % (quote_literal(t), quote_ident(database), quote_ident(t))
                   for t in tables]
        query = " UNION ALL ".join(selects)
        return {name: int(count) for name, count in self.sql(query + ";", what="counting rows")}

    def schema_revision(self, database):
        if "alembic_version" not in self._tables(database):
            return None
        rows = self.sql("SELECT version_num FROM %s.alembic_version;" % quote_ident(database),
                        what="reading the revision")
        return rows[0][0] if rows else None

    def activity(self, long_query_seconds=60):
        return parse_activity(self.sql(activity_sql(long_query_seconds), what="reading the process list"),
                              text=unescape_batch)

    def _has_schema_comment(self):
        """MariaDB 10.5+ keeps a comment per database (information_schema.schemata.schema_comment)."""
        if getattr(self, "_schema_comment", None) is None:
            rows = self.sql("SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = "
                            "'information_schema' AND table_name = 'SCHEMATA' AND column_name = 'SCHEMA_COMMENT';",
                            what="reading the server's catalog")
            self._schema_comment = bool(rows and rows[0][0] != "0")
        return self._schema_comment

    def properties(self, database):
        """The database's own properties: {"charset", "collation"} (+ "comment" where the server has them),
        or None when it does not exist. A restore gives them back; they are not in a mysqldump of the tables."""
        comment = ", schema_comment" if self._has_schema_comment() else ""
        rows = self.sql("SELECT default_character_set_name, default_collation_name%s FROM information_schema."
                        "schemata WHERE schema_name = %s;" % (comment, quote_literal(database)),
                        what="reading the character set of database %s" % database)
        if not rows:
            return None
        found = {"charset": rows[0][0], "collation": rows[0][1]}
        if comment and len(rows[0]) > 2 and rows[0][2]:  # no comment reads the same on every server
            found["comment"] = unescape_batch(rows[0][2])
        return found

    def prepare_for(self, manifest):
        """A restore creates its database with the backup's properties (older backups: the live database's)
        and aims the dump's ALTER DATABASE lines at the database it loads (see retarget())."""
        self.backup_properties = (manifest.get(self.name) or {}).get("database") or None
        self.dumped_database = manifest.get("database")

    def privileges(self, database):
        """Grants live in the server's mysql schema, not in a database dump, and a swap-in restore keeps them;
        what the restore must bring back is the database's default character set, collation and comment:
        their fingerprint is compared after a restore."""
        return properties_fingerprint(self.properties(database))

    def dump(self, sink):
        counter = DumpCounter()

        def counting(data):
            counter.feed(data)
            sink(data)

        properties = self.properties(self.target.database)
        # With the binary log on, the dump records the log position of its snapshot (a comment; read by MariaDB's
        # consistent-snapshot status, no global read lock): point-in-time recovery replays the log from there.
        binlog_on = self.sql("SELECT @@log_bin;", what="reading whether the binary log is on")[0][0] == "1"
        argv = ["mysqldump", "--single-transaction", "--quick", "--routines", "--triggers", "--events",
                "--hex-blob", "--default-character-set=utf8mb4", "--net-buffer-length=1048576"] \
            + (["--master-data=2"] if binlog_on else []) + self._conn_args() + [self.target.database]
        result = self.runner.run(argv, sink=counting, env=self._env())
        counter.close()
        if result.rc != 0 or "error" in result.stderr.lower():
            self._fail("mysqldump", result)
        started, finished = counter.complete()
        if not (started and finished):
            raise EngineError("MySQL at %s: mysqldump exited 0 but its output is not a complete dump (%s)"
                              % (self.target.where(), _error_line(result.stderr)))
        facts = {"database": properties}
        if binlog_on:
            if counter.binlog is None:
                raise EngineError("MySQL at %s: the binary log is on but the dump has no log position (the "
                                  "--master-data=2 comment); point-in-time recovery could not start from it"
                                  % self.target.where())
            facts["binlog"] = counter.binlog
        return {"row_counts": counter.counts, "format": self.dump_format, "engine_facts": facts}

    def apply_sql(self, chunks, what="applying SQL", database=None):
        """Run a stream of SQL statements with the mysql client (a dump, point-in-time recovery's replayed binary
        log), in ``database`` when given."""
        argv = ["mysql", "--default-character-set=utf8mb4", "--connect-timeout=10"] + self._conn_args() \
            + ([database] if database else [])
        result = self.runner.run(argv, stdin=chunks, env=self._env())
        if result.rc != 0:
            self._fail(what, result)

    def native_check(self, chunks):
        counter = DumpCounter()
        for chunk in chunks:
            counter.feed(chunk)
        counter.close()
        started, finished = counter.complete()
        if not started:
            return "failed", "not a mysqldump file (no dump header)"
        if not finished:
            return "failed", "incomplete dump: the '-- Dump completed' marker is missing (truncated?)"
        return "passed", "mysqldump header and completion marker present; %d tables" % len(counter.counts)

    def create_database(self, database, like=None):
        """A new, empty ``database`` with the properties of the backup being restored (prepare_for), else those
        of ``like``, else the app's utf8mb4 defaults."""
        check_database_name(database)
        wanted = getattr(self, "backup_properties", None) or (like and self.properties(like)) or DEFAULT_PROPERTIES
        self._create(database, wanted)

    def _create(self, database, properties, create=True):
        """CREATE (or ALTER) ``database`` with ``properties``. A comment the server cannot keep is left out, and
        then the fingerprint check after the restore notices it."""
        self.sql(properties_sql(database, properties, self._has_schema_comment(), create),
                 what="%s database %s" % ("creating" if create else "setting the character set of", database))

    def drop_database(self, database):
        check_database_name(database)
        self.sql("DROP DATABASE IF EXISTS %s;" % quote_ident(database), what="dropping database %s" % database)

    def restore(self, chunks, database):
        check_database_name(database)
        source = getattr(self, "dumped_database", None) or self.target.database
        if source != database:
            chunks = retarget(chunks, source, database)
        self.apply_sql(chunks, "loading the dump into %s" % database, database)

    # ---------------------------------------------------------------- swap (MariaDB cannot rename a database)
    def _relations(self, database):
        rows = self.sql("SELECT table_name FROM information_schema.tables WHERE table_schema = %s AND table_type <> "
                        "'VIEW' ORDER BY table_name;" % quote_literal(database), what="listing tables")
        return [r[0] for r in rows]

    def objects(self, database):
        """Views, routines, triggers and events of ``database`` with what re-creates them elsewhere.

        Read with ``database`` as the default schema, so the definitions name its objects unqualified and
        can be replayed into another database (MySQL cannot move these with RENAME TABLE).
        """
        literal = quote_literal(database)
        listed = self.sql(OBJECTS_SQL.format(schema=literal), what="listing views, routines, triggers and events "
                          "of %s" % database)
        objects = [(KINDS[int(row[0])], unescape_batch(row[-1])) for row in listed]
        if not objects:
            return []
        # One SHOW CREATE per object, all in one session: each answers exactly one line in batch mode.
        rows = self.sql("\n".join("SHOW CREATE %s %s;" % (kind, quote_ident(name)) for kind, name in objects),
                        database, what="reading the definitions of the views, routines, triggers and events of %s"
                        % database)
        if len(rows) != len(objects):
            where, wanted = self.target.where(), len(objects)
            raise EngineError("MySQL at %s: reading the definitions of %d objects of %s gave %d answers; were "
                              "objects changed during the restore? Run it again" % (where, wanted, database, len(rows)))
        found = []
        for index, (kind, name) in enumerate(objects):
            row = [unescape_batch(field) for field in rows[index]]
            if kind == "VIEW":
                mode, create = None, row[1]
            elif kind == "EVENT":
                mode, create = row[1], row[3]
            else:
                mode, create = row[1], row[2]
            found.append({"kind": kind, "name": name, "sql_mode": mode, "create": create})
        return found

    def _replay(self, objects, database):
        """Create ``objects`` (from objects()) in ``database``; views are retried until their bases exist."""
        delimiter = "//rc_%s//" % uuid.uuid4().hex[:8]
        pending = list(objects)
        while pending:
            done, failed = [], []
            for obj in pending:
                mode = "" if obj["sql_mode"] is None else "SET SESSION sql_mode = %s%s\n" % (
                    quote_literal(obj["sql_mode"]), delimiter)
                try:
                    self.sql("DELIMITER %s\n%s%s%s\n" % (delimiter, mode, obj["create"], delimiter), database,
                             what="creating %s %s in %s" % (obj["kind"].lower(), obj["name"], database))
                    done.append(obj)
                except EngineError as exc:
                    if obj["kind"] != "VIEW":
                        raise
                    failed.append((obj, exc))
            if failed and not done:
                raise failed[0][1]
            pending = [pair[0] for pair in failed]

    def _drop_objects(self, objects, database):
        statements = ["DROP %s IF EXISTS %s.%s;" % (o["kind"], quote_ident(database), quote_ident(o["name"]))
                      for o in reversed(objects)]
        if statements:
            self.sql("\n".join(statements), what="dropping views, routines, triggers and events of %s" % database)

    def _rename(self, moves):
        pairs = ["%s.%s TO %s.%s" % (quote_ident(a), quote_ident(t), quote_ident(b), quote_ident(t))
                 for a, t, b in moves]
        if pairs:
            self.sql("RENAME TABLE %s;" % ", ".join(pairs), what="moving tables")

    def swap_in(self, scratch, database, keep_old):
        """Swap the restored ``scratch`` in: one atomic RENAME TABLE moves the live tables to ``<db>__rc_old``
        and the restored ones into ``database``; views, routines, triggers and events (which cannot move
        between databases) are dropped first and re-created from their definitions; ``database`` takes the
        character set, collation and comment of ``scratch`` (the backup's). An absent ``database`` (a new
        server) is created with them. A failure at any step puts the live database back as it was (or removes
        the one created here) and drops ``scratch``."""
        check_database_name(database)
        old = check_database_name(database + OLD_SUFFIX, "database name")
        wanted, live = self.properties(scratch), self.properties(database)
        if wanted is None:
            raise EngineError("database %s to swap in does not exist" % scratch)
        new_tables, new_objects = self._relations(scratch), self.objects(scratch)
        if live is None:
            return self._swap_into_new(scratch, database, wanted, new_tables, new_objects)
        live_tables, live_objects = self._relations(database), self.objects(database)
        self.sql("DROP DATABASE IF EXISTS %s;\n%s" % (quote_ident(old), properties_sql(
            old, live, self._has_schema_comment())), what="making database %s for the live tables" % old)
        moves = [(database, t, old) for t in live_tables] + [(scratch, t, database) for t in new_tables]
        stage = "objects"
        try:
            self._drop_objects(live_objects, database)
            self._drop_objects(new_objects, scratch)
            stage = "rename"
            self._rename(moves)
            stage = "moved"
            if wanted != live:  # before the objects: routines remember the database's collation
                self._create(database, wanted, create=False)
            self._replay(new_objects, database)
        except BaseException:
            self._undo_swap(stage, moves, live_objects, new_objects, database, live)
            self._drop_quietly(old, scratch)
            raise
        if not keep_old:
            drops = "\n".join("DROP DATABASE IF EXISTS %s;" % quote_ident(name) for name in (scratch, old))
            self.sql(drops, what="dropping databases %s and %s" % (scratch, old))
            return None
        self.drop_database(scratch)
        # The old tables are what matters; should their objects not re-create there, the safety backup has them.
        with contextlib.suppress(EngineError):
            self._replay(live_objects, old)
        return old

    def _swap_into_new(self, scratch, database, wanted, new_tables, new_objects):
        """swap_in() for a ``database`` that does not exist: create it like ``scratch`` and move everything."""
        self._create(database, wanted)
        try:
            self._drop_objects(new_objects, scratch)
            self._rename([(scratch, t, database) for t in new_tables])
            self._replay(new_objects, database)
        except BaseException:
            self._drop_quietly(database, scratch)
            raise
        self.drop_database(scratch)
        return None

    def _drop_quietly(self, *databases):
        """Drop what a failed step created; the step's own error is the one worth reporting."""
        for name in databases:
            with contextlib.suppress(EngineError):
                self.drop_database(name)

    def _undo_swap(self, stage, moves, live_objects, new_objects, database, live):
        """Best effort back to the state before swap_in: old tables, properties and objects in ``database``."""
        if stage == "moved":
            self._drop_objects(new_objects, database)
            self._rename([(b, t, a) for a, t, b in reversed(moves)])
            self._create(database, live, create=False)
        self._drop_objects(live_objects, database)  # whatever was re-created half-way
        self._replay(live_objects, database)

    def load_check(self, database):
        """After a checksummed load: every table opens in its engine (a damaged one shows ENGINE NULL) and every
        view resolves; the rows were just written and counted, so CHECK TABLE's second full read is left to
        verification (backup_verify level=restore)."""
        rows = self.sql("SELECT table_name, table_type, IFNULL(engine, ''), table_comment FROM "
                        "information_schema.tables WHERE table_schema = %s ORDER BY table_name;"
                        % quote_literal(database), what="listing tables")
        broken = ["%s: %s" % (r[0], r[3] or "no storage engine") for r in rows if r[1] == "BASE TABLE" and not r[2]]
        views = [r[0] for r in rows if r[1] == "VIEW"]
        if views and not broken:
            names = ", ".join("%s.%s" % (quote_ident(database), quote_ident(v)) for v in views)
            checked = self.sql("CHECK TABLE %s;" % names, what="checking views")
            broken = ["%s: %s" % (r[0], r[3]) for r in checked if len(r) >= 4 and r[2].lower() == "error"]
        if broken:
            return "failed", "; ".join(broken[:5])
        return "passed", "%d tables open, %d views resolve" % (len(rows) - len(views), len(views))

    def integrity_check(self, database):
        tables = self._tables(database)
        if not tables:
            return "passed", "no tables"
        rows = self.sql("CHECK TABLE %s;" % ", ".join("%s.%s" % (quote_ident(database), quote_ident(t))
                                                      for t in tables), what="checking tables")
        bad = ["%s: %s" % (r[0], r[3]) for r in rows if len(r) >= 4 and r[2].lower() == "error"]
        if bad:
            return "failed", "; ".join(bad[:5])
        return "passed", "CHECK TABLE ok for %d tables" % len(tables)
