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
