"""Issue 15 against real servers: db_maintenance (PostgreSQL dead tuples vacuumed and bloated indexes reindexed
concurrently, check mode changes nothing, a second run changes nothing), db_diagnostics (a long query and a
blocking lock reported with their text, the long query terminated on request, slow statements from
pg_stat_statements, data checks), MariaDB and SQLite, and playbooks/maintenance.yml on a demo-shaped database (the
role matrix of roles/database: owner, monitor, report logins) with its report, textfile and audit line.

One PostgreSQL and one MariaDB container for the whole file; SQLite is a file on this host."""

import glob
import json
import os
import sqlite3
import sys
import time
import uuid

import pytest
import yaml
from conftest import wait_healthy
from modules import run_module
from test_deploy import failures, playbook

from ansible_collections.rollcall.ops.plugins.module_utils.db_roles import derived_password

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "bench"))
from loadgen import Load  # noqa: E402

ROOT_PASSWORD = "maint-root-password-not-in-output"
PROJECT = "it-maint-%s" % uuid.uuid4().hex[:6]


def psql(container, sql, user="postgres", password=ROOT_PASSWORD, detach=False, database="sms"):
    result = container.exec_run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-U",
                                 user, "-d", database, "-c", sql], environment={"PGPASSWORD": password},
                                detach=detach)
    if detach:
        return None
    assert result.exit_code == 0, result.output.decode()
    return result.output.decode().strip()


@pytest.fixture(scope="module")
def pg(docker_client, require_image):
    """rollcall/postgres:15 with pg_stat_statements preloaded and created in the postgres database (as
    roles/database starts and prepares it), as <project>-db, with the role matrix's owner, monitor and report logins
    (passwords derived from the admin's, as roles/database makes them)."""
    require_image("rollcall/postgres:15")
    container = docker_client.containers.run(
        "rollcall/postgres:15", detach=True, name="%s-db" % PROJECT,
        command=["postgres", "--shared_preload_libraries=pg_stat_statements"],
        environment={"POSTGRES_USER": "postgres", "POSTGRES_PASSWORD": ROOT_PASSWORD, "POSTGRES_DB": "sms"})
    try:
        wait_healthy(container)
        roles = "; ".join("CREATE ROLE sms_%s LOGIN PASSWORD '%s'" % (
            job, derived_password(ROOT_PASSWORD, "sms_" + job)) for job in ("owner", "monitor", "report"))
        psql(container, roles + "; GRANT pg_monitor TO sms_monitor; GRANT pg_read_all_data TO sms_report; "
             "ALTER SCHEMA public OWNER TO sms_owner;")
        psql(container, "CREATE EXTENSION pg_stat_statements;", database="postgres")
        yield container
    finally:
        container.remove(force=True, v=True)


def owner(pg, **extra):
    return dict({"engine": "postgresql", "container": pg.name, "database": "sms", "user": "sms_owner",
                 "password": derived_password(ROOT_PASSWORD, "sms_owner")}, **extra)


def admin(pg, **extra):
    return dict({"engine": "postgresql", "container": pg.name, "database": "sms", "user": "postgres",
                 "password": ROOT_PASSWORD}, **extra)


def dead_tuples(pg, table):
    time.sleep(1.2)  # backends flush their statistics at most once a second
    return int(psql(pg, "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = '%s';" % table))


