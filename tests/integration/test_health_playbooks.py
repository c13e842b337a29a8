"""The daily health check, the incident bundle and the log audit through real ansible-playbook runs on a
throw-away stack (project rc-it-health): healthy, then the database stopped; nothing secret in any output."""

import glob
import json
import os
import pathlib
import subprocess
import tarfile
import urllib.error
import urllib.request

import pytest
from test_deploy import BIN, DB_PASSWORD, ROOT, SECRET, failures, playbook, teardown, write_inventory

PORT = 18297
BACKUP_KEY = "ab" * 32


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("health")
    inventory = write_inventory(tmp_path, rollcall_project="rc-it-health", rollcall_db_engine="postgresql",
                                rollcall_app_port=PORT, rollcall_rate_limit_per_minute=30,
                                rollcall_state_dir=str(tmp_path / "state"), rollcall_backup_dir=str(tmp_path / "bk"),
                                rollcall_backup_key=BACKUP_KEY, rollcall_report_dir=str(tmp_path / "reports"),
                                rollcall_incident_dir=str(tmp_path / "incidents"), rollcall_environment="test",
                                # a busy test machine is not a slow app: latency and the host's metrics never fail
                                # these runs (faults are injected where a test wants critical)
                                rollcall_health_thresholds={"latency_p95_ms": [10000, 30000],
                                                            "memory_used_percent": [85, None],
                                                            "disk_used_percent": [80, None]})
    try:
        proc, report = playbook(inventory)
        assert proc.returncode == 0, failures(report)
        proc, report = playbook(inventory, "backup.yml")
        assert proc.returncode == 0, failures(report)
        yield tmp_path, inventory
    finally:
        teardown(inventory)


def verbose(inventory, name, *extra):
    """ansible-playbook -vvv with the default output (what a person debugging at 3 a.m. would see)."""
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), PATH=BIN + os.pathsep + os.environ["PATH"])
    return subprocess.run([os.path.join(BIN, "ansible-playbook"), "-vvv", "-i", inventory,
                           os.path.join(ROOT, "playbooks", name), *extra], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600, check=False)


def secrets_absent(*texts):
    for text in texts:
        for secret in (SECRET, DB_PASSWORD, BACKUP_KEY):
            assert secret not in text


def all_text(directory):
    out = []
    for path in glob.glob(os.path.join(directory, "**", "*"), recursive=True):
        if os.path.isfile(path) and not path.endswith(".gz"):
            with open(path, encoding="utf-8", errors="replace") as handle:
                out.append(handle.read())
    return "\n".join(out)


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback test URL
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


# An upload as a browser sends it (multipart/form-data), with the Python of the app's image (it has no curl).
UPLOAD = """
import json, urllib.request
body = (b"--rc\\r\\nContent-Disposition: form-data; name=\\"file\\"; filename=\\"report-card.txt\\"\\r\\n"
        b"Content-Type: text/plain\\r\\n\\r\\nreport card\\r\\n--rc--\\r\\n")
request = urllib.request.Request("http://127.0.0.1:8000/api/v1/students/1/uploads", data=body,
                                 headers={"Content-Type": "multipart/form-data; boundary=rc"})
print(json.dumps(json.load(urllib.request.urlopen(request))))
"""


def warnings_of(report, task_name):
    """The warnings of the task named ``task_name`` (its role's prefix left out), which must have run."""
    results = [result for play in report["plays"] for task in play["tasks"]
               if task["task"]["name"].split(" : ")[-1] == task_name for result in task["hosts"].values()]
    assert results and not any(r.get("skipped") for r in results), "%s did not run" % task_name
    return [w for result in results for w in result.get("warnings", [])]


