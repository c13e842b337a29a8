"""module_utils/maintenance.py: plans, thresholds, T-SQL, diagnostics judgements, data checks, growth (issue 15)."""

import datetime
import time

import pytest

from ansible_collections.rollcall.ops.plugins.module_utils import maintenance as mt
from ansible_collections.rollcall.ops.plugins.module_utils.engines.upkeep import run_plan

T = mt.merge_thresholds()


def kinds(actions):
    return [(a["action"], a["object"]) for a in actions]


# ------------------------------------------------------------------ thresholds, quoting, time
def test_thresholds_merge_and_refuse_unknown_or_negative():
    assert mt.merge_thresholds({"dead_tuple_percent": "5"})["dead_tuple_percent"] == 5.0
    with pytest.raises(mt.MaintenanceError, match="unknown threshold"):
        mt.merge_thresholds({"dead_tuples": 1})
    with pytest.raises(mt.MaintenanceError, match="0 or more"):
        mt.merge_thresholds({"lock_timeout_s": -1})
    with pytest.raises(mt.MaintenanceError, match="must be a number"):
        mt.merge_thresholds({"lock_timeout_s": "soon"})


def test_quoting_per_driver():
    assert mt.pg_ident('we"ird') == '"we""ird"'
    assert mt.my_ident("a`b") == "`a``b`"
    assert mt.ms_ident("a]b") == "[a]]b]"
    for quote in (mt.pg_ident, mt.my_ident, mt.ms_ident):
        with pytest.raises(mt.MaintenanceError):
            quote("a\0b")
        with pytest.raises(mt.MaintenanceError):
            quote("")


def test_session_sql_per_engine():
    assert mt.session_sql("postgresql", 5, 900) == "SET lock_timeout = 5000; SET statement_timeout = 900000;"
    assert mt.session_sql("mysql", 2.5, 30.5) == ("SET SESSION lock_wait_timeout = 3, innodb_lock_wait_timeout = 3, "
                                                  "max_statement_time = 30.5;")
    assert mt.session_sql("mssql", 5, 1) == "SET LOCK_TIMEOUT 5000;"
    assert mt.session_sql("sqlite", 5, 1) == ""


def test_remaining_budget():
    assert mt.remaining(3600, 10, 900) == 900
    assert mt.remaining(100, 40, 900) == 60
    assert mt.remaining(100, 99.5, 900) is None


# ------------------------------------------------------------------ PostgreSQL
PG_STATS = {"database": "sms", "pg_stat_statements": True, "tables": [
    {"schema": "public", "table": "attendance", "live": 9000, "dead": 3000},
    {"schema": "public", "table": "tiny", "live": 5, "dead": 5},
    {"schema": "public", "table": "clean", "live": 100000, "dead": 2000}],
    "indexes": [
        {"schema": "public", "index": "att_idx", "size_bytes": 4 << 20, "bloat_percent": 45.0},
        {"schema": "public", "index": "small_idx", "size_bytes": 8192, "bloat_percent": 90.0},
        {"schema": "public", "index": "ok_idx", "size_bytes": 4 << 20, "bloat_percent": 10.0},
        {"schema": "public", "index": "att_idx_ccnew", "invalid_leftover": True}]}


def test_postgresql_plan_acts_only_over_thresholds_and_never_plain_reindex():
    actions = mt.plan("postgresql", PG_STATS)
    assert kinds(actions) == [("vacuum_analyze", "public.attendance"), ("reindex_concurrently", "public.att_idx"),
                              ("drop_invalid_index", "public.att_idx_ccnew")]
    assert actions[0]["sql"] == 'VACUUM (ANALYZE) "public"."attendance";'
    assert actions[1]["sql"] == 'REINDEX INDEX CONCURRENTLY "public"."att_idx";'
    assert actions[2]["sql"] == 'DROP INDEX CONCURRENTLY IF EXISTS "public"."att_idx_ccnew";'
    assert "25.0 %" in actions[0]["reason"] and "threshold 10.0 %" in actions[0]["reason"]
    assert all("REINDEX INDEX CONCURRENTLY" in a["sql"] for a in actions if "REINDEX" in a["sql"])


def test_postgresql_nothing_over_threshold_means_no_action():
    assert mt.plan("postgresql", {"tables": [{"schema": "s", "table": "t", "live": 10, "dead": 0}],
                                  "indexes": []}) == []


def test_postgresql_reset_stats_on_request_with_and_without_pg_stat_statements():
    (act,) = mt.plan("postgresql", {"database": "sms", "pg_stat_statements": True}, options={"reset_stats": True})
    assert act["sql"] == "SELECT pg_stat_reset(); SELECT pg_stat_statements_reset();"
    (act,) = mt.plan("postgresql", {"database": "sms"}, options={"reset_stats": True})
    assert act["sql"] == "SELECT pg_stat_reset();"


def test_only_keeps_the_cadence_actions():
    actions = mt.plan("postgresql", PG_STATS, options={"only": ["vacuum_analyze"]})
    assert kinds(actions) == [("vacuum_analyze", "public.attendance")]
    assert mt.reindex_after_vacuum([], PG_STATS, T, only=["vacuum_analyze"]) == []


def test_reindex_after_vacuum_adds_only_new_reindexes():
    done = [{"action": "reindex_concurrently", "object": "public.att_idx"}]
    extra = mt.reindex_after_vacuum(done, PG_STATS, T)
    assert kinds(extra) == []
    extra = mt.reindex_after_vacuum([], PG_STATS, T)
    assert kinds(extra) == [("reindex_concurrently", "public.att_idx")]


