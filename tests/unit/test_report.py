"""plugins/module_utils/report.py: the health document, its renderings, Prometheus format, atomic writes."""

import datetime
import json
import os
import pathlib
import re
from html.parser import HTMLParser

import pytest

from ansible_collections.rollcall.ops.plugins.module_utils import report
from ansible_collections.rollcall.ops.plugins.module_utils.report import ReportError

NOW = datetime.datetime(2026, 11, 25, 8, 0, 0, tzinfo=datetime.UTC)
EVIL = '<script>alert("x")</script>'


def check(name, kind, status="ok", reason="", **metrics):
    return {"name": name, "kind": kind, "status": status, "reason": reason, "metrics": metrics}


def results():
    web1 = {"host": "web1", "status": "warning", "checked_at": "2026-11-25T07:59:58Z",
            "checks": [check("sms-app", "container", running=True, restart_count=0),
                       check("http:/health", "http", p50_ms=12.0, p95_ms=40.5, p99_ms=88.0, error_rate=0.0,
                             samples=20),
                       check("http:/api/students", "http", "warning", "p95 620 ms > 500 ms", p50_ms=210,
                             p95_ms=620, p99_ms=900, error_rate=0.01, samples=20),
                       check("backup:sms", "backup", "ok", newest_age_s=3600, newest_verified_age_s=7200),
                       check("disk:/", "disk", used_percent=41.2),
                       check("deploy lock sms", "lock", held_s=0)],
            "summary": {"ok": 5, "warning": 1, "critical": 0}}
    db1 = {"host": "db1", "status": "critical", "checked_at": "2026-11-25T07:59:59Z",
           "checks": [check("postgres", "database", "critical", "connection refused " + EVIL),
                      check("backup:sms", "backup", "warning", "newest backup is 30 h old",
                            newest_age_s=108000, newest_verified_age_s=None),
                      check("tls", "tls", days_left=40)],
           "summary": {"ok": 1, "warning": 1, "critical": 1}}
    return [web1, db1]


def doc(**kwargs):
    kwargs.setdefault("generated_at", NOW)
    return report.health_document(results(), **kwargs)


# ---------------------------------------------------------------------------------------------- document
def test_overall_status_counts_and_order():
    d = doc()
    assert d["status"] == "critical" and d["critical"] is True
    assert [h["host"] for h in d["hosts"]] == ["db1", "web1"]  # worst first
    assert d["counts"]["hosts"] == {"ok": 0, "warning": 1, "critical": 1, "total": 2}
    assert d["counts"]["checks"] == {"ok": 6, "warning": 2, "critical": 1, "total": 9}
    assert d["hosts"][0]["checks"][0]["name"] == "postgres"  # worst check first
    assert any(line.startswith("db1: postgres critical (connection refused") for line in d["failing"])


def test_all_ok_is_not_critical():
    ok = [{"host": "a", "status": "ok", "checks": [check("x", "disk", used_percent=10)]}]
    d = report.health_document(ok, generated_at=NOW)
    assert d["status"] == "ok" and d["critical"] is False and d["failing"] == []


def test_failed_or_unknown_results_count_as_critical():
    d = report.health_document([{"host": "gone", "unreachable": True, "msg": "ssh: connection timed out"},
                                {"host": "odd", "status": "ok", "checks": [check("y", "cpu", "bogus")]},
                                {"host": "empty"}], generated_at=NOW)
    by_host = {h["host"]: h for h in d["hosts"]}
    assert by_host["gone"]["status"] == "critical"
    assert by_host["gone"]["checks"][0]["reason"] == "ssh: connection timed out"
    assert by_host["odd"]["status"] == "critical"
    assert by_host["empty"]["status"] == "critical"


def test_checks_as_a_mapping_are_accepted():
    d = report.health_document([{"host": "a", "status": "ok", "checks": {"database": {"status": "ok"}}}],
                               generated_at=NOW)
    assert d["hosts"][0]["checks"][0]["name"] == "database"


def test_history_entries_of_this_run():
    d = doc()
    entries = {e["host"]: e for e in d["history_entries"]}
    assert entries["web1"] == {"at": "2026-11-25T08:00:00Z", "host": "web1", "newest_backup_age_s": 3600,
                               "p95_ms": 620, "status": "warning"}
    assert entries["db1"]["p95_ms"] is None and entries["db1"]["newest_backup_age_s"] == 108000


