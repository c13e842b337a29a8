# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Maintenance and diagnostics, the engine side (issue 15): what each adapter gathers and runs.

One mixin per engine, inherited by its adapter (``PostgreSQL``, ``MySQL``, ``SQLite``), implementing the methods
``engines/base.py`` declares: ``maintenance_stats()``, ``run_action()``, ``diagnostics()``, ``data_figures()``
and ``stop_query()``. What to act on, and every threshold, is decided in ``module_utils/maintenance.py``; here
only the statements that read the figures and the way each statement runs (under its lock timeout and time
bound, ``maintenance.session_sql()``).
"""

import json
import time

from .. import maintenance as mt
from .base import EngineError, long_query

# ------------------------------------------------------------------------------------------------ PostgreSQL
# Sizes come from pg_class.relpages (as of the last VACUUM / ANALYZE / index build): pg_relation_size() would wait
# for a lock that a long ALTER or LOCK TABLE holds, and diagnostics must never wait. lock_timeout is a backstop.
PG_STATS_SQL = r"""
SET lock_timeout = 2000;
SELECT 'table', schemaname, relname, n_live_tup::text, n_dead_tup::text
  FROM pg_stat_user_tables ORDER BY n_dead_tup DESC;
SELECT 'index', n.nspname, ci.relname, (ci.relpages::bigint * current_setting('block_size')::int)::text,
       ci.reltuples::bigint::text,
       coalesce((SELECT sum(s.avg_width) FROM pg_attribute a JOIN pg_stats s ON s.schemaname = n.nspname
                  AND s.tablename = ct.relname AND s.attname = a.attname
                 WHERE a.attrelid = ct.oid AND a.attnum = ANY(i.indkey)), 0)::bigint::text,
       CASE WHEN NOT i.indisvalid AND ci.relname ~ '_ccnew[0-9]*$' THEN 't' ELSE 'f' END,
       current_setting('block_size')
  FROM pg_index i JOIN pg_class ci ON ci.oid = i.indexrelid JOIN pg_class ct ON ct.oid = i.indrelid
  JOIN pg_namespace n ON n.oid = ci.relnamespace JOIN pg_am am ON am.oid = ci.relam
 WHERE am.amname = 'btree' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg\_toast%' ORDER BY 2, 3;