def test_pg_index_bloat_estimate():
    assert mt.pg_index_bloat(0, 100, 8) == 0.0
    assert mt.pg_index_bloat(8192 * 100, -1, 8) == 0.0  # never analyzed: unknown
    # 1000 tuples of 8-byte keys need 3 pages (+ meta): 100 pages is ~96 % bloat
    assert mt.pg_index_bloat(8192 * 100, 1000, 8) == pytest.approx(97.0, abs=1.5)
    assert mt.pg_index_bloat(8192 * 3, 1000, 8) == 0.0


# ------------------------------------------------------------------ MariaDB
MY_STATS = {"database": "sms", "tables": [
    {"table": "frag", "data_bytes": 20 << 20, "index_bytes": 0, "free_bytes": 30 << 20},
    {"table": "small_free", "data_bytes": 1 << 20, "index_bytes": 0, "free_bytes": 4 << 20},
    {"table": "tidy", "data_bytes": 100 << 20, "index_bytes": 0, "free_bytes": 0}]}


def test_mysql_plan():
    actions = mt.plan("mysql", MY_STATS)
    assert kinds(actions) == [("check_table", "sms.frag"), ("optimize_table", "sms.frag"),
                              ("check_table", "sms.small_free"), ("analyze_table", "sms.small_free"),
                              ("check_table", "sms.tidy"), ("analyze_table", "sms.tidy")]
    assert actions[1]["sql"] == "OPTIMIZE TABLE `sms`.`frag`;"
    assert actions[0]["sql"] == "CHECK TABLE `sms`.`frag`;"


def test_mysql_plan_without_check_or_analyze_is_only_the_optimize():
    actions = mt.plan("mysql", MY_STATS, options={"check": False, "analyze": False})
    assert kinds(actions) == [("optimize_table", "sms.frag")]


def test_mysql_admin_outcome():
    check = {"action": "check_table"}
    assert mt.mysql_admin_outcome(check, [["sms.t", "check", "status", "OK"]])[0] == "done"
    assert mt.mysql_admin_outcome(check, [["sms.t", "check", "status", "Corrupt"]]) == ("problem", "Corrupt")
    assert mt.mysql_admin_outcome({"action": "optimize_table"}, [["sms.t", "optimize", "error", "Lock wait"]]) == (
        "failed", "Lock wait")
    rows = [["sms.t", "optimize", "note", "doing recreate + analyze instead"], ["sms.t", "optimize", "status", "OK"]]
    assert mt.mysql_admin_outcome({"action": "optimize_table"}, rows)[0] == "done"


# ------------------------------------------------------------------ SQLite
def test_sqlite_plan():
    stats = {"path": "/d/sms.db", "page_count": 1000, "freelist_count": 400, "journal_mode": "wal", "wal_pages": 12}
    assert kinds(mt.plan("sqlite", stats)) == [("integrity_check", "/d/sms.db"), ("optimize", "/d/sms.db"),
                                               ("wal_checkpoint", "/d/sms.db"), ("vacuum", "/d/sms.db")]
    swap = mt.plan("sqlite", stats, options={"compact": "into_swap", "check": False})
    assert swap[-1]["action"] == "vacuum_into_swap" and swap[0]["action"] == "optimize"
    quiet = dict(stats, freelist_count=10, wal_pages=0)
    assert kinds(mt.plan("sqlite", quiet)) == [("integrity_check", "/d/sms.db"), ("optimize", "/d/sms.db")]


def test_unknown_engine():
    with pytest.raises(mt.MaintenanceError, match="no maintenance plan"):
        mt.plan("oracle", {})


# ------------------------------------------------------------------ SQL Server
MS_STATS = {"database": "SMS", "indexes": [
    {"schema": "dbo", "table": "Students", "index": "IX_a", "fragmentation": 45.0, "page_count": 5000},
    {"schema": "dbo", "table": "Attendance", "index": "IX_b", "fragmentation": 12.0, "page_count": 2000},
    {"schema": "dbo", "table": "Attendance", "index": "IX_c", "fragmentation": 3.0, "page_count": 2000},
    {"schema": "dbo", "table": "Tiny", "index": "IX_d", "fragmentation": 90.0, "page_count": 10}]}


def test_mssql_plan_thresholds_5_and_30_percent():
    actions = mt.plan("mssql", MS_STATS)
    assert kinds(actions) == [("checkdb", "SMS"), ("rebuild", "dbo.Students.IX_a"),
                              ("reorganize", "dbo.Attendance.IX_b"), ("update_statistics", "dbo.Attendance"),
                              ("update_statistics", "dbo.Tiny")]
    assert actions[0]["sql"] == "DBCC CHECKDB ([SMS]) WITH NO_INFOMSGS, ALL_ERRORMSGS;"
    assert actions[1]["sql"] == "ALTER INDEX [IX_a] ON [dbo].[Students] REBUILD WITH (ONLINE = OFF, MAXDOP = 1);"
    assert actions[2]["sql"] == "ALTER INDEX [IX_b] ON [dbo].[Attendance] REORGANIZE;"
    assert actions[3]["sql"] == "UPDATE STATISTICS [dbo].[Attendance];"