def test_an_upload_whose_file_is_gone_makes_backup_and_health_warn(stack, tmp_path):
    """Found on the demo: an upload's file removed from the volume by hand; health.yml stayed ok and backup.yml
    said "passed restore verification", though a restore of that backup brings back a row whose download is a 404.
    (First in this file: the audit test at its end uses up the rate limit of the API that health runs probe.)"""
    _, inventory = stack
    # uploaded inside the app container, from its own address: the stack's rate limit (30 a minute, for the audit
    # test) counts what comes through the proxy, which the health runs of the later tests need
    sent = subprocess.run(["docker", "exec", "rc-it-health-app", "python3", "-c", UPLOAD], capture_output=True,
                          text=True, timeout=30, check=False)
    assert sent.returncode == 0 and '"filename": "report-card.txt"' in sent.stdout, sent
    proc, report = playbook(inventory, "backup.yml")
    assert proc.returncode == 0 and not warnings_of(report, "Verify the new backup"), failures(report)

    gone = subprocess.run(["docker", "exec", "rc-it-health-app", "sh", "-c", "rm /data/uploads/*.txt"],
                          capture_output=True, text=True, timeout=30, check=False)
    assert gone.returncode == 0, gone.stderr
    proc, report = playbook(inventory, "backup.yml")
    assert proc.returncode == 0, failures(report)
    (said,) = warnings_of(report, "Verify the new backup")
    assert "the uploads archive holds 0 files where the uploads table has 1 row" in said, said
    # no endpoint probed (the later tests' health runs need all of the API's rate limit) and reports of its own
    # (the later tests count the stack's)
    proc, report = playbook(inventory, "health.yml", "-e", '{"health_endpoints": []}',
                            "-e", "rollcall_report_dir=%s" % (tmp_path / "reports"))
    assert proc.returncode == 0, failures(report)
    (document,) = [json.loads(pathlib.Path(path).read_text()) for path in glob.glob(str(tmp_path / "reports"
                                                                                         / "health-*.json"))]
    (check,) = [c for h in document["hosts"] for c in h["checks"] if c["kind"] == "backup"]
    assert check["status"] == "warning" and "uploads table has 1 row: 1 upload had no file" in check["reason"], check


def test_healthy_stack_reports_ok_in_every_format(stack):
    tmp_path, inventory = stack
    proc, report = playbook(inventory, "health.yml")
    assert proc.returncode == 0, failures(report)
    reports = tmp_path / "reports"
    (json_path,) = glob.glob(str(reports / "health-*.json"))
    document = json.loads(pathlib.Path(json_path).read_text())
    assert document["status"] in ("ok", "warning"), document
    kinds = {c["kind"] for h in document["hosts"] for c in h["checks"]} if "hosts" in document else set()
    assert {"container", "http", "database", "disk", "memory", "backup"} <= kinds, kinds
    assert glob.glob(str(reports / "health-*.html")) and glob.glob(str(reports / "health-*.md"))
    prom = (reports / "rollcall.prom").read_text()
    assert "rollcall_health_status{" in prom and "rollcall_backup_newest_age_seconds{" in prom
    assert "rollcall_backup_newest_verify_passed{" in prom and "rollcall_backup_newest_verify_failed{" in prom
    secrets_absent(proc.stdout, proc.stderr, all_text(str(reports)))


def test_stopped_database_is_critical_and_the_run_fails(stack):
    tmp_path, inventory = stack
    subprocess.run(["docker", "stop", "-t", "2", "rc-it-health-db"], check=True, capture_output=True)
    try:
        proc = verbose(inventory, "health.yml")
        assert proc.returncode != 0, "a critical check must fail the run (the scheduler alerts)"
        assert "Critical:" in proc.stdout
        latest = sorted(glob.glob(str(tmp_path / "reports" / "health-*.json")))[-1]
        document = json.loads(pathlib.Path(latest).read_text())
        checks = [c for h in document["hosts"] for c in h["checks"]]
        database = [c for c in checks if c["kind"] == "database"]
        assert database and database[0]["status"] == "critical", database
        assert any(c["kind"] == "container" and c["status"] == "critical" and "rc-it-health-db" in c["name"]
                   for c in checks), checks
        secrets_absent(proc.stdout, proc.stderr, all_text(str(tmp_path / "reports")))

        # The incident bundle, with a restart of the failing app; nothing secret in it or in -vvv.
        proc = verbose(inventory, "incident.yml", "-e", "restart=true")
        assert proc.returncode == 0, proc.stdout[-3000:]
        (bundle,) = glob.glob(str(tmp_path / "incidents" / "*.tar.gz"))
        with tarfile.open(bundle) as archive:
            names = archive.getnames()
        assert any(n.endswith("inspect-rc-it-health-app.json") for n in names), names
        assert any(n.endswith("logs-rc-it-health-app.txt") for n in names), names
        assert any(n.endswith("report.html") for n in names) and any(n.endswith("actions.json") for n in names)
        secrets_absent(proc.stdout, proc.stderr, all_text(str(tmp_path / "incidents")))
        inspect = all_text(str(tmp_path / "incidents"))
        assert "DATABASE_URL=postgresql+psycopg2://sms:***@" in inspect
    finally:
        subprocess.run(["docker", "start", "rc-it-health-db"], check=True, capture_output=True)


