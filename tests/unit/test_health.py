"""plugins/module_utils/health.py: judgements from plain facts, and gatherers with fakes (no Docker, no server)."""

import datetime
import json
import os
import sqlite3
import sys
from types import SimpleNamespace

import pytest

from ansible_collections.rollcall.ops.plugins.module_utils import artifact, health, keyring
from ansible_collections.rollcall.ops.plugins.module_utils.checks import HttpProbe
from ansible_collections.rollcall.ops.plugins.module_utils.engines.base import EngineError, Target
from ansible_collections.rollcall.ops.plugins.module_utils.engines.mysql import MySQL
from ansible_collections.rollcall.ops.plugins.module_utils.engines.postgresql import PostgreSQL
from ansible_collections.rollcall.ops.plugins.module_utils.engines.sqlite import SQLite
from ansible_collections.rollcall.ops.plugins.module_utils.runner import LocalRunner, Result, RunnerError

T = health.merge_thresholds()
UTC = datetime.UTC


# ------------------------------------------------------------------------------------------ thresholds
def test_defaults_come_from_the_seeds():
    assert T["latency_p95_ms"] == [500, 1000] and T["error_rate_percent"] == [2, 5]
    assert T["cpu_used_percent"] == [80, 95] and T["memory_used_percent"] == [85, 95]
    assert T["disk_used_percent"] == [80, 90] and T["connections_percent"] == [80, 95]
    assert T["backup_age_hours"] == [24, None] and T["tls_days_left"] == [30, 7]
    assert T["log_error_lines"] == [1, 50]


@pytest.mark.parametrize("key, value, status", [
    ("latency_p95_ms", 499.9, "ok"), ("latency_p95_ms", 500, "warning"), ("latency_p95_ms", 999, "warning"),
    ("latency_p95_ms", 1000, "critical"), ("error_rate_percent", 1.9, "ok"), ("error_rate_percent", 2, "warning"),
    ("error_rate_percent", 5, "critical"), ("disk_used_percent", 79.9, "ok"), ("disk_used_percent", 80, "warning"),
    ("disk_used_percent", 90, "critical"), ("memory_used_percent", 85, "warning"),
    ("memory_used_percent", 95, "critical"), ("cpu_used_percent", 80, "warning"), ("cpu_used_percent", 95, "critical"),
    ("connections_percent", 80, "warning"), ("connections_percent", 95, "critical"),
    ("backup_age_hours", 23.9, "ok"), ("backup_age_hours", 24, "warning"), ("backup_age_hours", 10000, "warning"),
    ("log_error_lines", 0, "ok"), ("log_error_lines", 1, "warning"), ("log_error_lines", 49, "warning"),
    ("log_error_lines", 50, "critical"), ("tls_days_left", 31, "ok"), ("tls_days_left", 30, "warning"),
    ("tls_days_left", 8, "warning"), ("tls_days_left", 7, "critical"), ("container_restarts", 0, "ok"),
    ("container_restarts", 1, "warning"), ("long_queries", 1, "warning"),
])
def test_every_boundary(key, value, status):
    assert health.rate(key, value, T) == status


def test_overrides_replace_defaults_and_null_switches_a_level_off():
    merged = health.merge_thresholds({"latency_p95_ms": [100, "300"], "backup_age_hours": [0, 48],
                                      "log_error_lines": [None, 10]})
    assert merged["latency_p95_ms"] == [100.0, 300.0]
    assert health.rate("latency_p95_ms", 150, merged) == "warning"
    assert health.rate("backup_age_hours", 0, merged) == "warning"
    assert health.rate("backup_age_hours", 48, merged) == "critical"
    assert health.rate("log_error_lines", 9, merged) == "ok"
    assert merged["disk_used_percent"] == [80, 90]  # untouched
    assert T["latency_p95_ms"] == [500, 1000]  # the defaults themselves are not changed


@pytest.mark.parametrize("overrides, message", [
    ({"p95": [1, 2]}, "unknown key 'p95'"),
    ({"disk_used_percent": 80}, "must be a list [warning, critical]"),
    ({"disk_used_percent": [80, "lots"]}, "'lots' is not a number"),
    ({"disk_used_percent": [90, 80]}, "critical bound 80 is lower than the warning bound 90"),
    ({"tls_days_left": [7, 30]}, "critical bound 30 is higher"),
])
def test_bad_overrides_are_refused(overrides, message):
    with pytest.raises(ValueError) as exc:
        health.merge_thresholds(overrides)
    assert message in str(exc.value)


# ------------------------------------------------------------------------------------------------ http
def test_percentiles_nearest_rank():
    values = list(range(1, 101))
    assert health.percentile(values, 50) == 50 and health.percentile(values, 95) == 95
    assert health.percentile(values, 99) == 99
    assert health.percentile([30, 10, 20, 50, 40], 50) == 30
    assert health.percentile([30, 10, 20, 50, 40], 95) == 50
    assert health.percentile([7], 99) == 7 and health.percentile([], 50) is None


def probe(latency, status=200, error=None):
    return HttpProbe("http://x/api", http_status=None if error else status, latency_ms=latency, error=error)


def test_endpoint_ok_has_every_metric():
    check = health.evaluate_endpoint("api", "http://x/api", [probe(v) for v in (10, 20, 30, 40, 50)], T)
    assert check["status"] == "ok" and check["kind"] == "http"
    assert check["metrics"] == {"samples": 5, "error_rate": 0.0, "p50_ms": 30, "p95_ms": 50, "p99_ms": 50}
    assert "p95 50 ms" in check["reason"]


def test_slow_endpoint_is_a_latency_warning_then_critical():
    slow = health.evaluate_endpoint("api", "http://x/api", [probe(v) for v in (100, 120, 600)], T)
    assert slow["status"] == "warning"
    assert slow["reason"].startswith("p95 latency 600 ms >= 500 ms")
    assert health.evaluate_endpoint("api", "u", [probe(1000)], T)["status"] == "critical"


def test_error_rate_counts_unexpected_status_and_no_answer():
    probes = [probe(5)] * 18 + [probe(5, status=503), probe(None, error="timed out")]
    check = health.evaluate_endpoint("api", "u", probes, T)
    assert check["metrics"]["error_rate"] == 10.0 and check["metrics"]["samples"] == 20
    assert check["status"] == "critical" and "error rate 10 % >= 5 %" in check["reason"]
    assert "(HTTP 503)" in check["reason"]
    expected = health.evaluate_endpoint("api", "u", [probe(5, status=401)] * 3, T, expect_status=[401])
    assert expected["status"] == "ok"


def test_endpoint_that_never_answers_is_critical_could_not_reach():
    check = health.evaluate_endpoint("api", "http://x/api", [probe(None, error="connection refused")] * 3, T)
    assert check["status"] == "critical"
    assert check["reason"] == "could not reach http://x/api: connection refused (3 samples)"
    assert check["metrics"]["error_rate"] == 100.0