def test_mssql_online_rebuild_and_physical_only_and_script():
    assert mt.mssql_index_sql("dbo", "T", "I", "rebuild", online=True, lock_timeout_s=90) == (
        "ALTER INDEX [I] ON [dbo].[T] REBUILD WITH (ONLINE = ON (WAIT_AT_LOW_PRIORITY (MAX_DURATION = 2 MINUTES, "
        "ABORT_AFTER_WAIT = SELF)), MAXDOP = 1);")
    assert mt.mssql_checkdb("S", physical_only=True).endswith("ALL_ERRORMSGS, PHYSICAL_ONLY;")
    actions = mt.plan("mssql", MS_STATS, options={"check": False, "analyze": False})
    assert mt.mssql_script(actions, 5).splitlines() == [
        "SET LOCK_TIMEOUT 5000;", actions[0]["sql"], actions[1]["sql"]]


# ------------------------------------------------------------------ running and outcome
class FakeEngine:
    def __init__(self, fail=()):
        self.ran, self.fail = [], fail

    def run_action(self, act, lock, left):
        from ansible_collections.rollcall.ops.plugins.module_utils.engines.base import EngineError

        self.ran.append((act["object"], lock, left))
        if act["object"] in self.fail:
            raise EngineError("canceling statement due to lock timeout")
        return ("problem", "corrupt") if act["action"] == "check_table" else ""


def test_run_plan_outcomes_budget_and_changed():
    actions = mt.plan("postgresql", PG_STATS)
    engine = FakeEngine(fail=("public.att_idx",))
    ticks = iter([0, 0, 10, 20, 30])
    run_plan(engine, actions, T, clock=lambda: next(ticks))
    assert [a["outcome"] for a in actions] == ["done", "failed", "done"]
    assert engine.ran[0] == ("public.attendance", 5, 900)
    assert mt.changes(actions)
    counts, failures = mt.summary(actions)
    assert counts == {"done": 2, "failed": 1}
    assert failures == ["reindex_concurrently public.att_idx: canceling statement due to lock timeout"]


def test_run_plan_stops_starting_statements_when_the_budget_is_spent():
    actions = mt.plan("postgresql", PG_STATS)
    ticks = iter([0, 0, 4000, 4000])
    run_plan(FakeEngine(), actions, dict(T, time_budget_s=3600), clock=lambda: next(ticks))
    assert [a["outcome"] for a in actions] == ["done", "skipped", "skipped"]


def test_changed_is_exact():
    assert not mt.changes([])
    assert not mt.changes([{"action": "check_table", "outcome": "done"}])
    assert not mt.changes([{"action": "optimize", "outcome": "done", "changed": False}])
    assert mt.changes([{"action": "optimize", "outcome": "done", "changed": True}])
    assert not mt.changes([{"action": "vacuum", "outcome": "failed"}])
    assert not mt.would_change([{"action": "integrity_check"}, {"action": "optimize"}])
    assert mt.would_change([{"action": "vacuum"}])


# ------------------------------------------------------------------ diagnostics
def test_judge_diagnostics_every_figure_next_to_its_threshold():
    facts = {"cache_hit_ratio": 0.95, "long_queries": [{"pid": 7, "duration_s": 12, "query": "SELECT pg_sleep(60)"}],
             "lock_waits": [{"pid": 8, "blocked_by": 7, "query": "UPDATE t", "blocking_query": "LOCK t"}],
             "slow_queries": None, "slow_queries_note": "pg_stat_statements is not loaded",
             "connections": {"used": 90, "max": 100},
             "dead_tuples": [{"table": "t", "dead_percent": 40.0}, {"table": "u", "dead_percent": 1.0}],
             "unused_indexes": [{"index": "i", "size_bytes": 5 << 20}, {"index": "j", "size_bytes": 10}],
             "seq_scans": [{"table": "big", "rows": 200000}], "integrity": ("failed", "page 3 broken"),
             "freelist": (100, 10), "sizes": {"database_bytes": 1000, "tables": [{"name": "t"}]}}
    found = {f["name"]: f for f in mt.judge_diagnostics("postgresql", facts)}
    assert found["cache hit ratio"]["status"] == "warning" and "threshold 0.99" in found["cache hit ratio"]["reason"]
    assert "pid 7, 12 s: SELECT pg_sleep(60)" in found["long-running queries"]["reason"]
    assert "pid 8 (UPDATE t) blocked by pid 7 (LOCK t)" in found["lock waits"]["reason"]
    assert found["slow queries"]["status"] == "warning" and "not loaded" in found["slow queries"]["reason"]
    assert found["connections"]["status"] == "warning"
    assert found["dead tuples"]["figures"] == {"bloated_tables": 1}
    assert found["dead tuples"]["reason"] == "1 tables with at least 10.0 % and 1000 dead tuples: t (? dead, 40.0 %)"
    assert found["unused indexes"]["figures"] == {"unused_indexes": 1}
    assert found["sequential scans on big tables"]["status"] == "warning"
    assert found["integrity"]["status"] == "critical"
    assert found["free pages"]["figures"] == {"free_pages": 10, "page_count": 100}
    assert mt.worst([f["status"] for f in found.values()]) == "critical"