def test_postgresql_dead_tuples_vacuumed_and_indexes_reindexed_check_mode_changes_nothing(pg):
    password = derived_password(ROOT_PASSWORD, "sms_owner")
    psql(pg, "CREATE TABLE attendance (id int PRIMARY KEY, note text) WITH (autovacuum_enabled = false); "
             "INSERT INTO attendance SELECT g, md5(g::text) FROM generate_series(1, 60000) g; "
             "CREATE INDEX attendance_note ON attendance (note); ANALYZE attendance; "
             "DELETE FROM attendance WHERE id % 10 <> 0;", user="sms_owner", password=password)
    dead = dead_tuples(pg, "attendance")
    assert dead == 54000
    size = int(psql(pg, "SELECT pg_relation_size('attendance_note');"))

    rc, result, output = run_module("db_maintenance", owner(pg), "--check")
    assert rc == 0 and result["changed"], result
    assert [(a["action"], a["object"], a["outcome"]) for a in result["actions"]] == [
        ("vacuum_analyze", "public.attendance", "planned")]
    assert ROOT_PASSWORD not in output and password not in output
    assert dead_tuples(pg, "attendance") == dead, "check mode changed nothing"

    rc, result, output = run_module("db_maintenance", owner(pg))
    assert rc == 0 and result["changed"], result
    done = {(a["action"], a["object"]) for a in result["actions"] if a["outcome"] == "done"}
    assert done == {("vacuum_analyze", "public.attendance"), ("reindex_concurrently", "public.attendance_pkey"),
                    ("reindex_concurrently", "public.attendance_note")}, result["actions"]
    assert dead_tuples(pg, "attendance") == 0
    assert int(psql(pg, "SELECT pg_relation_size('attendance_note');")) < size / 3
    assert psql(pg, "SELECT count(*) FROM pg_index WHERE NOT indisvalid;") == "0"

    rc, result, _ = run_module("db_maintenance", owner(pg))
    assert rc == 0 and not result["changed"] and result["actions"] == [], result


def test_long_query_and_blocking_lock_reported_with_text_then_terminated(pg):
    psql(pg, "CREATE TABLE IF NOT EXISTS locked (id int); SELECT pg_sleep(1.1);")  # a slow statement for pgss
    psql(pg, "CREATE INDEX attendance_note_copy ON attendance (note); CREATE INDEX attendance_id_only ON attendance "
             "(id);", user="sms_owner", password=derived_password(ROOT_PASSWORD, "sms_owner"))
    psql(pg, "SELECT pg_sleep(600) /* it-long */;", detach=True)
    psql(pg, "BEGIN; LOCK TABLE locked IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(600) /* it-holder */; COMMIT;",
         detach=True)
    time.sleep(1)
    psql(pg, "SELECT count(*) /* it-waiter */ FROM locked;", detach=True)
    time.sleep(5.5)
    rc, result, _ = run_module("db_diagnostics", admin(pg, data_checks=[
        {"table": "attendance", "kind": "row_count", "baseline": 6000},
        {"table": "attendance", "kind": "unique", "columns": ["note"]},
        {"table": "attendance", "kind": "row_count", "baseline": 60000, "tolerance_percent": 5}]))
    assert rc == 0, result
    facts = result["facts"]
    long = [q for q in facts["long_queries"] if "it-long" in q["query"]]
    assert long and long[0]["duration_s"] >= 5, facts["long_queries"]
    waits = facts["lock_waits"]
    assert waits and "it-waiter" in waits[0]["query"] and "it-holder" in waits[0]["blocking_query"], waits
    found = {f["name"]: f for f in result["findings"]}
    assert "it-waiter" in found["lock waits"]["reason"] and found["lock waits"]["status"] == "warning"
    assert any("pg_sleep" in s["query"] for s in facts["slow_queries"]), facts["slow_queries"]
    assert facts["slow_queries_from"] == "postgres"
    assert psql(pg, "SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements';") == "0", (
        "not in the app's database: its dumps do not carry it")
    assert [(d["index"], d["duplicate_of"], d["kind"]) for d in facts["duplicate_indexes"]] == [
        ("public.attendance_id_only", "public.attendance_pkey", "exact"),
        ("public.attendance_note_copy", "public.attendance_note", "exact")], facts["duplicate_indexes"]
    assert "public.attendance_note_copy same as public.attendance_note" in found["duplicate indexes"]["reason"]
    assert 0 < facts["cache_hit_ratio"] <= 1
    statuses = [f["status"] for f in result["findings"] if f["name"].startswith(("row_count", "unique"))]
    assert statuses == ["ok", "ok", "critical"], result["findings"]

    pid = long[0]["pid"]
    rc, refused, _ = run_module("db_diagnostics", admin(pg, stop={"pid": 1, "action": "terminate"}))
    assert rc != 0 and "nothing was stopped" in refused["msg"]
    rc, result, _ = run_module("db_diagnostics", admin(pg, stop={"pid": pid, "action": "terminate"}))
    assert rc == 0 and result["changed"] and result["stopped"]["pid"] == pid, (
        result.get("msg"), result.get("module_stderr"), result.get("exception"))
    time.sleep(0.5)
    assert psql(pg, "SELECT count(*) FROM pg_stat_activity WHERE pid = %d;" % pid) == "0"
    psql(pg, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%it-holder%' "
             "AND pid <> pg_backend_pid();")


