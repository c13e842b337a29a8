#!/usr/bin/env python3
"""Maintenance wall time on the bench database and the app's p95 impact, against a no-maintenance baseline measured
in the same run (issue 15).

    .venv/bin/python bench/maintenance.py      (BENCH_PG_MB, default 1024: the bench database's size;
                                                BENCH_MAINT_BASELINE_S, default 20: the baseline window)

A throw-away PostgreSQL (started as roles/database starts it) gets an SMS-shaped attendance table of about
BENCH_PG_MB MB with two secondary indexes; a fifth of its rows is then updated (autovacuum off on it), so the
table has dead tuples over the threshold and its indexes bloat. The app (rollcall/sms-app, its own database on the
same server) serves GET /api/v1/students under bench/loadgen.py. Measured, in this order:
  baseline     the app's latency (module_utils/probe.py, a GET every 0.05 s) for BENCH_MAINT_BASELINE_S s, no
               maintenance
  maintenance  rollcall.ops.db_maintenance with the default thresholds and no cadence filter (VACUUM (ANALYZE),
               REINDEX INDEX CONCURRENTLY: monthly + mid-month at once), its wall time, the app probed meanwhile
Prints both p95s, their ratio and the failed requests (the goal: 0). Numbers belong in docs/performance.md.
"""

import os
import subprocess
import sys
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, ".collections"))
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, os.path.join(ROOT, "bench"))

from backup import sh, wait_healthy  # noqa: E402 - bench/backup.py's helpers
from loadgen import Load  # noqa: E402
from modules import run_module  # noqa: E402

from ansible_collections.rollcall.ops.plugins.module_utils import maintenance as mt  # noqa: E402
from ansible_collections.rollcall.ops.plugins.module_utils.probe import Probe  # noqa: E402

PASSWORD = "bench-maint-password"
APP_IMAGE = os.environ.get("BENCH_APP_IMAGE", "rollcall/sms-app:1.1.0")


def psql(name, sql, database="sms"):
    return sh(["docker", "exec", "-e", "PGPASSWORD=" + PASSWORD, name, "psql", "-X", "-v", "ON_ERROR_STOP=1", "-h",
               "127.0.0.1", "-U", "postgres", "-d", database, "-qAtc", sql], capture_output=True,
              text=True).stdout.strip()


def line(label, summary):
    print("  %-30s p95 %8s ms  p50 %8s ms  max %8s ms  %4d requests, %d failed" % (
        label, summary["p95_ms"], summary["p50_ms"], summary["max_ms"], summary["requests"], summary["failed"]),
        flush=True)


def main():
    size_mb = int(os.environ.get("BENCH_PG_MB", "1024"))
    baseline_s = float(os.environ.get("BENCH_MAINT_BASELINE_S", "20"))
    tag = uuid.uuid4().hex[:6]
    db, app, net = "bench-maint-db-%s" % tag, "bench-maint-app-%s" % tag, "bench-maint-net-%s" % tag
    sh(["docker", "network", "create", net], stdout=subprocess.DEVNULL)
    try:
        # as roles/database starts it: the shared memory size (VACUUM's parallel index passes need more than Docker's
        # 64 MB default on a big table) and pg_stat_statements
        sh(["docker", "run", "-d", "--name", db, "--network", net, "--network-alias", "db", "--shm-size", "256m", "-e",
            "POSTGRES_USER=postgres", "-e", "POSTGRES_PASSWORD=" + PASSWORD, "-e", "POSTGRES_DB=sms",
            "rollcall/postgres:15", "postgres", "--shared_preload_libraries=pg_stat_statements"],
           stdout=subprocess.DEVNULL)
        wait_healthy(db, timeout=180)
        rows = size_mb * 1024 * 1024 // 460  # the table, its dead tuples and three indexes: about size_mb in all
        print("maintenance: generating about %d MB (%d attendance rows, indexes included), updating a fifth..."
              % (size_mb, rows), flush=True)
        psql(db, "CREATE TABLE attendance (id bigserial PRIMARY KEY, student_id int, course_id int, day date, "
                 "status text, note text) WITH (autovacuum_enabled = false); "
                 "INSERT INTO attendance (student_id, course_id, day, status, note) SELECT g % 5000, g % 40, "
                 "DATE '2026-09-01' + (g % 180), (ARRAY['present','absent','late'])[1 + g % 3], md5(g::text) "
                 "|| md5((g * 31)::text) || md5((g * 17)::text) FROM generate_series(1, " + str(rows) + ") g; "
                 "CREATE INDEX attendance_student ON attendance (student_id, day); "
                 "CREATE INDEX attendance_note ON attendance (note); ANALYZE attendance; "
                 "UPDATE attendance SET note = md5(note) WHERE id % 5 = 0;")
        psql(db, "CREATE DATABASE app;")
        print("maintenance: database size %s" % psql(db, "SELECT pg_size_pretty(pg_database_size('sms'))"),
              flush=True)
        sh(["docker", "run", "-d", "--name", app, "--network", net, "-p", "127.0.0.1::8000", "-e",
            "DATABASE_URL=postgresql+psycopg2://postgres:%s@db:5432/app" % PASSWORD, "-e", "SECRET_KEY=" + "b" * 64,
            "-e", "RATE_LIMIT_PER_MINUTE=0", APP_IMAGE, "sh", "-c",
            "sms-app migrate && sms-app seed --students 200 && exec sms-app serve"], stdout=subprocess.DEVNULL)
        wait_healthy(app, timeout=180)
        port = sh(["docker", "port", app, "8000/tcp"], capture_output=True, text=True).stdout.split(":")[-1].strip()
        url = "http://127.0.0.1:%s/api/v1/students?per_page=5" % port
        load = Load(url, rate=20, total=10 ** 6, max_seconds=3600, workers=8).start()
        try:
            time.sleep(2)
            with Probe(url, 0.05) as probe:
                time.sleep(baseline_s)
            baseline = mt.latency_summary(probe.samples, url)
            started = time.monotonic()
            rc, result, _out = run_module("db_maintenance", {
                "engine": "postgresql", "container": db, "database": "sms", "user": "postgres",
                "password": PASSWORD, "probe_url": url, "probe_interval_s": 0.05})
            wall = time.monotonic() - started
        finally:
            load.stop()
        if rc != 0:
            raise SystemExit("bench: db_maintenance failed: %s" % result.get("msg"))
        during = result["probe"]
        print("maintenance: %s in %.1f s wall" % (", ".join("%s %s %s (%.1f s)" % (
            a["action"], a["object"], a["outcome"], a.get("seconds") or 0) for a in result["actions"]), wall),
            flush=True)
        print("maintenance: size after %s" % psql(db, "SELECT pg_size_pretty(pg_database_size('sms'))"), flush=True)
        line("baseline (no maintenance)", baseline)
        line("during maintenance", during)
        ratio = (during["p95_ms"] / baseline["p95_ms"]) if baseline["p95_ms"] and during["p95_ms"] else None
        print("  %-30s p95 during / baseline %s; load: %d requests, %d failed (goal 0)" % (
            "", "%.2f" % ratio if ratio else "?", load.sent, len(load.failed)), flush=True)
    finally:
        subprocess.run(["docker", "rm", "-f", "-v", app, db], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        subprocess.run(["docker", "network", "rm", net], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


if __name__ == "__main__":
    main()
