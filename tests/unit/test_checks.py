"""Unit tests of plugins/module_utils/checks.py against a real HTTP server on loopback."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.rollcall.ops.plugins.module_utils import checks


class _Handler(BaseHTTPRequestHandler):
    routes = {}

    def do_GET(self):  # noqa: N802 - http.server API
        status, body = self.routes.get(self.path, (404, "not found"))
        if callable(body):
            status, body = body()
        payload = body if isinstance(body, str) else json.dumps(body)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(payload.encode())

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield "http://127.0.0.1:%d" % httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def route(path, status, body):
    _Handler.routes[path] = (status, body)


def test_healthy_document_is_healthy(server):
    route("/health", 200, {"status": "healthy", "checks": {"database": {"status": "ok"}}, "version": "1.0.0"})
    probe = checks.probe_http(server + "/health")
    assert probe.healthy
    assert probe.http_status == 200
    assert probe.body["version"] == "1.0.0"
    assert probe.latency_ms >= 0
    assert "answered 200 (healthy)" in probe.reason()


def test_503_with_failing_check_names_the_check(server):
    route("/bad", 503, {"status": "unhealthy", "checks": {"database": {"status": "error", "detail": "refused"},
                                                          "uploads": {"status": "ok"}}})
    probe = checks.probe_http(server + "/bad")
    assert not probe.healthy
    assert probe.http_status == 503
    assert "database (refused)" in probe.reason()
    assert "uploads" not in probe.reason()


def test_200_that_says_unhealthy_is_not_healthy(server):
    route("/liar", 200, {"status": "unhealthy"})
    assert not checks.probe_http(server + "/liar").healthy


def test_non_json_2xx_is_healthy_and_non_json_5xx_quotes_body(server):
    route("/plain", 200, "OK")
    route("/boom", 500, "Internal Server Error")
    assert checks.probe_http(server + "/plain").healthy
    probe = checks.probe_http(server + "/boom")
    assert not probe.healthy
    assert "Internal Server Error" in probe.reason()


def test_nothing_listening_is_an_error_not_an_exception():
    probe = checks.probe_http("http://127.0.0.1:1/health", timeout=2)
    assert not probe.healthy
    assert probe.http_status is None
    assert probe.error
    assert probe.reason().startswith("no answer from http://127.0.0.1:1/health")


def test_other_schemes_are_refused():
    probe = checks.probe_http("file:///etc/passwd")
    assert not probe.healthy
    assert "only http" in probe.error


def test_wait_until_healthy_retries_until_healthy(server):
    answers = iter([(503, {"status": "unhealthy"}), (503, {"status": "unhealthy"}), (200, {"status": "healthy"})])
    route("/flaky", 200, lambda: next(answers))
    probe, attempts = checks.wait_until_healthy(server + "/flaky", wait_timeout=10, interval=0.01)
    assert probe.healthy
    assert attempts == 3


def test_wait_until_healthy_gives_up_at_the_deadline():
    now = [0.0]
    calls = []

    def fake_probe(url, timeout, validate_certs):
        calls.append(url)
        return checks.HttpProbe(url, http_status=503, body={"status": "unhealthy"})

    def fake_sleep(seconds):
        now[0] += seconds

    probe, attempts = checks.wait_until_healthy("http://x/health", wait_timeout=5, interval=1, probe=fake_probe,
                                                clock=lambda: now[0], sleep=fake_sleep)
    assert not probe.healthy
    assert attempts == len(calls) == 6


def test_zero_wait_probes_once():
    calls = []

    def fake_probe(url, timeout, validate_certs):
        calls.append(url)
        return checks.HttpProbe(url, error="refused")

    probe, attempts = checks.wait_until_healthy("http://x/health", wait_timeout=0, probe=fake_probe)
    assert attempts == 1 and len(calls) == 1
    assert not probe.healthy


def test_expect_version_waits_until_that_version_answers(server):
    """The deploy's check after the proxy switch: an answer from the release that was live is not healthy yet."""
    answers = iter([(200, {"status": "ready", "version": "1.0.0"}), (200, {"status": "ready", "version": "1.0.0"}),
                    (200, {"status": "ready", "version": "1.1.0"})])
    route("/switching", 200, lambda: next(answers))
    probe, attempts = checks.wait_until_healthy(server + "/switching", wait_timeout=10, interval=0.01,
                                                expect_version="1.1.0")
    assert probe.healthy and probe.version == "1.1.0" and attempts == 3


@pytest.mark.parametrize("status,body,reason", [
    (200, {"status": "ready", "version": "1.0.0"}, "answered 200 (ready) from version 1.0.0, not 1.1.0"),
    (200, {"status": "ready"}, "answered 200 (ready) from version (none given), not 1.1.0"),
    (200, "OK", "answered 200 (ok) from version (none given), not 1.1.0"),
    (503, {"status": "unhealthy", "version": "1.1.0", "checks": {"database": {"status": "error", "detail": "down"}}},
     "answered HTTP 503, status unhealthy; failing checks: database (down)"),
])
def test_expect_version_gives_up_saying_what_answered(status, body, reason):
    def fake_probe(url, timeout, validate_certs):
        return checks.HttpProbe(url, http_status=status, body=body if isinstance(body, dict) else None,
                                text=body if isinstance(body, str) else json.dumps(body))

    probe, attempts = checks.wait_until_healthy("http://x/health/ready", wait_timeout=0, probe=fake_probe,
                                                expect_version="1.1.0")
    assert not probe.healthy and attempts == 1
    assert probe.reason() == "http://x/health/ready " + reason


def test_without_expect_version_any_version_is_healthy():
    probe = checks.HttpProbe("http://x/health", http_status=200, body={"status": "ok", "version": "0.9"})
    assert probe.healthy and probe.version == "0.9"
    probe.expect_version = "0.9"
    assert probe.healthy


def test_failing_checks_ignores_malformed_documents():
    assert checks.failing_checks(None) == []
    assert checks.failing_checks({"checks": "nope"}) == []
    assert checks.failing_checks({"checks": {"a": {"status": "ok"}, "b": {"status": "warning"}}}) == ["b (warning)"]