def test_redaction_masks_secrets_everywhere():
    data = results()
    data[0]["checks"][0]["reason"] = "env SECRET_KEY=hunter2-secret in inspect"
    d = report.health_document(data, generated_at=NOW, title="t hunter2-secret", secrets=["hunter2-secret", ""])
    for text in (report.render_json(d), report.render_markdown(d), report.render_html(d),
                 report.render_prometheus(d)):
        assert "hunter2-secret" not in text
    assert report.MASK in report.render_markdown(d)


# ---------------------------------------------------------------------------------------------- escaping
class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)


def test_html_escapes_everything_and_has_no_script():
    data = results()
    data[0]["host"] = 'web1"><img src=x onerror=alert(1)>'
    data[0]["checks"][1]["name"] = EVIL
    d = report.health_document(data, generated_at=NOW, title=EVIL,
                               history=[{"at": "2026-11-24T08:00:00Z", "host": EVIL, "newest_backup_age_s": 1}])
    page = report.render_html(d)
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "<img" not in page
    parser = _Collector()
    parser.feed(page)
    assert "script" not in parser.tags and "img" not in parser.tags and "link" not in parser.tags
    assert "Content-Security-Policy" in page


def test_html_is_self_contained():
    page = report.render_html(doc(history=[{"at": "2026-11-24T08:00:00Z", "host": "web1",
                                            "newest_backup_age_s": 5000, "p95_ms": 300}]))
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page
    for external in ("http://", "https://", "src=", "<link", "@import", "url("):
        assert external not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    # status is colour and text
    assert 'class="badge st-critical">' in page and "CRITICAL" in page and "WARNING" in page
    # latency bars for the http checks, and the history lines
    assert page.count("<svg") == 3
    assert "HTTP latency per endpoint, web1" in page and "Newest backup age (hours)" in page
    assert "<polyline" in page


def test_no_history_no_history_charts():
    page = report.render_html(doc())
    assert "<polyline" not in page and "Newest backup age" not in page


def test_markdown_table_per_host_escaped():
    data = results()
    data[1]["checks"][0]["reason"] = "a | b\nc " + EVIL
    md = report.render_markdown(report.health_document(data, generated_at=NOW))
    assert "## db1 \u2014 CRITICAL" in md and "## web1 \u2014 WARNING" in md
    assert "| check | status | reason |" in md
    assert "a \\| b c &lt;script&gt;" in md
    assert "<script" not in md


def test_json_is_the_document_without_given_history():
    d = doc(history=[{"at": "2026-11-24T08:00:00Z", "host": "web1", "newest_backup_age_s": 5000}])
    loaded = json.loads(report.render_json(d))
    assert loaded["status"] == "critical" and "history" not in loaded and loaded["history_entries"]


# ---------------------------------------------------------------------------------------------- prometheus
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*\})? '
                    r'(-?[0-9.eE+-]+|NaN|[+-]Inf)$')


def parse_prometheus(text):
    """Validate the exposition format strictly enough to catch escaping mistakes; return the sample lines."""
    assert text.endswith("\n")
    samples, typed = [], set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            name, kind = line.split()[2:4]
            assert kind in ("gauge", "counter") and name not in typed
            typed.add(name)
            continue
        match = SAMPLE.match(line)
        assert match, line
        assert match.group(1) in typed, "sample before its TYPE: " + line
        samples.append(line)
    assert len(samples) == len(set(s.rsplit(" ", 1)[0] for s in samples)), "duplicate series"
    return samples


def test_prometheus_metrics():
    text = report.render_prometheus(doc())
    samples = parse_prometheus(text)
    assert 'rollcall_health_status{host="db1"} 2' in samples
    assert 'rollcall_health_status{host="web1"} 1' in samples
    assert 'rollcall_check_status{host="web1",check="http:/api/students",kind="http"} 1' in samples
    assert 'rollcall_backup_newest_age_seconds{host="web1",check="backup:sms"} 3600' in samples
    assert 'rollcall_backup_newest_verified_age_seconds{host="web1",check="backup:sms"} 7200' in samples
    assert 'rollcall_http_latency_p95_seconds{host="web1",endpoint="http:/api/students"} 0.62' in samples
    assert 'rollcall_tls_certificate_days_left{host="db1",check="tls"} 40' in samples
    assert 'rollcall_deploy_lock_held_seconds{host="web1",check="deploy lock sms"} 0' in samples
    assert "rollcall_health_report_timestamp_seconds %d" % NOW.timestamp() in samples
    # unknown values are left out, not invented
    assert not any(s.startswith('rollcall_backup_newest_verified_age_seconds{host="db1"') for s in samples)
    assert "# HELP rollcall_check_status " in text and "# TYPE rollcall_check_status gauge" in text