def test_endpoint_check_samples_through_the_probe():
    calls = []

    def fake(url, timeout, validate_certs):
        calls.append((url, timeout, validate_certs))
        return probe(len(calls))

    check = health.endpoint_check({"url": "http://x/api", "samples": 4, "name": None}, T, 2.0, False, probe=fake)
    assert len(calls) == 4 and calls[0] == ("http://x/api", 2.0, False)
    assert check["name"] == "http://x/api" and check["metrics"]["p99_ms"] == 4


def test_gate_check_is_ok_or_critical_only():
    healthy = HttpProbe("http://x/health", http_status=200, body={"status": "healthy"}, latency_ms=900)
    assert health.gate_check(healthy, 1)["status"] == "ok"  # slow, but the gate rates health only
    sick = HttpProbe("http://x/health", http_status=503, body={"status": "unhealthy"}, text="{}", latency_ms=3)
    check = health.gate_check(sick, 4)
    assert check["status"] == "critical" and "(after 4 attempts)" in check["reason"]
    assert check["metrics"]["error_rate"] == 100.0


# ------------------------------------------------------------------------------------------ containers
def state(status="running", health_status=None, restarts=0, exit_code=0, restarting=False):
    data = {"State": {"Status": status, "Running": status in ("running", "restarting"), "Restarting": restarting,
                      "ExitCode": exit_code}, "RestartCount": restarts}
    if health_status:
        data["State"]["Health"] = {"Status": health_status, "Log": [{"Output": "db down\n"}]}
    return data


@pytest.mark.parametrize("inspect, status, words, running", [
    (state(health_status="healthy"), "ok", "is running (healthy), 0 restarts", 1),
    (None, "critical", "container c does not exist", 0),
    (state("exited", exit_code=137), "critical", "container c is exited (exit code 137", 0),
    # said once, without the health status Docker keeps from before it stopped
    (state("exited", health_status="unhealthy"), "critical", "container c is exited (exit code 0); 0 restarts", 0),
    (state(health_status="unhealthy"), "critical", "container c is unhealthy: db down", 1),
    (state(health_status="starting"), "warning", "still starting", 1),
    (state(restarts=3), "warning", "restart count 3 >= 1", 1),
    (state("restarting", restarts=5, exit_code=2, restarting=True), "warning",
     "is restarting (restarted 5 times, last exit code 2)", 0),
    # docker pause: it said "is paused (exit code 0)"
    (state("paused", health_status="healthy"), "critical", "container c is paused: it answers nothing until docker "
     "unpause c (or playbooks/incident.yml -e restart=true restarts it); 0 restarts", 0),
], ids=["healthy", "missing", "exited", "exited-was-unhealthy", "unhealthy", "starting", "restarted", "restarting",
        "paused"])
def test_container_states(inspect, status, words, running):
    check = health.evaluate_container("c", inspect, T)
    assert check["status"] == status and words in check["reason"]
    assert check["metrics"]["running"] == running
    assert check["metrics"]["restart_count"] == (inspect or {}).get("RestartCount", 0)


class NotFound(Exception):
    pass


class FakeApi:
    def __init__(self, containers, logs=b""):
        self.containers, self.log_bytes, self.since = containers, logs, None

    def inspect_container(self, name):
        if name not in self.containers:
            raise NotFound(name)
        return self.containers[name]

    def logs(self, name, stdout, stderr, since, timestamps):
        self.since, self.timestamps = since, timestamps
        return self.log_bytes


def test_container_checks_one_per_name_and_engine_down_is_critical():
    api = FakeApi({"db": state()})
    found = health.container_checks(["db", "gone"], lambda: api, T)
    assert [(c["name"], c["status"]) for c in found] == [("db", "ok"), ("gone", "critical")]

    def down():
        raise RunnerError("the Docker engine does not answer at the default socket; start it and run again")

    found = health.container_checks(["db", "app"], down, T)
    assert all(c["status"] == "critical" for c in found)
    assert found[0]["reason"].startswith("could not reach the Docker engine: the Docker engine does not answer")


class ListingApi(FakeApi):
    """Also lists the engine's containers (docker ps -a), as look-alike hints need."""

    def __init__(self, containers, others):
        super().__init__(containers)
        self.known, self.names = self.__dict__.pop("containers"), list(containers) + others

    def inspect_container(self, name):
        if name not in self.known:
            raise NotFound(name)
        return self.known[name]

    def containers(self, all=False):  # noqa: A002 - the Docker SDK's name
        return [{"Names": ["/" + n]} for n in self.names]


def test_a_stack_missing_entirely_names_what_this_engine_has_instead():
    api = ListingApi({}, ["rollcall-db", "rollcall-app", "other-proxy"])
    found = health.container_checks(["rolcall-db", "rolcall-app"], lambda: api, T)
    assert [c["status"] for c in found] == ["critical", "critical"]
    assert found[0]["reason"] == ("container rolcall-db does not exist; this engine has rollcall-db (is "
                                  "rollcall_project right? it names the stack a playbook acts on)")
    assert "this engine has rollcall-app (" in found[1]["reason"]


def test_a_stack_whose_containers_were_removed_says_so_instead_of_asking_about_the_project():
    api = ListingApi({}, ["staging-db", "staging-app"])
    api.volumes = lambda: {"Volumes": [{"Name": "rollcall-dbdata"}]}
    found = health.container_checks(["rollcall-db", "rollcall-app"], lambda: api, T)
    assert all(c["status"] == "critical" for c in found)
    assert found[0]["reason"].startswith("container rollcall-db does not exist, but this stack's volumes do "
                                         "(rollcall-dbdata): its containers were removed"), found[0]
    assert "rollcall_project" not in found[1]["reason"]


def test_one_missing_container_of_a_running_stack_gets_no_project_hint():
    api = ListingApi({"rollcall-db": state()}, ["staging-app"])
    db, app = health.container_checks(["rollcall-db", "rollcall-app"], lambda: api, T)
    assert db["status"] == "ok"
    assert app["status"] == "critical" and app["reason"] == "container rollcall-app does not exist"


def starting(test):
    data = state(health_status="starting")
    data["Id"], data["Config"] = "c1", {"Healthcheck": {"Test": test}}
    return data


class ExecApi(FakeApi):
    """Runs a container's health test: exit code and output per container id; failing = the engine refuses."""

    def __init__(self, containers, answers, failing=False):
        super().__init__(containers)
        self.answers, self.failing, self.ran = answers, failing, []

    def exec_create(self, container, cmd, stdout, stderr):
        if self.failing:
            raise OSError("engine gone")
        self.ran.append((container, cmd))
        return {"Id": "x-" + container}

    def exec_start(self, exec_id):
        return self.answers[exec_id[2:]][1]

    def exec_inspect(self, exec_id):
        return {"ExitCode": self.answers[exec_id[2:]][0]}


def test_a_starting_container_whose_health_test_passes_now_is_ok():
    api = ExecApi({"db": starting(["CMD-SHELL", "pg_isready -q || exit 1"])}, {"c1": (0, b"")})
    [check] = health.container_checks(["db"], lambda: api, T)
    assert check["status"] == "ok", check
    assert "its health test passes when run now" in check["reason"]
    assert api.ran == [("c1", ["/bin/sh", "-c", "pg_isready -q || exit 1"])]


