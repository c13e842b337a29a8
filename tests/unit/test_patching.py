"""plugins/module_utils/patching.py (issue 13): apt's simulation parsed, security-only and holds, the reboot
decision, the pre-checks and the way back. One test per branch; no apt."""

import pytest

from ansible_collections.rollcall.ops.plugins.module_utils import patching
from ansible_collections.rollcall.ops.plugins.module_utils.patching import PatchError

SIMULATION = """NOTE: This is only a simulation!
Reading package lists...
Calculating upgrade...
The following packages will be upgraded:
   libssl3 tzdata
Inst libssl3 [3.0.11-1~deb12u2] (3.0.15-1~deb12u1 Debian:12.8/stable, Debian-Security:12/stable-security [amd64])
Inst tzdata [2024a-0+deb12u1] (2024b-0+deb12u1 Debian:12.8/stable-updates [all]) []
Inst linux-image-6.1.0-28-amd64 (6.1.119-1 Debian:12.8/stable [amd64])
Remv oldlib [1.2-3]
Conf libssl3 (3.0.15-1~deb12u1 Debian:12.8/stable, Debian-Security:12/stable-security [amd64])
Conf tzdata (2024b-0+deb12u1 Debian:12.8/stable-updates [all])
"""


def test_the_simulation_is_read_line_by_line():
    changes = patching.parse_simulation(SIMULATION)
    assert [(c["package"], c["from"], c["to"], c["action"], c["security"]) for c in changes] == [
        ("libssl3", "3.0.11-1~deb12u2", "3.0.15-1~deb12u1", "upgrade", True),
        ("tzdata", "2024a-0+deb12u1", "2024b-0+deb12u1", "upgrade", False),
        ("linux-image-6.1.0-28-amd64", None, "6.1.119-1", "install", False),
        ("oldlib", "1.2-3", None, "remove", False),
    ]
    assert changes[0]["origins"] == ["Debian:12.8/stable", "Debian-Security:12/stable-security"]


def test_nothing_to_do_is_an_empty_list():
    assert patching.parse_simulation("0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.\n") == []
    assert patching.parse_simulation(None) == []


def test_security_only_and_holds():
    changes = patching.parse_simulation(SIMULATION)
    apply, held, skipped = patching.select(changes, security_only=True, holds=["linux-image-*"])
    assert [c["package"] for c in apply] == ["libssl3"]
    assert [c["package"] for c in held] == ["linux-image-6.1.0-28-amd64"]
    assert [c["package"] for c in skipped] == ["tzdata", "oldlib"]
    apply, held, skipped = patching.select(changes)
    assert len(apply) == 4 and held == [] and skipped == []


def test_a_hold_is_a_whole_name_not_a_prefix():
    changes = patching.parse_simulation(SIMULATION)
    _apply, held, _skipped = patching.select(changes, holds=["libssl"])
    assert held == []


def test_reboot_when_the_host_asks():
    needed, why = patching.needs_reboot([], reboot_required=True, reboot_packages=["linux-base", "linux-base"])
    assert needed and why == "the host asks for a reboot (/var/run/reboot-required: linux-base)"


def test_reboot_for_a_kernel_libc_or_init_change():
    needed, why = patching.needs_reboot(patching.parse_simulation(SIMULATION))
    assert needed and "libssl3, linux-image-6.1.0-28-amd64" in why


def test_no_reboot_for_other_changes():
    assert patching.needs_reboot([{"package": "tzdata"}]) == (False, "no change needs a reboot")


def checks(**overrides):
    args = dict(host="db1", health="ok", backup_age_s=3600, max_backup_age_s=86400, free_bytes=2048 * patching.MIB,
                needed_bytes=500 * patching.MIB, lock_holder=None, is_db=True)
    args.update(overrides)
    return {c["check"]: c for c in patching.precheck(**args)}


def test_a_healthy_host_with_a_fresh_backup_room_and_no_lock_may_be_patched():
    got = checks()
    assert all(c["ok"] for c in got.values()) and set(got) == {"health", "backup", "disk", "lock"}
    assert got["backup"]["detail"] == "newest verified backup is 60 minutes old"


