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
    assert result["checks"]["database"]["status"] == "ok"


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


def test_runs_in_check_mode(base_url):
    rc, result = run_module({"url": base_url + "/health", "wait_timeout": 0}, "--check")
    assert rc == 0 and result["status"] == "ok"


def test_bad_interval_is_refused():
    rc, result = run_module({"url": "http://127.0.0.1:1/", "interval": 0})
    assert rc != 0
    assert "interval and request_timeout must be greater than 0" in result["msg"]