def test_dead_tuples_warn_only_where_the_monthly_vacuum_would_act():
    """The demo after a restore: two small tables with 10-20 % dead tuples (a handful of rows) warned on every
    maintenance.yml, while the monthly run rightly did not vacuum them (under dead_tuples_min: autovacuum's)."""
    rows = [{"table": "public.students", "live": 45, "dead": 6, "dead_percent": 11.8},
            {"table": "public.attendance", "live": 9000, "dead": 3000, "dead_percent": 25.0}]
    [found] = [f for f in mt.judge_diagnostics("postgresql", {"dead_tuples": rows}) if f["name"] == "dead tuples"]
    assert found["status"] == "warning" and found["figures"] == {"bloated_tables": 1}
    assert found["reason"].endswith(": public.attendance (3000 dead, 25.0 %)"), found["reason"]
    plan = mt.plan("postgresql", {"tables": [dict(r, schema="public", table=r["table"].split(".")[1]) for r in rows]})
    assert [a["object"] for a in plan if a["action"] == "vacuum_analyze"] == ["public.attendance"], plan
    [small] = [f for f in mt.judge_diagnostics("postgresql", {"dead_tuples": rows[:1]}) if f["name"] == "dead tuples"]
    assert small["status"] == "ok", small
    lower = mt.merge_thresholds({"dead_tuples_min": 5}, mt.DIAGNOSTIC_DEFAULTS)
    [tuned] = [f for f in mt.judge_diagnostics("postgresql", {"dead_tuples": rows[:1]}, lower)
               if f["name"] == "dead tuples"]
    assert tuned["status"] == "warning"


def test_judge_diagnostics_healthy_and_missing_figures():
    facts = {"cache_hit_ratio": 0.999, "long_queries": [], "lock_waits": [], "slow_queries": [],
             "connections": {"used": 1, "max": 100}}
    found = mt.judge_diagnostics("postgresql", facts)
    assert {f["status"] for f in found} == {"ok"}
    assert mt.judge_diagnostics("sqlite", {}) == []
    assert mt.worst([]) == "ok"


def test_the_cache_hit_ratio_of_a_new_or_just_restarted_database_is_not_judged():
    """The demo's database a minute after its first deploy: 0.985 over 53,586 block requests, a warning on every
    first maintenance.yml. Below cache_min_accesses (100,000) it is said, not judged; above, judged as before."""
    [cold] = mt.judge_diagnostics("postgresql", {"cache_hit_ratio": 0.985, "cache_accesses": 53586})
    assert cold["status"] == "ok" and cold["reason"].startswith("0.9850 over 53586 block requests: too few to judge")
    assert cold["figures"] == {"cache_hit_ratio": 0.985, "cache_accesses": 53586}
    [warm] = mt.judge_diagnostics("postgresql", {"cache_hit_ratio": 0.985, "cache_accesses": 100000})
    assert warm["status"] == "warning" and warm["reason"] == "0.9850 (threshold 0.99)"
    [strict] = mt.judge_diagnostics("mysql", {"cache_hit_ratio": 0.985, "cache_accesses": 53586},
                                    {"cache_min_accesses": 0})
    assert strict["status"] == "warning"


def test_pgss_note():
    assert mt.pgss_note(True, True) == ""
    assert "CREATE EXTENSION" in mt.pgss_note(False, True)
    assert "shared_preload_libraries" in mt.pgss_note(False, False)


# ------------------------------------------------------------------ data checks
NOW = datetime.datetime(2026, 3, 2, 12, 0, tzinfo=datetime.UTC)


def test_data_checks_each_kind_pass_and_fail():
    specs = [{"table": "students", "kind": "row_count", "baseline": 1000, "tolerance_percent": 5},
             {"table": "students", "kind": "row_count", "baseline": 1000},
             {"table": "imports", "kind": "freshness", "column": "at", "max_age_hours": 24},
             {"table": "imports", "kind": "freshness", "column": "at", "max_age_hours": 1},
             {"table": "imports", "kind": "freshness", "column": "at"},
             {"table": "feed", "kind": "not_null", "columns": ["a", "b"]},
             {"table": "feed", "kind": "not_null", "columns": ["a"]},
             {"table": "students", "kind": "unique", "columns": ["number"]},
             {"table": "students", "kind": "unique", "columns": ["number"]},
             {"table": "gone", "kind": "row_count", "baseline": 1}]
    figures = [{"rows": 900}, {"rows": 1050}, {"newest": "2026-03-02 06:00:00"}, {"newest": "2026-03-02T06:00:00Z"},
               {"newest": None}, {"nulls": {"a": 0, "b": 3}}, {"nulls": {"a": 0}}, {"duplicates": 2},
               {"duplicates": 0}, {"error": "relation gone does not exist"}]
    found = mt.data_checks(specs, figures, now=NOW)
    assert [f["status"] for f in found] == ["critical", "ok", "ok", "critical", "critical", "critical", "ok",
                                            "critical", "ok", "critical"]
    assert found[0]["reason"] == "students: 900 rows, baseline 1000, 10.0 % off (tolerance 5.0 %)"
    assert "6.0 h old (max 1.0 h)" in found[3]["reason"]
    assert found[5]["reason"] == "feed: 3 NULLs in b"
    assert found[7]["reason"] == "students: 2 duplicate keys on (number)"
    assert "gone: could not check" in found[9]["reason"]


def test_data_checks_zero_baseline_and_unknown_kind():
    found = mt.data_checks([{"table": "t", "kind": "row_count", "baseline": 0}] * 2, [{"rows": 0}, {"rows": 3}],
                           now=NOW)
    assert [f["status"] for f in found] == ["ok", "critical"]
    with pytest.raises(mt.MaintenanceError):
        mt.data_checks([{"table": "t", "kind": "vibes"}], [{}])