def test_two_scheduled_health_jobs_chart_both_runs_from_the_state_dir(stack):
    """As AWX runs the daily check: an inventory that names no report directory, answers in an extravars file,
    two jobs in a row. The reports and history.json live in rollcall_state_dir on the host (not under the
    project, which AWX throws away), so the second report's charts show both runs, and each job ends with
    set_stats naming its report."""
    tmp_path, _inventory = stack
    awx = tmp_path / "awx"
    awx.mkdir()
    inventory = write_inventory(awx, rollcall_project="rc-it-health", rollcall_db_engine="postgresql",
                                rollcall_app_port=PORT, rollcall_state_dir=str(tmp_path / "state"),
                                rollcall_backup_dir=str(tmp_path / "bk"), rollcall_backup_key=BACKUP_KEY,
                                rollcall_environment="test",
                                rollcall_health_thresholds={"latency_p95_ms": [10000, 30000]})
    reports = tmp_path / "state" / "reports" / "rc-it-health"
    runs = []
    for job in (101, 102):
        extravars = awx / ("extravars-%d" % job)
        extravars.write_text("awx_job_id: %d\nawx_user_name: !unsafe 'scheduler'\n" % job)
        proc, report = playbook(inventory, "health.yml", "-e", "@" + str(extravars))
        assert proc.returncode == 0, failures(report)
        result = report["global_custom_stats"]["rollcall_result"]
        assert result["playbook"] == "health" and result["actor"] == "scheduler@awx job %d" % job, result
        assert result["report"].startswith(str(reports) + "/health-"), result
        runs.append(result["report"])
    assert runs[0] != runs[1]
    history = json.loads((reports / "history.json").read_text())
    stamps = sorted({h["at"] for h in history if h["host"] == "localhost"})
    assert len(stamps) == 2, history
    first, second = (pathlib.Path(r).read_text() for r in runs)
    assert "HTTP p95 latency" not in first, "the first run has no history to chart"
    assert "HTTP p95 latency" in second and "Newest backup age" in second
    for stamp in stamps:  # one point of each run in the second report's chart
        assert "localhost %s" % stamp.replace(".000Z", "Z")[:19] in second or "localhost %s" % stamp in second, (
            stamp, [t for t in second.split("<title>") if t.startswith("localhost")])
    assert not os.path.exists(os.path.join(ROOT, "playbooks", "..", "reports", "history.json")) or \
        "rc-it-health" not in pathlib.Path(ROOT, "reports", "history.json").read_text()


def test_weekly_audit_counts_rate_limits_and_injection_attempts(stack):
    tmp_path, inventory = stack
    base = "http://127.0.0.1:%d" % PORT
    statuses = [get(base + "/api/v1/students?per_page=1") for _ in range(40)]
    assert 429 in statuses
    get(base + "/api/v1/students/1%27%20OR%201=1--")
    proc, report = playbook(inventory, "audit.yml", "-e", "audit_since=1h")
    assert proc.returncode == 0, failures(report)
    (json_path,) = glob.glob(str(tmp_path / "reports" / "audit-*.json"))
    audit = json.loads(pathlib.Path(json_path).read_text())
    text = json.dumps(audit)
    assert '"rate_limited"' in text and '"sqli"' in text
    secrets_absent(proc.stdout, all_text(str(tmp_path / "reports")))