def test_explain_plans_only_selects_read_only(pg):
    # its own table (runs alone or in any order: -k, -n with another distribution)
    psql(pg, "CREATE TABLE IF NOT EXISTS explained (id int PRIMARY KEY, note text); TRUNCATE explained; "
             "INSERT INTO explained SELECT g, md5(g::text) FROM generate_series(1, 20000) g; ANALYZE explained;",
         user="sms_owner", password=derived_password(ROOT_PASSWORD, "sms_owner"))
    report = dict(owner(pg), user="sms_report", password=derived_password(ROOT_PASSWORD, "sms_report"))
    rc, result, _ = run_module("db_diagnostics", dict(report, explain=[
        {"queryid": "1", "query": "SELECT note FROM explained WHERE id = $1"},
        {"queryid": "2", "query": "DELETE FROM explained WHERE id = $1"}]))
    assert rc == 0 and not result["changed"], result
    first, second = result["facts"]["plans"]
    assert any("Index Scan" in line and "explained" in line for line in first["plan"]), first
    assert "actual time" not in " ".join(first["plan"]), "plan only, never run"
    assert "not a SELECT (DELETE)" in second["error"] and "plan" not in second
    assert [f["status"] for f in result["findings"]] == ["ok", "warning"]
    # EXPLAIN ANALYZE only on request, inside a read-only transaction: a SELECT that would write fails
    psql(pg, "CREATE SEQUENCE IF NOT EXISTS explain_seq;")
    rc, result, _ = run_module("db_diagnostics", dict(admin(pg), explain_analyze=True, explain=[
        {"queryid": "3", "query": "SELECT nextval('explain_seq')"},
        {"queryid": "4", "query": "SELECT count(*) FROM explained WHERE id > $1"}]))
    assert rc == 0, result
    wrote, counted = result["facts"]["plans"]
    assert "read-only transaction" in wrote["error"], wrote
    assert "actual time" in " ".join(counted["plan"]), counted
    assert psql(pg, "SELECT last_value FROM explain_seq;") == "1" and psql(
        pg, "SELECT is_called FROM explain_seq;") == "f"