def test_data_check_spec_and_sql():
    with pytest.raises(mt.MaintenanceError, match="needs columns"):
        mt.check_data_spec({"table": "t", "kind": "unique"})
    with pytest.raises(mt.MaintenanceError, match="kind must be"):
        mt.check_data_spec({"table": "t"})
    q = mt.pg_ident
    assert mt.data_check_sql({"table": "t", "kind": "row_count", "baseline": 1}, '"t"', q, "text") == \
        'SELECT COUNT(*) FROM "t";'
    assert mt.data_check_sql({"table": "t", "kind": "freshness", "column": "at"}, '"t"', q, "text") == \
        'SELECT CAST(MAX("at") AS text) FROM "t";'
    assert mt.data_check_sql({"table": "t", "kind": "not_null", "columns": ["a"]}, '"t"', q, "text") == \
        'SELECT COALESCE(SUM(CASE WHEN "a" IS NULL THEN 1 ELSE 0 END), 0) FROM "t";'
    assert mt.data_check_sql({"table": "t", "kind": "unique", "columns": ["a", "b"]}, '"t"', q, "text") == \
        'SELECT COUNT(*) FROM (SELECT 1 AS one FROM "t" GROUP BY "a", "b" HAVING COUNT(*) > 1) d;'
    assert mt.data_check_figures({"kind": "not_null", "columns": ["a", "b"]}, ["1", "0"]) == {
        "nulls": {"a": 1, "b": 0}}
    assert mt.data_check_figures({"kind": "freshness"}, [""]) == {"newest": None}
    assert mt.data_check_figures({"kind": "unique"}, ["4"]) == {"duplicates": 4}
    assert mt.data_check_figures({"kind": "row_count"}, ["12"]) == {"rows": 12}


# ------------------------------------------------------------------ growth
def test_growth_rate_and_disk_full_date():
    points = [("2026-03-01T00:00:00Z", 1000), ("2026-03-02T00:00:00Z", 2000), ("2026-03-03T00:00:00Z", 3000)]
    result = mt.growth(points, free_bytes=10000)
    assert result == {"rate_bytes_per_day": 1000.0, "points": 3, "span_days": 2.0, "days_to_full": 10.0,
                      "full_on": "2026-03-13"}


def test_growth_without_projection():
    assert mt.growth([("2026-03-01T00:00:00Z", 5)])["rate_bytes_per_day"] is None
    same_time = mt.growth([("2026-03-01T00:00:00Z", 5), ("2026-03-01T00:00:00Z", 6)])
    assert same_time["rate_bytes_per_day"] is None
    shrinking = mt.growth([("2026-03-01", 5000), ("2026-03-02", 4000)], free_bytes=10)
    assert shrinking["rate_bytes_per_day"] == -1000.0 and shrinking["full_on"] is None
    no_disk = mt.growth([("2026-03-01", 1000), ("2026-03-02", 2000)])
    assert no_disk["days_to_full"] is None
    glacial = mt.growth([("2026-03-01", 1000), ("2026-03-02", 1001)], free_bytes=10 ** 12)
    assert glacial["days_to_full"] > 365 * 200 and glacial["full_on"] is None
    assert mt.growth([("not a time", 1), (None, 2)])["points"] == 0
    # runs minutes apart: a vacuum's or an import's step is not a daily rate
    minutes = mt.growth([("2026-03-01T09:00:00Z", 8_000_000), ("2026-03-01T09:01:00Z", 8_100_000)], free_bytes=10 ** 9)
    assert minutes["rate_bytes_per_day"] is None and minutes["days_to_full"] is None
    assert minutes["span_days"] == round(60 / 86400, 3)


def test_maintenance_prometheus_families():
    from ansible_collections.rollcall.ops.plugins.module_utils import report

    doc = report.health_document([{"host": "db1", "checks": [
        {"name": "cache hit ratio", "kind": "diagnostics", "status": "warning", "reason": "0.9",
         "metrics": {"cache_hit_ratio": 0.9}}]}])
    text = report.render_maintenance_prometheus(doc)
    assert 'rollcall_maintenance_status{host="db1"} 1' in text
    assert 'rollcall_maintenance_figure{host="db1",check="cache hit ratio",figure="cache_hit_ratio"} 0.9' in text
    assert "rollcall_health_status" not in text


def test_size_growth_filter():
    from ansible_collections.rollcall.ops.plugins.filter.maintenance import size_growth

    out = size_growth([{"at": "2026-03-01T00:00:00Z", "bytes": 0}, {"at": "2026-03-02T00:00:00Z", "bytes": 100},
                       "junk"], free_bytes="1000")
    assert out["rate_bytes_per_day"] == 100.0 and out["full_on"] == "2026-03-12"
    assert size_growth([], free_bytes="")["points"] == 0


def test_report_shapes_and_capacity():
    from ansible_collections.rollcall.ops.plugins.filter.maintenance import capacity_check

    assert mt.action_checks([], "maintenance sms")[0]["reason"] == "nothing over a threshold"
    checks = mt.action_checks([{"action": "vacuum", "object": "f", "reason": "r", "outcome": "problem",
                                "detail": "d"}, {"action": "vacuum", "object": "g", "reason": "r"}], "x")
    assert [c["status"] for c in checks] == ["critical", "ok"] and checks[0]["reason"] == "problem: r - d"
    assert mt.finding_checks([{"name": "n", "status": "ok", "reason": "r", "figures": {"a": 1}}], "data") == [
        {"name": "n", "kind": "data", "status": "ok", "reason": "r", "metrics": {"a": 1}}]
    points = [{"at": "2026-03-01T00:00:00Z", "bytes": 0}, {"at": "2026-03-02T00:00:00Z", "bytes": 100}]
    assert capacity_check(points[:1], 100)["reason"].endswith("(1 sizes recorded, 2 needed)")
    hour = [{"at": "2026-03-01T00:00:00Z", "bytes": 0}, {"at": "2026-03-01T01:30:00Z", "bytes": 10 ** 9}]
    assert capacity_check(hour, 10 ** 9, free_bytes=1)["reason"].endswith(
        "no growth rate yet (2 sizes over 1.5 hours; a day of them needed)")
    assert capacity_check(points, 100, free_bytes=50_000)["status"] == "ok"
    assert capacity_check(points, 100, free_bytes=5_000)["status"] == "warning"
    assert capacity_check(points, 100, free_bytes=500)["status"] == "critical"
    assert "not growing" in capacity_check(points, 100)["reason"]