def test_a_starting_container_whose_health_test_fails_now_is_a_warning_with_what_it_said():
    api = ExecApi({"db": starting(["CMD", "rollcall-mariadb-healthcheck"])},
                  {"c1": (1, b"connecting...\nERROR 2002: Can't connect\n")})
    [check] = health.container_checks(["db"], lambda: api, T)
    assert check["status"] == "warning"
    assert "still starting (health check not passed yet: ERROR 2002: Can't connect)" in check["reason"]
    assert api.ran == [("c1", ["rollcall-mariadb-healthcheck"])]


def test_a_starting_container_whose_test_cannot_run_stays_a_warning():
    api = ExecApi({"db": starting(["CMD", "true"])}, {}, failing=True)
    [check] = health.container_checks(["db"], lambda: api, T)
    assert check["status"] == "warning" and "still starting (health check not passed yet)" in check["reason"]


def test_healthy_and_stopped_containers_are_not_probed():
    healthy = state(health_status="healthy")
    healthy["Config"] = {"Healthcheck": {"Test": ["CMD", "true"]}}
    api = ExecApi({"db": healthy, "app": state("exited")}, {})
    health.container_checks(["db", "app"], lambda: api, T)
    assert api.ran == []


@pytest.mark.parametrize("test, argv", [
    (["CMD-SHELL", "pg_isready || exit 1"], ["/bin/sh", "-c", "pg_isready || exit 1"]),
    (["CMD", "curl", "-fsS", "http://127.0.0.1/"], ["curl", "-fsS", "http://127.0.0.1/"]),
    (["NONE"], None),
    ([], None),
    (["CMD-SHELL"], None),
], ids=["shell", "exec", "disabled", "none", "shell-without-command"])
def test_health_test_argv(test, argv):
    from ansible_collections.rollcall.ops.plugins.module_utils import docker as docker_access
    assert docker_access.health_test_argv({"Config": {"Healthcheck": {"Test": test}}}) == argv


# -------------------------------------------------------------------------------------------- database
def activity(active=5, limit=100, long_queries=()):
    return {"active_connections": active, "max_connections": limit, "long_queries": list(long_queries)}


@pytest.mark.parametrize("active, status", [(79, "ok"), (80, "warning"), (94, "warning"), (95, "critical")])
def test_connection_share_boundaries(active, status):
    check = health.evaluate_database("database postgresql sms", "pg", activity(active), T, 60)
    assert check["status"] == status
    assert check["metrics"] == {"active_connections": active, "max_connections": 100, "long_queries": 0}


def test_long_queries_are_listed_and_warned_about():
    slow = [{"pid": 42, "duration_s": 340, "query": "SELECT pg_sleep(400)"}]
    check = health.evaluate_database("database postgresql sms", "pg", activity(long_queries=slow), T, 60)
    assert check["status"] == "warning" and check["metrics"]["long_queries"] == 1
    assert "queries running longer than 60 s: 1 >= 1 (longest: pid 42, 340 s: SELECT pg_sleep(400))" in \
        check["reason"]
    assert check["details"]["long_queries"] == slow


def test_sqlite_activity_has_no_connection_numbers():
    check = health.evaluate_database("database sqlite /x.db", "sqlite /x.db", activity(None, None), T, 60)
    assert check["status"] == "ok" and check["metrics"] == {"long_queries": 0}


AT = 1796630000


def archiving(archived=AT - 600, failed=None, mode="on", wal="00000001000000000000000F"):
    return dict(activity(), archiver={"mode": mode, "last_archived_time": archived, "last_failed_time": failed,
                                      "last_failed_wal": wal if failed else None, "now": AT})


def test_wal_archiving_off_or_working_is_ok_and_said():
    assert "archiv" not in health.evaluate_database("d", "pg", archiving(mode="off", failed=AT), T, 60)["reason"]
    check = health.evaluate_database("d", "pg", archiving(failed=AT - 900), T, 60)  # failed once, archived since
    assert check["status"] == "ok" and check["reason"].endswith(", WAL archiving working")
    assert check["metrics"]["archive_failing"] == 0 and check["metrics"]["archive_last_success_age_s"] == 600
    assert health.evaluate_database("d", "pg", archiving(archived=None), T, 60)["reason"].endswith(
        ", WAL archiving on (nothing archived yet)")


def test_wal_archiving_that_fails_now_warns_then_is_critical_after_15_minutes():
    check = health.evaluate_database("d", "pg", archiving(archived=AT - 120, failed=AT - 5), T, 60)
    assert check["status"] == "warning" and check["metrics"]["archive_failing"] == 1
    assert ("WAL archiving to the point-in-time repository fails (last failure 2026-12-07 07:53 UTC, segment "
            "00000001000000000000000F; the last success 2 min ago, 2026-12-07 07:51 UTC): a restore to a time "
            "cannot go past that success") in check["reason"]
    assert health.evaluate_database("d", "pg", archiving(archived=AT - 16 * 60, failed=AT - 5), T,
                                    60)["status"] == "critical"
    never = health.evaluate_database("d", "pg", archiving(archived=None, failed=AT - 5), T, 60)
    assert never["status"] == "critical" and "nothing archived since archiving was turned on" in never["reason"]


def test_parse_activity_reads_the_archiver_row():
    from ansible_collections.rollcall.ops.plugins.module_utils.engines.base import parse_activity
    found = parse_activity([["connections", "3", "100"], ["archiver", "on", "", "0000000100000002", "1796629990",
                                                          "1796630000"]])
    assert found["archiver"] == {"mode": "on", "last_archived_time": None, "last_failed_wal": "0000000100000002",
                                 "last_failed_time": 1796629990, "now": 1796630000}
    assert "archiver" not in parse_activity([["connections", "3", "100"]])


def shipping(oldest=None, log_bin=True, required=True, **extra):
    found = {"log_bin": log_bin, "now": AT, "oldest_change_at": oldest, "unshipped": ["mariadb-bin.000008"],
             "newest_archived": "mariadb-bin.000007", "archived_at": "2026-12-07T07:10:02Z",
             "repo": "/var/backups/rollcall/pitr/sms", "required": required}
    return dict(activity(), binlog=dict(found, **extra))


def test_a_binary_log_archived_up_to_its_last_change_is_ok_and_said():
    check = health.evaluate_database("d", "mariadb", shipping(), T, 60)
    assert check["status"] == "ok" and check["reason"].endswith(", binary log archived up to its last change")
    assert check["metrics"]["binlog_unshipped_s"] == 0
    recent = health.evaluate_database("d", "mariadb", shipping(oldest=AT - 240), T, 60)
    assert recent["status"] == "ok" and recent["reason"].endswith(", binary log archived but for the last 4 min")
    assert recent["metrics"]["binlog_unshipped_s"] == 240


