# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one interface every database engine adapter implements, and the connection target they share."""

import re

SCRATCH_SUFFIX = "__rc_scratch"
OLD_SUFFIX = "__rc_old"
DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "mssql": 1433}
# activity(): how many long-running statements are listed, and how much of each statement's text.
LONG_QUERIES_SHOWN = 20
QUERY_TEXT_SHOWN = 80
DATABASE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_$-]{0,62}$")


class EngineError(Exception):
    """The database said no (or did not answer); the message says what, never a password."""


class Target:
    """Where a database is and how to log in. ``container`` set: tools run inside that container."""

    def __init__(self, engine, database, host=None, port=None, user=None, password=None, container=None,
                 docker_host=None, path=None, jobs=1):
        self.engine = engine
        self.database = database
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.container = container
        self.docker_host = docker_host
        self.path = path
        self.jobs = jobs

    def where(self):
        if self.engine == "sqlite":
            return self.path
        port = self.port or DEFAULT_PORTS.get(self.engine, "?")
        location = "%s:%s" % (self.host or "127.0.0.1", port)
        return location + (" in container %s" % self.container if self.container else "")


def long_query(pid, duration_s, text):
    """One entry of ``Engine.activity()["long_queries"]``: whitespace collapsed, text cut to QUERY_TEXT_SHOWN."""
    return {"pid": int(pid), "duration_s": int(float(duration_s or 0)),
            "query": " ".join((text or "").split())[:QUERY_TEXT_SHOWN]}


def check_seconds(value):
    """``long_query_seconds`` as a whole number >= 0 (it is written into SQL text)."""
    seconds = int(value)
    if seconds < 0:
        raise EngineError("long_query_seconds must be 0 or more, not %r" % (value,))
    return seconds


def check_database_name(name, what="database name"):
    """Names we create, rename or drop must be plain; anything else is refused before reaching SQL."""
    if not isinstance(name, str) or not DATABASE_NAME.fullmatch(name):
        raise EngineError("%s %r is not allowed: use letters, digits, '_', '$' or '-' (at most 63 characters)"
                          % (what, name))
    return name