# ------------------------------------------------------------------ duplicate indexes
def _ix(index, keys, table="public.t", method="btree", unique=False, primary=False, signature="s", predicate=""):
    return {"table": table, "index": index, "method": method, "keys": keys, "signature": signature,
            "predicate": predicate, "unique": unique, "primary": primary, "size_bytes": 8192}


def test_duplicate_indexes_exact_keeps_the_primary_then_unique_then_first_name():
    found = mt.duplicate_indexes([_ix("t_b", ["id"]), _ix("t_pkey", ["id"], unique=True, primary=True),
                                  _ix("t_a", ["id"], unique=True)])
    assert [(d["index"], d["duplicate_of"], d["kind"]) for d in found] == [
        ("t_a", "t_pkey", "exact"), ("t_b", "t_pkey", "exact")]
    found = mt.duplicate_indexes([_ix("t_y", ["x"]), _ix("t_x", ["x"])])
    assert [(d["index"], d["duplicate_of"]) for d in found] == [("t_y", "t_x")]


def test_duplicate_indexes_differences_that_are_not_duplicates():
    assert mt.duplicate_indexes([_ix("a", ["x"]), _ix("b", ["x"], signature="other opclass")]) == []
    assert mt.duplicate_indexes([_ix("a", ["x"]), _ix("b", ["x"], predicate="(x > 0)")]) == []
    assert mt.duplicate_indexes([_ix("a", ["x"]), _ix("b", ["x"], method="hash")]) == []
    assert mt.duplicate_indexes([_ix("a", ["x"]), _ix("b", ["x"], table="public.u")]) == []
    assert mt.duplicate_indexes([_ix("a", ["x", "y"]), _ix("b", ["y", "x"])]) == []
    assert mt.duplicate_indexes([]) == []


def test_duplicate_indexes_prefix_only_for_non_unique_btree():
    found = mt.duplicate_indexes([_ix("t_x", ["x"]), _ix("t_x_y", ["x", "y"])])
    assert [(d["index"], d["duplicate_of"], d["kind"]) for d in found] == [("t_x", "t_x_y", "prefix")]
    assert mt.duplicate_indexes([_ix("t_x", ["x"], unique=True), _ix("t_x_y", ["x", "y"])]) == []
    assert mt.duplicate_indexes([_ix("t_x", ["x"], method="hash"), _ix("t_x_y", ["x", "y"])]) == []
    assert mt.duplicate_indexes([_ix("t_x", ["x"], predicate="p"), _ix("t_x_y", ["x", "y"])]) == []


def test_duplicate_indexes_finding_names_them():
    facts = {"duplicate_indexes": mt.duplicate_indexes([_ix("t_x", ["x"]), _ix("t_x_y", ["x", "y"]),
                                                        _ix("t_z", ["z"]), _ix("t_z2", ["z"])])}
    (found,) = mt.judge_diagnostics("postgresql", facts)
    assert found["status"] == "warning" and found["figures"] == {"duplicate_indexes": 2}
    assert found["reason"] == "2 duplicate indexes: t_z2 same as t_z; t_x a prefix of t_x_y"
    (found,) = mt.judge_diagnostics("mysql", {"duplicate_indexes": []})
    assert found["status"] == "ok" and found["reason"] == "0 duplicate indexes"


# ------------------------------------------------------------------ EXPLAIN
def test_explainable_only_a_plain_select():
    assert mt.explainable("SELECT * FROM t WHERE id = $1") == (True, "")
    assert mt.explainable("/* app */ select 1;") == (True, "")
    assert mt.explainable("UPDATE t SET x = $1") == (False, "not a SELECT (UPDATE)")
    assert mt.explainable("WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d")[0] is False
    assert mt.explainable("SELECT 1; DROP TABLE t") == (False, "more than one statement")
    assert mt.explainable("SELECT * INTO copy FROM t")[0] is False
    assert mt.explainable("SELECT * FROM t FOR UPDATE")[0] is False
    assert mt.explainable("SELECT * FROM t FOR NO KEY UPDATE")[0] is False
    assert mt.explainable("") == (False, "no statement text")
    assert mt.explainable(None) == (False, "no statement text")


def test_explain_sql_plan_only_read_only_bounded():
    sql = mt.explain_sql("SELECT * FROM t WHERE id = $1 AND n = $2 -- c", timeout_s=7)
    assert sql.startswith("BEGIN READ ONLY;\nSET LOCAL statement_timeout = 7000;\nSET LOCAL lock_timeout = 2000;\n")
    assert "SET LOCAL plan_cache_mode = force_generic_plan;" in sql
    assert "PREPARE rc_explain AS SELECT * FROM t WHERE id = $1 AND n = $2;" in sql
    assert "EXPLAIN (FORMAT TEXT) EXECUTE rc_explain(NULL, NULL);" in sql and "ANALYZE" not in sql
    assert sql.endswith("ROLLBACK;\n")
    sql = mt.explain_sql("SELECT 1", analyze=True)
    assert "EXPLAIN (ANALYZE, BUFFERS, FORMAT TEXT) EXECUTE rc_explain;" in sql and "BEGIN READ ONLY" in sql
    with pytest.raises(mt.MaintenanceError, match="not a SELECT"):
        mt.explain_sql("DELETE FROM t", analyze=True)
    assert mt.explain_params("SELECT $1, $12, $3") == 12 and mt.explain_params("SELECT 1") == 0