def test_changes_not_shipped_for_15_minutes_warn_and_for_an_hour_are_critical():
    """archive_log.yml's schedule off, or every run failing: health.yml said "ok" while the changes a lost db host
    would take with it piled up."""
    check = health.evaluate_database("d", "mariadb", shipping(oldest=AT - 16 * 60), T, 60)
    assert check["status"] == "warning" and check["metrics"]["binlog_unshipped_s"] == 960
    assert ("the binary log holds changes from 2026-12-07 07:37 UTC (16 min ago) that the archive "
            "/var/backups/rollcall/pitr/sms does not (the newest archived file mariadb-bin.000007, archived "
            "2026-12-07 07:10 UTC; 1 file(s) not archived): losing the database host now loses them. "
            "playbooks/archive_log.yml ships the log") in check["reason"]
    assert "binlog_unshipped_minutes in rollcall_health_thresholds" in check["reason"]
    assert health.evaluate_database("d", "mariadb", shipping(oldest=AT - 61 * 60), T, 60)["status"] == "critical"
    never = health.evaluate_database("d", "mariadb", shipping(oldest=AT - 20 * 60, newest_archived=None), T, 60)
    assert "(nothing archived yet; 1 file(s) not archived)" in never["reason"]
    longer = health.merge_thresholds({"binlog_unshipped_minutes": [120, None]})
    assert health.evaluate_database("d", "mariadb", shipping(oldest=AT - 61 * 60), longer, 60)["status"] == "ok"


def test_a_server_writing_no_binary_log_warns_only_where_point_in_time_recovery_is_on():
    check = health.evaluate_database("d", "mariadb", shipping(log_bin=False), T, 60)
    assert check["status"] == "warning" and "writes no binary log" in check["reason"]
    assert "playbooks/deploy.yml turns it on" in check["reason"]
    quiet = health.evaluate_database("d", "mariadb", shipping(log_bin=False, required=False), T, 60)
    assert quiet["status"] == "ok" and "binary log" not in quiet["reason"]


def test_shipping_that_cannot_be_read_is_a_warning_naming_why():
    check = health.evaluate_database("d", "mariadb", dict(activity(), binlog={
        "error": "reading /var/lib/mysql/mariadb-bin.index in sms-db failed: Permission denied", "repo": "/r"}), T, 60)
    assert check["status"] == "warning"
    assert ("could not read how far the binary log archive /r is behind the server: reading "
            "/var/lib/mysql/mariadb-bin.index in sms-db failed: Permission denied") in check["reason"]


class ShippingEngine:
    class target:  # noqa: N801 - the adapter's Target, as far as database_check reads it
        @staticmethod
        def where():
            return "sms-db"

    def __init__(self, rows):
        self.rows = rows

    def activity(self, _seconds):
        return activity()

    def sql(self, _query, what=None):
        return self.rows


def test_database_check_reads_the_shipping_of_mariadb_only_when_a_repository_is_given(monkeypatch):
    from ansible_collections.rollcall.ops.plugins.module_utils import binlog
    seen = []

    def fake(self, now=None, runner=None):
        seen.append((self.container, self.repo))
        return {"log_bin": True, "now": AT, "oldest_change_at": AT - 3600, "unshipped": [], "newest_archived": None}

    monkeypatch.setattr(binlog.BinlogPITR, "shipping", fake)
    params = {"engine": "mysql", "database": "sms", "container": "sms-db", "binlog_repo": "/r"}
    check = health.database_check(params, T, lambda _p: ShippingEngine([]))
    assert seen == [("sms-db", "/r")] and check["status"] == "critical", check
    assert health.database_check(dict(params, binlog_repo=""), T, lambda _p: ShippingEngine([]))["status"] == "ok"
    assert health.database_check(dict(params, engine="postgresql"), T, lambda _p: ShippingEngine([]))["status"] == "ok"
    assert len(seen) == 1

    def broken(self, now=None, runner=None):
        raise binlog.PITRError("reading x failed")

    monkeypatch.setattr(binlog.BinlogPITR, "shipping", broken)
    check = health.database_check(params, T, lambda _p: ShippingEngine([]))
    assert check["status"] == "warning" and "reading x failed" in check["reason"]


def test_database_that_cannot_be_reached_is_critical_with_the_reason():
    params = {"engine": "postgresql", "database": "sms", "container": "sms-db"}

    def stopped(_params):
        raise RunnerError("container sms-db is not running (exited)")

    check = health.database_check(params, T, stopped)
    assert check["status"] == "critical"
    assert check["reason"] == ("could not reach the postgresql database sms in container sms-db: container sms-db "
                               "is not running (exited)")


class FakeRunner:
    where = "fake"

    def __init__(self, stdout="", rc=0, stderr=""):
        self.stdout, self.rc, self.stderr, self.calls = stdout, rc, stderr, []

    def run(self, argv, stdin=None, sink=None, env=None, user=None):
        self.calls.append({"argv": argv, "stdin": b"".join(stdin or []).decode(), "env": env})
        return Result(self.rc, self.stdout.encode(), self.stderr)


def test_postgresql_activity_reads_pg_stat_activity():
    runner = FakeRunner("connections\t7\t100\nlong\t4242\t125\tSELECT  *   FROM grades WHERE x = 1 " + "y" * 100 + "\n")
    engine = PostgreSQL(runner, Target("postgresql", "sms", user="sms", password="pw-not-on-argv"))
    found = engine.activity(30)
    assert found["active_connections"] == 7 and found["max_connections"] == 100
    assert found["long_queries"][0]["pid"] == 4242 and found["long_queries"][0]["duration_s"] == 125
    assert found["long_queries"][0]["query"].startswith("SELECT * FROM grades WHERE x = 1 yyy")
    assert len(found["long_queries"][0]["query"]) == 80
    call = runner.calls[0]
    assert "secs=30" in call["argv"] and "pg_stat_activity" in call["stdin"]
    assert "pw-not-on-argv" not in " ".join(call["argv"]) and call["env"]["PGPASSWORD"] == "pw-not-on-argv"


def test_postgresql_activity_failure_is_an_engine_error():
    runner = FakeRunner(rc=2, stderr="psql: error: connection to server failed: FATAL:  password authentication "
                                     "failed for user \"sms\"")
    with pytest.raises(EngineError, match="password authentication failed"):
        PostgreSQL(runner, Target("postgresql", "sms")).activity()


def test_mysql_activity_reads_the_process_list():
    runner = FakeRunner("connections\t3\t151\nlong\t17\t90\tUPDATE grades\\nSET score = 1\n")
    found = MySQL(runner, Target("mysql", "sms", password="x")).activity(60)
    assert found == {"active_connections": 3, "max_connections": 151,
                     "long_queries": [{"pid": 17, "duration_s": 90, "query": "UPDATE grades SET score = 1"}]}
    assert "information_schema.processlist" in runner.calls[0]["stdin"] and "time >= 60" in runner.calls[0]["stdin"]
    with pytest.raises(EngineError):
        MySQL(runner, Target("mysql", "sms")).activity(-1)