def read(path):
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def test_maintenance_playbook_on_a_demo_shaped_database(pg, tmp_path):
    password = derived_password(ROOT_PASSWORD, "sms_owner")
    psql(pg, "CREATE TABLE students (id int PRIMARY KEY, number text, at timestamptz DEFAULT now()) "
             "WITH (autovacuum_enabled = false); INSERT INTO students (id, number) SELECT g, 'S' || g "
             "FROM generate_series(1, 20000) g; DELETE FROM students WHERE id > 2000;", user="sms_owner",
         password=password)
    time.sleep(1.2)
    state = tmp_path / "state"
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"children": {"db": {"hosts": {"localhost": None}}}, "vars": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
        "rollcall_project": PROJECT, "rollcall_db_engine": "postgresql", "rollcall_db_password": "app-password-x1",
        "rollcall_db_root_password": ROOT_PASSWORD, "rollcall_secret_key": "k" * 50, "rollcall_environment": "test",
        "rollcall_state_dir": str(state), "rollcall_report_dir": str(tmp_path / "reports"),
        "rollcall_data_checks": [{"table": "students", "kind": "unique", "columns": ["number"]},
                                 {"table": "students", "kind": "freshness", "column": "at", "max_age_hours": 1}]}}}))

    # the health report's history (playbooks/health.yml), for the monthly rollup's uptime
    (tmp_path / "reports").mkdir()
    now = time.time()
    (tmp_path / "reports" / "history.json").write_text(json.dumps([
        {"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 3600 * h)), "host": "localhost",
         "status": "critical" if h == 5 else "ok"} for h in range(1, 101)]))
    proc, report = playbook(str(inventory), "maintenance.yml", "-e", "cadence=monthly")
    assert proc.returncode == 0, failures(report) or proc.stdout[-3000:]
    (first,) = glob.glob(str(tmp_path / "reports" / "maintenance-2*.json"))
    document = json.loads(read(first))
    checks = {c["name"]: c for h in document["hosts"] for c in h["checks"]}
    assert document["title"] == "Rollcall database maintenance (monthly)"
    assert checks["vacuum_analyze public.students"]["status"] == "ok", checks
    ratio = checks["cache hit ratio"]["reason"]  # a new database: judged only past 100000 block requests
    assert "threshold 0.99" in ratio or "block requests: too few to judge (fewer than 100000" in ratio, ratio
    assert checks["unique students"]["status"] == "ok" and checks["freshness students"]["status"] == "ok"
    assert "no growth rate yet" in checks["capacity"]["reason"]
    rollup = {c["name"]: c for h in document["hosts"] if h["host"] == "monthly rollup (last 30 days)"
              for c in h["checks"]}
    assert rollup["uptime"]["reason"] == "99.0 % of 100 health runs in the last 30 days not critical (target 99.5 %)"
    assert rollup["uptime"]["status"] == "critical" and rollup["backups"]["status"] == "critical"
    assert rollup["incidents"]["reason"] == "0 incident bundles in the last 30 days"
    assert glob.glob(str(tmp_path / "reports" / "maintenance-*.html"))
    prom = (tmp_path / "reports" / "rollcall_maintenance.prom").read_text()
    assert 'rollcall_maintenance_status{host="localhost"}' in prom and "rollcall_health_status" not in prom
    for text in (proc.stdout, proc.stderr, read(first)):
        assert ROOT_PASSWORD not in text and password not in text

    time.sleep(1.1)  # the report's name has a one-second stamp
    proc, report = playbook(str(inventory), "maintenance.yml", "-e", "cadence=monthly")
    assert proc.returncode == 0, failures(report)
    changed = [t["task"]["name"] for play in report["plays"] for t in play["tasks"]
               for r in t["hosts"].values() if r.get("changed") and "Maintain the database" in t["task"]["name"]]
    assert changed == [], "a second monthly run has nothing over a threshold"
    latest = sorted(glob.glob(str(tmp_path / "reports" / "maintenance-2*.json")))[-1]
    checks = {c["name"]: c for h in json.loads(read(latest))["hosts"] for c in h["checks"]}
    # two sizes a second apart: no rate projected from them (a day of sizes is needed)
    assert "no growth rate yet (2 sizes over 0.0 hours" in checks["capacity"]["reason"], checks
    html = sorted(glob.glob(str(tmp_path / "reports" / "maintenance-2*.html")))[-1]
    assert "<h3>Database size (MiB)</h3><svg" in read(html)

    # mid-month: the statistics reset runs as the server's admin (the owner may not call pg_stat_reset)
    time.sleep(1.1)
    proc, report = playbook(str(inventory), "maintenance.yml", "-e", "cadence=midmonth")
    assert proc.returncode == 0, failures(report)
    latest = sorted(glob.glob(str(tmp_path / "reports" / "maintenance-2*.json")))[-1]
    checks = {c["name"]: c for h in json.loads(read(latest))["hosts"] for c in h["checks"]}
    assert checks["reset_stats sms"]["status"] == "ok", checks["reset_stats sms"]

    # a stop request for a pid that runs nothing long is refused, and the audit log says so
    proc, report = playbook(str(inventory), "maintenance.yml", "-e", "stop_pid=1", "-e", "stop_action=terminate")
    assert proc.returncode != 0
    (audit,) = glob.glob(str(state / PROJECT / "audit.jsonl"))
    assert "query_terminate_failed" in read(audit)


