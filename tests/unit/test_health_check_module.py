"""The health_check module run by real ansible against a loopback server (no Docker)."""

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ANSIBLE = os.path.join(os.path.dirname(sys.executable), "ansible")


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        healthy = self.path == "/health"
        body = {"status": "healthy" if healthy else "unhealthy", "version": "9.9.9",
                "checks": {"database": {"status": "ok" if healthy else "error", "detail": "connection refused"}}}
        self.send_response(200 if healthy else 503)
        self.end_headers()
        self.wfile.write(json.dumps(body).encode())

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def base_url():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield "http://127.0.0.1:%d" % httpd.server_address[1]
    httpd.shutdown()


def run_module(args, *extra):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_INVENTORY_UNPARSED_WARNING="0")
    proc = subprocess.run(
        [ANSIBLE, "localhost", "-c", "local", "-e", "ansible_python_interpreter=" + sys.executable,
         "-m", "rollcall.ops.health_check", "-a", json.dumps(args), *extra],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    result = json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    return proc.returncode, result


def test_healthy_endpoint_reports_ok_and_never_changes(base_url):
    rc, result = run_module({"url": base_url + "/health", "wait_timeout": 5})
    assert rc == 0, result
    assert result["changed"] is False
    assert result["status"] == "ok"
    assert result["app_version"] == "9.9.9"
    assert result["app_checks"]["database"]["status"] == "ok"
    gate = result["checks"][0]
    assert gate["kind"] == "http" and gate["status"] == "ok" and gate["metrics"]["samples"] == 1
    assert result["summary"] == {"ok": 1, "warning": 0, "critical": 0}


def test_unhealthy_endpoint_fails_with_the_reason(base_url):
    rc, result = run_module({"url": base_url + "/sick", "wait_timeout": 1, "interval": 0.5})
    assert rc != 0
    assert result["failed"] is True
    assert result["status"] == "critical"
    assert "database (connection refused)" in result["msg"]
    assert result["attempts"] >= 2


def test_unhealthy_without_fail_reports_critical(base_url):
    rc, result = run_module({"url": base_url + "/sick", "wait_timeout": 0, "fail_unhealthy": False})
    assert rc == 0
    assert result["status"] == "critical" and result["attempts"] == 1


def test_expect_version_passes_on_that_version_and_fails_naming_the_one_that_answered(base_url):
    rc, result = run_module({"url": base_url + "/health", "expect_version": "9.9.9", "wait_timeout": 0})
    assert rc == 0 and result["status"] == "ok" and result["app_version"] == "9.9.9", result
    rc, result = run_module({"url": base_url + "/health", "expect_version": "1.1.0", "wait_timeout": 0.3,
                             "interval": 0.1})
    assert rc != 0 and result["failed"] is True
    assert result["msg"].startswith("not healthy after ") and result["attempts"] >= 2, result["msg"]
    assert "answered 200 (healthy) from version 9.9.9, not 1.1.0" in result["msg"], result["msg"]


def test_runs_in_check_mode(base_url):
    rc, result = run_module({"url": base_url + "/health", "wait_timeout": 0}, "--check")
    assert rc == 0 and result["status"] == "ok"


def test_bad_interval_is_refused():
    rc, result = run_module({"url": "http://127.0.0.1:1/", "interval": 0})
    assert rc != 0
    assert "interval and request_timeout must be greater than 0" in result["msg"]


# ---------------------------------------------------------------------------- the gather-everything mode
def test_host_checks_have_the_report_shape(base_url, tmp_path):
    rc, result = run_module({"endpoints": [{"name": "live", "url": base_url + "/health", "samples": 3}],
                             "disk_paths": [str(tmp_path)], "memory": True,
                             "backup_directory": str(tmp_path / "none")})
    assert rc == 0, result  # critical, but fail_on defaults to never
    assert "http_status" not in result and "attempts" not in result
    kinds = [(c["kind"], c["status"]) for c in result["checks"]]
    assert kinds[0] == ("http", "ok") and kinds[1][0] == "disk" and kinds[2][0] == "memory"
    assert kinds[3] == ("backup", "critical")
    assert "could not read backups" in result["checks"][3]["reason"]
    assert result["status"] == "critical"
    assert sum(result["summary"].values()) == 4
    assert result["checked_at"].endswith("Z")
    http = result["checks"][0]
    assert set(http["metrics"]) == {"p50_ms", "p95_ms", "p99_ms", "error_rate", "samples"}
    assert http["metrics"]["samples"] == 3 and http["metrics"]["error_rate"] == 0
    for check in result["checks"]:
        assert set(check) == {"name", "kind", "status", "reason", "metrics", "details"}
        assert all(isinstance(v, (int, float)) for v in check["metrics"].values())


def test_fail_on_critical_fails_with_the_reason(base_url):
    rc, result = run_module({"endpoints": [{"url": base_url + "/sick", "samples": 2}], "fail_on": "critical"})
    assert rc != 0 and result["failed"] is True
    assert result["status"] == "critical"
    assert "error rate 100 % >= 5 %" in result["msg"]


def test_threshold_overrides_apply(base_url):
    rc, result = run_module({"endpoints": [{"url": base_url + "/health", "samples": 2}],
                             "thresholds": {"latency_p95_ms": [0, None]}})
    assert rc == 0
    assert result["checks"][0]["status"] == "warning"
    assert "p95 latency" in result["checks"][0]["reason"]


@pytest.mark.parametrize("args, message", [
    ({"fail_on": "critical"}, "nothing to check"),
    ({"memory": True, "thresholds": {"latency_p95": [1, 2]}}, "unknown key 'latency_p95'"),
    ({"memory": True, "thresholds": {"disk_used_percent": [90, 80]}}, "critical bound 80 is lower"),
    ({"endpoints": [{"url": "ftp://x"}]}, "not an http:// or https:// URL"),
    ({"database": {"engine": "sqlite"}}, "engine sqlite needs path"),
    ({"logs": {"containers": ["x"], "patterns": ["("]}}, "not a valid regular expression"),
    ({"tls": [{"port": 443}]}, "one of the following is required"),
    ({"memory": True, "expect_version": "1.1.0"}, "give url too"),
], ids=["nothing", "unknown-threshold", "inverted-threshold", "ftp", "sqlite-path", "regex", "tls", "version-no-url"])
def test_bad_arguments_fail_clearly(args, message):
    rc, result = run_module(args)
    assert rc != 0 and result["failed"] is True
    assert message in result["msg"]


def test_database_password_never_appears_even_with_vvv(tmp_path):
    password = "module-test-password-4711"
    args = {"database": {"engine": "postgresql", "host": "127.0.0.1", "port": 1, "user": "x", "password": password,
                         "database": "sms"}}
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_INVENTORY_UNPARSED_WARNING="0")
    proc = subprocess.run(
        [ANSIBLE, "localhost", "-c", "local", "-e", "ansible_python_interpreter=" + sys.executable, "-vvv",
         "-m", "rollcall.ops.health_check", "-a", json.dumps(args)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    assert "kind: database" in output and "could not reach the postgresql database" in output
    assert password not in output