def test_sqlite_activity_opens_the_file_without_integrity_check(tmp_path):
    path = str(tmp_path / "sms.sqlite3")
    sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.commit()
    engine = SQLite(LocalRunner(), Target("sqlite", "sms", path=path))
    assert engine.activity() == {"active_connections": None, "max_connections": None, "long_queries": []}
    missing = SQLite(LocalRunner(), Target("sqlite", "x", path=str(tmp_path / "missing.db")))
    with pytest.raises(EngineError, match="does not exist"):
        missing.activity()
    check = health.database_check({"engine": "sqlite", "path": str(tmp_path / "missing.db")}, T)
    assert check["status"] == "critical" and "does not exist" in check["reason"]
    assert health.database_check({"engine": "sqlite", "path": path}, T)["status"] == "ok"


# ------------------------------------------------------------------------------------ disk, memory, cpu
def test_disk_usage_like_df(tmp_path):
    fake = SimpleNamespace(f_blocks=1000, f_bfree=150, f_bavail=100, f_frsize=4096)
    check = health.disk_check("/data", T, statvfs=lambda p: fake)
    assert check["metrics"] == {"used_percent": 89.5} and check["status"] == "warning"
    assert check["name"] == "disk /data" and "89.5 % used" in check["reason"]
    missing = health.disk_check(str(tmp_path / "nope"), T)
    assert missing["status"] == "critical" and missing["reason"].startswith("could not read disk usage")
    assert health.disk_check(str(tmp_path), T)["kind"] == "disk"


