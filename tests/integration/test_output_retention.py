"""Bounded logs and outputs (issue 12, item 6), through real Ansible.

- rollcall.ops.output_retention on planted old files (mtimes set with os.utime): what is gzipped and deleted,
  check mode changing nothing, a second run changing nothing, symlinks and other names left alone, the audit log
  rotated while rollcall.ops.app_release keeps appending.
- roles/database starts its container with the json-file log options, and a running one is recreated for them
  only when rollcall_container_log_recreate is true.
"""

import contextlib
import gzip
import json
import os
import sys
import time
import urllib.request

import docker.errors
import pytest
from modules import run_module
from test_deploy import DB_PASSWORD, failures, playbook, teardown, write_inventory

DAY = 86400
NOW = time.time()


def plant(directory, name, days, data=None):
    path = directory / name
    path.write_bytes(data if data is not None else (name + "\n").encode() * 50)
    os.utime(path, (NOW - days * DAY, NOW - days * DAY))
    return path


def snapshot(directory):
    """name -> (kind, mtime, size) of everything under directory, links not followed."""
    out = {}
    for root, dirs, files in os.walk(directory):
        for name in dirs + files:
            full = os.path.join(root, name)
            st = os.lstat(full)
            out[os.path.relpath(full, directory)] = (os.path.islink(full), st.st_mtime, st.st_size)
    return out


@pytest.fixture
def reports(tmp_path):
    """A report directory with old and new reports, a history.json, and symlinks in and out."""
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = plant(outside, "precious.json", 400)
    directory = tmp_path / "reports"
    directory.mkdir()
    plant(directory, "health-20250101T000000Z.json", 100)
    plant(directory, "health-20250101T000000Z.html", 100)
    plant(directory, "health-20260101T000000Z.json", 40, b'{"status": "ok"}\n' * 40)
    plant(directory, "audit-app1-20260101T000000Z.md", 40)
    plant(directory, "health-20990101T000000Z.json", 1)
    plant(directory, "history.json", 400)
    (directory / "health-link.json").symlink_to(secret)
    os.utime(directory / "health-link.json", (NOW - 400 * DAY,) * 2, follow_symlinks=False)
    return directory, secret


ARGS = {"patterns": ["health-*", "audit-*"], "gzip_after_days": 30, "delete_after_days": 90}


def test_check_mode_lists_and_changes_nothing(reports):
    directory, _ = reports
    before = snapshot(directory.parent)
    rc, result, output = run_module("output_retention", dict(ARGS, path=str(directory)), "--check", "--diff")
    assert rc == 0, output
    assert result["changed"] is True
    assert sorted(result["deleted"]) == ["health-20250101T000000Z.html", "health-20250101T000000Z.json"]
    assert sorted(result["gzipped"]) == ["audit-app1-20260101T000000Z.md", "health-20260101T000000Z.json"]
    assert "health-20260101T000000Z.json.gz" in result["diff"]["after"]
    assert "health-20250101T000000Z.json" not in result["diff"]["after"]
    assert snapshot(directory.parent) == before, "check mode changed something"


def test_gzips_deletes_then_changes_nothing_and_leaves_symlinks_and_other_names(reports):
    directory, secret = reports
    original = (directory / "health-20260101T000000Z.json").read_bytes()
    rc, result, output = run_module("output_retention", dict(ARGS, path=str(directory)))
    assert rc == 0, output
    assert result["changed"] is True and result["retried"] == []
    assert sorted(os.listdir(directory)) == [
        "audit-app1-20260101T000000Z.md.gz", "health-20260101T000000Z.json.gz", "health-20990101T000000Z.json",
        "health-link.json", "history.json"]
    gz = directory / "health-20260101T000000Z.json.gz"
    assert gzip.decompress(gz.read_bytes()) == original
    assert abs(gz.stat().st_mtime - (NOW - 40 * DAY)) < 2, "the .gz keeps the original's age"
    assert os.path.islink(directory / "health-link.json") and secret.exists()
    assert "symlink" in result["untouched"]["health-link.json"]

    before = snapshot(directory.parent)
    rc, again, output = run_module("output_retention", dict(ARGS, path=str(directory)))
    assert rc == 0, output
    assert again["changed"] is False and again["deleted"] == [] and again["gzipped"] == []
    assert snapshot(directory.parent) == before


