# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Database maintenance and diagnostics (issue 15): the decisions, pure and unit-tested per branch.

The engine adapters (``engines/postgresql.py``, ``mysql.py``, ``sqlite.py``) gather the figures and run the
statements; everything that decides lives here:

* ``plan()``: which tables and indexes to act on, from the adapter's ``maintenance_stats()`` and the thresholds,
  as a list of actions (engine, action, object, reason, the statement). Nothing over a threshold: no action, and
  the module reports ``changed=false``. PostgreSQL never gets a plain ``REINDEX`` (it blocks writes): only
  ``REINDEX INDEX CONCURRENTLY``.
* ``session_sql()``: the lock timeout and statement time budget that precede every statement, per engine;
  ``remaining()``: how much of the run's time budget is left (no statement starts once it is spent).
* ``mssql_*``: the SQL Server T-SQL (DBCC CHECKDB, index REORGANIZE over 5 % / REBUILD over 30 %
  fragmentation, UPDATE STATISTICS), generated only (no server here).
* ``judge_diagnostics()``: the diagnostics figures against the seeds' thresholds (cache hit ratio 0.99,
  queries over 5 s, slow statements over 1 s mean).
* ``data_checks()``: row counts against a baseline, freshness of a timestamp column, NULLs in required columns,
  duplicate keys; each failure named with its table and figures.