def test_explain_candidates_and_findings():
    slow = [{"queryid": "1", "mean_ms": 1500, "query": "SELECT a FROM t"},
            {"queryid": "2", "mean_ms": 9000, "query": "UPDATE t SET a = $1"},
            {"queryid": "3", "mean_ms": 3000, "query": "SELECT b FROM t"},
            {"queryid": "4", "mean_ms": 2000, "query": "SELECT c FROM t"}]
    assert [q["queryid"] for q in mt.explain_candidates(slow, 2)] == ["3", "4"]
    assert mt.explain_candidates(None) == [] and mt.explain_candidates(slow, 0) == []
    found = mt.explain_findings([{"queryid": "3", "query": "SELECT b FROM t", "plan": ["Seq Scan on t  (cost=..)"]},
                                 {"queryid": "4", "query": "SELECT c FROM t", "error": "timeout"}])
    assert [(f["name"], f["status"]) for f in found] == [("plan of statement 3", "ok"),
                                                         ("plan of statement 4", "warning")]
    assert found[0]["reason"] == "SELECT b FROM t -> Seq Scan on t  (cost=..)"
    assert mt.explain_findings([{"queryid": "1", "query": "q", "plan": []}], analyze=True)[0]["name"] == (
        "EXPLAIN ANALYZE of statement 1")


def test_postgresql_reset_of_pg_stat_statements_in_the_maintenance_database():
    first, second = mt.plan("postgresql", {"database": "s'ms", "pg_stat_statements": False,
                                           "pg_stat_statements_db": "postgres"}, options={"reset_stats": True})
    assert first["sql"] == "SELECT pg_stat_reset();" and "database" not in first
    assert second["database"] == "postgres" and second["object"] == "s'ms (pg_stat_statements in postgres)"
    assert second["sql"] == ("SELECT pg_stat_statements_reset(0, (SELECT oid FROM pg_database WHERE datname = "
                             "'s''ms'), 0);")
    with pytest.raises(mt.MaintenanceError):
        mt.pg_literal("a\0b")


# ------------------------------------------------------------------ MariaDB ANALYZE TABLE: changed only when it changed
def test_mysql_analyze_changed_only_when_the_statistics_changed():
    sql = mt.mysql_stats_sql("sms", "o'dd\\name", "before")
    assert sql.startswith("SELECT 'rc_stats', 'before', CONCAT(")
    assert "database_name = 'sms' AND table_name = 'o''dd\\\\name'" in sql and "mysql.innodb_index_stats" in sql
    ok = ["sms.t", "analyze", "status", "OK"]
    assert not mt.mysql_stats_changed([["rc_stats", "before", "3:PRIMARY.1=3"], ok,
                                       ["rc_stats", "after", "3:PRIMARY.1=3"]])
    assert mt.mysql_stats_changed([["rc_stats", "before", "3:PRIMARY.1=0"], ok, ["rc_stats", "after", "3:PRIMARY.1=3"]])
    assert mt.mysql_stats_changed([ok]), "unknown is a change"
    assert mt.mysql_admin_outcome({"action": "analyze_table"}, [["rc_stats", "before", "x"], ok]) == (
        "done", "status: OK")
    with pytest.raises(mt.MaintenanceError):
        mt.my_literal("a\0")


def test_check_mode_does_not_count_a_statistics_update_that_only_may_change():
    assert not mt.would_change([{"action": "check_table"}, {"action": "analyze_table"}])
    assert mt.would_change([{"action": "analyze_table"}, {"action": "optimize_table"}])
    assert not mt.changes([{"action": "analyze_table", "outcome": "done", "changed": False}])
    assert mt.changes([{"action": "analyze_table", "outcome": "done", "changed": True}])


# ------------------------------------------------------------------ the app's latency during maintenance
def test_latency_summary_and_probe_check():
    assert mt.percentile([], 95) is None
    assert mt.percentile([5, 1, 3, 2, 4], 50) == 3.0 and mt.percentile(range(1, 101), 95) == 95.0
    assert mt.percentile([7], 95) == 7.0
    summary = mt.latency_summary([(0.010, ""), (0.020, ""), (None, "503"), (0.030, "")], "http://127.0.0.1:1/x")
    assert summary == {"url": "http://127.0.0.1:1/x", "requests": 4, "failed": 1, "errors": ["503"], "p50_ms": 20.0,
                       "p95_ms": 30.0, "max_ms": 30.0}
    check = mt.probe_check(summary)
    assert check["status"] == "warning" and check["reason"] == (
        "4 requests to http://127.0.0.1:1/x: p95 30.0 ms (p50 20.0, max 30.0), 1 failed (503)")
    ok = mt.probe_check(mt.latency_summary([(0.002, "")], "u"))
    assert ok["status"] == "ok" and ok["metrics"]["p95_ms"] == 2.0 and ok["name"] == "app latency during maintenance"
    assert mt.probe_check(mt.latency_summary([], "u"))["status"] == "warning"
    assert mt.latency_summary([(None, "refused")])["p95_ms"] is None