SELECT 'pgss', (SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements')::text,
       current_database();
"""

PG_DIAG_SQL = r"""
SET lock_timeout = 2000;
SELECT 'hit', coalesce(sum(blks_hit), 0)::text, coalesce(sum(blks_read), 0)::text
  FROM pg_stat_database WHERE datname = current_database();
SELECT 'conn', count(*)::text, current_setting('max_connections')
  FROM pg_stat_activity WHERE backend_type = 'client backend';
SELECT 'long', pid::text, floor(extract(epoch FROM clock_timestamp() - query_start))::bigint::text,
       left(regexp_replace(coalesce(query, ''), '\s+', ' ', 'g'), 200)
  FROM pg_stat_activity
 WHERE backend_type = 'client backend' AND state <> 'idle' AND pid <> pg_backend_pid()
   AND query_start < clock_timestamp() - make_interval(secs => :'secs')
 ORDER BY query_start LIMIT 20;
SELECT 'wait', w.pid::text, b.pid::text, floor(extract(epoch FROM clock_timestamp() - w.query_start))::bigint::text,
       left(regexp_replace(coalesce(w.query, ''), '\s+', ' ', 'g'), 200),
       left(regexp_replace(coalesce(b.query, ''), '\s+', ' ', 'g'), 200)
  FROM pg_stat_activity w CROSS JOIN LATERAL unnest(pg_blocking_pids(w.pid)) AS bp(pid)
  JOIN pg_stat_activity b ON b.pid = bp.pid
 WHERE w.wait_event_type = 'Lock' ORDER BY w.query_start LIMIT 20;
SELECT 'dead', schemaname || '.' || relname, n_live_tup::text, n_dead_tup::text
  FROM pg_stat_user_tables WHERE n_dead_tup > 0 ORDER BY n_dead_tup DESC LIMIT 20;
SELECT 'unused', s.schemaname || '.' || s.indexrelname, s.schemaname || '.' || s.relname,
       (c.relpages::bigint * current_setting('block_size')::int)::text
  FROM pg_stat_user_indexes s JOIN pg_index i ON i.indexrelid = s.indexrelid JOIN pg_class c ON c.oid = s.indexrelid
 WHERE s.idx_scan = 0 AND NOT i.indisunique AND NOT i.indisprimary
 ORDER BY c.relpages DESC LIMIT 20;
SELECT 'seq', schemaname || '.' || relname, n_live_tup::text, seq_scan::text, coalesce(idx_scan, 0)::text
  FROM pg_stat_user_tables WHERE seq_scan > 0 ORDER BY n_live_tup DESC LIMIT 20;
SELECT 'dbsize', pg_database_size(current_database())::text;
SELECT 'tsize', name, (heap + idx)::text, heap::text, idx::text FROM (
  SELECT n.nspname || '.' || c.relname AS name,
         (c.relpages + coalesce(t.relpages, 0))::bigint * current_setting('block_size')::int AS heap,
         coalesce((SELECT sum(ic.relpages) FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
                    WHERE i.indrelid = c.oid), 0)::bigint * current_setting('block_size')::int AS idx
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_class t ON t.oid = c.reltoastrelid
   WHERE c.relkind IN ('r', 'p', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
     AND n.nspname NOT LIKE 'pg\_toast%') s ORDER BY heap + idx DESC LIMIT 20;
SELECT 'idx', n.nspname || '.' || ct.relname, n.nspname || '.' || ci.relname, am.amname,
       (SELECT string_agg(pg_get_indexdef(i.indexrelid, k, true), ', ' ORDER BY k)
          FROM generate_series(1, i.indnkeyatts) k),
       i.indclass::text || '/' || i.indcollation::text || '/' || i.indoption::text,
       coalesce(pg_get_expr(i.indpred, i.indrelid, true), ''), i.indisunique::text, i.indisprimary::text,
       (ci.relpages::bigint * current_setting('block_size')::int)::text
  FROM pg_index i JOIN pg_class ci ON ci.oid = i.indexrelid JOIN pg_class ct ON ct.oid = i.indrelid
  JOIN pg_namespace n ON n.oid = ct.relnamespace JOIN pg_am am ON am.oid = ci.relam
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_toast%' AND i.indisvalid
 ORDER BY 2, 3;
SELECT 'pgss', (SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements')::text,
       coalesce((SELECT setting FROM pg_settings WHERE name = 'shared_preload_libraries'), '?');
"""

# pg_stat_statements lives in the `postgres` maintenance database (roles/database creates it there, not in the app's
# database, so the app's dumps do not carry it); it sees every database's statements: those of the app's database
# are picked by its oid. Read there first, then in the app's database (a server set up by hand).
PG_SLOW_SQL = r"""
SELECT (count(*) > 0)::int AS pgss_here FROM pg_extension WHERE extname = 'pg_stat_statements' \gset
\if :pgss_here
SELECT 'slow', s.queryid::text, s.calls::text, round(s.mean_exec_time)::bigint::text,
       round(s.total_exec_time)::bigint::text, left(regexp_replace(s.query, '\s+', ' ', 'g'), :qlen)
  FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
 WHERE d.datname = :'db' AND s.mean_exec_time > :ms ORDER BY s.mean_exec_time DESC LIMIT 20;
SELECT 'pgss_here', 't';
\else
SELECT 'pgss_here', 'f';
\endif
"""
# How much of a statement's text the report keeps (EXPLAIN needs all of it: longer ones are not explained).
QUERY_TEXT_CHARS = 2000

STOP_VERBS = ("cancel", "terminate")
# A data check reads the app's tables: it waits this long for a lock and runs this long at most.
DATA_LOCK_TIMEOUT_S = 5
DATA_STATEMENT_TIMEOUT_S = 120


def _ints(*values):
    return [int(float(v or 0)) for v in values]


def _size_rows(rows):
    return [{"name": r[1], "total_bytes": int(r[2]), "table_bytes": int(r[3]), "index_bytes": int(r[4])}
            for r in rows]


def _timed(run, budget_left):
    """(outcome, detail, seconds) of ``run()`` when there is budget left, else a skip."""
    if budget_left is None:
        return "skipped", "the run's time budget is spent", 0.0
    started = time.monotonic()
    try:
        detail = run()
    except EngineError as exc:
        return "failed", str(exc), round(time.monotonic() - started, 2)
    outcome = "done"
    if isinstance(detail, tuple):
        outcome, detail = detail
    return outcome, detail or "", round(time.monotonic() - started, 2)


def _split_table(name, default_schema):
    schema, _sep, table = name.rpartition(".")
    return schema or default_schema, table


class PostgreSQLUpkeep:
    """Figures from pg_stat_user_tables / pg_index / pg_stat_activity / pg_stat_statements; every statement in its
    own psql session after ``SET lock_timeout`` and ``SET statement_timeout`` (VACUUM and REINDEX CONCURRENTLY
    cannot run in a transaction block: psql's autocommit runs them as they are)."""

    def maintenance_stats(self):
        rows = self.psql(PG_STATS_SQL, self.target.database, what="reading table and index statistics")
        stats = {"tables": [], "indexes": [], "database": self.target.database, "pg_stat_statements": False}
        for row in rows:
            if row[0] == "table":
                live, dead = _ints(row[3], row[4])
                stats["tables"].append({"schema": row[1], "table": row[2], "live": live, "dead": dead})
            elif row[0] == "index":
                size, tuples, width = _ints(row[3], row[4], row[5])
                stats["indexes"].append({
                    "schema": row[1], "index": row[2], "size_bytes": size, "invalid_leftover": row[6] == "t",
                    "bloat_percent": mt.pg_index_bloat(size, tuples, width, int(row[7]))})
            elif row[0] == "pgss":
                stats["pg_stat_statements"] = row[1] != "0"
        if not stats["pg_stat_statements"]:
            stats["pg_stat_statements_db"] = self._pgss_database()
        return stats

    def _pgss_database(self):
        """The maintenance database when pg_stat_statements is created there (roles/database), else None."""
        from .postgresql import MAINTENANCE_DB

        try:
            rows = self.psql("SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements';",
                             MAINTENANCE_DB, what="looking for pg_stat_statements")
        except EngineError:
            return None
        return MAINTENANCE_DB if rows and rows[0][0] != "0" else None

    def run_action(self, act, lock_timeout_s, statement_timeout_s):
        sql = mt.session_sql("postgresql", lock_timeout_s, statement_timeout_s) + "\n" + act["sql"]
        self.psql(sql, act.get("database") or self.target.database,
                  what="%s of %s" % (act["action"], act["object"]))
        return ""

    def diagnostics(self, long_query_seconds=5, slow_query_ms=1000):
        rows = self.psql(PG_DIAG_SQL, self.target.database, {"secs": int(long_query_seconds)},
                         what="reading the statistics views")
        facts = {"long_queries": [], "lock_waits": [], "dead_tuples": [], "unused_indexes": [], "seq_scans": [],
                 "sizes": {"database_bytes": None, "tables": []}}
        tables, indexes, pgss = [], [], None
        for row in rows:
            tag = row[0]
            if tag == "idx":
                indexes.append({"table": row[1], "index": row[2], "method": row[3], "keys": row[4].split(", "),
                                "signature": row[5], "predicate": row[6], "unique": row[7] == "true",
                                "primary": row[8] == "true", "size_bytes": int(row[9])})
            elif tag == "hit":
                hit, read = _ints(row[1], row[2])
                facts["cache_hit_ratio"] = round(hit / float(hit + read), 4) if hit + read else None
                facts["cache_accesses"] = hit + read
            elif tag == "conn":
                facts["connections"] = dict(zip(("used", "max"), _ints(row[1], row[2]), strict=True))
            elif tag == "long":
                facts["long_queries"].append(long_query(row[1], row[2], row[3] if len(row) > 3 else ""))
            elif tag == "wait":
                facts["lock_waits"].append({"pid": int(row[1]), "blocked_by": int(row[2]), "waiting_s": int(row[3]),
                                            "query": row[4] if len(row) > 4 else "",
                                            "blocking_query": row[5] if len(row) > 5 else ""})
            elif tag == "dead":
                live, dead = _ints(row[2], row[3])
                facts["dead_tuples"].append({"table": row[1], "live": live, "dead": dead,
                                             "dead_percent": mt.percent(dead, live + dead)})
            elif tag == "unused":
                facts["unused_indexes"].append({"index": row[1], "table": row[2], "size_bytes": int(row[3])})
            elif tag == "seq":
                live, seq, idx = _ints(row[2], row[3], row[4])
                facts["seq_scans"].append({"table": row[1], "rows": live, "seq_scans": seq, "index_scans": idx})
            elif tag == "dbsize":
                facts["sizes"]["database_bytes"] = int(row[1])
            elif tag == "tsize":
                tables.append(row)
            elif tag == "pgss":
                # a login without pg_read_all_settings does not see the setting ('?'): reading the view tells
                pgss = (row[1] != "0", row[2] if len(row) > 2 else "?")
        facts["sizes"]["tables"] = _size_rows(tables)
        facts["duplicate_indexes"] = mt.duplicate_indexes(indexes)
        installed, libraries = pgss or (False, "")
        loaded = libraries == "?" or "pg_stat_statements" in libraries
        facts["slow_queries"], facts["slow_queries_note"] = None, mt.pgss_note(installed, loaded)
        if loaded:
            self._slow_statements(facts, slow_query_ms)
        return facts

    def _slow_statements(self, facts, slow_query_ms):
        """facts["slow_queries"] from pg_stat_statements where it is created (``postgres``, else the app's
        database), only the app database's statements; or the note saying why there are none."""
        from .postgresql import MAINTENANCE_DB

        for database in dict.fromkeys((MAINTENANCE_DB, self.target.database)):
            try:
                rows = self.psql(PG_SLOW_SQL, database, {"ms": float(slow_query_ms), "db": self.target.database,
                                                         "qlen": QUERY_TEXT_CHARS},
                                 what="reading pg_stat_statements in database %s" % database)
            except EngineError as exc:
                if "shared_preload_libraries" in str(exc):
                    facts["slow_queries_note"] = mt.pgss_note(True, False)
                    return
                continue  # this login may not connect there
            if ["pgss_here", "t"] in rows:
                facts["slow_queries"] = [{"queryid": r[1], "calls": int(r[2]), "mean_ms": int(r[3]),
                                          "total_ms": int(r[4]), "query": r[5] if len(r) > 5 else ""}
                                         for r in rows if r[0] == "slow"]
                facts["slow_queries_note"], facts["slow_queries_from"] = "", database
                return
        facts["slow_queries_note"] = mt.pgss_note(False, True)

    def explain(self, query, analyze=False, timeout_s=10):
        """The plan of one statement as pg_stat_statements shows it ($n parameters): prepared, then EXPLAIN
        EXECUTE with NULL parameters under a generic plan, in a read-only transaction with a statement timeout
        (maintenance.explain_sql()); a list of the plan's lines."""
        sql = mt.explain_sql(query, analyze, timeout_s)
        return [r[0] for r in self.psql(sql, self.target.database, what="EXPLAIN of a slow statement")]

    def data_figures(self, spec):
        schema, table = _split_table(spec["table"], "public")
        quoted = "%s.%s" % (mt.pg_ident(schema), mt.pg_ident(table))
        sql = mt.session_sql("postgresql", DATA_LOCK_TIMEOUT_S, DATA_STATEMENT_TIMEOUT_S) + "\n" + mt.data_check_sql(
            spec, quoted, mt.pg_ident, "text")
        rows = self.psql(sql, self.target.database, what="data check %s on %s" % (spec["kind"], spec["table"]))
        return mt.data_check_figures(spec, rows[0] if rows else [])

    def stop_query(self, pid, verb):
        """pg_cancel_backend / pg_terminate_backend of ``pid``; True when the server signalled it."""
        function = {"cancel": "pg_cancel_backend", "terminate": "pg_terminate_backend"}[verb]
        rows = self.psql("SELECT %s(:'pid'::int)::text;" % function, self.target.database, {"pid": int(pid)},
                         what="%s of pid %d" % (verb, int(pid)))
        return bool(rows) and rows[0][0] == "true"


# ------------------------------------------------------------------------------------------------ MariaDB / MySQL
MY_STATS_SQL = ("SELECT table_name, COALESCE(engine, ''), COALESCE(data_length, 0), COALESCE(index_length, 0), "
                "COALESCE(data_free, 0) FROM information_schema.tables WHERE table_schema = %s AND "
                "table_type = 'BASE TABLE' ORDER BY table_name;")

MY_DIAG_SQL = """SELECT 'status', variable_name, variable_value FROM information_schema.global_status
 WHERE variable_name IN ('INNODB_BUFFER_POOL_READ_REQUESTS', 'INNODB_BUFFER_POOL_READS', 'THREADS_CONNECTED');
SELECT 'var', variable_name, variable_value FROM information_schema.global_variables
 WHERE variable_name IN ('MAX_CONNECTIONS', 'PERFORMANCE_SCHEMA', 'SLOW_QUERY_LOG', 'LONG_QUERY_TIME');
SELECT 'long', id, time, LEFT(COALESCE(info, ''), 200) FROM information_schema.processlist
 WHERE command NOT IN ('Sleep', 'Daemon', 'Binlog Dump', 'Binlog Dump GTID') AND id <> CONNECTION_ID()
   AND user NOT IN ('system user', 'event_scheduler') AND time >= %(secs)d ORDER BY time DESC LIMIT 20;
SELECT 'wait', r.trx_mysql_thread_id, b.trx_mysql_thread_id,
       TIMESTAMPDIFF(SECOND, r.trx_wait_started, NOW()), LEFT(COALESCE(r.trx_query, ''), 200),
       LEFT(COALESCE(b.trx_query, ''), 200)
  FROM information_schema.innodb_lock_waits w
  JOIN information_schema.innodb_trx r ON r.trx_id = w.requesting_trx_id
  JOIN information_schema.innodb_trx b ON b.trx_id = w.blocking_trx_id LIMIT 20;
SELECT 'dbsize', COALESCE(SUM(data_length + index_length), 0) FROM information_schema.tables
 WHERE table_schema = %(db)s;
SELECT 'tsize', table_name, data_length + index_length, data_length, index_length FROM information_schema.tables
 WHERE table_schema = %(db)s AND table_type = 'BASE TABLE' ORDER BY data_length + index_length DESC LIMIT 20;
SELECT 'idx', table_name, index_name, index_type,
       GROUP_CONCAT(CONCAT(column_name, IFNULL(CONCAT('(', sub_part, ')'), '')) ORDER BY seq_in_index SEPARATOR ', '),
       MAX(non_unique) FROM information_schema.statistics WHERE table_schema = %(db)s
 GROUP BY table_name, index_name, index_type ORDER BY table_name, index_name;
"""

# Timers are in picoseconds: 10^9 of them are a millisecond. Only the app database's statements (schema_name).
MY_SLOW_SQL = ("SELECT 'slow', digest, count_star, ROUND(avg_timer_wait / 1000000000), "
               "ROUND(sum_timer_wait / 1000000000), LEFT(COALESCE(digest_text, ''), %(qlen)d) "
               "FROM performance_schema.events_statements_summary_by_digest "
               "WHERE schema_name = %(db)s AND avg_timer_wait > %(ms)d * 1000000000 "
               "ORDER BY avg_timer_wait DESC LIMIT 20;")


class MySQLUpkeep:
    """Figures from information_schema (tables, processlist, InnoDB lock waits, global status) and, where it is
    on, performance_schema's statement digests; every statement after ``SET SESSION lock_wait_timeout,
    innodb_lock_wait_timeout, max_statement_time``."""

    def _db(self):
        from .mysql import quote_literal

        return quote_literal(self.target.database)

    def _innodb_stats_readable(self):
        """Whether this login may read InnoDB's persistent statistics (roles/database grants the owner role
        SELECT on mysql.innodb_table_stats and innodb_index_stats); without, an ANALYZE TABLE counts as a change."""
        if getattr(self, "_stats_readable", None) is None:
            try:
                self.sql(mt.MYSQL_STATS_READABLE_SQL, self.target.database, what="reading InnoDB's statistics")
                self._stats_readable = True
            except EngineError:
                self._stats_readable = False
        return self._stats_readable

    def maintenance_stats(self):
        rows = self.sql(MY_STATS_SQL % self._db(), what="reading table statistics")
        return {"database": self.target.database, "tables": [
            {"table": r[0], "engine": r[1], "data_bytes": int(r[2]), "index_bytes": int(r[3]),
             "free_bytes": int(r[4])} for r in rows]}

    def run_action(self, act, lock_timeout_s, statement_timeout_s):
        sql = mt.session_sql("mysql", lock_timeout_s, statement_timeout_s) + "\n" + act["sql"]
        measure = act["action"] == "analyze_table" and self._innodb_stats_readable()
        if measure:  # changed only when the optimizer's statistics changed
            table = act["object"].split(".", 1)[1]
            sql = "\n".join((mt.mysql_stats_sql(self.target.database, table, "before"), sql,
                             mt.mysql_stats_sql(self.target.database, table, "after")))
        rows = self.sql(sql, self.target.database, what="%s of %s" % (act["action"], act["object"]))
        if measure:
            act["changed"] = mt.mysql_stats_changed(rows)
        return mt.mysql_admin_outcome(act, rows)

    def diagnostics(self, long_query_seconds=5, slow_query_ms=1000):
        from .mysql import unescape_batch

        rows = self.sql(MY_DIAG_SQL % {"secs": int(long_query_seconds), "db": self._db()},
                        what="reading information_schema")
        status, variables, tables, indexes = {}, {}, [], []
        facts = {"long_queries": [], "lock_waits": [], "sizes": {"database_bytes": None, "tables": []}}
        for row in rows:
            tag = row[0]
            if tag == "status":
                status[row[1].upper()] = row[2]
            elif tag == "var":
                variables[row[1].upper()] = row[2]
            elif tag == "long":
                facts["long_queries"].append(long_query(row[1], row[2], unescape_batch(row[3]) if len(row) > 3
                                                        else ""))
            elif tag == "wait":
                facts["lock_waits"].append({"pid": int(row[1]), "blocked_by": int(row[2]),
                                            "waiting_s": int(float(row[3] or 0)),
                                            "query": unescape_batch(row[4]) if len(row) > 4 else "",
                                            "blocking_query": unescape_batch(row[5]) if len(row) > 5 else ""})
            elif tag == "dbsize":
                facts["sizes"]["database_bytes"] = int(float(row[1]))
            elif tag == "tsize":
                tables.append(["tsize", row[1], int(float(row[2])), int(float(row[3])), int(float(row[4]))])
            elif tag == "idx":
                indexes.append({"table": "%s.%s" % (self.target.database, row[1]),
                                "index": "%s.%s" % (self.target.database, row[2]), "method": row[3].lower(),
                                "keys": unescape_batch(row[4]).split(", "), "signature": "", "predicate": "",
                                "unique": row[5] == "0", "primary": row[2] == "PRIMARY", "size_bytes": None})
        facts["sizes"]["tables"] = _size_rows(tables)
        facts["duplicate_indexes"] = mt.duplicate_indexes(indexes)
        requests = int(float(status.get("INNODB_BUFFER_POOL_READ_REQUESTS", 0)))
        reads = int(float(status.get("INNODB_BUFFER_POOL_READS", 0)))
        facts["cache_hit_ratio"] = round(1 - reads / float(requests), 4) if requests else None
        facts["cache_accesses"] = requests
        facts["connections"] = {"used": int(status.get("THREADS_CONNECTED", 0)),
                                "max": int(variables.get("MAX_CONNECTIONS", 0))}
        facts["slow_queries"] = None
        if variables.get("PERFORMANCE_SCHEMA", "OFF").upper() == "ON":
            slow = self.sql(MY_SLOW_SQL % {"ms": int(slow_query_ms), "db": self._db(), "qlen": QUERY_TEXT_CHARS},
                            what="reading performance_schema")
            facts["slow_queries"] = [{"queryid": r[1], "calls": int(r[2]), "mean_ms": int(float(r[3])),
                                      "total_ms": int(float(r[4])), "query": unescape_batch(r[5]) if len(r) > 5
                                      else ""} for r in slow]
            facts["slow_queries_note"] = ""
        else:
            facts["slow_queries_note"] = (
                "performance_schema is OFF on this server, so there are no statement statistics (slow log: %s); "
                "start the server with --performance-schema=ON (roles/database does; a restart) to get them"
                % variables.get("SLOW_QUERY_LOG", "?"))
        return facts

    def data_figures(self, spec):
        from .mysql import quote_ident

        quoted = "%s.%s" % (quote_ident(self.target.database), quote_ident(spec["table"]))
        sql = mt.session_sql("mysql", DATA_LOCK_TIMEOUT_S, DATA_STATEMENT_TIMEOUT_S) + "\n" + mt.data_check_sql(
            spec, quoted, quote_ident, "CHAR")
        rows = self.sql(sql, self.target.database,
                        what="data check %s on %s" % (spec["kind"], spec["table"]))
        return mt.data_check_figures(spec, rows[0] if rows else [])

    def stop_query(self, pid, verb):
        self.sql("KILL %s %d;" % ("QUERY" if verb == "cancel" else "CONNECTION", int(pid)),
                 what="%s of thread %d" % (verb, int(pid)))
        return True


# ------------------------------------------------------------------------------------------------ SQLite
SQLITE_HELPER = r'''
import hashlib, json, os, sqlite3, sys

op, path = sys.argv[1], sys.argv[2]
if not os.path.exists(path):
    print(json.dumps({"error": "database file %s does not exist" % path}))
    sys.exit(4)

def stat1(con):
    try:
        rows = con.execute("SELECT * FROM sqlite_stat1 ORDER BY 1, 2").fetchall()
    except sqlite3.OperationalError:
        rows = []
    return hashlib.sha256(repr(rows).encode()).hexdigest()

def integrity(con):
    rows = [r[0] for r in con.execute("PRAGMA integrity_check")]
    problems = [r for r in rows if r != "ok"]
    return ("failed", "; ".join(problems[:5])) if problems else ("passed", "integrity_check ok")

try:
    busy_ms = int(float(sys.argv[3]) * 1000) if len(sys.argv) > 3 else 5000
    con = sqlite3.connect(path, timeout=busy_ms / 1000.0, isolation_level=None)
    con.execute("PRAGMA busy_timeout = %d" % busy_ms)
    if op == "stats":
        wal = path + "-wal"
        page_size = con.execute("PRAGMA page_size").fetchone()[0]
        out = {"path": path, "page_count": con.execute("PRAGMA page_count").fetchone()[0],
               "freelist_count": con.execute("PRAGMA freelist_count").fetchone()[0], "page_size": page_size,
               "journal_mode": con.execute("PRAGMA journal_mode").fetchone()[0],
               "wal_pages": (os.path.getsize(wal) // page_size) if os.path.exists(wal) else 0,
               "file_bytes": os.path.getsize(path)}
        if len(sys.argv) > 4 and sys.argv[4] == "1":
            out["integrity"] = integrity(con)
            tables = [r[0] for r in con.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
            try:
                sizes = dict(con.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").fetchall())
            except sqlite3.OperationalError:
                sizes = {}
            out["tables"] = [{"name": t, "total_bytes": int(sizes.get(t) or 0)} for t in tables]
        print(json.dumps(out))
    elif op == "run":
        kind = sys.argv[4]
        if kind == "integrity_check":
            status, detail = integrity(con)
            print(json.dumps({"outcome": "done" if status == "passed" else "problem", "detail": detail}))
        elif kind == "optimize":
            before = stat1(con)
            con.execute("PRAGMA optimize")
            changed = stat1(con) != before
            print(json.dumps({"outcome": "done", "changed": changed,
                              "detail": "statistics updated" if changed else "nothing to update"}))
        elif kind == "wal_checkpoint":
            busy, log, done = con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            print(json.dumps({"outcome": "done" if not busy else "failed", "changed": bool(done or log),
                              "detail": "%d of %d WAL pages checkpointed%s" % (done, log,
                                                                              ", busy" if busy else "")}))
        elif kind == "vacuum":
            before = con.execute("PRAGMA page_count").fetchone()[0]
            con.execute("VACUUM")
            after = con.execute("PRAGMA page_count").fetchone()[0]
            print(json.dumps({"outcome": "done", "detail": "%d pages -> %d" % (before, after)}))
        elif kind == "vacuum_into_swap":
            copy = path + ".rc_compact"
            for suffix in ("", "-journal", "-wal", "-shm"):
                if os.path.exists(copy + suffix):
                    os.unlink(copy + suffix)
            before = con.execute("PRAGMA page_count").fetchone()[0]
            holder = sqlite3.connect(path, timeout=busy_ms / 1000.0, isolation_level=None)
            holder.execute("BEGIN IMMEDIATE")  # no writer gets in between the copy and the swap
            try:
                con.execute("VACUUM INTO ?", (copy,))
                check = sqlite3.connect(copy)
                status, detail = integrity(check)
                after = check.execute("PRAGMA page_count").fetchone()[0]
                check.close()
                if status != "passed":
                    raise sqlite3.DatabaseError("the compacted copy failed its check: " + detail)
                st = os.stat(path)
                os.chmod(copy, st.st_mode & 0o7777)
                os.replace(copy, path)
            finally:
                holder.close()
                if os.path.exists(copy):
                    os.unlink(copy)
            print(json.dumps({"outcome": "done", "detail": "%d pages -> %d (VACUUM INTO, swapped)" % (before, after)}))
    elif op == "query":
        row = con.execute(sys.argv[4]).fetchone()
        print(json.dumps({"row": ["" if v is None else str(v) for v in (row or [])]}))
except sqlite3.Error as exc:
    print(json.dumps({"error": "%s: %s" % (path, exc)}))
    sys.exit(5)
'''


class SQLiteUpkeep:
    """Figures from the file's PRAGMAs (and ``dbstat`` where SQLite has it); every statement on a connection with
    the busy timeout set to the lock timeout."""

    def _upkeep(self, *args):
        result = self.runner.run([self.python, "-c", SQLITE_HELPER] + [str(a) for a in args])
        lines = result.text.strip().splitlines()
        try:
            data = json.loads(lines[-1]) if lines else {}
        except ValueError:
            data = {}
        if result.rc != 0 or "error" in data:
            raise EngineError("SQLite at %s: %s" % (self.runner.where, data.get("error") or result.last_error_line()))
        return data

    def maintenance_stats(self, lock_timeout_s=5):
        return self._upkeep("stats", self.target.path, lock_timeout_s)

    def run_action(self, act, lock_timeout_s, statement_timeout_s):
        data = self._upkeep("run", self.target.path, lock_timeout_s, act["action"])
        if "changed" in data:
            act["changed"] = data["changed"]
        return data["outcome"], data.get("detail", "")

    def diagnostics(self, long_query_seconds=5, slow_query_ms=1000):
        stats = self._upkeep("stats", self.target.path, 5, "1")
        return {"integrity": tuple(stats["integrity"]), "freelist": (stats["page_count"], stats["freelist_count"]),
                "sizes": {"database_bytes": stats["file_bytes"], "tables": stats.get("tables") or []}}

    def data_figures(self, spec):
        sql = mt.data_check_sql(spec, mt.pg_ident(spec["table"]), mt.pg_ident, "TEXT")
        return mt.data_check_figures(spec, self._upkeep("query", self.target.path, 5, sql)["row"])

    def stop_query(self, pid, verb):
        raise EngineError("SQLite has no server and no queries to %s" % verb)


def run_plan(engine, actions, thresholds, clock=time.monotonic):
    """Run ``actions`` one after the other, each bounded by the lock timeout and by what is left of the run's
    time budget; each action gets ``outcome`` (done / failed / problem / skipped), ``detail`` and ``seconds``."""
    started = clock()
    for act in actions:
        left = mt.remaining(thresholds["time_budget_s"], clock() - started, thresholds["statement_timeout_s"])
        act["outcome"], act["detail"], act["seconds"] = _timed(
            lambda act=act, left=left: engine.run_action(act, thresholds["lock_timeout_s"], left), left)
    return actions


class MSSQLUpkeep:
    """SQL Server through pymssql: index fragmentation from sys.dm_db_index_physical_stats (LIMITED), every
    statement after ``SET LOCK_TIMEOUT``. Not run against a real server in our tests (the T-SQL is unit-tested)."""

    def maintenance_stats(self):
        rows = self.query(mt.MSSQL_INDEX_STATS_SQL, self.target.database)
        return {"database": self.target.database, "indexes": [
            {"schema": r["schema_name"], "table": r["table_name"], "index": r["index_name"],
             "fragmentation": float(r["fragmentation"] or 0), "page_count": int(r["page_count"] or 0)}
            for r in rows if r.get("index_name")]}

    def run_action(self, act, lock_timeout_s, statement_timeout_s):
        self.query(mt.session_sql("mssql", lock_timeout_s, statement_timeout_s) + "\n" + act["sql"],
                   self.target.database)
        return ""
