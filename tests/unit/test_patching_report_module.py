"""rollcall.ops.patching_report run by real ansible (ad hoc, local connection), and the patching filters."""

import json
import stat

import pytest
from ansible.errors import AnsibleFilterError
from modules import run_module

from ansible_collections.rollcall.ops.plugins.filter import patching as filters

PLAN = {"summary": "1 package(s) to change (1 security); no reboot needed", "installed": {"a": "1.0"},
        "changes": [{"package": "a", "from": "1.0", "to": "1.1", "security": True}], "held": [],
        "reboot": {"needed": False, "why": "no change needs a reboot"}}


def test_the_report_is_written_as_json_and_markdown(tmp_path):
    args = {"hosts": [{"host": "h1", "plan": PLAN, "outcome": "patched", "health_before": "ok", "health_after": "ok",
                       "record": {"changed": True, "changed_packages": {"a": "1.1"}},
                       "reboot": {"done": True, "why": "asked"}},
                      {"host": "h2", "outcome": "not_reached"}],
            "directory": str(tmp_path / "reports"), "name": "patching-test", "actor": "me"}
    rc, result, _ = run_module("patching_report", args, timeout=120)
    assert rc == 0, result
    assert result["changed"] is True and result["status"] == "ok"
    doc = json.loads((tmp_path / "reports/patching-test.json").read_text())
    assert doc["hosts"][0]["changed"] == {"a": {"from": "1.0", "to": "1.1"}}
    assert doc["hosts"][1]["outcome"] == "not_reached" and doc["actor"] == "me"
    text = (tmp_path / "reports/patching-test.md").read_text()
    assert "| h1 | patched | 1 | yes | ok | ok |" in text
    page = (tmp_path / "reports/patching-test.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<td>h1</td><td>patched</td>" in page and "OK" in page
    for name in ("patching-test.json", "patching-test.md", "patching-test.html"):
        assert stat.S_IMODE((tmp_path / "reports" / name).stat().st_mode) == 0o640


def test_check_mode_and_a_check_mode_run_write_nothing(tmp_path):
    args = {"hosts": [{"host": "h1", "plan": PLAN}], "directory": str(tmp_path / "r"), "name": "p"}
    rc, result, _ = run_module("patching_report", args, "--check", timeout=120)
    assert rc == 0 and result["changed"] is False and result["report"]["check_mode"] is True, result
    rc, result, _ = run_module("patching_report", dict(args, check_mode_run=True), timeout=120)
    assert rc == 0 and result["changed"] is False, result
    assert not (tmp_path / "r").exists()
    assert result["markdown"].startswith("# Rollcall patching (check mode: nothing was changed)")


def test_a_bad_outcome_or_name_is_one_clear_error(tmp_path):
    rc, result, _ = run_module("patching_report", {"hosts": [{"host": "h1", "outcome": "maybe"}],
                                                   "directory": str(tmp_path), "name": "p"}, timeout=120)
    assert rc != 0 and result["msg"].startswith("outcome of h1 must be one of failed, rolled_back"), result
    rc, result, _ = run_module("patching_report", {"hosts": [], "directory": str(tmp_path), "name": "../p"},
                               timeout=120)
    assert rc != 0 and "plain file name" in result["msg"], result


def test_the_precheck_filter_reads_numbers_and_lists_stops():
    got = filters.patching_precheck("db1", "ok", "7200", 3600, "104857600", 524288000, None, True, False)
    assert [c["check"] for c in got["checks"]] == ["health", "backup", "disk", "lock"]
    assert got["stops"].startswith("backup: newest verified backup is 2 hours old, older than 60 minutes")
    assert "; disk: 100 MiB free, 500 MiB needed" in got["stops"]
    assert filters.patching_precheck("app1", "ok", None, 3600, 10**9, 10, "", False)["stops"] == ""
    with pytest.raises(AnsibleFilterError, match="free_bytes must be a whole number"):
        filters.patching_precheck("h", "ok", None, 3600, "lots", 1)
    with pytest.raises(AnsibleFilterError, match="positive number of seconds"):
        filters.patching_precheck("h", "ok", None, 0, 1, 1)


def test_the_reboot_filter():
    assert filters.patching_reboot("auto", True, "kernel") == {"reboot": True, "why": "kernel"}
    assert filters.patching_reboot("never", True, "kernel")["reboot"] is False
    with pytest.raises(AnsibleFilterError, match="auto, never or always"):
        filters.patching_reboot("maybe", True, "x")