def test_each_stop_says_what_to_do():
    assert not checks(health="critical")["health"]["ok"]
    assert "playbooks/health.yml" in checks(health="critical")["health"]["detail"]
    assert checks(health="warning")["health"]["ok"]
    old = checks(backup_age_s=3 * 86400)["backup"]
    assert not old["ok"]
    assert old["detail"] == "newest verified backup is 3 days old, older than 24 hours: take one first"
    assert "no verified backup" in checks(backup_age_s=None)["backup"]["detail"]
    disk = checks(free_bytes=100 * patching.MIB)["disk"]
    assert not disk["ok"] and disk["detail"] == "100 MiB free, 500 MiB needed: free space on db1 first"
    lock = checks(lock_holder="alice@ctl deploy 1.1.0")["lock"]
    assert not lock["ok"] and "held by alice@ctl deploy 1.1.0" in lock["detail"]


def test_an_app_host_needs_no_backup_of_its_own():
    assert "backup" not in checks(is_db=False, backup_age_s=None)


def test_a_threshold_that_is_not_positive_is_refused():
    with pytest.raises(PatchError, match="positive number of seconds"):
        checks(max_backup_age_s=0)


def test_the_way_back_reinstalls_changed_and_removed_packages_and_removes_new_ones():
    before = {"libssl3": "3.0.11-1~deb12u2", "tzdata": "2024a-0+deb12u1", "oldlib": "1.2-3", "bash": "5.2.15-2+b7"}
    after = {"libssl3": "3.0.15-1~deb12u1", "tzdata": "2024b-0+deb12u1", "bash": "5.2.15-2+b7",
             "linux-image-6.1.0-28-amd64": "6.1.119-1"}
    assert patching.rollback_plan(before, after) == {
        "install": {"libssl3": "3.0.11-1~deb12u2", "oldlib": "1.2-3", "tzdata": "2024a-0+deb12u1"},
        "remove": ["linux-image-6.1.0-28-amd64"]}
    assert patching.rollback_plan(before, before) == {"install": {}, "remove": []}


def test_installed_versions_and_apt_targets():
    text = "libssl3:amd64 3.0.11-1~deb12u2 ii \noldlib 1.2-3 rc \ntzdata 2024a-0+deb12u1 ii \nbad\n"
    assert patching.parse_installed(text) == {"libssl3": "3.0.11-1~deb12u2", "tzdata": "2024a-0+deb12u1"}
    changes = patching.parse_simulation(SIMULATION)
    assert patching.apt_targets(changes) == ["libssl3=3.0.15-1~deb12u1", "tzdata=2024b-0+deb12u1",
                                             "linux-image-6.1.0-28-amd64=6.1.119-1"]


def test_the_summary_line():
    changes = patching.parse_simulation(SIMULATION)
    apply, held, skipped = patching.select(changes, security_only=True, holds=["linux-image-*"])
    assert patching.summary(apply, held, skipped, (False, "no change needs a reboot")) == (
        "1 package(s) to change (1 security), 1 held (linux-image-6.1.0-28-amd64), 2 not security (left for a full "
        "run); no reboot needed")
    assert patching.summary([], [], [], (True, "the host asks for a reboot")).endswith(
        "reboot needed: the host asks for a reboot")


def test_a_stale_backup_is_no_stop_when_patching_takes_one_first():
    planned = checks(backup_age_s=3 * 86400, backup_planned=True)["backup"]
    assert planned["ok"] and planned["detail"].endswith("patching takes one (and verifies it) first")
    assert checks(backup_age_s=None, backup_planned=True)["backup"]["ok"]
    # a fresh backup is used as it is
    assert checks(backup_planned=True)["backup"]["detail"] == "newest verified backup is 60 minutes old"


def test_stops_lists_only_the_failed_checks():
    assert patching.stops(list(checks().values())) == ""
    line = patching.stops(list(checks(health="critical", free_bytes=0).values()))
    assert line.startswith("health: the health check says critical") and "; disk: 0 MiB free" in line


def test_the_reboot_policy():
    assert patching.should_reboot("auto", True, "kernel") == (True, "kernel")
    assert patching.should_reboot("auto", False, "no change needs a reboot") == (False, "no change needs a reboot")
    assert patching.should_reboot("never", True, "kernel")[0] is False
    assert "maintenance window" in patching.should_reboot("never", True, "kernel")[1]
    assert patching.should_reboot("always", False, "x") == (True, "the reboot policy is always (none was needed)")
    with pytest.raises(PatchError, match="auto, never or always"):
        patching.should_reboot("sometimes", True, "x")