def test_prometheus_point_in_time_recovery_metrics():
    """What health.yml found about WAL archiving and binary log shipping, for an alert rule on the textfile."""
    found = doc()
    found["hosts"][0]["checks"].append({"name": "database mysql sms", "kind": "database", "status": "warning",
                                        "reason": "r", "metrics": {"binlog_unshipped_s": 960}})
    found["hosts"][0]["checks"].append({"name": "database postgresql sms", "kind": "database", "status": "ok",
                                        "reason": "r", "metrics": {"archive_failing": 0}})
    samples = parse_prometheus(report.render_prometheus(found))
    host = found["hosts"][0]["host"]
    assert 'rollcall_binlog_unshipped_seconds{host="%s",check="database mysql sms"} 960' % host in samples
    assert 'rollcall_wal_archive_failing{host="%s",check="database postgresql sms"} 0' % host in samples


def test_prometheus_label_escaping():
    data = [{"host": 'we"b\\1\nx', "status": "ok",
             "checks": [check('a "quoted" \\ name\nline', "http", p95_ms=100)]}]
    text = report.render_prometheus(report.health_document(data, generated_at=NOW))
    samples = parse_prometheus(text)
    assert 'rollcall_health_status{host="we\\"b\\\\1\\nx"} 0' in samples
    assert ('rollcall_http_latency_p95_seconds{host="we\\"b\\\\1\\nx",endpoint="a \\"quoted\\" \\\\ name\\nline"}'
            ' 0.1') in samples


def test_prometheus_duplicate_series_are_dropped():
    data = [{"host": "a", "status": "ok", "checks": [check("x", "disk"), check("x", "disk")]}]
    parse_prometheus(report.render_prometheus(report.health_document(data, generated_at=NOW)))


def test_prom_value_formats():
    assert report.prom_value(True) == "1" and report.prom_value(3) == "3" and report.prom_value(0.25) == "0.25"
    assert report.prom_value(float("nan")) == "NaN" and report.prom_value(float("inf")) == "+Inf"


# ---------------------------------------------------------------------------------------------- helpers
def test_svg_charts_handle_empty_and_escape():
    assert report.svg_bars([], ["p50"]) == ""
    assert report.svg_bars([("x", [None])], ["p50"]) == ""
    assert report.svg_lines([("x", [])]) == ""
    svg = report.svg_bars([(EVIL, [1, 2, 3])], ["p50", "p95", "p99"], unit=" ms")
    assert "<script" not in svg and "&lt;script&gt;" in svg
    one_point = report.svg_lines([("h", [(NOW, 5)])])
    assert "<circle" in one_point and "<polyline" not in one_point


def test_metrics_summary_and_durations():
    text = report.metrics_summary({"p95_ms": 40.5, "error_rate": 0.01, "newest_age_s": 108000, "extra": "v"})
    assert text == "p95 40.5 ms, errors 1 %, newest 1.2 d, extra=v"
    assert report.fmt_duration(90) == "1.5 min" and report.fmt_duration(None) == "\u2013"


def test_parse_time_and_status():
    assert report.parse_time("2026-11-25T08:00:00Z") == NOW
    assert report.parse_time("2026-11-25T09:00:00+01:00") == NOW
    assert report.parse_time("2026-11-25T08:00:00") == NOW
    assert report.parse_time("yesterday") is None
    assert report.normalize_status("WARNING") == "warning" and report.normalize_status(None) == "critical"
    assert report.worst([]) == "ok" and report.worst(["ok", "warning"]) == "warning"


# ---------------------------------------------------------------------------------------------- files
def test_write_report_is_atomic_and_never_overwrites(tmp_path):
    d = doc()
    contents = {"json": report.render_json(d), "md": report.render_markdown(d), "html": report.render_html(d)}
    paths = report.write_report(str(tmp_path / "reports"), "health-1", contents)
    assert sorted(os.listdir(tmp_path / "reports")) == ["health-1.html", "health-1.json", "health-1.md"]
    assert oct(os.stat(paths["html"]).st_mode & 0o777) == oct(report.REPORT_MODE)
    before = pathlib.Path(paths["md"]).read_text(encoding="utf-8")
    with pytest.raises(ReportError, match="already exists"):
        report.write_report(str(tmp_path / "reports"), "health-1", {"md": "other"})
    assert pathlib.Path(paths["md"]).read_text(encoding="utf-8") == before
    # only one of the files existing is enough to refuse, and nothing else gets written
    os.unlink(paths["json"])
    os.unlink(paths["html"])
    with pytest.raises(ReportError, match="health-1.md"):
        report.write_report(str(tmp_path / "reports"), "health-1", contents)
    assert sorted(os.listdir(tmp_path / "reports")) == ["health-1.md"]