def test_a_missing_directory_is_nothing_to_do_and_bad_policies_fail_clearly(tmp_path):
    rc, result, output = run_module("output_retention", dict(ARGS, path=str(tmp_path / "none")))
    assert rc == 0 and result["exists"] is False and result["changed"] is False, output
    rc, result, _ = run_module("output_retention", {"path": str(tmp_path), "gzip_after_days": 90,
                                                    "delete_after_days": 30})
    assert rc != 0 and "must be more than gzip_after_days" in result["msg"]
    rc, result, _ = run_module("output_retention", {"path": str(tmp_path), "max_total_size": "lots"})
    assert rc != 0 and "is not a size" in result["msg"]
    rc, result, _ = run_module("output_retention", {"path": str(tmp_path), "rotate": "../audit.jsonl"})
    assert rc != 0 and "file name inside path" in result["msg"]
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    rc, result, _ = run_module("output_retention", {"path": str(tmp_path / "link")})
    assert rc != 0 and "never follows symlinks" in result["msg"]


def test_incident_bundles_directories_and_archives_go_after_90_days(tmp_path):
    directory = tmp_path / "incidents"
    directory.mkdir()
    for stamp, days in (("20250101T000000Z", 100), ("20260301T000000Z", 5)):
        bundle = directory / stamp
        bundle.mkdir()
        plant(bundle, "report.json", days)
        plant(directory, stamp + ".tar.gz", days)
        os.utime(bundle, (NOW - days * DAY,) * 2)
    args = {"path": str(directory), "patterns": ["[0-9]*"], "directories": True, "delete_after_days": 90}
    rc, result, output = run_module("output_retention", args)
    assert rc == 0, output
    assert sorted(result["deleted"]) == ["20250101T000000Z", "20250101T000000Z.tar.gz"]
    assert sorted(os.listdir(directory)) == ["20260301T000000Z", "20260301T000000Z.tar.gz"]


def test_audit_log_is_rotated_gzipped_and_expired_while_appends_go_on(tmp_path):
    state = tmp_path / "state"
    app = state / "rc-t12a"
    app.mkdir(parents=True)
    last_month = time.strftime("%Y-%m", time.gmtime(NOW - 40 * DAY))
    live = plant(app, "audit.jsonl", 0, (json.dumps({"at": last_month + "-02T10:00:00Z", "event": "deploy_success"})
                                         + "\n").encode())
    plant(app, "audit-2024-01.jsonl.gz", 400, gzip.compress(b'{"at": "2024-01-01T00:00:00Z"}\n'))
    plant(app, "audit-2025-01.jsonl", 40)
    plant(app, "releases.json", 400)
    writer = os.open(live, os.O_WRONLY | os.O_APPEND)  # a writer that opened before the rotation
    args = {"path": str(app), "rotate": "audit.jsonl", "patterns": ["audit-*.jsonl", "audit-*.jsonl.gz"],
            "gzip_after_days": 30, "delete_after_days": 365}
    try:
        rc, result, output = run_module("output_retention", args)
        assert rc == 0, output
        os.write(writer, b'{"at": "late", "event": "written after the rotation"}\n')
    finally:
        os.close(writer)
    rotated = "audit-%s.jsonl" % last_month
    assert result["rotated"] == {"from": "audit.jsonl", "to": rotated}
    assert result["deleted"] == ["audit-2024-01.jsonl.gz"] and result["gzipped"] == ["audit-2025-01.jsonl"]
    assert sorted(os.listdir(app)) == ["audit-2025-01.jsonl.gz", rotated, "releases.json"]
    assert (app / rotated).read_text().count("\n") == 2, "the line of the writer that was open is kept"

    rc, audited, output = run_module("app_release", {"action": "audit", "app": "rc-t12a", "state_dir": str(state),
                                                     "actor": "it", "event": "retention_test", "msg": "after"})
    assert rc == 0, output
    assert json.loads((app / "audit.jsonl").read_text())["event"] == "retention_test", "a new live file"
    rc, again, output = run_module("output_retention", args)
    assert rc == 0 and again["changed"] is False, output


# ------------------------------------------------------------------------------------------------ container logs
PROJECT = "rc-t12a-logs"

ROLE_PLAY = """
- name: Run the database role
  hosts: db
  gather_facts: false
  roles:
    - role: rollcall.ops.database
"""