def test_rollback_targets_for_apt():
    plan = patching.rollback_plan({"a": "1.0", "b": "1.0", "c": "2"}, {"a": "1.1", "b": "1.0", "c": "2", "n": "1"})
    assert patching.rollback_targets(plan) == ["a=1.0"]
    assert patching.rollback_targets(None) == []


PLAN = {"summary": "2 package(s) to change (1 security); no reboot needed", "installed": {"a": "1.0", "b": "1.0"},
        "changes": [{"package": "a", "from": "1.0", "to": "1.1", "security": False, "origins": []},
                    {"package": "b", "from": "1.0", "to": "1.1", "security": True, "origins": []}],
        "held": [{"package": "h"}], "reboot": {"needed": False, "why": "no change needs a reboot"}}


def test_the_run_report_names_failed_hosts_and_what_changed():
    patched = patching.host_entry("h1", PLAN, {"before": {"a": "1.0", "b": "1.0"}, "changed": True,
                                         "changed_packages": {"a": "1.1", "b": "1.1"}},
                                  reboot={"done": True, "why": "asked"}, health_before="ok", health_after="ok",
                                  outcome="patched")
    failed = patching.host_entry("h2", PLAN, outcome="rolled_back", error="b: postinst failed",
                                 rolled_back=["a=1.0", "b=1.0"], health_before="ok")
    report = patching.run_report([failed, patched], actor="me", at="T")
    assert report["status"] == "failed" and report["failed_hosts"] == ["h2"]
    assert report["counts"] == {"rolled_back": 1, "patched": 1}
    assert [e["host"] for e in report["hosts"]] == ["h1", "h2"]
    assert report["hosts"][0]["changed"] == {"a": {"from": "1.0", "to": "1.1"}, "b": {"from": "1.0", "to": "1.1"}}
    assert report["hosts"][0]["held"] == ["h"]
    text = patching.markdown(report)
    assert "- status: **failed** (failed: h2)" in text
    assert "| h1 | patched | 2 | yes | ok | ok |" in text
    assert "| h2 | rolled_back | 0 | no | ok | - |" in text
    assert "Rolled back to: a=1.0, b=1.0" in text and "Error: b: postinst failed" in text
    page = patching.html(report)
    assert "CRITICAL" in page and "failed: h2" in page and '<tr class="st-critical"><td>h2</td>' in page
    assert "<p>Rolled back to: a=1.0, b=1.0</p>" in page and "<td>a</td><td>1.0</td><td>1.1</td>" in page


def test_a_check_mode_report_shows_the_plan_and_says_nothing_changed():
    report = patching.run_report([patching.host_entry("h1", PLAN)], check_mode=True)
    assert report["status"] == "ok" and report["counts"] == {"planned": 1}
    text = patching.markdown(report)
    assert text.startswith("# Rollcall patching (check mode: nothing was changed)")
    assert "| a | 1.0 | 1.1 |" in text and "| h1 | planned | 0 | no | - | - |" in text


def test_a_host_entry_reads_a_patching_json_entry_too():
    entry = patching.host_entry("h1", PLAN, {"before": {"a": "1.0"}, "changed": {"a": "1.1"}}, outcome="patched")
    assert entry["changed"] == {"a": {"from": "1.0", "to": "1.1"}}
    assert patching.host_entry("h1", None, outcome="not_reached")["changed"] == {}


def test_the_controller_itself_is_a_stop_unless_asked_for():
    got = checks(controller=True)
    assert not got["controller"]["ok"] and "rollcall_patching_controller=true" in got["controller"]["detail"]
    assert "controller" in patching.stops(list(got.values()))


def test_the_controller_may_be_patched_when_asked_for():
    got = checks(controller=True, controller_allowed=True)
    assert got["controller"]["ok"] and "upgrades this machine's own packages" in got["controller"]["detail"]


def test_check_mode_on_the_controller_only_says_so():
    got = checks(controller=True, check_mode=True)
    assert got["controller"]["ok"] and "needs -e rollcall_patching_controller=true" in got["controller"]["detail"]


def test_a_remote_host_has_no_controller_check():
    assert "controller" not in checks(controller_allowed=True)