def test_write_new_refuses_existing_and_leaves_no_temp(tmp_path):
    target = tmp_path / "r.md"
    target.write_text("old")
    with pytest.raises(ReportError):
        report.write_new(str(target), "new")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["r.md"]


def test_write_report_removes_partial_files_on_failure(tmp_path, monkeypatch):
    real = report.write_new
    calls = []

    def flaky(path, text, mode=report.REPORT_MODE):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real(path, text, mode)

    monkeypatch.setattr(report, "write_new", flaky)
    with pytest.raises(OSError):
        report.write_report(str(tmp_path), "h", {"json": "{}", "md": "x", "html": "y"})
    assert os.listdir(tmp_path) == []


def test_bad_names_and_formats_are_refused(tmp_path):
    for name in ("../x", "a/b", "", ".hidden", "a..b"):
        with pytest.raises(ReportError):
            report.report_paths(str(tmp_path), name)
    with pytest.raises(ReportError, match="unknown report format"):
        report.report_paths(str(tmp_path), "ok", ["pdf"])
    assert report.default_name("health", NOW) == "health-20261125T080000Z"


def test_prometheus_textfile_is_replaced_atomically(tmp_path):
    path = str(tmp_path / "rollcall.prom")
    report.write_replace(path, "a 1\n")
    report.write_replace(path, "a 2\n")
    assert pathlib.Path(path).read_text(encoding="utf-8") == "a 2\n"
    assert os.listdir(tmp_path) == ["rollcall.prom"]
    assert oct(os.stat(path).st_mode & 0o777) == oct(report.PROM_MODE)
    with pytest.raises(ReportError, match="does not exist"):
        report.write_replace(str(tmp_path / "missing" / "x.prom"), "a 1\n")


def test_history_chart_axis_labels_do_not_repeat():
    """issue 9 item 14: a backup 7 minutes old made the y-axis read 0, 0.1 h, 0.1 h."""
    when = datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC)
    svg = report.svg_lines([("backup", [(when, 0.12), (when + datetime.timedelta(hours=1), 0.05)])], unit=" h")
    labels = re.findall(r'text-anchor="end">([^<]*) h</text>', svg)
    assert len(labels) == 3 and len(set(labels)) == 3, labels
    assert report.axis_digits(120) == 1 and report.axis_digits(0.012) == 3


# ---------------------------------------------------------------------------------------------- job results
def test_a_passing_run_records_its_time_as_the_last_success():
    text = report.render_job_metrics("deploy", "ok", 1000, duration=12.5)
    assert 'rollcall_job_last_run_timestamp_seconds{playbook="deploy"} 1000\n' in text
    assert 'rollcall_job_last_run_ok{playbook="deploy"} 1\n' in text
    assert 'rollcall_job_last_success_timestamp_seconds{playbook="deploy"} 1000\n' in text
    assert 'rollcall_job_last_run_duration_seconds{playbook="deploy"} 12.5\n' in text


def test_a_failed_run_keeps_the_previous_success():
    before = report.render_job_metrics("backup", "ok", 1000)
    text = report.render_job_metrics("backup", "failed", 2000, previous_text=before)
    assert 'rollcall_job_last_run_ok{playbook="backup"} 0\n' in text
    assert 'rollcall_job_last_success_timestamp_seconds{playbook="backup"} 1000\n' in text
    assert "duration" not in text


def test_a_failed_first_run_has_no_success_and_another_playbook_s_success_is_not_taken():
    other = report.render_job_metrics("health", "ok", 1000)
    text = report.render_job_metrics("backup", "failed", 2000, previous_text=other)
    assert "rollcall_job_last_success_timestamp_seconds" not in text
    assert report.previous_success("garbage", "backup") is None


def test_a_job_status_is_ok_or_failed_and_the_file_name_is_safe():
    with pytest.raises(ReportError):
        report.render_job_metrics("deploy", "maybe", 1)
    assert report.job_textfile_name("verify backup/../x") == "rollcall_job_verify_backup____x.prom"