def test_memory_from_meminfo(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       1000000 kB\nMemFree:  10 kB\nMemAvailable:    100000 kB\n")
    check = health.memory_check(T, str(meminfo))
    assert check["metrics"] == {"used_percent": 90.0} and check["status"] == "warning"
    meminfo.write_text("MemTotal: 1000 kB\n")
    assert health.memory_check(T, str(meminfo))["status"] == "critical"
    assert health.memory_check(T, str(tmp_path / "x"))["reason"].startswith("could not read")


def test_cpu_sampled_between_two_reads(tmp_path):
    stat = tmp_path / "stat"
    stat.write_text("cpu  100 0 100 800 0 0 0 0 0 0\ncpu0 1 1 1 1\n")

    def later(_seconds):
        stat.write_text("cpu  190 0 100 810 0 0 0 0 0 0\n")

    check = health.cpu_check(T, interval=1.0, path=str(stat), sleep=later)
    assert check["metrics"] == {"used_percent": 90.0} and check["status"] == "warning"
    assert health.cpu_percent((10, 100), (10, 100)) == 0.0


# ---------------------------------------------------------------------------------------------- backup
def item(name, age_s, verification=None):
    return {"name": name, "engine": "postgresql", "database": "sms", "age_s": age_s, "verification": verification,
            "verified": bool(verification and verification["status"] == "passed")}


PASSED = {"status": "passed", "level": "restore"}


def test_fresh_verified_backup_is_ok():
    check = health.evaluate_backups("/b", [item("new", 3600, PASSED)], T)
    assert check["status"] == "ok" and check["metrics"] == {"newest_age_s": 3600, "newest_verified_age_s": 3600,
                                                            "newest_verify_passed": 1, "newest_verify_failed": 0}


def test_backup_older_than_the_threshold_is_a_warning():
    check = health.evaluate_backups("/b", [item("old", 25 * 3600, PASSED)], T)
    assert check["status"] == "warning" and "newest backup age 25 h >= 24 h" in check["reason"]
    zero = health.merge_thresholds({"backup_age_hours": [0, None], "verified_backup_age_hours": [None, None]})
    assert health.evaluate_backups("/b", [item("new", 5, PASSED)], zero)["status"] == "warning"


def test_what_a_passed_verification_warns_about_is_a_health_warning():
    warned = dict(PASSED, data_warnings=["the uploads archive holds 0 files where the uploads table has 1 row: ..."])
    check = health.evaluate_backups("/b", [item("new", 60, warned)], T)
    assert check["status"] == "warning" and check["reason"].startswith(
        "newest backup new: the uploads archive holds 0 files where the uploads table has 1 row"), check
    assert check["metrics"]["newest_verify_passed"] == 1 and check["metrics"]["newest_verify_failed"] == 0


def test_no_backup_is_critical_and_failed_verification_is_critical():
    assert health.evaluate_backups("/b", [], T)["reason"] == "no backup in /b"
    assert health.evaluate_backups("/b", [], T)["status"] == "critical"
    failed = {"status": "failed", "level": "native", "detail": "checksum mismatch"}
    check = health.evaluate_backups("/b", [item("new", 60, failed), item("old", 7200, PASSED)], T)
    assert check["status"] == "critical"
    assert check["reason"].startswith("newest backup new failed verification (native): checksum mismatch")
    assert check["metrics"] == {"newest_age_s": 60, "newest_verified_age_s": 7200, "newest_verify_passed": 0,
                                "newest_verify_failed": 1}


def test_a_verification_that_could_not_reach_the_server_is_a_warning_not_a_failed_backup():
    """A password changed while backup.yml ran (rotate_db_passwords.yml): the backup is not at fault."""
    error = {"status": "error", "level": "restore", "steps": [  # as backup.verify_backup records it
        {"level": "checksum", "status": "passed", "detail": "signed"},
        {"level": "restore", "status": "error", "detail": "password authentication failed for user \"sms_owner\""}]}
    check = health.evaluate_backups("/b", [item("new", 60, error), item("old", 7200, PASSED)], T)
    assert check["status"] == "warning", check
    assert check["reason"].startswith("newest backup new could not be verified (restore: the server could not be "
                                      "reached or logged into): password authentication failed")
    assert "playbooks/verify_backup.yml -e backup_name=new" in check["reason"]
    assert check["metrics"]["newest_verify_passed"] == 0 and check["metrics"]["newest_verify_failed"] == 0


def test_a_verification_stopped_by_a_key_that_does_not_fit_is_a_warning_naming_the_key():
    error = {"status": "error", "level": "checksum", "steps": [  # as backup.verify_backup records it
        {"level": "checksum", "status": "error", "cause": "key", "detail": "wrong key for backup new: ..."}]}
    check = health.evaluate_backups("/b", [item("new", 60, error)], T)
    assert check["status"] == "warning", check
    assert check["reason"].startswith("newest backup new could not be verified (checksum: the key given did not fit "
                                      "it): wrong key for backup new")


def keyed(name, age_s, key):
    return dict(item(name, age_s, PASSED), key_id=artifact.key_id(key) if key else None)


KEY_A, KEY_B = bytes(range(32)), bytes(range(1, 33))


def test_a_backup_key_that_does_not_read_the_newest_backup_is_critical_and_says_what_to_do():
    """The demo's .secrets/local/backup_key deleted (a new one is made on first use): health said ok, the night's
    backup then refused and no restore could read the backups with the inventory's keys."""
    items = [keyed("new", 60, KEY_A), keyed("old", 7200, KEY_A)]
    check = health.evaluate_backups("/b", items, T, ring=keyring.KeyRing(KEY_B))
    assert check["status"] == "critical", check
    assert "The next backup.yml will refuse, and restores of the newest backups fail: the newest backup of sms " \
           "here, new, was made with key id %s" % artifact.key_id(KEY_A) in check["reason"]
    assert "put it back where the inventory reads it" in check["reason"] and KEY_A.hex() not in check["reason"]
    no_key = health.evaluate_backups("/b", items, T, ring=keyring.KeyRing())
    assert no_key["status"] == "critical" and "no backup key is given now" in no_key["reason"]


@pytest.mark.parametrize("ring", [keyring.KeyRing(KEY_A), keyring.KeyRing(KEY_B, [KEY_A]), None])
def test_the_key_that_made_the_newest_backup_a_ring_holding_it_or_no_check_is_ok(ring):
    check = health.evaluate_backups("/b", [keyed("new", 60, KEY_A), keyed("old", 7200, KEY_B)], T, ring=ring)
    assert check["status"] == "ok", check


def test_backups_made_without_a_key_pass_the_key_check_and_the_newest_keyed_one_counts():
    assert health.evaluate_backups("/b", [keyed("new", 60, None)], T, keyring.KeyRing(KEY_B))["status"] == "ok"
    items = [keyed("plain", 60, None), keyed("old", 7200, KEY_A)]
    assert health.evaluate_backups("/b", items, T, keyring.KeyRing(KEY_B))["status"] == "critical"


def test_an_unusable_key_ring_is_the_backup_checks_error(tmp_path):
    def ring():
        raise artifact.ArtifactError("entry 1 of encryption_keys (the key ring) is not usable: too short")
    check = health.backup_check(str(tmp_path), T, lambda d: [keyed("new", 60, KEY_A)], ring=ring)
    assert check["status"] == "critical" and "could not check the backup key: entry 1 of" in check["reason"]


def test_a_restores_safety_backup_newest_and_never_verified_is_not_a_failed_verification():
    """After every restore.yml the newest backup is its safety backup, which is never verified: health said ok and
    the alert BackupVerifyFailed (on newest_verify_passed == 0) paged P1. It now fires on newest_verify_failed."""
    check = health.evaluate_backups("/b", [item("safety", 600), item("restored", 3600, PASSED)], T)
    assert check["status"] == "ok", check
    assert check["metrics"]["newest_verify_passed"] == 0 and check["metrics"]["newest_verify_failed"] == 0


def test_unverified_backups_warn():
    check = health.evaluate_backups("/b", [item("new", 60)], T)
    assert check["status"] == "warning" and "no verified backup" in check["reason"]
    assert check["metrics"] == {"newest_age_s": 60, "newest_verify_passed": 0, "newest_verify_failed": 0}


def test_backup_check_filters_and_reports_a_missing_directory(tmp_path):
    items = [item("pg", 60, PASSED), dict(item("my", 10, PASSED), engine="mysql")]
    check = health.backup_check(str(tmp_path), T, lambda d: items, engine="postgresql")
    assert check["metrics"]["newest_age_s"] == 60
    # the inventory's engine name as it is (roles/health passes rollcall_db_engine): MariaDB's backups are mysql's
    assert health.backup_check(str(tmp_path), T, lambda d: items, engine="mariadb")["metrics"]["newest_age_s"] == 10
    missing = health.backup_check(str(tmp_path / "none"), T, lambda d: items)
    assert missing["status"] == "critical" and "does not exist" in missing["reason"]
    assert "run playbooks/backup.yml" in missing["reason"]  # says what to do


def test_another_projects_fresh_backup_does_not_hide_a_stale_one(tmp_path):
    items = [dict(item("theirs", 60, PASSED), project="other"), dict(item("mine", 3 * 86400, PASSED), project="me"),
             item("legacy", 5 * 86400, PASSED)]
    check = health.backup_check(str(tmp_path), T, lambda d: items, engine="postgresql", project="me")
    assert check["metrics"]["newest_age_s"] == 3 * 86400 and check["status"] != "ok", check
    assert health.backup_check(str(tmp_path), T, lambda d: items)["metrics"]["newest_age_s"] == 60


# ------------------------------------------------------------------------------------------------ logs
@pytest.mark.parametrize("line, error", [
    ('{"level": "error", "message": "boom"}', True),
    ('{"level": "info", "status": 502, "path": "/api"}', True),
    ('{"level": "info", "status": 200, "path": "/api/errors"}', False),
    ("Traceback (most recent call last):", True),
    ("2026-01-01 ERROR something", True),
    ("FATAL:  password authentication failed", True),
    ("no errors here", False),
    ("[2026] [1] [INFO] Booting worker", False),
])
def test_default_error_lines(line, error):
    assert health.is_error_line(line) is error


def test_log_samples_are_redacted_and_counted():
    secret = "0123456789abcdef0123456789abcdef"
    lines = ['{"level": "error", "message": "key %s leaked"}' % secret] + \
        ["ERROR DATABASE_URL=postgresql://sms:dbpw-77@db/sms"] * 60 + ["fine"]
    check = health.evaluate_logs("app", lines, 60, T, secrets=[secret])
    assert check["status"] == "critical" and check["metrics"] == {"error_lines": 61, "recent_error_lines": 61}
    assert len(check["details"]["samples"]) == 5
    text = json.dumps(check)
    assert secret not in text and "dbpw-77" not in text and "postgresql://sms:***@db/sms" in text


def test_log_checks_read_the_window_and_mask_the_container_secrets():
    app_secret = "s" * 40
    api = FakeApi({"app": {"Config": {"Env": ["SECRET_KEY=" + app_secret]}}},
                  logs=("line\nERROR with %s inside\n" % app_secret).encode())
    found = health.log_checks({"containers": ["app", "gone"], "since_minutes": 10}, lambda: api, T, now=lambda: 1000)
    assert api.since == 1000 - 600 and api.timestamps is True
    assert found[0]["status"] == "warning" and found[0]["details"]["samples"] == ["ERROR with *** inside"]
    assert found[1]["status"] == "critical" and "container gone does not exist" in found[1]["reason"]
    custom = health.log_checks({"containers": ["app"], "patterns": ["^line$"]}, lambda: api, T, now=lambda: 0)
    assert custom[0]["metrics"]["error_lines"] == 1


# issue 9 item 10: an outage that is over is not critical for the rest of the window, and the sample is a real error
ACCESS_503 = ('{"ts":"2026-12-01T10:00:00.000Z","level":"info","request_id":"%s","client":"172.18.0.1",'
              '"method":"GET","path":"/health","query":"","route":"/health","status":503,"duration_ms":3.2}')
DB_ERROR = ('{"ts":"2026-12-01T10:00:01.000Z","level":"error","request_id":"r2","path":"/api/v1/students",'
            '"error":"OperationalError","message":"could not connect to the database at db:5432"}')


def test_errors_that_stopped_are_a_warning_with_when_they_stopped():
    now = 100000.0
    old = [(now - 40 * 60 + i, ACCESS_503 % i) for i in range(679)]
    check = health.evaluate_logs("app", old + [(now - 60, '{"level":"info","status":200}')], 60, T,
                                 recent_minutes=15, now=now)
    assert check["status"] == "warning", check
    assert check["metrics"] == {"error_lines": 679, "recent_error_lines": 0}
    assert "none in the last 15 min (the last 28 min ago)" in check["reason"], check["reason"]


def test_errors_still_coming_are_critical():
    now = 100000.0
    lines = [(now - 60 + i * 0.1, ACCESS_503 % i) for i in range(50)]
    check = health.evaluate_logs("app", lines, 60, T, recent_minutes=15, now=now)
    assert check["status"] == "critical", check
    assert "error lines in the last 15 min 50 >= 50" in check["reason"], check["reason"]
    # Without a recent window (or one as long as the window), the whole window counts, as before.
    assert health.evaluate_logs("app", lines, 60, T, now=now)["status"] == "critical"
    assert health.evaluate_logs("app", lines, 15, T, recent_minutes=15, now=now)["status"] == "critical"


def test_after_a_restart_only_the_errors_since_it_are_judged():
    now = 100000.0
    restart = now - 20
    before = [(now - 5 * 60 + i, ACCESS_503 % i) for i in range(60)]  # the outage, inside the last 15 min
    check = health.evaluate_logs("app", before, 60, T, recent_minutes=15, now=now, recent_after=restart)
    assert check["status"] == "warning", check
    assert check["metrics"] == {"error_lines": 60, "recent_error_lines": 0}
    assert "60 error line(s) earlier in the last 60 min, none since 03:46:20 UTC" in check["reason"], check["reason"]
    # errors after the restart are judged as usual
    after = [(restart + 1 + i * 0.1, ACCESS_503 % i) for i in range(50)]
    check = health.evaluate_logs("app", before + after, 60, T, recent_minutes=15, now=now, recent_after=restart)
    assert check["status"] == "critical" and "error lines since 03:46:20 UTC 50 >= 50" in check["reason"], check
    # a restart older than the recent window, or in the future, changes nothing
    for when in (now - 30 * 60, now + 60):
        assert health.evaluate_logs("app", before, 60, T, recent_minutes=15, now=now,
                                    recent_after=when)["status"] == "critical"


def test_the_sample_is_a_real_error_and_shows_why_it_is_one():
    now = 100000.0
    lines = [(now - 30, ACCESS_503 % "r1"), (now - 20, DB_ERROR), (now - 10, ACCESS_503 % "r3")]
    check = health.evaluate_logs("app", lines, 60, T, recent_minutes=15, now=now)
    first = check["details"]["samples"][0]
    assert first.startswith("error /api/v1/students: OperationalError: could not connect"), first
    assert "newest error: error /api/v1/students: OperationalError" in check["reason"], check["reason"]
    # An access line is described with its status, never cut before it.
    assert check["details"]["samples"][1].startswith("info status 503 GET /health"), check["details"]["samples"]
    assert health.split_timestamp("2026-12-01T10:00:00.123456789Z text") == (
        datetime.datetime(2026, 12, 1, 10, 0, 0, 123456, tzinfo=UTC).timestamp(), "text")
    assert health.split_timestamp("no stamp here") == (None, "no stamp here")


def test_log_checks_judge_the_recent_minutes():
    stamp = datetime.datetime.fromtimestamp(1000 - 30 * 60, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")
    api = FakeApi({"app": {}}, logs=("%s ERROR old\n" % stamp).encode())
    (found,) = health.log_checks({"containers": ["app"], "since_minutes": 60, "recent_minutes": 15}, lambda: api, T,
                                 now=lambda: 1000)
    assert found["status"] == "warning" and found["metrics"]["recent_error_lines"] == 0, found


def _docker_stamp(epoch):
    return datetime.datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")


def test_errors_before_the_stacks_last_start_only_warn():
    """The database stopped, the app logged 68 errors, someone started the database again: health.yml right
    after said "logs critical (error lines in the last 15 min 68 >= 50)" for a quarter of an hour although the
    stack served again. The newest start of the stack's running containers ends the judged outage."""
    now = 100000.0
    outage = "".join("%s ERROR could not translate host name db\n" % _docker_stamp(now - 120 + i) for i in range(68))
    containers = {"app": {"State": {"Running": True, "StartedAt": _docker_stamp(now - 3600)}},
                  "db": {"State": {"Running": True, "StartedAt": _docker_stamp(now - 30)}},
                  "old": {"State": {"Running": False, "StartedAt": _docker_stamp(now - 5)}}}
    api = FakeApi(containers, logs=outage.encode())
    spec = {"containers": ["app"], "since_minutes": 60, "recent_minutes": 15}
    (before,) = health.log_checks(spec, lambda: api, T, now=lambda: now)
    assert before["status"] == "critical", before  # without since_started, as before
    # while one of the stack's containers is down (or gone) the outage is not over: no start counts
    for down in (["app", "db", "old"], ["app", "db", "gone"]):
        (found,) = health.log_checks(dict(spec, since_started=down), lambda: api, T, now=lambda: now)
        assert found["status"] == "critical" and "started" not in found["reason"], found["reason"]
    (found,) = health.log_checks(dict(spec, since_started=["app", "db"]), lambda: api, T, now=lambda: now)
    assert found["status"] == "warning" and found["metrics"] == {"error_lines": 68, "recent_error_lines": 0}, found
    assert "none since db started at 03:46:10 UTC (the last 53 s ago)" in found["reason"], found["reason"]
    # errors after the start are judged as usual
    api.log_bytes = outage.encode() + "".join(
        "%s ERROR still\n" % _docker_stamp(now - 20 + i * 0.1) for i in range(50)).encode()
    (found,) = health.log_checks(dict(spec, since_started=["app", "db"]), lambda: api, T, now=lambda: now)
    assert found["status"] == "critical" and "error lines since db started at 03:46:10 UTC 50 >= 50" in found["reason"]
    # a start older than the recent window changes nothing; a later restart time given by incident.yml wins
    containers["db"]["State"]["StartedAt"] = _docker_stamp(now - 3000)
    api.log_bytes = outage.encode()
    (found,) = health.log_checks(dict(spec, since_started=["app", "db"]), lambda: api, T, now=lambda: now)
    assert found["status"] == "critical", found
    (found,) = health.log_checks(dict(spec, since_started=["db"], recent_after=now - 10), lambda: api, T,
                                 now=lambda: now)
    assert found["status"] == "warning" and "db started" not in found["reason"], found["reason"]


@pytest.mark.parametrize("inspects, expected", [
    ({}, None),
    ({"a": None}, None),
    ({"a": {"State": {"Running": True, "StartedAt": "0001-01-01T00:00:00Z"}}}, None),
    ({"a": {"State": {"Running": True, "StartedAt": "2026-12-06T19:18:52.123456789Z"}},
      "b": {"State": {"Running": True, "StartedAt": "2026-12-06T19:00:00Z"}}},
     (datetime.datetime(2026, 12, 6, 19, 18, 52, 123456, tzinfo=UTC).timestamp(), "a")),
    ({"a": {"State": {"Running": False, "StartedAt": "2026-12-06T19:18:52Z"}}}, None),
    ({"a": {"State": {"Running": True, "StartedAt": "2026-12-06T19:18:52Z"}}, "b": None}, None),
    ({"a": {"State": {"Running": True, "StartedAt": "2026-12-06T19:18:52Z"}},
      "b": {"State": {"Running": False, "StartedAt": "2026-12-06T19:00:00Z"}}}, None),
])
def test_newest_start(inspects, expected):
    assert health.newest_start(inspects) == expected


# ------------------------------------------------------------------------------------------------- tls
NOW = datetime.datetime(2026, 3, 1, tzinfo=UTC)


@pytest.mark.parametrize("days, status", [(31, "ok"), (30, "warning"), (8, "warning"), (7, "critical"),
                                          (-1, "critical")])
def test_tls_days_left(days, status):
    check = health.evaluate_tls("tls x:443", NOW + datetime.timedelta(days=days), NOW, T)
    assert check["status"] == status and check["metrics"]["days_left"] == days


def test_tls_from_a_pem_file_and_an_unreachable_host(tmp_path):
    cryptography = pytest.importorskip("cryptography")
    assert cryptography
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sms.test")])
    now = datetime.datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=20)).sign(key, hashes.SHA256()))
    pem = tmp_path / "cert.pem"
    pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    check = health.tls_check({"path": str(pem)}, T)
    assert check["status"] == "warning" and 19.9 <= check["metrics"]["days_left"] <= 20
    assert check["name"] == "tls %s" % pem
    bad = health.tls_check({"host": "127.0.0.1", "port": 1}, T)
    assert bad["status"] == "critical" and bad["reason"].startswith("could not reach 127.0.0.1:1")
    notpem = tmp_path / "x.pem"
    notpem.write_text("hello")
    assert health.tls_check({"path": str(notpem)}, T)["status"] == "critical"