def test_the_html_report_escapes_what_apt_and_dpkg_said():
    entry = patching.host_entry("h<1>", None, outcome="failed", error="<script>alert(1)</script>")
    page = patching.html(patching.run_report([entry], at="T"))
    assert "<script>" not in page and "&lt;script&gt;" in page and "h&lt;1&gt;" in page


APT_FAILURE = """Setting up rcp-fragile (1.1) ...
rcp-fragile: fault injected
dpkg: error processing package rcp-fragile (--configure):
 installed rcp-fragile package post-installation script subprocess returned error exit status 1
Errors were encountered while processing:
 rcp-fragile
E: Sub-process /usr/bin/dpkg returned an error code (1)""".splitlines()


def test_a_failed_upgrade_is_told_in_dpkg_and_apt_words():
    why = patching.failure_reason(APT_FAILURE + ["", "  "])
    assert why == ("rcp-fragile: fault injected / dpkg: error processing package rcp-fragile (--configure): / "
                   "installed rcp-fragile package post-installation script subprocess returned error exit status 1 / "
                   "E: Sub-process /usr/bin/dpkg returned an error code (1)")


def test_a_failure_without_dpkg_words_is_the_fallback_and_long_ones_are_cut():
    assert patching.failure_reason(["Reading package lists..."], "apt failed") == "apt failed"
    assert patching.failure_reason(None) == "the upgrade failed"
    long = patching.failure_reason(["E: " + "x" * 1000])
    assert len(long) == 600 and long.endswith("...")


IMAGE_PLANS = {"proxy": {"image": "rollcall/proxy:1", "pending": 0, "security": 0, "summary": "s"},
               "app": {"image": "rollcall/sms-app:1.0.0", "pending": 2, "security": 1, "summary": "s"},
               "db": {"image": "rollcall/postgres:15", "pending": 1, "security": 1}}


def test_the_report_lists_the_images_whose_base_has_updates_and_the_refreshed_one():
    entry = patching.host_entry("h1", PLAN, outcome="patched", images=IMAGE_PLANS,
                                images_refreshed={"image": "rollcall/sms-app:1.0.0-p20261202", "version": "x"})
    assert [i["role"] for i in entry["images"]] == ["app", "db", "proxy"]
    assert entry["image_refreshed"] == "rollcall/sms-app:1.0.0-p20261202"
    assert patching.image_lines(entry) == [
        "app rollcall/sms-app:1.0.0: 2 package updates pending (1 security)",
        "db rollcall/postgres:15: 1 package update pending (1 security)",
        "proxy rollcall/proxy:1: base up to date",
        "refreshed and released: rollcall/sms-app:1.0.0-p20261202"]
    report = patching.run_report([entry], at="T")
    text = patching.markdown(report)
    assert "Images:\n\n- app rollcall/sms-app:1.0.0: 2 package updates pending (1 security)\n" in text
    assert "<li>refreshed and released: rollcall/sms-app:1.0.0-p20261202</li>" in patching.html(report)


def test_a_host_without_images_has_no_images_part():
    entry = patching.host_entry("h1", PLAN, images={"app": None})
    assert entry["images"] == [{"role": "app", "image": None, "pending": 0, "security": 0}]
    bare = patching.host_entry("h1", PLAN)
    assert bare["images"] == [] and bare["image_refreshed"] is None and patching.image_lines(bare) == []
    report = patching.run_report([bare], at="T")
    assert "Images:" not in patching.markdown(report) and "Images:" not in patching.html(report)


def test_the_report_has_the_database_update():
    entry = patching.host_entry("db1", PLAN, outcome="patched", images={"db": IMAGE_PLANS["db"]}, database={
        "image_before": "rollcall/postgres:15", "image_after": "rollcall/postgres:15-p20261202",
        "version_before": "15.10", "version_after": "15.14", "checks": "same row counts", "restored": False})
    assert entry["database"]["version_after"] == "15.14" and patching.host_entry("h1", PLAN)["database"] is None
    assert patching.image_lines(entry)[-1] == ("database: rollcall/postgres:15 (engine 15.10) -> "
                                               "rollcall/postgres:15-p20261202 (engine 15.14); same row counts")
    assert "database: rollcall/postgres:15 (engine 15.10)" in patching.markdown(patching.run_report([entry], at="T"))


