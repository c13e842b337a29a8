"""The monitoring configuration (roles/monitoring, issue 16) as Prometheus's own tools judge it.

promtool and amtool come from Debian's packages, unpacked into .cache/tools by tests/tools.sh (`make setup`,
`make unit`). Missing tools fail these tests (they are not skipped): run `make tools`.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".cache" / "tools" / "usr" / "bin"
RULES = ROOT / "roles" / "monitoring" / "files" / "alerts.rules.yml"
RULE_TESTS = ROOT / "tests" / "monitoring" / "alerts_test.yml"


def tool(name):
    path = TOOLS / name
    assert path.is_file(), "%s is missing: run `make tools` (tests/tools.sh unpacks it from Debian's package)" % path
    return str(path)


def run(argv, **kwargs):
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, **kwargs)


def test_the_rules_are_valid():
    out = run([tool("promtool"), "check", "rules", str(RULES)])
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


def test_every_alert_rule_passes_its_unit_tests():
    out = run([tool("promtool"), "test", "rules", str(RULE_TESTS)])
    assert out.returncode == 0, out.stdout + out.stderr


def _alerts():
    doc = yaml.safe_load(RULES.read_text())
    return [r for g in doc["groups"] for r in g["rules"] if "alert" in r]


def test_every_alert_is_tested_firing_and_has_a_severity_and_an_action():
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    fired = {case["alertname"] for t in tests for case in t.get("alert_rule_test", []) if case.get("exp_alerts")}
    lines = RULES.read_text().splitlines()
    for rule in _alerts():
        assert rule["alert"] in fired, "%s never fires in a test" % rule["alert"]
        assert rule["labels"]["severity"] in ("P1", "P2", "P3"), rule["alert"]
        assert rule["annotations"].get("summary") and rule["annotations"].get("action"), rule["alert"]
        # each rule says where it comes from (a seed line or "Ours") in the comment above it
        before = lines[lines.index("      - alert: %s" % rule["alert"]) - 1]
        assert before.strip().startswith("#") and ("Seed" in before or "Ours" in before), rule["alert"]


RECEIVERS = {
    "rollcall_alert_email_to": "admin@school.example",
    "rollcall_alert_smtp_smarthost": "mail.school.example:587",
    "rollcall_alert_smtp_username": "rollcall",
    "rollcall_alert_smtp_password": "s3cret-smtp",
    "rollcall_alert_smtp_require_tls": False,
    "rollcall_alert_slack_url": "https://hooks.slack.example/services/T0/B0/X",
    "rollcall_alert_webhook_urls": ["https://hooks.school.example/alert"],
    "rollcall_alert_teams_urls": ["https://school.webhook.office.example/workflows/abc?sig=s3cret-teams"],
    "rollcall_public_url": "https://sms.school.example/health",
}


def render(tmp_path, inventory, extra=None):
    """The configuration roles/monitoring writes for that inventory (the example's without its vault)."""
    out = tmp_path / "monitoring"
    source = ROOT / "inventories" / inventory
    if inventory == "example":
        source = tmp_path / "inventory"
        shutil.copytree(ROOT / "inventories" / inventory, source, ignore=shutil.ignore_patterns("vault.yml"))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    # Rendered on this machine as the user running the tests: the example's become (its hosts are reached as `deploy`)
    # does not apply here, and through Mitogen it would run sudo even to become the same user.
    extra = dict(extra or {}, monitoring_dir=str(out), rollcall_outputs={"host": "localhost", "report_dir": "/tmp"},
                 ansible_become=False)
    proc = run(["ansible-playbook", "-i", str(source), str(ROOT / "tests/monitoring/render.yml"),
                "-e", json.dumps(extra)], cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "s3cret-smtp" not in proc.stdout + proc.stderr and "s3cret-teams" not in proc.stdout + proc.stderr
    return out


@pytest.mark.parametrize("inventory, extra, jobs", [
    ("local", {}, {"prometheus", "alertmanager", "app", "node", "postgres", "blackbox"}),
    ("example", RECEIVERS, {"prometheus", "alertmanager", "app", "node", "postgres", "blackbox"}),
    ("example", {"rollcall_db_engine": "mariadb"}, {"prometheus", "alertmanager", "app", "node", "mysql", "blackbox"}),
])
def test_the_generated_configuration_passes_promtool_and_amtool(tmp_path, inventory, extra, jobs):
    out = render(tmp_path, inventory, extra)
    check = run([tool("promtool"), "check", "config", str(out / "prometheus.yml")])
    assert check.returncode == 0, check.stdout + check.stderr
    every = sum(len(g["rules"]) for g in yaml.safe_load(RULES.read_text())["groups"])
    assert "SUCCESS: %d rules found" % every in check.stdout and every >= 23  # the rules shipped, all of them
    amcheck = run([tool("amtool"), "check-config", str(out / "alertmanager.yml")])
    assert amcheck.returncode == 0, amcheck.stdout + amcheck.stderr

    prom = yaml.safe_load((out / "prometheus.yml").read_text())
    assert {j["job_name"] for j in prom["scrape_configs"]} == jobs
    assert prom["global"]["scrape_interval"] == "30s"  # seed 001: "every 30s"
    targets = {j["job_name"]: [t for sc in j["static_configs"] for t in sc["targets"]] for j in prom["scrape_configs"]}
    if inventory == "example":  # two app hosts, one db host; each node once
        assert targets["app"] == ["192.0.2.11:8080", "192.0.2.12:8080"]
        assert sorted(targets["node"]) == ["192.0.2.11:9100", "192.0.2.12:9100", "192.0.2.21:9100"]
        assert len(targets["blackbox"]) == 4 + (1 if extra is RECEIVERS else 0)
    else:  # the demo: one machine in app and db
        assert targets["node"] == ["127.0.0.1:9100"] and targets["app"] == ["127.0.0.1:8080"]

    am = yaml.safe_load((out / "alertmanager.yml").read_text())
    everyone = next(r for r in am["receivers"] if r["name"] == "everyone")
    if extra is RECEIVERS:
        assert everyone["email_configs"][0]["to"] == "admin@school.example"
        assert am["global"]["smtp_require_tls"] is False  # false stays false (not "blank means default")
        assert everyone["slack_configs"][0]["channel"] == "#sms-alerts"
        assert am["route"]["routes"][1]["receiver"] == "chat"
        assert oct((out / "alertmanager.yml").stat().st_mode & 0o777) == "0o640"
        # Teams through the relay on loopback; the real URL (its secret) only in teams.json, 0640
        hooks = [w["url"] for w in everyone["webhook_configs"]]
        assert hooks == ["https://hooks.school.example/alert", "http://127.0.0.1:9095/teams/0"]
        assert "s3cret-teams" not in (out / "alertmanager.yml").read_text()
        assert json.loads((out / "teams.json").read_text()) == {"urls": RECEIVERS["rollcall_alert_teams_urls"]}
        assert oct((out / "teams.json").stat().st_mode & 0o777) == "0o640"
    else:
        assert "email_configs" not in everyone and not (out / "teams.json").exists()
    # the database being down inhibits the app's alerts
    assert any(r["source_matchers"] == ['alertname="DatabaseDown"'] for r in am["inhibit_rules"])