# ------------------------------------------------------------------------------------------------- run
def test_run_keeps_order_summarises_and_never_lets_a_crash_pass_as_ok():
    def crash():
        raise KeyError("surprise")

    jobs = [lambda: health.make_check("a", "disk", "ok", "fine"),
            health.labelled("memory", "memory", crash),
            lambda: [health.make_check("b", "http", "warning", "slow, password=hunter2x")]]
    result = health.run(jobs, secrets=["fine"])
    assert [c["name"] for c in result["checks"]] == ["a", "memory", "b"]
    assert result["checks"][1]["status"] == "critical" and result["checks"][1]["kind"] == "memory"
    assert "could not run the memory check" in result["checks"][1]["reason"]
    assert result["status"] == "critical" and result["summary"] == {"ok": 1, "warning": 1, "critical": 1}
    assert result["checks"][0]["reason"] == "***" and "hunter2x" not in json.dumps(result)
    assert health.run([])["status"] == "ok"


def test_every_kind_is_known():
    assert set(health.KINDS) == {"container", "http", "database", "disk", "memory", "cpu", "backup", "logs", "tls",
                                 "lock"}
    assert os.path.basename(sys.modules[health.__name__].__file__) == "health.py"


def test_default_actor_follows_the_one_rule():
    """issue 9 item 14: the audit log and the release history name the same actor (ROLLCALL_ACTOR first)."""
    from ansible_collections.rollcall.ops.plugins.module_utils import release

    assert release.default_actor({"ROLLCALL_ACTOR": "ops@awx", "USER": "root"}, "ctl") == "ops@awx"
    assert release.default_actor({"LOGNAME": "cron"}, "ctl") == "cron@ctl"


