"""health_report and log_audit run by real ansible (ad hoc, local connection, no Docker)."""

import datetime
import json
import os
import pathlib
import re

from modules import run_module as shared_run_module

SECRET = "s3cr3t-Backup-Key-0123"


def run_module(module, args, *extra):
    return shared_run_module(module, args, *extra, timeout=120)


RESULTS = [
    {"host": "web1", "status": "ok", "checked_at": "2026-11-25T07:59:58Z",
     "checks": [{"name": "http:/health", "kind": "http", "status": "ok", "reason": "",
                 "metrics": {"p50_ms": 5, "p95_ms": 9, "p99_ms": 12, "error_rate": 0, "samples": 10}}],
     "summary": {"ok": 1, "warning": 0, "critical": 0}},
    {"host": "db1", "status": "critical", "checked_at": "2026-11-25T07:59:59Z",
     "checks": [{"name": "postgres", "kind": "database", "status": "critical",
                 "reason": "<script>x</script> password %s rejected" % SECRET, "metrics": {}},
                {"name": "backup:sms", "kind": "backup", "status": "ok", "reason": "",
                 "metrics": {"newest_age_s": 600, "newest_verified_age_s": 900}}],
     "summary": {"ok": 1, "warning": 0, "critical": 1}},
]


def test_health_report_writes_everything_once_and_redacts(tmp_path):
    prom = tmp_path / "textfile" / "rollcall.prom"
    prom.parent.mkdir()
    args = {"results": RESULTS, "directory": str(tmp_path / "reports"), "name": "health-test",
            "prometheus_textfile": str(prom), "redact": [SECRET],
            "history": [{"at": "2026-11-24T08:00:00Z", "host": "db1", "newest_backup_age_s": 3000, "p95_ms": 8}]}
    rc, result, output = run_module("health_report", args, "-vvv")
    assert rc == 0, result
    assert result["changed"] is True
    assert result["status"] == "critical" and result["critical"] is True
    assert result["counts"]["hosts"] == {"ok": 1, "warning": 0, "critical": 1, "total": 2}
    assert result["failing"][0].startswith("db1: postgres critical")
    assert sorted(os.listdir(tmp_path / "reports")) == ["health-test.html", "health-test.json", "health-test.md"]
    page = (tmp_path / "reports" / "health-test.html").read_text()
    assert "&lt;script&gt;x&lt;/script&gt;" in page and "<script" not in page
    assert 'rollcall_health_status{host="db1"} 2' in prom.read_text()
    for path in list(result["paths"].values()) + [str(prom)]:
        assert SECRET not in pathlib.Path(path).read_text(encoding="utf-8")
    assert SECRET not in output  # -vvv included: redact is no_log, so ansible masks it in the invocation too

    before = page
    rc, result, _ = run_module("health_report", dict(args, redact=[]))
    assert rc != 0 and "already exists" in result["msg"]
    assert (tmp_path / "reports" / "health-test.html").read_text() == before


def test_health_report_check_mode_writes_nothing_and_fail_on(tmp_path):
    args = {"results": RESULTS, "directory": str(tmp_path / "r"), "prometheus_textfile": str(tmp_path / "x.prom"),
            "fail_on": "critical"}
    rc, result, _ = run_module("health_report", args, "--check")
    assert rc != 0 and result["failed"] is True and "overall status critical" in result["msg"]
    assert result["paths"]["html"].startswith(str(tmp_path / "r" / "health-"))
    assert os.listdir(tmp_path) == []
    rc, result, _ = run_module("health_report", {"results": RESULTS[:1], "fail_on": "warning"}, "--check")
    assert rc == 0 and result["status"] == "ok" and result["critical"] is False and result["paths"] == {}


def test_log_audit_from_a_file(tmp_path):
    now = datetime.datetime.now(datetime.UTC)

    def line(seconds_ago, path, status, client="10.0.0.1"):
        when = (now - datetime.timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        return json.dumps({"ts": when, "level": "info", "client": client, "method": "GET", "path": path,
                           "route": path, "status": status, "duration_ms": 12.0})

    log = tmp_path / "app.log"
    log.write_text("\n".join([line(60, "/api/login", 401, "203.0.113.9")] * 5
                             + [line(60, "/api/students?id=1%27%20OR%201%3D1--", 404, "192.0.2.1"),
                                line(30, "/api/students", 500), line(10 * 86400, "/old", 200), "not json"]) + "\n")
    args = {"path": str(log), "since": "7d", "directory": str(tmp_path / "audit"), "name": "audit-test"}
    rc, result, _ = run_module("log_audit", args, "--check")
    assert rc == 0, result
    assert result["unauthorized"] == 5 and result["server_errors"] == 1 and result["sqli"]["count"] == 1
    assert result["lines"]["non_json"] == 1 and result["lines"]["outside_window"] == 1
    assert result["auth_failures_by_client"][0]["client"] == "203.0.113.9"
    assert not (tmp_path / "audit").exists()
    rc, result, _ = run_module("log_audit", args)
    assert rc == 0 and result["changed"] is True
    assert sorted(os.listdir(tmp_path / "audit")) == ["audit-test.html", "audit-test.json", "audit-test.md"]


def test_log_audit_reports_bad_input_clearly(tmp_path):
    rc, result, _ = run_module("log_audit", {"container": "sms-app", "docker_host": "unix://%s/none.sock" % tmp_path})
    assert rc != 0 and "does not answer" in result["msg"]
    rc, result, _ = run_module("log_audit", {"path": str(tmp_path / "x.log"), "since": "yesterday"})
    assert rc != 0 and "neither a duration" in result["msg"]


def test_job_metrics_writes_its_textfile_keeps_the_last_success_and_writes_nothing_in_check_mode(tmp_path):
    directory = tmp_path / "reports"
    rc, check, _ = run_module("job_metrics", {"directory": str(directory), "playbook": "backup", "status": "ok"},
                              "--check")
    assert rc == 0 and check["changed"] is False and not directory.exists()
    rc, first, _ = run_module("job_metrics", {"directory": str(directory), "playbook": "backup", "status": "ok",
                                              "started_at": 1.0})
    path = directory / "rollcall_job_backup.prom"
    assert rc == 0 and first["changed"] is True and first["path"] == str(path)
    success = re.search(r'rollcall_job_last_success_timestamp_seconds\{playbook="backup"\} (\d+)', path.read_text())
    assert success and oct(path.stat().st_mode & 0o777) == "0o644"
    rc, failed, _ = run_module("job_metrics", {"directory": str(directory), "playbook": "backup", "status": "failed"})
    text = path.read_text()
    assert failed["changed"] is True and 'rollcall_job_last_run_ok{playbook="backup"} 0' in text
    assert 'rollcall_job_last_success_timestamp_seconds{playbook="backup"} %s' % success.group(1) in text