def test_the_report_says_the_old_database_image_was_put_back():
    entry = patching.host_entry("db1", PLAN, outcome="failed", database={
        "image_before": "rollcall/postgres:15", "image_after": "rollcall/postgres:15", "version_before": "15.10",
        "version_after": None, "checks": None, "restored": True})
    assert patching.image_lines(entry) == ["database: rollcall/postgres:15 (engine 15.10) -> rollcall/postgres:15 "
                                           "(engine ?); the old image was put back"]


# Load balancer (issue 13 item 3): pool_plan, pool_entry, pool_cell.
LB = {"type": "haproxy", "host": "lb1", "backend": "sms", "socket": "/run/haproxy/admin.sock"}


def test_an_app_host_with_changes_is_drained_from_haproxy():
    plan = patching.pool_plan(LB, "app1", True, 3, ["lb1", "app1"])
    assert plan["drain"] and not plan["errors"]
    assert (plan["lb_host"], plan["backend"], plan["server"], plan["timeout_s"]) == ("lb1", "sms", "app1", 120)
    assert "drained from HAProxy backend sms" in plan["why"]
    assert plan["readd"] == ("ansible lb1 -m community.general.haproxy -a 'state=enabled backend=sms host=app1 "
                             "socket=/run/haproxy/admin.sock wait=true'")


def test_the_server_name_comes_from_the_hostvar_then_the_settings_then_the_host():
    assert patching.pool_plan(LB, "app1", True, 1, ["lb1"], server="web-1")["server"] == "web-1"
    assert patching.pool_plan(dict(LB, server="web"), "app1", True, 1, ["lb1"])["server"] == "web"
    assert patching.pool_plan(dict(LB, socket=None), "app1", True, 1, ["lb1"])["socket"] == patching.LB_SOCKET


def test_no_load_balancer_is_said_plainly():
    for lb in (None, {}, {"type": "none"}):
        plan = patching.pool_plan(lb, "app1", True, 3, [])
        assert not plan["drain"] and not plan["errors"]
        assert "no load balancer was told" in plan["why"]


def test_db_hosts_and_hosts_without_changes_are_not_drained():
    db = patching.pool_plan(LB, "db1", False, 3, ["lb1"])
    assert not db["drain"] and "not an app host" in db["why"]
    same = patching.pool_plan(LB, "app1", True, 0, ["lb1"])
    assert not same["drain"] and "nothing to change" in same["why"] and not same["readd"]


def test_wrong_load_balancer_settings_are_errors():
    assert "must be one of none, haproxy" in patching.pool_plan({"type": "f5"}, "a", True, 1, [])["errors"][0]
    errors = patching.pool_plan({"type": "haproxy", "host": "nope", "timeout_s": 0}, "a", True, 1, ["lb1"])["errors"]
    assert len(errors) == 3 and "inventory host" in errors[0] and "backend" in errors[1] and "timeout" in errors[2]
    bad = patching.pool_plan(dict(LB, timeout_s="soon"), "a", True, 1, ["lb1"])
    assert not bad["drain"] and bad["why"] == "the load balancer settings are wrong"


def test_time_out_of_the_pool():
    plan = patching.pool_plan(LB, "app1", True, 3, ["lb1"])
    back = patching.pool_entry(plan, 100.0, 142.34)
    assert back == {"lb": "haproxy", "drained": True, "back": True, "out_s": 42.3,
                    "note": "out of the pool for 42.3 s, back after the health gate passed"}
    assert patching.pool_cell(back) == "42.3 s"


def test_a_failed_host_stays_out_and_the_note_says_how_to_re_add_it():
    plan = patching.pool_plan(LB, "app1", True, 3, ["lb1"])
    out = patching.pool_entry(plan, 100.0, None, now=130.0)
    assert out["drained"] and not out["back"] and out["out_s"] == 30.0
    assert "fail closed" in out["note"] and plan["readd"] in out["note"]
    assert patching.pool_cell(out) == "still out (30.0 s)"
    assert patching.pool_cell(patching.pool_entry(plan, 100.0)) == "still out (?)"


def test_a_host_not_drained_has_no_time_out_of_the_pool():
    entry = patching.pool_entry(patching.pool_plan(None, "app1", True, 3, []))
    assert entry["lb"] == "none" and not entry["drained"] and entry["out_s"] is None
    assert "no load balancer was told" in entry["note"] and patching.pool_cell(entry) == "-"
    assert patching.pool_cell(None) == "-"