# ------------------------------------------------------------------------------------------ deploy lock
def test_a_free_deploy_lock_is_ok_with_zero_held(tmp_path):
    check = health.deploy_lock_check({"state_dir": str(tmp_path), "app": "sms"}, health.merge_thresholds())
    assert check["kind"] == "lock" and check["status"] == health.OK and check["metrics"] == {"held_s": 0}
    assert check["name"] == "deploy lock sms" and check["reason"] == "free"


@pytest.mark.parametrize("age_s, status", [(60, "ok"), (1800, "warning"), (7200, "critical")])
def test_a_held_deploy_lock_is_rated_by_how_long_and_names_its_holder(tmp_path, age_s, status):
    from ansible_collections.rollcall.ops.plugins.module_utils import release
    state = release.ReleaseStore(str(tmp_path), "sms", clock=lambda: 1_000_000.0)
    state.acquire(holder="ops@admin1", version="1.1.0", message="deploy 1.1.0")
    later = release.ReleaseStore(str(tmp_path), "sms", clock=lambda: 1_000_000.0 + age_s)
    check = health.deploy_lock_check({"state_dir": str(tmp_path), "app": "sms"}, health.merge_thresholds(), later)
    assert check["status"] == status and check["metrics"]["held_s"] == age_s
    assert "ops@admin1" in check["reason"]
    assert ("break_lock" in check["reason"]) == (status != "ok")


def test_an_unreadable_deploy_lock_is_critical_not_ok(tmp_path):
    from ansible_collections.rollcall.ops.plugins.module_utils import release

    class Broken:
        def read_lock(self):
            raise release.ReleaseError("cannot read the deploy lock /x: Permission denied")

    check = health.deploy_lock_check({"state_dir": str(tmp_path), "app": "sms"}, health.merge_thresholds(), Broken())
    assert check["status"] == health.CRITICAL and "Permission denied" in check["reason"]


def test_opening_a_database_whose_container_is_gone_is_an_engine_error(monkeypatch):
    """Found with maintenance.yml before any deploy: db_diagnostics died with a traceback ('Module result
    deserialization failed') because the runner's error escaped the modules' EngineError handling."""
    from ansible_collections.rollcall.ops.plugins.module_utils import backup as backup_utils
    from ansible_collections.rollcall.ops.plugins.module_utils.engines.base import EngineError
    from ansible_collections.rollcall.ops.plugins.module_utils.runner import ContainerMissing, RunnerError

    # a missing container gets the hint; a stopped one, or a runner error whose text happens to end the same way,
    # keeps the runner's words as they were (health.yml's database reason keeps them)
    cases = [(ContainerMissing("sms-db"), r"^container sms-db does not exist \(deploy the stack first: "
                                          r"playbooks/deploy.yml; or check rollcall_db_container\)$"),
             (RunnerError("container sms-db is not running (exited)"), r"^container sms-db is not running \(exited\)$"),
             (RunnerError("psql: the file /usr/bin/psql does not exist"),
              r"^psql: the file /usr/bin/psql does not exist$")]
    for error, expected in cases:
        def fail(target, error=error):
            raise error

        monkeypatch.setattr(backup_utils, "open_engine", fail)
        with pytest.raises(EngineError, match=expected):
            health.open_database({"engine": "postgresql", "database": "sms", "container": "sms-db", "user": "sms",
                                  "password": "x"})
