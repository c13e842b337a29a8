"""plugins/module_utils/logaudit.py: the audit of the app's JSON log, and its report (report.render_audit_*)."""

import datetime
import json
import pathlib
import random

import pytest

from ansible_collections.rollcall.ops.plugins.module_utils import logaudit, report
from ansible_collections.rollcall.ops.plugins.module_utils.logaudit import AuditError

UTC = datetime.UTC
UNTIL = datetime.datetime(2026, 11, 25, 8, 0, 0, tzinfo=UTC)
SINCE = UNTIL - datetime.timedelta(hours=24)
BRUTE = "203.0.113.9"
FLOOD = "198.51.100.7"
ATTACKER = "192.0.2.66"


def ts(when):
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (when.microsecond // 1000)


def access(when, path, status=200, route=None, client="10.0.0.5", duration=12.5, method="GET", **extra):
    record = {"ts": ts(when), "level": "info", "request_id": "%032x" % random.getrandbits(128), "client": client,
              "method": method, "path": path, "route": route or path, "status": status, "duration_ms": duration,
              "bytes": 321, "user_agent": "pytest"}
    record.update(extra)
    return json.dumps(record, separators=(",", ":"))


def error(when, message, exc="OperationalError"):
    return json.dumps({"ts": ts(when), "level": "error", "request_id": "x", "path": "/api/students",
                       "error": exc, "message": message})


SQLI_PATHS = [
    "/api/students?id=1%27%20OR%201%3D1--",                          # URL-encoded tautology + comment
    "/api/students/1 UNION SELECT username, password FROM users",
    "/api/students/1%2520UNION%2520ALL%2520SELECT%2520NULL",          # double-encoded
    "/api/search;DROP TABLE students",
    "/api/students?id=1 AND sleep(5)",
    "/api/x?q=1' or 'a'='a",
    "/api/x?q=1+union/**/select+1",
]
BENIGN_PATHS = ["/api/students/o-neil", "/api/reports/2026-11-25", "/api/union-select-course", "/api/students",
                "/api/classes/12/attendance", "/api/search?q=sleepy+hollow", "/static/app.css"]


def fixture_lines():
    rng = random.Random(7)
    t = SINCE + datetime.timedelta(minutes=1)
    lines = ["gunicorn starting", "", "[2026-11-25 07:00:00 +0000] [1] [INFO] Booting worker", "{broken json",
             "[1, 2, 3]", json.dumps({"level": "info", "msg": "no timestamp"}),
             json.dumps({"ts": "not a time", "status": 200})]
    for i in range(200):  # normal traffic: students fast-ish, reports slow
        t += datetime.timedelta(seconds=30)
        lines.append(access(t, "/api/students", route="/api/students", duration=10 + (i % 20)))
        if i % 4 == 0:
            lines.append(access(t, "/api/reports/%d" % i, route="/api/reports/<int:id>", duration=100 + i * 5))
    for _ in range(40):  # brute force from one client
        t += datetime.timedelta(seconds=1)
        lines.append(access(t, "/api/login", 401, route="/api/login", client=BRUTE, method="POST"))
    for client in ("10.0.0.8", "10.0.0.9"):
        lines.append(access(t, "/api/admin", 403, route="/api/admin", client=client))
    lines.append(access(t, "/api/login", 401, route="/api/login", client="10.0.0.8", method="POST"))
    for _ in range(25):  # a 429 burst
        lines.append(access(t, "/api/students", 429, route="/api/students", client=FLOOD, duration=0.3))
    for _ in range(3):  # 5xx and their error records
        t += datetime.timedelta(seconds=5)
        lines.append(error(t, "database unavailable: connection refused"))
        lines.append(access(t, "/api/students", 500, route="/api/students", duration=3000))
    lines.append(error(t, "disk full", exc="OSError"))
    lines.append(access(t, "/api/students", 503, route="/api/students", duration=1))
    lines.append(json.dumps({"ts": ts(t), "level": "critical", "error": "MemoryError"}))
    for path in SQLI_PATHS:
        lines.append(access(t, path, 404, route="unmatched", client=ATTACKER))
    lines.append(access(t, SQLI_PATHS[0], 404, route="unmatched", client="10.0.0.77"))
    for path in BENIGN_PATHS:
        lines.append(access(t, path, 200, route="benign"))
    rng.shuffle(lines)
    # window edges: exactly since is in, exactly until is out, before since is out
    lines.append(access(SINCE, "/edge/since", route="/edge"))
    lines.append(access(UNTIL, "/edge/until", route="/edge"))
    lines.append(access(SINCE - datetime.timedelta(milliseconds=1), "/edge/before", route="/edge"))
    lines.append(access(UNTIL - datetime.timedelta(milliseconds=1), "/edge/last", route="/edge"))
    lines.append(access(UNTIL.astimezone(datetime.timezone(datetime.timedelta(hours=2))), "/edge/offset",
                        route="/edge").replace("Z\"", "+02:00\""))
    return lines


@pytest.fixture(scope="module")
def audit():
    return logaudit.audit_lines(fixture_lines(), SINCE, UNTIL)


# ---------------------------------------------------------------------------------------------- counts
def test_lines_are_counted_and_malformed_ignored(audit):
    lines = audit["lines"]
    assert lines["non_json"] == 5  # text, empty, gunicorn, broken JSON, a JSON array
    assert lines["no_timestamp"] == 2
    assert lines["outside_window"] == 3  # at until, before since, at until written with an offset
    assert lines["total"] == len(fixture_lines())
    assert lines["other_json"] == 0


def test_window_edges(audit):
    assert audit["window"]["since"] == "2026-11-24T08:00:00.000Z"
    assert audit["window"]["until"] == "2026-11-25T08:00:00.000Z"
    assert audit["window"]["first_record"] == "2026-11-24T08:00:00.000Z"
    assert audit["window"]["last_record"] == "2026-11-25T07:59:59.999Z"
    assert {"route": "/edge", "count": 2} in [{"route": e["route"], "count": e["count"]}
                                              for e in audit["top_endpoints"]]


def test_status_counts(audit):
    assert audit["unauthorized"] == 41 and audit["forbidden"] == 2 and audit["auth_failures"] == 43
    assert audit["rate_limited"] == 25
    assert audit["server_errors"] == 4
    assert audit["status_counts"]["500"] == 3 and audit["status_counts"]["503"] == 1
    assert audit["status_classes"]["4xx"] == 41 + 2 + 25 + 8
    assert audit["requests"] == 200 + 50 + 41 + 2 + 25 + 4 + 8 + len(BENIGN_PATHS) + 2


def test_brute_force_client_leads_the_auth_failures(audit):
    first = audit["auth_failures_by_client"][0]
    assert first == {"client": BRUTE, "count": 40, "unauthorized": 40, "forbidden": 0}
    assert {"client": "10.0.0.8", "count": 2, "unauthorized": 1, "forbidden": 1} in audit["auth_failures_by_client"]
    assert audit["rate_limited_by_client"] == [{"client": FLOOD, "count": 25}]


def test_top_errors(audit):
    assert audit["error_records"] == 5
    assert audit["top_errors"][0] == {"message": "database unavailable: connection refused", "count": 3}
    assert {"message": "disk full", "count": 1} in audit["top_errors"]
    assert {"message": "MemoryError", "count": 1} in audit["top_errors"]  # no message: the error type


def test_most_used_and_slowest_endpoints(audit):
    assert audit["top_endpoints"][0] == {"route": "/api/students", "count": 200 + 25 + 4}
    slowest = audit["slowest_endpoints"]
    assert slowest[0]["route"] == "/api/reports/<int:id>"
    durations = sorted(100 + i * 5 for i in range(0, 200, 4))
    assert slowest[0]["p95_ms"] == logaudit.percentile(durations, 95) == durations[47]
    assert slowest[0]["count"] == 50
    students = next(e for e in slowest if e["route"] == "/api/students")
    assert students["max_ms"] == 3000 and students["count"] == 229
    assert len(audit["top_endpoints"]) <= 10 and len(slowest) <= 10


# ---------------------------------------------------------------------------------------------- sql injection
def test_sqli_attempts_found_including_url_encoded(audit):
    sqli = audit["sqli"]
    assert sqli["count"] == len(SQLI_PATHS) + 1
    assert sqli["top_clients"][0] == {"client": ATTACKER, "count": len(SQLI_PATHS)}
    assert sqli["top_clients"][1] == {"client": "10.0.0.77", "count": 1}
    assert len(sqli["samples"]) == 5  # default cap, distinct paths
    assert len({s["path"] for s in sqli["samples"]}) == 5
    assert set(sqli["patterns"]) <= {name for name, _ in logaudit.SQLI_PATTERNS}


@pytest.mark.parametrize("path", SQLI_PATHS + [
    "/x?id=1;%20DROP%20TABLE%20users", "/x?id=1%3Bdelete+from+users", "/x?q=pg_sleep(10)",
    "/x?q=benchmark(1000,md5(1))", "/x?q=1'--", "/x?q=1' #", "/x?q=select * from information_schema.tables",
    "/x?q=@@version", "/x?q=1;waitfor delay '0:0:5'", "/x?q=load_file('/etc/passwd')", "/x?q=char(65)",
    "/x?id=%2527%2520OR%25201%253D1",
])
def test_sqli_patterns_match(path):
    assert logaudit.sqli_match(path), path


@pytest.mark.parametrize("path", BENIGN_PATHS + ["/api/students?sort=-name", "/api/notes?text=or+else",
                                                 "/api/people/d'arcy", "/api/files/a-b-c.pdf"])
def test_benign_paths_do_not_match(path):
    assert logaudit.sqli_match(path) is None, path


def test_query_field_is_checked_too():
    lines = [access(UNTIL - datetime.timedelta(seconds=1), "/api/students", query="id=1%20UNION%20SELECT%201")]
    assert logaudit.audit_lines(lines, SINCE, UNTIL)["sqli"]["count"] == 1


def test_samples_are_truncated_scrubbed_and_masked():
    long_path = "/x?token=abc123&q=1 UNION SELECT " + "A" * 500
    lines = [access(UNTIL - datetime.timedelta(seconds=1), long_path, client=ATTACKER),
             access(UNTIL - datetime.timedelta(seconds=1), "/y?q=sleep(1)&k=SuperSecret9", client=ATTACKER)]
    result = logaudit.audit_lines(lines, SINCE, UNTIL, secrets=["SuperSecret9"])
    first, second = (s["path"] for s in result["sqli"]["samples"])
    assert len(first) == logaudit.PATH_LIMIT and first.endswith("\u2026")
    assert "abc123" not in first and "token=********" in first
    assert "SuperSecret9" not in second


# ---------------------------------------------------------------------------------------------- helpers
def test_percentile_nearest_rank():
    assert logaudit.percentile([], 95) is None
    assert logaudit.percentile([7], 95) == 7
    assert logaudit.percentile(list(range(1, 101)), 95) == 95
    assert logaudit.percentile(list(range(100, 0, -1)), 50) == 50
    assert logaudit.percentile([1, 2, 3, 4], 50) == 2
    assert logaudit.percentile([1, 2, 3, 4], 100) == 4
    assert logaudit.percentile([1, 2, 3, 4], 0) == 1


def test_parse_when_and_window():
    assert logaudit.parse_when("7d", UNTIL) == UNTIL - datetime.timedelta(days=7)
    assert logaudit.parse_when("24h", UNTIL) == SINCE
    assert logaudit.parse_when("90m", UNTIL) == UNTIL - datetime.timedelta(minutes=90)
    assert logaudit.parse_when("30s", UNTIL) == UNTIL - datetime.timedelta(seconds=30)
    assert logaudit.parse_when("2w", UNTIL) == UNTIL - datetime.timedelta(days=14)
    assert logaudit.parse_when("2026-11-24T08:00:00Z", UNTIL) == SINCE
    assert logaudit.parse_when("2026-11-24T09:00:00+01:00", UNTIL) == SINCE
    assert logaudit.parse_when("2026-11-24T08:00:00", UNTIL) == SINCE
    assert logaudit.parse_when("now", UNTIL) == UNTIL
    with pytest.raises(AuditError, match="neither a duration"):
        logaudit.parse_when("last tuesday", UNTIL)
    assert logaudit.window("24h", None, UNTIL) == (SINCE, UNTIL)
    assert logaudit.window("2026-11-24T08:00:00Z", "2026-11-25T08:00:00Z", UNTIL) == (SINCE, UNTIL)
    with pytest.raises(AuditError, match="window is empty"):
        logaudit.window("1h", "2h", UNTIL)


def test_iter_lines_joins_chunks_cut_anywhere():
    text = ("a line\n{\"msg\": \"caf\u00e9\"}\r\nlast without newline").encode()
    for size in (1, 2, 3, 7, 100):
        chunks = [text[i:i + size] for i in range(0, len(text), size)]
        assert list(logaudit.iter_lines(iter(chunks))) == ["a line", '{"msg": "caf\u00e9"}', "last without newline"]
    assert list(logaudit.iter_lines(["x\n", "y\n"])) == ["x", "y"]


def test_read_file_lines_streams_a_file(tmp_path):
    log = tmp_path / "app.log"
    log.write_text("\n".join(fixture_lines()) + "\n", encoding="utf-8")
    from_file = logaudit.audit_lines(logaudit.read_file_lines(str(log)), SINCE, UNTIL)
    assert from_file["requests"] == logaudit.audit_lines(fixture_lines(), SINCE, UNTIL)["requests"]
    with pytest.raises(AuditError, match="cannot read the log file"):
        list(logaudit.read_file_lines(str(tmp_path / "missing.log")))


def test_error_messages_are_masked_and_cut():
    lines = [error(UNTIL - datetime.timedelta(seconds=1), "auth failed for password=Hunter2xx " + "z" * 400)]
    result = logaudit.audit_lines(lines, SINCE, UNTIL, secrets=["Hunter2xx"])
    message = result["top_errors"][0]["message"]
    assert "Hunter2xx" not in message and len(message) == logaudit.MESSAGE_LIMIT


# ---------------------------------------------------------------------------------------------- report
def document(audit, **kwargs):
    return logaudit.document(audit, source="container:sms-app", generated_at=UNTIL, **kwargs)


def test_audit_report_renders_and_escapes():
    lines = fixture_lines() + [access(UNTIL - datetime.timedelta(seconds=1), "/x?q=<script>alert(1)</script>"
                                      "' OR 1=1--", client="<b>evil</b>")]
    doc = document(logaudit.audit_lines(lines, SINCE, UNTIL, samples=20), title="Audit <i>week</i>")
    page = report.render_audit_html(doc)
    assert "<script" not in page and "<b>evil" not in page and "<i>week" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;b&gt;evil&lt;/b&gt;" in page
    assert page.startswith("<!DOCTYPE html>") and "Content-Security-Policy" in page
    assert "Slowest endpoints (p95)" in page and page.count("<svg") >= 3
    md = report.render_audit_markdown(doc)
    assert "<script" not in md and "## 401/403 by client" in md and BRUTE in md
    assert "| /api/reports/&lt;int:id&gt; |" in md
    loaded = json.loads(report.render_audit_json(doc))
    assert loaded["sqli"]["count"] == doc["sqli"]["count"] and loaded["source"] == "container:sms-app"


def test_audit_prometheus(audit):
    text = report.render_audit_prometheus(document(audit))
    assert 'rollcall_audit_unauthorized{source="container:sms-app"} 41' in text
    assert 'rollcall_audit_sqli_requests{source="container:sms-app"} 8' in text
    assert 'rollcall_audit_window_seconds{source="container:sms-app"} 86400' in text
    assert "# TYPE rollcall_audit_requests gauge" in text


def test_empty_log_renders(tmp_path):
    doc = document(logaudit.audit_lines([], SINCE, UNTIL))
    assert doc["requests"] == 0 and doc["slowest_endpoints"] == []
    paths = report.write_report(str(tmp_path), "audit-1", {"md": report.render_audit_markdown(doc),
                                                           "html": report.render_audit_html(doc)})
    assert "None." in pathlib.Path(paths["md"]).read_text(encoding="utf-8")
    with pytest.raises(report.ReportError, match="already exists"):
        report.write_report(str(tmp_path), "audit-1", {"html": "x"})


# ---------------------------------------------------------------------------------------------- docker source
class _FakeApi:
    def __init__(self, chunks, fail=None):
        self.chunks, self.fail, self.kwargs = chunks, fail, None

    def logs(self, container, **kwargs):
        self.kwargs = dict(kwargs, container=container)
        if self.fail:
            raise self.fail

        def stream():
            yield from self.chunks
            raise ConnectionError("engine went away")

        return stream()


def test_container_lines_stream_and_narrow_the_window(monkeypatch):
    from ansible_collections.rollcall.ops.plugins.module_utils.runner import RunnerError
    from ansible_collections.rollcall.ops.plugins.modules import log_audit

    text = "\n".join(fixture_lines()).encode()
    api = _FakeApi([text[i:i + 333] for i in range(0, len(text), 333)])
    monkeypatch.setattr(log_audit, "docker_client", lambda host: type("C", (), {"api": api})())
    audit = logaudit.Audit(SINCE, UNTIL)
    with pytest.raises(RunnerError, match="engine went away"):
        for line in log_audit.container_lines("sms-app", None, SINCE, UNTIL):
            audit.feed(line)
    assert audit.result()["requests"] == logaudit.audit_lines(fixture_lines(), SINCE, UNTIL)["requests"]
    assert api.kwargs["stream"] is True and api.kwargs["follow"] is False and api.kwargs["container"] == "sms-app"
    assert api.kwargs["since"] < SINCE.timestamp() and api.kwargs["until"] > UNTIL.timestamp()

    class NotFound(Exception):
        response = type("R", (), {"status_code": 404})()

    monkeypatch.setattr(log_audit, "docker_client",
                        lambda host: type("C", (), {"api": _FakeApi([], fail=NotFound("404"))})())
    with pytest.raises(RunnerError, match="container sms-app does not exist"):
        log_audit.container_lines("sms-app", None, SINCE, UNTIL)


def test_the_window_starts_no_earlier_than_the_container():
    """issue 9 item 14: a 7-minute-old container's audit does not say it covers 7 days."""
    now = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.UTC)
    since, _until = logaudit.window("7d", None, now)
    clamped = logaudit.clamp_since(since, "2026-12-01T11:53:00.123456789Z")
    assert clamped == datetime.datetime(2026, 12, 1, 11, 53, 0, 123456, tzinfo=datetime.UTC)
    assert logaudit.clamp_since(since, "2026-11-01T00:00:00Z") == since  # older than the window: the window
    assert logaudit.clamp_since(since, None) == since