class Engine:
    """What Rollcall needs from a database engine. Adapters implement every method."""

    name = "?"
    dump_format = "?"
    # Tools whose versions go into the manifest.
    tools = ()
    # After swap_in: whether the app must open the database again (SQLite, when the file itself was replaced).
    reopen_needed = False

    def __init__(self, runner, target):
        self.runner = runner
        self.target = target

    def prepare_for(self, manifest):
        """Adapt to how a stored backup was made (before verifying or restoring it)."""

    # ---- introspection
    def server_version(self):
        raise NotImplementedError

    def tool_versions(self):
        """{tool: its --version line} for the client tools in ``tools``."""
        versions = {}
        for tool in self.tools:
            result = self.runner.run([tool, "--version"])
            versions[tool] = result.text.strip() if result.rc == 0 else "unknown"
        return versions

    def database_exists(self, database):
        raise NotImplementedError

    def row_counts(self, database):
        """{table: rows} for every user table."""
        raise NotImplementedError

    def loaded_row_counts(self, database, expected):
        """({table: rows}, how they were found) for ``database`` right after a restore loaded it, to compare with
        ``expected`` (the backup's counts). Default: ``row_counts``, every table counted. An engine may take a
        table's figure from what its server recorded while loading, where that record proves the expected number."""
        return self.row_counts(database), "every table counted"

    def schema_revision(self, database):
        """The application's schema revision (Alembic's alembic_version), or None."""
        raise NotImplementedError

    def activity(self, long_query_seconds=60):
        """What the server is doing now (for health checks); raises EngineError when it cannot be reached.

        Returns ``{"active_connections": int or None, "max_connections": int or None, "long_queries": [{"pid",
        "duration_s", "query"}]}``: client connections open now, the server's limit, and statements running
        longer than ``long_query_seconds`` (longest first, at most ``LONG_QUERIES_SHOWN``, the statement text cut
        to ``QUERY_TEXT_SHOWN`` characters with whitespace collapsed; never bind parameters). None where the
        engine has no such notion (SQLite).
        """
        raise NotImplementedError

    # ---- maintenance and diagnostics (issue 15; the engine side in engines/upkeep.py, the decisions in
    # module_utils/maintenance.py)
    def maintenance_stats(self):
        """The figures maintenance.plan() decides on (dead tuples, index bloat, free space, free pages)."""
        raise EngineError("maintenance is not supported for %s" % self.name)

    def run_action(self, act, lock_timeout_s, statement_timeout_s):
        """Run one planned action under the lock timeout and time bound; returns its detail, or (outcome,
        detail); raises EngineError when it failed."""
        raise EngineError("maintenance is not supported for %s" % self.name)

    def diagnostics(self, long_query_seconds=5, slow_query_ms=1000):
        """Read-only figures for maintenance.judge_diagnostics()."""
        raise EngineError("diagnostics are not supported for %s" % self.name)

    def data_figures(self, spec):
        """The figures of one data check (maintenance.data_check_sql() run against the target)."""
        raise EngineError("data checks are not supported for %s" % self.name)

    def stop_query(self, pid, verb):
        """Cancel (``cancel``) or end the session of (``terminate``) the statement of ``pid``."""
        raise EngineError("stopping queries is not supported for %s" % self.name)

    # ---- backup and restore
    def dump(self, sink):
        """Stream a consistent dump of ``target.database`` into ``sink(bytes)``.

        Returns facts for the manifest, including ``row_counts`` taken in the dump's own snapshot.
        """
        raise NotImplementedError

    def native_check(self, chunks):
        """Check a dump with the engine's own tool; returns (status, detail), status passed/failed/skipped."""
        raise NotImplementedError

    def restore(self, chunks, database):
        """Load a dump into the existing, empty ``database``."""
        raise NotImplementedError

    def scratch_name(self, database):
        """Where a restore lands before it is swapped in (and where verify-by-restore works)."""
        return check_database_name(database + SCRATCH_SUFFIX)

    def privileges(self, database):
        """A fingerprint of owners and grants (compared after a restore), or None where the engine has none."""
        raise NotImplementedError

    def earlier_privileges(self, database):
        """Fingerprints of ``database`` as earlier versions of privileges() computed them (older backups)."""
        return []

    def create_database(self, database, like=None):
        """Create an empty ``database`` (owned like ``like`` where the engine has owners)."""
        raise NotImplementedError

    def drop_database(self, database):
        raise NotImplementedError

    def recreate_database(self, database, like=None):
        """``database`` dropped if it exists, then created empty (``create_database``): the side database a
        restore loads into. Engines that can do both in one round trip override it."""
        self.drop_database(database)
        self.create_database(database, like=like)

    def swap_in(self, scratch, database, keep_old):
        """Make ``scratch`` the new ``database``; returns the name the old one was kept under (or None)."""
        raise NotImplementedError

    def integrity_check(self, database):
        """(status, detail) of the engine's own consistency check on a restored database."""
        raise NotImplementedError

    # The checks after a restore (row counts, integrity, owners and grants) may run at the same time, each in its
    # own thread: true for engines whose every query is its own client process (PostgreSQL's psql).
    checks_in_parallel = False

    def load_check(self, database):
        """(status, detail) after ``db_restore`` loaded a checksummed stream into ``database``: the check that is
        worth its time there (the restore has just written every row). Default: ``integrity_check``."""
        return self.integrity_check(database)

    def restore_chain(self, streams, database):
        """Load a backup chain (oldest first: a full backup, then what applies on top of it) into ``database``.

        ``streams`` are chunk iterators, one per backup. Engines without chains take exactly one (``restore``);
        SQL Server overrides this for full + differential.
        """
        if len(streams) != 1:
            raise EngineError("%s backups are single, self-contained dumps; a restore takes exactly one, not %d"
                              % (self.name, len(streams)))
        self.restore(streams[0], database)


def parse_activity(rows, text=str):
    """``activity()`` from rows tagged 'connections' (active, max) and 'long' (pid, seconds, query), the shape
    the PostgreSQL and MySQL activity queries return; ``text`` decodes the query field (MySQL: batch escaping)."""
    found = {"active_connections": None, "max_connections": None, "long_queries": []}
    for row in rows:
        if row[0] == "connections" and len(row) >= 3:
            found["active_connections"], found["max_connections"] = int(row[1]), int(row[2])
        elif row[0] == "long" and len(row) >= 3:
            found["long_queries"].append(long_query(row[1], row[2], text(row[3]) if len(row) > 3 else ""))
        elif row[0] == "archiver" and len(row) >= 6:  # PostgreSQL: archive_mode and pg_stat_archiver (epoch seconds)
            found["archiver"] = {"mode": row[1], "last_archived_time": int(row[2]) if row[2] else None,
                                 "last_failed_wal": row[3] or None,
                                 "last_failed_time": int(row[4]) if row[4] else None, "now": int(row[5])}
    return found