* ``growth()``: sizes over time -> growth rate per day and the date the disk fills.
"""

import datetime
import math
import re

OK, WARNING, CRITICAL = "ok", "warning", "critical"
ENGINES = ("postgresql", "mysql", "sqlite", "mssql")

DEFAULTS = {
    # PostgreSQL: VACUUM (ANALYZE) when dead tuples are at least this share of the table's rows, and at least
    # dead_tuples_min of them (a 10-row table with 5 dead is not worth a statement).
    "dead_tuple_percent": 10.0,
    "dead_tuples_min": 1000,
    # PostgreSQL: REINDEX INDEX CONCURRENTLY when the estimated bloat is at least this share of the index, and the
    # index at least index_bloat_min_bytes large.
    "index_bloat_percent": 30.0,
    "index_bloat_min_bytes": 1024 * 1024,
    # MariaDB / MySQL: OPTIMIZE TABLE when data_free is at least this share of the table, and at least
    # fragmentation_min_bytes.
    "fragmentation_percent": 20.0,
    "fragmentation_min_bytes": 10 * 1024 * 1024,
    # SQLite: compaction when free pages are at least this share of the file, and at least free_pages_min pages.
    "free_page_percent": 20.0,
    "free_pages_min": 100,
    # SQL Server (the best-known community maintenance scripts): REORGANIZE over 5 %, REBUILD over 30 %, indexes
    # of at least 1000 pages.
    "reorganize_percent": 5.0,
    "rebuild_percent": 30.0,
    "mssql_min_pages": 1000,
    # Every statement: how long it may wait for a lock, how long it may run; the run: its whole time budget.
    "lock_timeout_s": 5,
    "statement_timeout_s": 900,
    "time_budget_s": 3600,
}

# Diagnostics: the seeds' figures.
DIAGNOSTIC_DEFAULTS = {
    "cache_hit_ratio": 0.99,  # seed 001: "cache_hit_ratio > 0.99"
    # Judged once the cache has served this many block (page) requests since the statistics began: a new or just
    # restarted database reads everything it touches from disk once, and its first ratio says nothing (the demo's
    # was 0.985 a minute after its first deploy, a warning on every first maintenance.yml).
    "cache_min_accesses": 100000,
    "long_query_seconds": 5,  # seed 001: "query_start < NOW() - INTERVAL '5 seconds'"
    "slow_query_ms": 1000,  # seed 001: pg_stat_statements "mean_time > 1000"
    "connections_percent": 80,
    "dead_tuple_percent": 10.0,
    # and at least this many dead tuples, as the monthly VACUUM plan (DEFAULTS): a 50-row table with 6 dead warned
    # on every run while the monthly run rightly left it to autovacuum (the demo's, found after a restore).
    "dead_tuples_min": 1000,
    "unused_index_min_bytes": 1024 * 1024,
    "seq_scan_min_rows": 100000,
}


class MaintenanceError(ValueError):
    """Bad thresholds or names; the message says what to change."""


def merge_thresholds(overrides=None, defaults=None):
    """DEFAULTS updated with ``overrides``; every value must be a number >= 0."""
    merged = dict(defaults or DEFAULTS)
    for key, value in (overrides or {}).items():
        if key not in merged:
            raise MaintenanceError("unknown threshold %r; known: %s" % (key, ", ".join(sorted(merged))))
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise MaintenanceError("threshold %s must be a number, not %r" % (key, value)) from None
        if number < 0 or math.isnan(number):
            raise MaintenanceError("threshold %s must be 0 or more, not %r" % (key, value))
        merged[key] = number
    return merged


def percent(part, whole):
    """``part`` as a percentage of ``whole`` (0 when whole is 0), one decimal."""
    part, whole = float(part or 0), float(whole or 0)
    return round(100.0 * part / whole, 1) if whole > 0 else 0.0


# ---------------------------------------------------------------------------------------------- quoting
def pg_ident(name):
    """A PostgreSQL identifier, always double-quoted (quote_ident's rule: " doubled)."""
    if not isinstance(name, str) or not name or "\0" in name:
        raise MaintenanceError("invalid PostgreSQL identifier %r" % (name,))
    return '"%s"' % name.replace('"', '""')


def pg_literal(text):
    """A PostgreSQL string literal (' doubled; standard_conforming_strings is on)."""
    if not isinstance(text, str) or "\0" in text:
        raise MaintenanceError("invalid PostgreSQL string %r" % (text,))
    return "'%s'" % text.replace("'", "''")


def my_ident(name):
    """A MariaDB / MySQL identifier in backticks (` doubled)."""
    if not isinstance(name, str) or not name or "\0" in name:
        raise MaintenanceError("invalid MariaDB identifier %r" % (name,))
    return "`%s`" % name.replace("`", "``")


def my_literal(text):
    """A MariaDB string literal: ' and backslash escaped."""
    if not isinstance(text, str) or "\0" in text:
        raise MaintenanceError("invalid MariaDB string %r" % (text,))
    return "'%s'" % text.replace("\\", "\\\\").replace("'", "''")


def ms_ident(name):
    """QUOTENAME(): [name] with ] doubled."""
    if not isinstance(name, str) or not name or len(name) > 128 or "\0" in name:
        raise MaintenanceError("invalid SQL Server identifier %r" % (name,))
    return "[%s]" % name.replace("]", "]]")


# ---------------------------------------------------------------------------------------------- time
def session_sql(engine, lock_timeout_s, statement_timeout_s):
    """What precedes every maintenance statement so it never stalls the app: a lock wait bound and a run bound.

    PostgreSQL ``lock_timeout`` / ``statement_timeout`` (milliseconds); MariaDB ``lock_wait_timeout`` (metadata
    locks, seconds), ``innodb_lock_wait_timeout`` and ``max_statement_time`` (seconds); SQL Server
    ``SET LOCK_TIMEOUT`` (milliseconds; its run bound is the client's query timeout). SQLite's is the busy
    timeout of the connection, set by the adapter (returns "").
    """
    lock_ms = max(1, int(round(float(lock_timeout_s) * 1000)))
    run_ms = max(1, int(round(float(statement_timeout_s) * 1000)))
    if engine == "postgresql":
        return "SET lock_timeout = %d; SET statement_timeout = %d;" % (lock_ms, run_ms)
    if engine == "mysql":
        lock_s = max(1, int(math.ceil(float(lock_timeout_s))))
        return ("SET SESSION lock_wait_timeout = %d, innodb_lock_wait_timeout = %d, max_statement_time = %s;"
                % (lock_s, lock_s, fmt_seconds(run_ms / 1000.0)))
    if engine == "mssql":
        return "SET LOCK_TIMEOUT %d;" % lock_ms
    return ""


def fmt_seconds(value):
    return ("%.3f" % value).rstrip("0").rstrip(".")


def remaining(budget_s, elapsed_s, statement_timeout_s):
    """Seconds the next statement may run: the statement bound, cut to what is left of the budget; None when the
    budget is spent (no statement starts)."""
    left = float(budget_s) - float(elapsed_s)
    if left < 1:
        return None
    return min(float(statement_timeout_s), left)


# ---------------------------------------------------------------------------------------------- plans
def action(engine, kind, obj, reason, sql, figures=None):
    return {"engine": engine, "action": kind, "object": obj, "reason": reason, "sql": sql,
            "figures": figures or {}}


def plan(engine, stats, thresholds=None, options=None):
    """The actions for ``engine`` from its ``maintenance_stats()`` (see each ``plan_*``); ``options["only"]``, when
    given, keeps the actions of those kinds (a cadence: monthly vacuum, mid-month reindex)."""
    thresholds = merge_thresholds(thresholds)
    options = dict(options or {})
    planner = {"postgresql": plan_postgresql, "mysql": plan_mysql, "sqlite": plan_sqlite,
               "mssql": plan_mssql}.get(engine)
    if planner is None:
        raise MaintenanceError("engine %r has no maintenance plan; use one of %s" % (engine, ", ".join(ENGINES)))
    actions = planner(stats, thresholds, options)
    only = options.get("only")
    return [a for a in actions if a["action"] in only] if only else actions


def plan_postgresql(stats, thresholds, options):
    """VACUUM (ANALYZE) of tables over the dead-tuple threshold; REINDEX INDEX CONCURRENTLY of indexes over the
    bloat threshold; DROP INDEX CONCURRENTLY of invalid ``*_ccnew*`` leftovers of an interrupted concurrent
    reindex; pg_stat_reset() (and pg_stat_statements_reset()) when ``reset_stats``."""
    actions = []
    for table in stats.get("tables") or ():
        live, dead = int(table.get("live") or 0), int(table.get("dead") or 0)
        share = percent(dead, live + dead)
        name = "%s.%s" % (table["schema"], table["table"])
        if dead >= thresholds["dead_tuples_min"] and share >= thresholds["dead_tuple_percent"]:
            actions.append(action(
                "postgresql", "vacuum_analyze", name,
                "%d dead tuples, %s %% of %d rows (threshold %s %%, at least %d)"
                % (dead, share, live + dead, thresholds["dead_tuple_percent"], thresholds["dead_tuples_min"]),
                "VACUUM (ANALYZE) %s.%s;" % (pg_ident(table["schema"]), pg_ident(table["table"])),
                {"dead_tuples": dead, "live_tuples": live, "dead_percent": share}))
    for index in stats.get("indexes") or ():
        name = "%s.%s" % (index["schema"], index["index"])
        quoted = "%s.%s" % (pg_ident(index["schema"]), pg_ident(index["index"]))
        if index.get("invalid_leftover"):
            actions.append(action("postgresql", "drop_invalid_index", name,
                                  "invalid index left by an interrupted REINDEX CONCURRENTLY",
                                  "DROP INDEX CONCURRENTLY IF EXISTS %s;" % quoted))
            continue
        size, bloat = int(index.get("size_bytes") or 0), float(index.get("bloat_percent") or 0)
        if size >= thresholds["index_bloat_min_bytes"] and bloat >= thresholds["index_bloat_percent"]:
            actions.append(action(
                "postgresql", "reindex_concurrently", name,
                "estimated bloat %s %% of %d bytes (threshold %s %%)"
                % (round(bloat, 1), size, thresholds["index_bloat_percent"]),
                "REINDEX INDEX CONCURRENTLY %s;" % quoted, {"size_bytes": size, "bloat_percent": round(bloat, 1)}))
    if options.get("reset_stats"):
        database = stats.get("database") or ""
        sql = "SELECT pg_stat_reset();"
        if stats.get("pg_stat_statements"):
            sql += " SELECT pg_stat_statements_reset();"
        actions.append(action("postgresql", "reset_stats", database, "requested (reset_stats)", sql))
        where = stats.get("pg_stat_statements_db")
        if where and not stats.get("pg_stat_statements"):
            # the extension lives in the maintenance database (roles/database): this database's statements only
            oid = "(SELECT oid FROM pg_database WHERE datname = %s)" % pg_literal(database)  # noqa: S608 - quoted
            reset = action("postgresql", "reset_stats", "%s (pg_stat_statements in %s)" % (database, where),
                           "requested (reset_stats)", "SELECT pg_stat_statements_reset(0, %s, 0);" % oid)
            reset["database"] = where
            actions.append(reset)
    return actions


def reindex_after_vacuum(actions, stats, thresholds, only=None):
    """The REINDEX CONCURRENTLY actions that fresh ``stats`` (read after VACUUM updated the indexes' tuple counts)
    call for and ``actions`` does not have yet."""
    have = {a["object"] for a in actions if a["action"] in ("reindex_concurrently", "drop_invalid_index")}
    if only and "reindex_concurrently" not in only:
        return []
    return [a for a in plan_postgresql(dict(stats, tables=[]), thresholds, {})
            if a["action"] == "reindex_concurrently" and a["object"] not in have]


def plan_mysql(stats, thresholds, options):
    """ANALYZE TABLE of every table (``analyze``, default on: statistics rewritten), OPTIMIZE TABLE of tables whose
    free space (data_free) is over the fragmentation threshold (InnoDB: an online rebuild, ALTER TABLE ... FORCE),
    CHECK TABLE (``check``: read-only, its findings are reported, never a change)."""
    actions = []
    database = stats.get("database") or ""
    for table in stats.get("tables") or ():
        name = "%s.%s" % (database, table["table"])
        quoted = "%s.%s" % (my_ident(database), my_ident(table["table"]))
        used = int(table.get("data_bytes") or 0) + int(table.get("index_bytes") or 0)
        free = int(table.get("free_bytes") or 0)
        share = percent(free, used + free)
        if options.get("check", True):
            actions.append(action("mysql", "check_table", name, "consistency check (read-only)",
                                  "CHECK TABLE %s;" % quoted))
        if free >= thresholds["fragmentation_min_bytes"] and share >= thresholds["fragmentation_percent"]:
            actions.append(action(
                "mysql", "optimize_table", name,
                "%d bytes free, %s %% of the table (threshold %s %%, at least %d bytes)"
                % (free, share, thresholds["fragmentation_percent"], thresholds["fragmentation_min_bytes"]),
                "OPTIMIZE TABLE %s;" % quoted, {"free_bytes": free, "fragmentation_percent": share}))
        elif options.get("analyze", True):
            # OPTIMIZE of an InnoDB table analyzes it too
            actions.append(action("mysql", "analyze_table", name, "statistics update",
                                  "ANALYZE TABLE %s;" % quoted))
    return actions


def plan_sqlite(stats, thresholds, options):
    """``PRAGMA integrity_check`` (read-only), ``PRAGMA optimize``, ``PRAGMA wal_checkpoint(TRUNCATE)`` in WAL
    mode, and compaction (``VACUUM``, or ``VACUUM INTO`` + swap with ``compact=into_swap``) over the free-page
    threshold."""
    actions = []
    path = stats.get("path") or ""
    pages, free = int(stats.get("page_count") or 0), int(stats.get("freelist_count") or 0)
    share = percent(free, pages)
    if options.get("check", True):
        actions.append(action("sqlite", "integrity_check", path, "consistency check (read-only)",
                              "PRAGMA integrity_check;"))
    actions.append(action("sqlite", "optimize", path, "statistics the query planner needs",
                          "PRAGMA optimize;"))
    if stats.get("journal_mode") == "wal" and int(stats.get("wal_pages") or 0) > 0:
        actions.append(action("sqlite", "wal_checkpoint", path, "%d pages in the WAL" % int(stats["wal_pages"]),
                              "PRAGMA wal_checkpoint(TRUNCATE);", {"wal_pages": int(stats["wal_pages"])}))
    if free >= thresholds["free_pages_min"] and share >= thresholds["free_page_percent"]:
        into = options.get("compact") == "into_swap"
        actions.append(action(
            "sqlite", "vacuum_into_swap" if into else "vacuum", path,
            "%d free pages, %s %% of %d (threshold %s %%, at least %d)"
            % (free, share, pages, thresholds["free_page_percent"], thresholds["free_pages_min"]),
            "VACUUM INTO <copy>; integrity_check; swap" if into else "VACUUM;",
            {"free_pages": free, "page_count": pages, "free_percent": share}))
    return actions


# ---------------------------------------------------------------------------------------------- SQL Server
MSSQL_INDEX_STATS_SQL = (
    "SELECT s.name AS schema_name, t.name AS table_name, i.name AS index_name, "
    "ps.avg_fragmentation_in_percent AS fragmentation, ps.page_count "
    "FROM sys.dm_db_index_physical_stats(DB_ID(), NULL, NULL, NULL, 'LIMITED') ps "
    "JOIN sys.indexes i ON i.object_id = ps.object_id AND i.index_id = ps.index_id "
    "JOIN sys.tables t ON t.object_id = i.object_id JOIN sys.schemas s ON s.schema_id = t.schema_id "
    "WHERE i.index_id > 0 AND ps.alloc_unit_type_desc = 'IN_ROW_DATA' ORDER BY ps.page_count DESC;")


def mssql_checkdb(database, physical_only=False):
    return "DBCC CHECKDB (%s) WITH NO_INFOMSGS, ALL_ERRORMSGS%s;" % (
        ms_ident(database), ", PHYSICAL_ONLY" if physical_only else "")


def mssql_index_sql(schema, table, index, kind, online=False, lock_timeout_s=5):
    """REORGANIZE (always online) or REBUILD (ONLINE with a low-priority lock wait on editions that have it)."""
    target = "%s ON %s.%s" % (ms_ident(index), ms_ident(schema), ms_ident(table))
    if kind == "reorganize":
        return "ALTER INDEX %s REORGANIZE;" % target
    if online:
        minutes = max(1, int(math.ceil(float(lock_timeout_s) / 60.0)))
        return ("ALTER INDEX %s REBUILD WITH (ONLINE = ON (WAIT_AT_LOW_PRIORITY (MAX_DURATION = %d MINUTES, "
                "ABORT_AFTER_WAIT = SELF)), MAXDOP = 1);" % (target, minutes))
    return "ALTER INDEX %s REBUILD WITH (ONLINE = OFF, MAXDOP = 1);" % target


def mssql_statistics_sql(schema, table):
    return "UPDATE STATISTICS %s.%s;" % (ms_ident(schema), ms_ident(table))


def plan_mssql(stats, thresholds, options):
    """DBCC CHECKDB; per index of at least ``mssql_min_pages`` pages: REBUILD over ``rebuild_percent``,
    REORGANIZE over ``reorganize_percent``; UPDATE STATISTICS of every table whose indexes were not rebuilt (a
    rebuild updates them)."""
    actions = []
    database = stats.get("database") or ""
    if options.get("check", True):
        actions.append(action("mssql", "checkdb", database, "consistency check (read-only)",
                              mssql_checkdb(database, options.get("physical_only", False))))
    rebuilt, tables = set(), []
    for index in stats.get("indexes") or ():
        key = (index["schema"], index["table"])
        if key not in tables:
            tables.append(key)
        frag, pages = float(index.get("fragmentation") or 0), int(index.get("page_count") or 0)
        if pages < thresholds["mssql_min_pages"]:
            continue
        if frag > thresholds["rebuild_percent"]:
            kind = "rebuild"
        elif frag > thresholds["reorganize_percent"]:
            kind = "reorganize"
        else:
            continue
        if kind == "rebuild":
            rebuilt.add(key)
        actions.append(action(
            "mssql", kind, "%s.%s.%s" % (index["schema"], index["table"], index["index"]),
            "%s %% fragmented, %d pages (reorganize over %s %%, rebuild over %s %%)"
            % (round(frag, 1), pages, thresholds["reorganize_percent"], thresholds["rebuild_percent"]),
            mssql_index_sql(index["schema"], index["table"], index["index"], kind, options.get("online", False),
                            thresholds["lock_timeout_s"]),
            {"fragmentation_percent": round(frag, 1), "page_count": pages}))
    if options.get("analyze", True):
        for schema, table in tables:
            if (schema, table) not in rebuilt:
                actions.append(action("mssql", "update_statistics", "%s.%s" % (schema, table), "statistics update",
                                      mssql_statistics_sql(schema, table)))
    return actions


def mssql_script(actions, lock_timeout_s):
    """The whole T-SQL batch: the lock timeout first, one statement per action."""
    return "\n".join([session_sql("mssql", lock_timeout_s, 1)] + [a["sql"] for a in actions]) + "\n"


# ---------------------------------------------------------------------------------------------- outcome
READ_ONLY = frozenset(("check_table", "integrity_check", "checkdb"))
ACTION_KINDS = ("vacuum_analyze", "reindex_concurrently", "drop_invalid_index", "reset_stats", "check_table",
                "optimize_table", "analyze_table", "integrity_check", "optimize", "wal_checkpoint", "vacuum",
                "vacuum_into_swap", "checkdb", "reorganize", "rebuild", "update_statistics")


def changes(actions):
    """Whether a run of ``actions`` (each with ``outcome``) changed anything: a changing action that ran."""
    return any(a.get("outcome") == "done" and a.get("changed", a["action"] not in READ_ONLY) for a in actions)


# Statistics updates that change something only when the statistics they write differ from the ones there were:
# the adapter measures that (SQLite's sqlite_stat1, MariaDB's row and cardinality estimates) and sets "changed".
MAY_CHANGE = frozenset(("optimize", "analyze_table"))


def would_change(actions):
    """Check mode's ``changed``: a planned action that changes something (a statistics update that only may -
    PRAGMA optimize, ANALYZE TABLE - is not counted: whether it will cannot be told before it runs)."""
    return any(a["action"] not in READ_ONLY and a["action"] not in MAY_CHANGE for a in actions)


MYSQL_STATS_SQL = (
    "SELECT 'rc_stats', '%s', CONCAT(COALESCE((SELECT CONCAT(n_rows, '/', clustered_index_size, '/', "
    "sum_of_other_index_sizes) FROM mysql.innodb_table_stats WHERE %s), ''), ':', COALESCE((SELECT "
    "GROUP_CONCAT(index_name, '.', stat_name, '=', stat_value ORDER BY index_name, stat_name) "
    "FROM mysql.innodb_index_stats WHERE %s), ''));")
MYSQL_STATS_READABLE_SQL = "SELECT COUNT(*) FROM mysql.innodb_table_stats WHERE 1 = 0;"


def mysql_stats_sql(database, table, when):
    """What the optimizer knows of a table (InnoDB's persistent statistics: rows, sizes, each index's distinct
    values, without their time), before and after its ANALYZE TABLE, in one row tagged ``rc_stats`` (three
    fields, so mysql_admin_outcome() skips it). information_schema is no use here: it shows fresh estimates, not
    the statistics ANALYZE writes."""
    where = "database_name = %s AND table_name = %s" % (my_literal(database), my_literal(table))
    return MYSQL_STATS_SQL % (when if when in ("before", "after") else "?", where, where)


def mysql_stats_changed(rows):
    """Whether ANALYZE TABLE changed the statistics: the ``rc_stats`` rows tagged before and after differ (True
    when either is missing: unknown is reported as a change)."""
    seen = {r[1]: r[2] for r in rows if len(r) == 3 and r[0] == "rc_stats"}
    return "before" not in seen or "after" not in seen or seen["before"] != seen["after"]


def summary(actions):
    """{outcome: count} and the failures as lines naming the object."""
    counts = {}
    for a in actions:
        counts[a.get("outcome", "planned")] = counts.get(a.get("outcome", "planned"), 0) + 1
    failures = ["%s %s: %s" % (a["action"], a["object"], a.get("detail", "")) for a in actions
                if a.get("outcome") in ("failed", "problem")]
    return counts, failures


# ---------------------------------------------------------------------------------------------- diagnostics
def diagnostic_thresholds(overrides=None):
    return merge_thresholds(overrides, DIAGNOSTIC_DEFAULTS)


def finding(name, status, reason, figures=None, details=None):
    return {"name": name, "status": status, "reason": reason, "figures": figures or {}, "details": details or []}


def judge_diagnostics(engine, facts, thresholds=None):
    """Findings (name, status, reason, figures, details) from an adapter's ``diagnostics()`` facts: every seed
    figure next to its threshold. A figure the engine does not have is left out; one it could not read is a
    warning that says why (pg_stat_statements not loaded)."""
    t = diagnostic_thresholds(thresholds)
    out = []
    ratio, accesses = facts.get("cache_hit_ratio"), facts.get("cache_accesses")
    if ratio is not None and accesses is not None and accesses < t["cache_min_accesses"]:
        out.append(finding("cache hit ratio", OK, "%.4f over %d block requests: too few to judge (fewer than %d since "
                                                  "the statistics began: a new or just restarted database)"
                           % (ratio, accesses, t["cache_min_accesses"]),
                           {"cache_hit_ratio": ratio, "cache_accesses": accesses}))
    elif ratio is not None:
        out.append(finding("cache hit ratio", OK if ratio >= t["cache_hit_ratio"] else WARNING,
                           "%.4f (threshold %s)" % (ratio, t["cache_hit_ratio"]), {"cache_hit_ratio": ratio}))
    if "long_queries" in facts:
        long = facts["long_queries"]
        reason = "%d running longer than %d s" % (len(long), t["long_query_seconds"])
        if long:
            reason += ": longest pid %s, %d s: %s" % (long[0]["pid"], long[0]["duration_s"], long[0]["query"])
        out.append(finding("long-running queries", WARNING if long else OK, reason, {"long_queries": len(long)},
                           long))
    if "lock_waits" in facts:
        waits = facts["lock_waits"]
        reason = "%d sessions waiting for a lock" % len(waits)
        if waits:
            first = waits[0]
            reason += ": pid %s (%s) blocked by pid %s (%s)" % (first["pid"], first["query"], first["blocked_by"],
                                                                first.get("blocking_query", ""))
        out.append(finding("lock waits", WARNING if waits else OK, reason, {"lock_waits": len(waits)}, waits))
    if "slow_queries" in facts:
        slow = facts["slow_queries"]
        if slow is None:
            out.append(finding("slow queries", WARNING, facts.get("slow_queries_note")
                               or "no statement statistics on this server", {}))
        else:
            out.append(finding("slow queries", WARNING if slow else OK,
                               "%d statements with a mean over %d ms" % (len(slow), t["slow_query_ms"]),
                               {"slow_queries": len(slow)}, slow))
    if "duplicate_indexes" in facts:
        dup = facts["duplicate_indexes"]
        out.append(finding("duplicate indexes", WARNING if dup else OK,
                           "%d duplicate indexes%s" % (len(dup), (": " + "; ".join(
                               "%s %s %s" % (d["index"], "same as" if d["kind"] == "exact" else "a prefix of",
                                             d["duplicate_of"]) for d in dup[:10])) if dup else ""),
                           {"duplicate_indexes": len(dup)}, dup))
    if "connections" in facts and facts["connections"].get("max"):
        used, limit = facts["connections"]["used"], facts["connections"]["max"]
        share = percent(used, limit)
        out.append(finding("connections", OK if share < t["connections_percent"] else WARNING,
                           "%d of %d (%s %%, threshold %s %%)" % (used, limit, share, t["connections_percent"]),
                           {"connections": used, "max_connections": limit, "connections_percent": share}))
    if "dead_tuples" in facts:
        bloated = [row for row in facts["dead_tuples"] if row.get("dead_percent", 0) >= t["dead_tuple_percent"]
                   and row.get("dead", t["dead_tuples_min"]) >= t["dead_tuples_min"]]
        named = ", ".join("%s (%s dead, %s %%)" % (row.get("table"), row.get("dead", "?"), row.get("dead_percent"))
                          for row in bloated[:10])
        out.append(finding("dead tuples", WARNING if bloated else OK,
                           "%d tables with at least %s %% and %d dead tuples%s" % (
                               len(bloated), t["dead_tuple_percent"], t["dead_tuples_min"],
                               ": " + named if named else ""),
                           {"bloated_tables": len(bloated)}, bloated))
    if "unused_indexes" in facts:
        unused = [i for i in facts["unused_indexes"] if i.get("size_bytes", 0) >= t["unused_index_min_bytes"]]
        out.append(finding("unused indexes", WARNING if unused else OK,
                           "%d never-scanned indexes of at least %d bytes" % (len(unused), t["unused_index_min_bytes"]),
                           {"unused_indexes": len(unused)}, unused))
    if "seq_scans" in facts:
        big = [s for s in facts["seq_scans"] if s.get("rows", 0) >= t["seq_scan_min_rows"]]
        out.append(finding("sequential scans on big tables", WARNING if big else OK,
                           "%d tables of at least %d rows read by sequential scans" % (len(big),
                                                                                       t["seq_scan_min_rows"]),
                           {"seq_scan_tables": len(big)}, big))
    if "integrity" in facts:
        status, detail = facts["integrity"]
        out.append(finding("integrity", OK if status == "passed" else CRITICAL, detail))
    if "freelist" in facts:
        pages, free = facts["freelist"]
        out.append(finding("free pages", OK, "%d of %d pages free (%s %%)" % (free, pages, percent(free, pages)),
                           {"free_pages": free, "page_count": pages}))
    if "sizes" in facts:
        sizes = facts["sizes"]
        tables = sizes.get("tables") or []
        reason = "database %d bytes, %d tables" % (sizes.get("database_bytes") or 0, len(tables))
        out.append(finding("sizes", OK, reason, {"database_bytes": sizes.get("database_bytes")}, tables))
    return out


# ---------------------------------------------------------------------------------------------- data checks
def data_checks(specs, figures, now=None):
    """Findings of the configured data checks. ``specs``: [{table, kind, ...}] where kind is ``row_count``
    (``baseline``, ``tolerance_percent``), ``freshness`` (``column``, ``max_age_hours``), ``not_null``
    (``columns``) or ``unique`` (``columns``); ``figures``: what the adapter measured for each, in the same order
    (row_count: {"rows"}; freshness: {"newest"} ISO time or None; not_null: {"nulls": {column: count}};
    unique: {"duplicates": keys with more than one row, "sample": [...]})."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    out = []
    for spec, got in zip(specs, figures, strict=True):
        table, kind = spec["table"], spec["kind"]
        name = "%s %s" % (kind, table)
        if got.get("error"):
            out.append(finding(name, CRITICAL, "%s: could not check: %s" % (table, got["error"])))
        elif kind == "row_count":
            rows, baseline = int(got["rows"]), int(spec["baseline"])
            tolerance = float(spec.get("tolerance_percent", 10))
            off = percent(abs(rows - baseline), baseline) if baseline else (0.0 if rows == 0 else 100.0)
            out.append(finding(name, OK if off <= tolerance else CRITICAL,
                               "%s: %d rows, baseline %d, %s %% off (tolerance %s %%)"
                               % (table, rows, baseline, off, tolerance),
                               {"rows": rows, "baseline": baseline, "off_percent": off}))
        elif kind == "freshness":
            newest = _when(got.get("newest"))
            limit = float(spec.get("max_age_hours", 24))
            if newest is None:
                out.append(finding(name, CRITICAL, "%s.%s: no rows with a time (max age %s h)"
                                   % (table, spec["column"], limit)))
            else:
                age = round((now - newest).total_seconds() / 3600.0, 1)
                out.append(finding(name, OK if age <= limit else CRITICAL,
                                   "%s.%s: newest %s, %s h old (max %s h)" % (table, spec["column"],
                                                                              newest.isoformat(), age, limit),
                                   {"age_hours": age, "max_age_hours": limit}))
        elif kind == "not_null":
            nulls = {c: int(n) for c, n in (got.get("nulls") or {}).items()}
            bad = dict((c, n) for c, n in sorted(nulls.items()) if n)
            out.append(finding(name, CRITICAL if bad else OK,
                               "%s: %s" % (table, ", ".join("%d NULLs in %s" % (n, c) for c, n in bad.items())
                                           if bad else "no NULLs in %s" % ", ".join(sorted(nulls))),
                               {"null_values": sum(bad.values())}))
        elif kind == "unique":
            dup = int(got.get("duplicates") or 0)
            out.append(finding(name, CRITICAL if dup else OK,
                               "%s: %d duplicate keys on (%s)" % (table, dup, ", ".join(spec["columns"])),
                               {"duplicate_keys": dup}, got.get("sample") or []))
        else:
            raise MaintenanceError("unknown data check kind %r (row_count, freshness, not_null, unique)" % kind)
    return out


def check_data_spec(spec):
    """A data check spec is complete; MaintenanceError says what is missing."""
    kind = spec.get("kind")
    need = {"row_count": ("table", "baseline"), "freshness": ("table", "column"), "not_null": ("table", "columns"),
            "unique": ("table", "columns")}.get(kind)
    if need is None:
        raise MaintenanceError("data check %r: kind must be row_count, freshness, not_null or unique" % (spec,))
    missing = [k for k in need if spec.get(k) in (None, "", [])]
    if missing:
        raise MaintenanceError("data check %s on %s needs %s" % (kind, spec.get("table"), ", ".join(missing)))
    return spec


def _when(value):
    if value in (None, ""):
        return None
    if isinstance(value, datetime.datetime):
        when = value
    else:
        text = str(value).strip().replace(" ", "T", 1)
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            when = datetime.datetime.fromisoformat(text)
        except ValueError:
            return None
    return when if when.tzinfo else when.replace(tzinfo=datetime.timezone.utc)


# ---------------------------------------------------------------------------------------------- growth
def growth(points, free_bytes=None, min_span_days=1.0):
    """Growth of a size over time and when the disk fills.

    ``points``: [(when, bytes)] (ISO strings or datetimes), any order. The rate is the least-squares slope over
    the points (bytes per day); with fewer than two points, points spanning less than ``min_span_days`` (runs a
    few minutes apart would project a vacuum's or an import's step as a daily rate), or a rate of 0 or less,
    there is no projection. ``free_bytes``: what is free on the file system now; it fills when the size has grown
    by that much at that rate (from the newest point).
    Returns {"rate_bytes_per_day", "points", "span_days", "days_to_full", "full_on"} (None where unknown).
    """
    series = sorted((t, float(v)) for t, v in ((_when(w), b) for w, b in points) if t is not None and v is not None)
    result = {"rate_bytes_per_day": None, "points": len(series), "span_days": 0.0, "days_to_full": None,
              "full_on": None}
    if len(series) < 2:
        return result
    t0 = series[0][0]
    xs = [(when - t0).total_seconds() / 86400.0 for when, _size in series]
    ys = [size for _when_, size in series]
    result["span_days"] = round(xs[-1], 3)
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread == 0 or xs[-1] < min_span_days:
        return result
    rate = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread
    result["rate_bytes_per_day"] = round(rate, 1)
    if rate <= 0 or free_bytes is None:
        return result
    days = max(0.0, float(free_bytes)) / rate
    result["days_to_full"] = round(days, 1)
    if days < 365 * 200:
        result["full_on"] = (series[-1][0] + datetime.timedelta(days=days)).date().isoformat()
    return result


# ---------------------------------------------------------------------------------------------- engine helpers
def pg_index_bloat(size_bytes, tuples, key_width, block_size=8192, fillfactor=90):
    """Estimated bloat of a btree index, in percent of its size: the pages it has against the pages its tuples
    need (8-byte tuple header + the key's average width, 8-aligned, + a 4-byte line pointer per tuple, pages
    filled to ``fillfactor`` after 24 bytes of page header and 16 of btree special space, + the meta page).
    Unknown (0) before the first VACUUM or ANALYZE (``tuples`` < 0) or for an empty index."""
    size_bytes, tuples, key_width = int(size_bytes or 0), float(tuples), max(0, int(key_width or 0))
    if size_bytes <= 0 or tuples < 0:
        return 0.0
    pages = size_bytes / float(block_size)
    per_tuple = 8 + int(math.ceil(key_width / 8.0)) * 8 + 4
    usable = (block_size - 24 - 16) * fillfactor / 100.0
    needed = math.ceil(tuples * per_tuple / usable) + 1
    return round(max(0.0, 100.0 * (pages - needed) / pages), 1)


def duplicate_indexes(indexes):
    """Indexes another index of the same table makes redundant, each {table, index, duplicate_of, kind,
    size_bytes}. ``indexes``: [{table, index, method, keys: [column or expression, in order], signature (operator
    classes, collations, orderings: equal for an exact duplicate), predicate, unique, primary, size_bytes}].

    ``exact``: same method, keys, signature and predicate; the one kept is the primary key, else a unique one, else
    the first by name. ``prefix``: a non-unique btree index whose keys are the leading keys of another btree index
    with the same predicate (the longer one serves its lookups). A unique index is never a prefix duplicate (it
    enforces a constraint the longer one does not)."""
    by_table = {}
    for index in indexes or ():
        by_table.setdefault(index["table"], []).append(index)
    out = []
    for table in sorted(by_table):
        group = sorted(by_table[table], key=lambda i: (not i.get("primary"), not i.get("unique"), i["index"]))
        reported = set()
        for pos, index in enumerate(group):
            if index["index"] in reported:
                continue
            for other in group[pos + 1:]:
                if other["index"] in reported:
                    continue
                if (index.get("method"), list(index["keys"]), index.get("signature", ""), index.get("predicate", "")) \
                        == (other.get("method"), list(other["keys"]), other.get("signature", ""),
                            other.get("predicate", "")):
                    reported.add(other["index"])
                    out.append({"table": table, "index": other["index"], "duplicate_of": index["index"],
                                "kind": "exact", "size_bytes": other.get("size_bytes")})
        for index in group:
            if index["index"] in reported or index.get("unique") or index.get("primary") \
                    or index.get("method") != "btree":
                continue
            keys = list(index["keys"])
            longer = [o for o in group if o["index"] != index["index"] and o["index"] not in reported
                      and o.get("method") == "btree" and o.get("predicate", "") == index.get("predicate", "")
                      and len(o["keys"]) > len(keys) and list(o["keys"][:len(keys)]) == keys]
            if longer:
                reported.add(index["index"])
                out.append({"table": table, "index": index["index"], "duplicate_of": longer[0]["index"],
                            "kind": "prefix", "size_bytes": index.get("size_bytes")})
    return out


# ---------------------------------------------------------------------------------------------- EXPLAIN
EXPLAIN_TOP = 3
_COMMENTS = re.compile(r"/\*.*?\*/|--[^\n]*", re.S)
_NOT_READ_ONLY = re.compile(r"\b(into|for\s+(update|share|no\s+key\s+update|key\s+share))\b", re.I)


def explainable(query):
    """(True, "") when ``query`` (a statement as pg_stat_statements shows it) is a single plain SELECT that may be
    explained, else (False, why). Only SELECT: never INSERT / UPDATE / DELETE / DDL, a data-changing WITH, SELECT
    INTO (creates a table) or a locking SELECT ... FOR UPDATE / SHARE."""
    text = _COMMENTS.sub(" ", query or "").strip().rstrip(";").strip()
    if not text:
        return False, "no statement text"
    if not re.match(r"select\b", text, re.I):
        return False, "not a SELECT (%s)" % text.split(None, 1)[0].upper()
    if ";" in text:
        return False, "more than one statement"
    if _NOT_READ_ONLY.search(text):
        return False, "SELECT INTO or a locking SELECT"
    return True, ""


def explain_params(query):
    """How many $n parameters pg_stat_statements' text has (the highest n)."""
    numbers = [int(n) for n in re.findall(r"\$(\d+)", _COMMENTS.sub(" ", query or ""))]
    return max(numbers) if numbers else 0


def explain_sql(query, analyze=False, timeout_s=10, lock_timeout_s=2):
    """The psql script that explains ``query`` without running it: in a READ ONLY transaction with a statement and
    a lock timeout, PREPAREd (its $n parameters get their types from the statement) and EXPLAINed with NULL
    parameters under a generic plan (plan_cache_mode; the plan does not depend on the NULLs), then rolled back.
    ``analyze`` runs it (EXPLAIN ANALYZE; with NULL parameters, so it reads what a NULL lookup reads), still
    read-only and bounded. MaintenanceError when the statement is not a plain SELECT."""
    ok, why = explainable(query)
    if not ok:
        raise MaintenanceError("not explained: %s" % why)
    text = _COMMENTS.sub(" ", query).strip().rstrip(";").strip()
    count = explain_params(text)
    args = "(%s)" % ", ".join(["NULL"] * count) if count else ""
    options = "ANALYZE, BUFFERS, " if analyze else ""
    return ("BEGIN READ ONLY;\nSET LOCAL statement_timeout = %d;\nSET LOCAL lock_timeout = %d;\n"
            "SET LOCAL plan_cache_mode = force_generic_plan;\nPREPARE rc_explain AS %s;\n"
            "EXPLAIN (%sFORMAT TEXT) EXECUTE rc_explain%s;\nROLLBACK;\n"
            % (max(1, int(float(timeout_s) * 1000)), max(1, int(float(lock_timeout_s) * 1000)), text, options,
               args))


def explain_candidates(slow_queries, top=EXPLAIN_TOP):
    """The ``top`` slowest statements (by mean) that explainable() accepts, as given."""
    ranked = sorted(slow_queries or (), key=lambda q: -float(q.get("mean_ms") or 0))
    return [q for q in ranked if explainable(q.get("query"))[0]][:max(0, int(top))]


def explain_findings(results, analyze=False):
    """One finding per explained statement: {queryid, query, plan: [lines]} or {..., error}."""
    out = []
    for item in results:
        name = "%s of statement %s" % ("EXPLAIN ANALYZE" if analyze else "plan", item.get("queryid") or "?")
        if item.get("error"):
            out.append(finding(name, WARNING, "%s: %s" % (item.get("query", "")[:200], item["error"])))
            continue
        plan = item.get("plan") or []
        top = plan[0].strip() if plan else "(empty)"
        out.append(finding(name, OK, "%s -> %s" % (item.get("query", "")[:200], top),
                           {"plan_lines": len(plan)}, [{"line": line} for line in plan]))
    return out


def pgss_note(installed, loaded):
    """What to say about pg_stat_statements: "" when it can be read, else what is missing and what to do."""
    if installed and loaded:
        return ""
    if loaded:
        return ("pg_stat_statements is loaded but not created: run CREATE EXTENSION pg_stat_statements; as the "
                "server's admin in the postgres database (roles/database does it on every deploy)")
    return ("pg_stat_statements is not loaded (shared_preload_libraries), so there are no slow-statement figures; "
            "deploy again (roles/database starts the server with shared_preload_libraries=pg_stat_statements and "
            "creates the extension in the postgres database; a restart of the database)")


def mysql_admin_outcome(act, rows):
    """(outcome, detail) of ANALYZE / OPTIMIZE / CHECK TABLE from their result rows (Table, Op, Msg_type,
    Msg_text): an ``error`` row fails the action; CHECK TABLE whose status is not OK is a ``problem``."""
    messages = [(r[2].lower(), r[3]) for r in rows if len(r) >= 4]
    errors = [text for kind, text in messages if kind == "error"]
    if errors:
        return "failed", "; ".join(errors)
    if act["action"] == "check_table":
        bad = [text for kind, text in messages if kind == "status" and text.upper() != "OK"]
        bad += [text for kind, text in messages if kind == "warning"]
        if bad:
            return "problem", "; ".join(bad)
    return "done", "; ".join("%s: %s" % m for m in messages[-2:])


DATA_KINDS = ("row_count", "freshness", "not_null", "unique")


def data_check_sql(spec, table, quote, text_type):
    """The one SELECT a data check needs (``table`` already quoted; ``quote`` quotes a column; ``text_type`` the
    engine's name of a text cast: text, CHAR, TEXT)."""
    check_data_spec(spec)
    kind = spec["kind"]
    if kind == "row_count":
        return "SELECT COUNT(*) FROM %s;" % table  # noqa: S608 - quoted identifiers
    if kind == "freshness":
        return "SELECT CAST(MAX(%s) AS %s) FROM %s;" % (quote(spec["column"]), text_type, table)  # noqa: S608
    columns = [quote(c) for c in spec["columns"]]
    if kind == "not_null":
        counts = ", ".join("COALESCE(SUM(CASE WHEN %s IS NULL THEN 1 ELSE 0 END), 0)" % c for c in columns)
        return "SELECT %s FROM %s;" % (counts, table)  # noqa: S608 - quoted identifiers
    keys = ", ".join(columns)
    return "SELECT COUNT(*) FROM (SELECT 1 AS one FROM %s GROUP BY %s HAVING COUNT(*) > 1) d;" % (  # noqa: S608
        table, keys)


def data_check_figures(spec, row):
    """The figures data_checks() reads, from the one row data_check_sql() returned."""
    kind = spec["kind"]
    if kind == "row_count":
        return {"rows": int(row[0])}
    if kind == "freshness":
        return {"newest": (row[0] if row and row[0] not in ("", None) else None)}
    if kind == "not_null":
        return {"nulls": dict(zip(spec["columns"], (int(float(v or 0)) for v in row), strict=False))}
    return {"duplicates": int(row[0]) if row else 0}


def worst(statuses):
    order = (OK, WARNING, CRITICAL)
    return max(statuses or [OK], key=lambda s: order.index(s) if s in order else 2)


# ---------------------------------------------------------------------------------------------- report shape
ACTION_STATUS = {"done": OK, "planned": OK, "skipped": WARNING, "failed": WARNING, "problem": CRITICAL}


def finding_checks(findings, kind):
    """Findings as checks of the report (health_report's shape: name, kind, status, reason, metrics)."""
    return [{"name": f["name"], "kind": kind, "status": f["status"], "reason": f["reason"],
             "metrics": dict(f.get("figures") or {})} for f in findings]


def action_checks(actions, label):
    """One check per action (its outcome: done/planned ok, skipped/failed warning, a check's problem critical),
    or one ok check saying nothing was over a threshold."""
    if not actions:
        return [{"name": label, "kind": "maintenance", "status": OK, "reason": "nothing over a threshold",
                 "metrics": {"actions": 0}}]
    return [{"name": "%s %s" % (a["action"], a["object"]), "kind": "maintenance",
             "status": ACTION_STATUS.get(a.get("outcome", "planned"), WARNING),
             "reason": "%s: %s%s" % (a.get("outcome", "planned"), a["reason"],
                                     (" - %s" % a["detail"]) if a.get("detail") else ""),
             "metrics": dict(a.get("figures") or {}, seconds=a.get("seconds"))} for a in actions]


# ---------------------------------------------------------------------------------------------- monthly rollup
UPTIME_TARGET_PERCENT = 99.5  # seed 001
ROLLUP_DAYS = 30


def monthly_rollup(health, backups, incidents, sizes, now=None, days=ROLLUP_DAYS,
                   uptime_target=UPTIME_TARGET_PERCENT):
    """The monthly report's rollup over the last ``days`` days, as report checks (kind ``rollup``).

    ``health``: the health report's history points ({at, host, status}); uptime is the share of them that were not
    critical (each health run a sample: the runs are periodic), against seed 001's 99.5 %. ``backups``:
    backup_info's items ({finished_at, verified, error}); made in the period, and how many of them verified.
    ``incidents``: the names of incident bundles (their UTC stamps, 20261203T053000Z). ``sizes``: the recorded
    database sizes ({at, host, bytes}); growth from the first to the last in the period."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    since = now - datetime.timedelta(days=days)

    def inside(value):
        when = _when(value)
        return when is not None and since <= when <= now

    out = []
    points = [p for p in health or () if isinstance(p, dict) and inside(p.get("at"))]
    if points:
        up = [p for p in points if p.get("status") != CRITICAL]
        share = round(100.0 * len(up) / len(points), 2)
        out.append({"name": "uptime", "kind": "rollup", "status": OK if share >= uptime_target else CRITICAL,
                    "metrics": {"uptime_percent": share, "health_runs": len(points), "target_percent": uptime_target},
                    "reason": "%s %% of %d health runs in the last %d days not critical (target %s %%)"
                    % (share, len(points), days, uptime_target)})
    else:
        out.append({"name": "uptime", "kind": "rollup", "status": WARNING, "metrics": {"health_runs": 0},
                    "reason": "no health history in the last %d days (playbooks/health.yml keeps it)" % days})
    made = [b for b in backups or () if isinstance(b, dict) and not b.get("error") and inside(b.get("finished_at"))]
    damaged = [b for b in backups or () if isinstance(b, dict) and b.get("error")]
    verified = [b for b in made if b.get("verified")]
    status = CRITICAL if not made or damaged else WARNING if len(verified) < len(made) else OK
    reason = "%d backups made in the last %d days, %d verified" % (len(made), days, len(verified))
    if damaged:
        reason += ", %d unreadable (%s)" % (len(damaged), ", ".join(str(b.get("name")) for b in damaged[:3]))
    out.append({"name": "backups", "kind": "rollup", "status": status, "reason": reason,
                "metrics": {"backups_made": len(made), "backups_verified": len(verified)}})
    stamps = sorted(str(n) for n in incidents or () if inside(str(n)))
    named = (": " + ", ".join(stamps[-5:])) if stamps else ""
    out.append({"name": "incidents", "kind": "rollup", "status": WARNING if stamps else OK,
                "metrics": {"incidents": len(stamps)},
                "reason": "%d incident bundles in the last %d days%s" % (len(stamps), days, named)})
    series = sorted((_when(p.get("at")), float(p["bytes"])) for p in sizes or ()
                    if isinstance(p, dict) and inside(p.get("at")) and p.get("bytes") not in (None, ""))
    if len(series) >= 2:
        first, last = series[0][1], series[-1][1]
        rate = growth(series)["rate_bytes_per_day"]
        out.append({"name": "capacity growth", "kind": "rollup", "status": OK,
                    "metrics": {"first_bytes": int(first), "last_bytes": int(last), "growth_bytes_per_day": rate},
                    "reason": "database %d -> %d bytes in the last %d days (%+.1f %%), %s"
                    % (first, last, days, (100.0 * (last - first) / first) if first else 0.0,
                       "no daily rate yet (under a day of sizes)" if rate is None else "%s bytes/day" % rate)})
    else:
        out.append({"name": "capacity growth", "kind": "rollup", "status": OK, "metrics": {},
                    "reason": "%d database sizes recorded in the last %d days (2 needed)" % (len(series), days)})
    return out


def percentile(values, share):
    """The nearest-rank percentile (``share`` 0-100) of ``values``; None when there are none."""
    ordered = sorted(float(v) for v in values or ())
    if not ordered:
        return None
    rank = max(1, int(math.ceil(float(share) / 100.0 * len(ordered))))
    return ordered[min(rank, len(ordered)) - 1]


def latency_summary(samples, url=""):
    """What a Probe saw: [(seconds or None, error)] -> {url, requests, failed, errors, p50_ms, p95_ms, max_ms}."""
    times = [s for s, _err in samples if s is not None]
    errors = sorted({err for s, err in samples if s is None})

    def ms(value):
        return None if value is None else round(value * 1000.0, 1)

    return {"url": url, "requests": len(samples), "failed": len(samples) - len(times), "errors": errors[:5],
            "p50_ms": ms(percentile(times, 50)), "p95_ms": ms(percentile(times, 95)),
            "max_ms": ms(max(times) if times else None)}


def probe_check(summary, label="app latency during maintenance"):
    """The report's check of a latency_summary(): a failed request is a warning (maintenance must not stall the
    app), as is a probe that got no answer at all."""
    metrics = {k: summary.get(k) for k in ("requests", "failed", "p50_ms", "p95_ms", "max_ms")}
    if not summary.get("requests"):
        return {"name": label, "kind": "maintenance", "status": WARNING, "metrics": metrics,
                "reason": "no request to %s was made" % summary.get("url", "")}
    reason = "%d requests to %s: p95 %s ms (p50 %s, max %s), %d failed" % (
        summary["requests"], summary.get("url", ""), summary["p95_ms"], summary["p50_ms"], summary["max_ms"],
        summary["failed"])
    if summary["failed"]:
        reason += " (%s)" % ", ".join(summary.get("errors") or [])
    return {"name": label, "kind": "maintenance", "status": WARNING if summary["failed"] else OK,
            "metrics": metrics, "reason": reason}


def capacity_check(result, database_bytes, warn_days=90):
    """The capacity finding from growth(): a disk full within ``warn_days`` is a warning (critical within a
    tenth of it)."""
    days = result.get("days_to_full")
    metrics = {"database_bytes": database_bytes, "growth_bytes_per_day": result.get("rate_bytes_per_day"),
               "days_to_full": days}
    if result.get("rate_bytes_per_day") is None:
        if result.get("points", 0) < 2:
            why = "%d sizes recorded, 2 needed" % result.get("points", 0)
        else:
            hours = 24 * float(result.get("span_days") or 0)
            why = "%d sizes over %.1f hours; a day of them needed" % (result["points"], hours)
        return {"name": "capacity", "kind": "capacity", "status": OK, "metrics": metrics,
                "reason": "database %s bytes; no growth rate yet (%s)" % (database_bytes, why)}
    reason = "database %s bytes, growing %s bytes/day" % (database_bytes, result["rate_bytes_per_day"])
    if days is None:
        return {"name": "capacity", "kind": "capacity", "status": OK, "metrics": metrics,
                "reason": reason + "; not growing: no disk-full date"}
    status = CRITICAL if days < warn_days / 10.0 else WARNING if days < warn_days else OK
    return {"name": "capacity", "kind": "capacity", "status": status, "metrics": metrics,
            "reason": reason + "; the disk is full in %s days (%s; warning under %s days)"
            % (days, result.get("full_on") or "in centuries", warn_days)}