def test_the_reports_show_the_time_out_of_the_pool():
    plan = patching.pool_plan(LB, "app1", True, 3, ["lb1"])
    entries = [patching.host_entry("app1", outcome="patched", pool=patching.pool_entry(plan, 0, 12.5)),
               patching.host_entry("app2", outcome="failed", pool=patching.pool_entry(plan, 0, None, 5)),
               patching.host_entry("db1", outcome="unchanged")]
    report = patching.run_report(entries)
    text = patching.markdown(report)
    assert "| out of pool |" in text and "| 12.5 s |" in text and "| still out (5.0 s) |" in text
    assert "Load balancer: still out of the pool (fail closed" in text
    page = patching.html(report)
    assert "<th>out of pool</th>" in page or "out of pool" in page
    assert "still out (5.0 s)" in page and "re-add it" in page
    assert report["hosts"][2]["pool"]["drained"] is False


# The Docker engine (issue 13 item 4): engine_plan, project_containers, engine_precheck, containers_back, engine_entry.
def _changes(*names):
    return [{"package": n, "from": "1", "to": "2", "security": False} for n in names]


def test_an_upgrade_of_an_engine_package_is_an_engine_upgrade():
    plan = patching.engine_plan(_changes("curl", "docker.io", "containerd"))
    assert plan["upgrade"] and plan["packages"] == ["containerd", "docker.io"] and not plan["errors"]
    assert "the Docker engine restarts" in plan["why"]


def test_other_upgrades_leave_the_engine_alone():
    plan = patching.engine_plan(_changes("curl", "docker-compose-plugin"))
    assert not plan["upgrade"] and plan["packages"] == [] and plan["why"] == "the Docker engine is not upgraded"
    assert not patching.engine_plan([])["upgrade"]


def test_the_engine_packages_are_names_or_patterns():
    assert patching.engine_plan(_changes("docker-ce"), ["docker-*"])["packages"] == ["docker-ce"]
    assert not patching.engine_plan(_changes("docker-ce"), ["docker"])["upgrade"]
    assert not patching.engine_plan(_changes("docker.io"), [])["upgrade"]


def test_a_db_host_needs_its_verified_backup_before_an_engine_upgrade():
    stop = patching.engine_plan(_changes("docker.io"), is_db=True, backup_ok=False)
    assert "no verified backup" in stop["errors"][0]
    assert not patching.engine_plan(_changes("docker.io"), is_db=True, backup_ok=True)["errors"]
    assert not patching.engine_plan(_changes("curl"), is_db=True, backup_ok=False)["errors"]


def test_the_projects_containers_by_label_or_name():
    containers = [{"Names": ["/sms-app"], "Labels": {"rollcall.project": "sms"}}, {"Names": ["/sms-db"], "Labels": {}},
                  {"Names": ["/other"], "Labels": {"rollcall.project": "x"}}, {"Names": ["/lonely"], "Labels": None}]
    assert patching.project_containers(containers, "sms", ["sms-db"]) == ["sms-app", "sms-db"]
    assert patching.project_containers(None, "sms") == []


def _inspect(name, running, policy):
    return {"Name": "/" + name, "State": {"Running": running}, "HostConfig": {"RestartPolicy": {"Name": policy}}}


def test_a_running_container_without_a_restarting_policy_is_a_stop():
    containers = [_inspect("sms-app", True, "unless-stopped"), _inspect("sms-db", True, "always"),
                  _inspect("sms-proxy", True, "on-failure"), _inspect("sms-helper", True, ""),
                  _inspect("sms-old", False, "no"), {"Name": "/bare", "State": {"Running": True}}]
    assert patching.engine_precheck(containers) == [
        "sms-proxy (restart policy on-failure): set it to unless-stopped (or always), or stop it first",
        "sms-helper (restart policy no): set it to unless-stopped (or always), or stop it first",
        "bare (restart policy no): set it to unless-stopped (or always), or stop it first"]
    assert patching.engine_precheck([]) == []


def test_containers_that_did_not_come_back():
    assert patching.containers_back(["a", "b", "c"], ["a", "c", "z"]) == ["b"]
    assert patching.containers_back(["a"], ["a"]) == []
    assert patching.containers_back(["a", "b"], [{"Names": ["/a"]}]) == ["b"]