def test_full_postgresql_maintenance_under_load_fails_no_request(pg, docker_client, require_image):
    """The app (its own database on the same server) serves GET /api/v1/students under bench/loadgen.py while a
    writer updates the students table and a full maintenance run (every threshold 0: VACUUM (ANALYZE) of every
    table, REINDEX INDEX CONCURRENTLY of every index) runs on it with the app probed: 0 failed requests, and the
    p95 during the maintenance is in the module's report (its checks) and printed."""
    require_image("rollcall/sms-app:1.1.0")
    owner_password = derived_password(ROOT_PASSWORD, "sms_owner")
    psql(pg, "CREATE DATABASE app OWNER sms_owner;")
    network = docker_client.networks.create("%s-load" % PROJECT)
    app = None
    try:
        network.connect(pg, aliases=["db"])
        app = docker_client.containers.run(
            "rollcall/sms-app:1.1.0", detach=True, name="%s-app" % PROJECT, network=network.name,
            command=["sh", "-c", "sms-app migrate && sms-app seed --students 100 && exec sms-app serve"],
            ports={"8000/tcp": ("127.0.0.1", None)},
            environment={"DATABASE_URL": "postgresql+psycopg2://sms_owner:%s@db:5432/app" % owner_password,
                         "SECRET_KEY": "s" * 64, "RATE_LIMIT_PER_MINUTE": "0"})
        wait_healthy(app, timeout=90)
        app.reload()
        port = int(app.attrs["NetworkSettings"]["Ports"]["8000/tcp"][0]["HostPort"])
        url = "http://127.0.0.1:%d/api/v1/students?per_page=5" % port
        # the table being written to: one UPDATE a few ms apart, each its own transaction, for at most 60 s
        psql(pg, "DO $$ BEGIN FOR i IN 1..6000 LOOP UPDATE students SET first_name = first_name "
                 "WHERE id = 1 + i % 100; COMMIT; PERFORM pg_sleep(0.01); END LOOP; END $$;",
             user="sms_owner", password=owner_password, detach=True, database="app")
        load = Load(url, rate=40, total=40 * 60, max_seconds=60, workers=8).start()
        time.sleep(0.5)
        started = time.monotonic()
        everything = {k: 0 for k in ("dead_tuple_percent", "dead_tuples_min", "index_bloat_percent",
                                     "index_bloat_min_bytes")}
        rc, result, _ = run_module("db_maintenance", dict(owner(pg, database="app"), thresholds=everything,
                                                          probe_url=url, probe_interval_s=0.05))
        seconds = time.monotonic() - started
        time.sleep(0.5)
        load.stop()
    finally:
        if app is not None:
            app.remove(force=True, v=True)
        psql(pg, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'app' "
                 "AND pid <> pg_backend_pid();", database="postgres")
        network.disconnect(pg)
        network.remove()
    assert rc == 0, result
    done = {(a["action"], a["outcome"]) for a in result["actions"]}
    assert ("vacuum_analyze", "done") in done and ("reindex_concurrently", "done") in done, result["actions"]
    assert result["counts"].get("failed", 0) == 0, result["failures"]
    assert any(a["object"] == "public.students" and a["action"] == "vacuum_analyze" for a in result["actions"])
    probe = result["probe"]
    check = [c for c in result["checks"] if c["name"] == "app latency during maintenance"]
    assert check and check[0]["status"] == "ok" and "p95" in check[0]["reason"], check
    print("\nmaintenance under load: %d actions in %.1f s; app p95 during maintenance %s ms (p50 %s, max %s) over %d "
          "probe requests; load: %d requests, %d failed" % (len(result["actions"]), seconds, probe["p95_ms"],
                                                            probe["p50_ms"], probe["max_ms"], probe["requests"],
                                                            load.sent, len(load.failed)))
    assert probe["failed"] == 0 and probe["requests"] > 0, probe
    assert load.failed == [] and load.ok > 0, load.failed[:5]


@pytest.fixture(scope="module")
def maria(docker_client, require_image):
    require_image("rollcall/mariadb:10.11")
    # started as roles/database starts it: performance_schema on (statement digests)
    container = docker_client.containers.run("rollcall/mariadb:10.11", detach=True, name="it-maint-maria-%s"
                                             % uuid.uuid4().hex[:6], command=["mariadbd", "--performance_schema=ON"],
                                             environment={"MARIADB_ROOT_PASSWORD": ROOT_PASSWORD,
                                                          "MARIADB_DATABASE": "sms"})
    try:
        wait_healthy(container)
        yield container
    finally:
        container.remove(force=True, v=True)