def write_db_inventory(tmp_path, **values):
    import yaml  # noqa: PLC0415 - only this test needs it

    values = dict({"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                   "rollcall_project": PROJECT, "rollcall_db_engine": "postgresql",
                   "rollcall_db_password": DB_PASSWORD}, **values)
    path = tmp_path / ("hosts-%d.yml" % len(list(tmp_path.glob("hosts-*.yml"))))
    path.write_text(yaml.safe_dump({"all": {"children": {"db": {"hosts": {"localhost": None}}}, "vars": values}}))
    return str(path)


def run_role(tmp_path, **values):
    play = tmp_path / "database.yml"
    play.write_text(ROLE_PLAY)
    return playbook(write_db_inventory(tmp_path, **values), str(play))


def test_database_container_gets_bounded_logs_and_is_recreated_for_them_only_when_asked(tmp_path, docker_client):
    try:
        proc, report = run_role(tmp_path)
        assert proc.returncode == 0, failures(report) or proc.stderr[-2000:]
        first = docker_client.containers.get(PROJECT + "-db")
        assert first.attrs["HostConfig"]["LogConfig"] == {"Type": "json-file",
                                                          "Config": {"max-size": "10m", "max-file": "5"}}

        proc, report = run_role(tmp_path, rollcall_container_log_max_size="20m", rollcall_container_log_max_files=3)
        assert proc.returncode == 0, failures(report) or proc.stderr[-2000:]
        assert report["stats"]["localhost"]["changed"] == 0, "a running database is not restarted for log settings"
        kept = docker_client.containers.get(PROJECT + "-db")
        assert kept.id == first.id and kept.attrs["HostConfig"]["LogConfig"]["Config"]["max-size"] == "10m"

        proc, report = run_role(tmp_path, rollcall_container_log_max_size="20m", rollcall_container_log_max_files=3,
                                rollcall_container_log_recreate=True)
        assert proc.returncode == 0, failures(report) or proc.stderr[-2000:]
        new = docker_client.containers.get(PROJECT + "-db")
        assert new.id != first.id
        assert new.attrs["HostConfig"]["LogConfig"] == {"Type": "json-file",
                                                        "Config": {"max-size": "20m", "max-file": "3"}}
    finally:
        for remove in (lambda: docker_client.containers.get(PROJECT + "-db").remove(force=True, v=True),
                       lambda: docker_client.volumes.get(PROJECT + "-dbdata").remove(),
                       lambda: docker_client.networks.get(PROJECT + "-net").remove()):
            with contextlib.suppress(docker.errors.NotFound):
                remove()


APP_PROJECT = "rc-t12a-app"
APP_PORT = 18712


def test_deploy_gives_app_and_proxy_bounded_logs_and_keeps_a_running_proxy(tmp_path, docker_client):
    inventory = write_inventory(tmp_path, rollcall_project=APP_PROJECT, rollcall_db_engine="sqlite",
                                rollcall_app_port=APP_PORT, rollcall_state_dir=str(tmp_path / "state"))
    (tmp_path / "again").mkdir()
    again = write_inventory(tmp_path / "again", rollcall_project=APP_PROJECT, rollcall_db_engine="sqlite",
                            rollcall_app_port=APP_PORT, rollcall_state_dir=str(tmp_path / "state"),
                            rollcall_container_log_max_size="20m")
    bounded = {"Type": "json-file", "Config": {"max-size": "10m", "max-file": "5"}}
    try:
        proc, report = playbook(inventory)
        assert proc.returncode == 0, failures(report) or proc.stderr[-2000:]
        proxy = docker_client.containers.get(APP_PROJECT + "-proxy")
        for name in ("-app", "-proxy"):
            assert docker_client.containers.get(APP_PROJECT + name).attrs["HostConfig"]["LogConfig"] == bounded, name

        proc, report = playbook(again)
        assert proc.returncode == 0, failures(report) or proc.stderr[-2000:]
        assert docker_client.containers.get(APP_PROJECT + "-proxy").id == proxy.id, "the proxy was recreated"
        with urllib.request.urlopen("http://127.0.0.1:%d/health" % APP_PORT, timeout=5) as answer:
            assert answer.status == 200
    finally:
        teardown(inventory)
