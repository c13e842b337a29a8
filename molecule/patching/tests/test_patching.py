"""testinfra checks of molecule/patching's hosts after converge (the fault removed, a full run) and the
idempotence run: every package upgraded, the record kept private, the reboot done, the report and audit written.

Runs with Molecule's inventory (each host through the docker connection, as Ansible reaches it).
"""

import json

import pytest

testinfra_hosts = ["app"]  # not rc-patch-lb (group lb): it is never patched

PACKAGES = ("rcp-plain", "rcp-security", "rcp-reboot", "rcp-fragile")


def test_every_package_is_at_1_1(host):
    for name in PACKAGES:
        package = host.package(name)
        assert package.is_installed and package.version == "1.1", (name, package.version)


def test_the_record_is_private_and_says_before_and_after(host):
    record = host.file("/var/lib/rollcall/rc-patch/patching.json")
    assert record.exists and record.mode == 0o600 and record.user == "root"
    entries = json.loads(record.content_string)["entries"]
    last_upgrade = [e for e in entries if e["changed"]][-1]
    assert last_upgrade["after"] == {name: "1.1" for name in PACKAGES}
    assert last_upgrade["before"] == {name: "1.0" for name in PACKAGES}
    assert last_upgrade["rollback"]["install"] == {name: "1.0" for name in PACKAGES}


def test_the_reboot_cleared_the_request(host):
    assert not host.file("/var/run/reboot-required").exists


def test_the_audit_log_has_the_successful_run(host):
    audit = host.file("/var/lib/rollcall/rc-patch/audit.jsonl").content_string
    lines = [json.loads(line) for line in audit.splitlines()]
    assert any(line["event"] == "patching_success" for line in lines)
    assert not host.file("/var/lib/rollcall/rc-patch/deploy.lock").exists


def test_the_health_endpoint_serves_after_the_reboot(host):
    probe = "import urllib.request as u; print(u.urlopen('http://127.0.0.1:8080/health').read())"
    assert host.run("python3 -c %s" % json.dumps(probe)).rc == 0


def test_the_report_host_keeps_json_markdown_and_html_reports(host):
    if host.backend.get_hostname() != "rc-patch-1":
        pytest.skip("the report host is rc-patch-1 (the first app host)")
    reports = host.run("ls /var/lib/rollcall/reports/rc-patch/").stdout.split()
    assert any(r.endswith(".json") for r in reports) and any(r.endswith(".md") for r in reports), reports
    assert any(r.endswith(".html") for r in reports), reports
    newest = host.run("ls -t /var/lib/rollcall/reports/rc-patch/patching-*.json | head -n1").stdout.strip()
    doc = json.loads(host.file(newest).content_string)
    assert doc["status"] == "ok" and doc["failed_hosts"] == []
    assert {h["host"]: h["outcome"] for h in doc["hosts"]} == {"rc-patch-1": "unchanged", "rc-patch-2": "unchanged"}
    assert host.file(newest).mode == 0o640