def test_probe_times_a_local_server_and_refuses_other_schemes():
    import http.server
    import threading

    from ansible_collections.rollcall.ops.plugins.module_utils.probe import Probe

    class Quiet(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the stdlib's name
            self.send_response(200 if self.path == "/ok" else 503)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = "http://127.0.0.1:%d" % server.server_address[1]
        def until(probe, count):
            deadline = time.monotonic() + 10  # a busy machine (pytest -n) may be slow to answer
            while len(probe.samples) < count and time.monotonic() < deadline:
                time.sleep(0.01)

        with Probe(base + "/ok", interval_s=0.01) as probe:
            until(probe, 3)
        assert len(probe.samples) >= 3 and all(s is not None for s, _e in probe.samples), probe.samples
        with Probe(base + "/bad", interval_s=0.01) as probe:
            until(probe, 1)
        assert probe.samples and probe.samples[0] == (None, "503"), probe.samples
    finally:
        server.shutdown()
    with pytest.raises(ValueError, match="http"):
        Probe("file:///etc/passwd")
    with Probe("http://127.0.0.1:1/refused", interval_s=0.01) as probe:  # nothing listens on port 1
        until(probe, 1)
    assert probe.samples[0][0] is None and probe.samples[0][1], probe.samples


# ------------------------------------------------------------------ monthly rollup and the size chart
MONTH_END = datetime.datetime(2026, 12, 1, 6, 0, tzinfo=datetime.UTC)


def test_monthly_rollup_every_figure():
    health = [{"at": "2026-11-%02dT06:00:00Z" % d, "host": "db", "status": "critical" if d == 5 else "ok"}
              for d in range(2, 30)] + [{"at": "2026-09-01T00:00:00Z", "host": "db", "status": "critical"}]
    backups = [{"name": "a", "finished_at": "2026-11-20T01:00:00Z", "verified": True},
               {"name": "b", "finished_at": "2026-11-21T01:00:00Z", "verified": False},
               {"name": "old", "finished_at": "2026-10-01T01:00:00Z", "verified": True}]
    incidents = ["20261110T101010Z", "20260101T000000Z"]
    sizes = [{"at": "2026-11-02T00:00:00Z", "host": "db", "bytes": 1000}, {"at": "2026-11-12T00:00:00Z", "host": "db",
                                                                           "bytes": 2000}]
    found = {c["name"]: c for c in mt.monthly_rollup(health, backups, incidents, sizes, MONTH_END)}
    assert found["uptime"]["status"] == "critical" and found["uptime"]["reason"] == (
        "96.43 % of 28 health runs in the last 30 days not critical (target 99.5 %)")
    assert found["backups"]["status"] == "warning" and found["backups"]["reason"] == (
        "2 backups made in the last 30 days, 1 verified")
    assert found["incidents"]["reason"] == "1 incident bundles in the last 30 days: 20261110T101010Z"
    assert found["capacity growth"]["reason"] == (
        "database 1000 -> 2000 bytes in the last 30 days (+100.0 %), 100.0 bytes/day")
    assert {c["kind"] for c in found.values()} == {"rollup"}


def test_monthly_rollup_good_month_and_nothing_recorded():
    health = [{"at": "2026-11-20T06:00:00Z", "host": "db", "status": "warning"}]
    found = {c["name"]: c for c in mt.monthly_rollup(health, [{"finished_at": "2026-11-30T00:00:00Z",
                                                               "verified": True}], [], [], MONTH_END)}
    assert [found[n]["status"] for n in ("uptime", "backups", "incidents", "capacity growth")] == ["ok"] * 4
    damaged = [{"name": "x", "error": "bad manifest"}]
    found = {c["name"]: c for c in mt.monthly_rollup([], damaged, None, None, MONTH_END)}
    assert found["uptime"]["status"] == "warning" and "no health history" in found["uptime"]["reason"]
    assert found["backups"]["status"] == "critical" and "1 unreadable (x)" in found["backups"]["reason"]
    assert found["capacity growth"]["reason"] == "0 database sizes recorded in the last 30 days (2 needed)"
    minutes = [{"at": "2026-11-30T09:00:00Z", "bytes": 100}, {"at": "2026-11-30T09:05:00Z", "bytes": 200}]
    found = {c["name"]: c for c in mt.monthly_rollup([], [], [], minutes, MONTH_END)}
    assert found["capacity growth"]["reason"] == (
        "database 100 -> 200 bytes in the last 30 days (+100.0 %), no daily rate yet (under a day of sizes)")


def test_size_chart_in_the_html_report():
    from ansible_collections.rollcall.ops.plugins.module_utils import report

    sizes = [{"at": "2026-11-02T00:00:00Z", "host": "db", "bytes": 10 * 1048576},
             {"at": "2026-11-12T00:00:00Z", "host": "db", "bytes": 12 * 1048576}, {"at": "never", "host": "db"}]
    doc = report.health_document([{"host": "db", "checks": []}], sizes=sizes, generated_at=MONTH_END)
    assert [p["bytes"] for p in doc["sizes"]] == [10 * 1048576, 12 * 1048576]
    html = report.render_html(doc)
    assert "<h3>Database size (MiB)</h3><svg" in html and "12 MiB" in html
    assert "sizes" not in report.render_json(doc)
    assert "Database size" not in report.render_html(report.health_document([{"host": "db", "checks": []}]))