def test_mariadb_check_analyze_slow_statements_duplicates_and_data_checks(maria):
    monitor = derived_password(ROOT_PASSWORD, "sms_monitor")
    result = maria.exec_run(["mariadb", "--protocol=TCP", "-h", "127.0.0.1", "-u", "root", "sms", "-e",
                             "CREATE TABLE feed (id INT PRIMARY KEY, student VARCHAR(20), KEY feed_student (student), "
                             "KEY feed_student_id (student, id)) STATS_AUTO_RECALC = 0; "
                             "INSERT INTO feed VALUES (1, 'a'), (2, NULL), (3, 'a'); SELECT SLEEP(1.1); "
                             "CREATE USER sms_monitor IDENTIFIED BY '%s'; GRANT PROCESS, SLAVE MONITOR ON *.* TO "
                             "sms_monitor; GRANT SELECT ON performance_schema.* TO sms_monitor; "
                             "GRANT REFERENCES ON sms.* TO sms_monitor;" % monitor],
                            environment={"MYSQL_PWD": ROOT_PASSWORD})
    assert result.exit_code == 0, result.output
    target = {"engine": "mysql", "container": maria.name, "user": "root", "password": ROOT_PASSWORD,
              "database": "sms"}
    rc, result, _ = run_module("db_maintenance", target)  # check mode's count: tests/unit (would_change)
    assert rc == 0 and result["changed"], result
    assert [(a["action"], a["outcome"], a.get("changed")) for a in result["actions"]] == [
        ("check_table", "done", None), ("analyze_table", "done", True)]
    rc, result, _ = run_module("db_maintenance", target)
    assert rc == 0 and not result["changed"], ("statistics unchanged: the second run changes nothing",
                                               result["actions"])
    rc, result, _ = run_module("db_diagnostics", dict(target, user="sms_monitor", password=monitor))
    assert rc == 0, result
    found = {f["name"]: f for f in result["findings"]}
    slow = result["facts"]["slow_queries"]
    assert [s["query"] for s in slow] == ["SELECT `SLEEP` (?) "], slow
    assert slow[0]["mean_ms"] >= 1000 and found["slow queries"]["status"] == "warning"
    assert found["duplicate indexes"]["reason"] == (
        "1 duplicate indexes: sms.feed_student a prefix of sms.feed_student_id")
    assert result["facts"]["sizes"]["database_bytes"] > 0
    rc, result, _ = run_module("db_diagnostics", dict(target, data_checks=[
        {"table": "feed", "kind": "not_null", "columns": ["student"]},
        {"table": "feed", "kind": "unique", "columns": ["student"]}]))
    assert rc == 0, result
    found = {f["name"]: f for f in result["findings"]}
    assert found["not_null feed"]["reason"] == "feed: 1 NULLs in student"
    assert found["unique feed"]["status"] == "critical"


def test_sqlite_compaction_drops_free_pages(tmp_path):
    path = str(tmp_path / "sms.sqlite3")
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE a (id INTEGER PRIMARY KEY, t TEXT)")
    con.executemany("INSERT INTO a (t) VALUES (?)", [("x" * 500,)] * 5000)
    con.commit()
    con.execute("DELETE FROM a WHERE id > 500")
    con.commit()
    con.close()
    rc, result, _ = run_module("db_maintenance", {"engine": "sqlite", "path": path}, "--check")
    assert rc == 0 and [a["action"] for a in result["actions"]] == ["integrity_check", "optimize", "vacuum"]
    assert sqlite3.connect(path).execute("PRAGMA freelist_count").fetchone()[0] > 400
    rc, result, _ = run_module("db_maintenance", {"engine": "sqlite", "path": path})
    assert rc == 0 and result["changed"], result
    assert result["actions"][0]["detail"] == "integrity_check ok"
    assert sqlite3.connect(path).execute("PRAGMA freelist_count").fetchone()[0] == 0
    rc, result, _ = run_module("db_maintenance", {"engine": "sqlite", "path": path})
    assert rc == 0 and not result["changed"], result