def test_the_engine_in_the_report():
    plan = patching.engine_plan(_changes("docker.io"))
    assert patching.engine_entry(plan, ["a", "b"], 12.5)["note"] == "engine upgraded, 2 container(s) back in 12.5 s"
    assert patching.engine_entry(plan, ["a", "b"], None, ["b"])["note"] == "engine upgraded; not running again: b"
    assert patching.engine_entry(plan)["note"] == "engine upgrade planned (docker.io)"
    quiet = patching.engine_entry(patching.engine_plan([]))
    assert not quiet["upgraded"] and quiet["note"] == "engine not upgraded"


def test_the_reports_say_the_engine_was_upgraded():
    plan = patching.engine_plan(_changes("docker.io"))
    entries = [patching.host_entry("app1", outcome="patched", engine=patching.engine_entry(plan, ["a"], 9.5)),
               patching.host_entry("app2", outcome="unchanged")]
    report = patching.run_report(entries)
    assert "Docker engine: engine upgraded, 1 container(s) back in 9.5 s" in patching.markdown(report)
    assert "Docker engine: engine upgraded, 1 container(s) back in 9.5 s" in patching.html(report)
    assert report["hosts"][1]["engine"]["upgraded"] is False
    assert "Docker engine" not in patching.markdown(patching.run_report(entries[1:]))


def test_the_report_has_the_proxy_refresh():
    entry = patching.host_entry("app1", PLAN, outcome="patched", proxy={
        "image_before": "rollcall/proxy:1", "image_after": "rollcall/proxy:1-p20261202",
        "upstream": "rc-app:8000", "restored": False})
    assert entry["proxy"]["image_after"] == "rollcall/proxy:1-p20261202"
    assert patching.host_entry("h1", PLAN)["proxy"] is None
    assert patching.image_lines(entry)[-1] == ("proxy: rollcall/proxy:1 -> rollcall/proxy:1-p20261202 "
                                               "(serving rc-app:8000)")
    assert "proxy: rollcall/proxy:1 -> " in patching.markdown(patching.run_report([entry], at="T"))


def test_the_report_says_the_old_proxy_image_was_put_back():
    entry = patching.host_entry("app1", PLAN, outcome="failed", proxy={
        "image_before": "rollcall/proxy:1", "image_after": "rollcall/proxy:1", "upstream": None, "restored": True})
    assert patching.image_lines(entry)[-1] == "proxy: rollcall/proxy:1 -> rollcall/proxy:1; the old image was put back"


def _patching_plays(tmp_path, inventory):
    """(play name, hosts) of playbooks/patching.yml for ``inventory`` (a dict), and Ansible's output."""
    import os
    import subprocess
    import sys

    import yaml

    path = tmp_path / "hosts.yml"
    path.write_text(yaml.safe_dump(inventory))
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    done = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "--list-hosts", "-i",
                           str(path), os.path.join(root, "playbooks", "patching.yml")], capture_output=True, text=True,
                          check=False, env=dict(os.environ, ANSIBLE_CONFIG=os.path.join(root, "ansible.cfg")))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    plays, name = {}, None
    for line in done.stdout.splitlines():
        if line.strip().startswith("play #"):
            name = line.split("): ", 1)[1].split("\t")[0]
            plays[name] = []
        elif name and line.startswith("      "):
            plays[name].append(line.strip())
    return plays, done.stdout + done.stderr


def test_staging_goes_first_and_an_inventory_without_staging_gets_no_pattern_warning(tmp_path):
    """Without a `staging` group the staging play matches nothing and production takes every host, with no
    "Could not match supplied host pattern, ignoring: staging" warning (every patching run printed it)."""
    hosts = {"web1": {}, "web2": {}, "db1": {}}
    plain = {"all": {"children": {"app": {"hosts": {"web1": {}, "web2": {}}}, "db": {"hosts": {"db1": {}}}}}}
    plays, output = _patching_plays(tmp_path, plain)
    assert "Could not match supplied host pattern" not in output, output
    assert plays["Patch staging first"] == []
    assert sorted(plays["Patch production, one batch at a time, once staging passed"]) == sorted(hosts)
    staged = {"all": {"children": dict(plain["all"]["children"], staging={"hosts": {"web2": {}}})}}
    plays, output = _patching_plays(tmp_path, staged)
    assert plays["Patch staging first"] == ["web2"]
    assert sorted(plays["Patch production, one batch at a time, once staging passed"]) == ["db1", "web1"]
