"""The disaster-recovery drill: plugins/module_utils/drill.py (pure, a test per branch) and the modules dr_writer and
dr_report run by real ansible against a small stand-in of the app's student API on loopback."""

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from modules import run_module

from ansible_collections.rollcall.ops.plugins.module_utils import drill

T0 = 1796270000.0
ROOT = Path(__file__).resolve().parents[2]


def writes(n, start=T0, step=1.0):
    return [{"id": i + 1, "number": "DR%06d" % (i + 1), "at": start + i * step} for i in range(n)]


# ------------------------------------------------------------------------------------------------ plan
def test_plan_refuses_the_live_project_a_blank_name_and_the_live_port():
    assert drill.plan("rollcall", "rollcall-drill", 8080, 8090) == []
    assert "is the live project" in drill.plan("rollcall", "rollcall", 8080, 8090)[0]
    assert "blank" in drill.plan("rollcall", "", 8080, 8090)[0]
    assert "live app's port" in drill.plan("rollcall", "rollcall-drill", 8080, "8080")[0]


INTENDED = {"rollcall_project": "sms-drill", "rollcall_app_port": 8091, "rollcall_monitoring": False,
            "confirm": "yes", "rollcall_backup_dir": "/b/drills/sms-drill"}


def test_overrides_none_given_or_given_as_the_drill_has_them():
    """-e values are strings: "8091" and "false" are what the drill has; a name not resolved is not judged."""
    assert drill.overrides(INTENDED, dict(INTENDED), "sms") == []
    effective = dict(INTENDED, rollcall_app_port="8091", rollcall_monitoring="false", confirm="yes ")
    del effective["rollcall_backup_dir"]
    assert drill.overrides(INTENDED, effective, "sms") == []


def test_overrides_of_the_project_say_the_live_stack_would_be_destroyed():
    """-e rollcall_project=mdemo -e rollcall_app_port=8081 (a second stack run with -e): extra vars win over the
    drill's own, so the drill tore down mdemo with its volumes (found on the demo, 2026-12-06)."""
    effective = dict(INTENDED, rollcall_project="mdemo", rollcall_app_port="8081")
    (said,) = drill.overrides(INTENDED, effective, "mdemo")
    assert said.startswith("-e rollcall_app_port=8081 (the drill's: 8091), -e rollcall_project=mdemo (the drill's: "
                           "sms-drill) override the scratch stack's own settings"), said
    assert "the drill would destroy the live stack mdemo with its volumes" in said
    assert "in the inventory (host or group vars) instead of -e" in said and "-e drill_project=NAME" in said


def test_overrides_of_other_settings_say_the_scratch_stack_would_use_them():
    effective = dict(INTENDED, rollcall_backup_dir="/var/backups/rollcall", rollcall_monitoring="true")
    (said,) = drill.overrides(INTENDED, effective, "sms")
    assert said.startswith("-e rollcall_backup_dir=/var/backups/rollcall (the drill's: /b/drills/sms-drill), "
                           "-e rollcall_monitoring=true (the drill's: False)"), said
    assert "the drill would run its scratch stack with them" in said and "destroy" not in said


def test_plan_refuses_a_scratch_app_pointed_at_the_live_database():
    """On a fleet the database is published for the app hosts: a scratch app on the live port would migrate, seed
    and write into the live database (found in Molecule fleet)."""
    assert "live database at 10.0.0.3:5432" in drill.plan("sms", "sms-drill", 8080, 8090, "10.0.0.3:5432",
                                                          " 10.0.0.3:5432")[0]
    assert drill.plan("sms", "sms-drill", 8080, 8090, "10.0.0.3:5432", "10.0.0.3:5442") == []
    assert drill.plan("sms", "sms-drill", 8080, 8090, None, None) == []  # one host: nothing published


@pytest.mark.parametrize("uploads_host,backup_uploads,expected_backup_uploads,shared", [
    ("", True, True, False),      # one host (the demo): the app container's uploads are backed up as configured
    ("", False, False, False),    # uploads backups off in the inventory stay off
    ("  ", True, True, False),    # a blank answer is no share
    ("db1", True, False, True),   # a fleet: the live stack's share is not the scratch stack's
    ("db1", False, False, True),
])
def test_scratch_settings_keep_the_scratch_stack_off_the_live_stacks_data(uploads_host, backup_uploads,
                                                                          expected_backup_uploads, shared):
    found = drill.scratch_settings(uploads_host, backup_uploads)
    assert found["offsite_host"] == "" and found["uploads_host"] == "" and not found["from_offsite"]
    assert found["offsite_subdir"] == "backups" and found["pitr_offsite_repo"] == "" and found["offsite_clean"] == []
    assert found["backup_uploads"] is expected_backup_uploads
    assert bool(found["notes"]) is shared
    if shared:
        assert "db1" in found["notes"][0] and "not touched" in found["notes"][0]


def test_with_a_backup_host_the_scratch_copies_go_to_their_own_directory_and_the_drill_recovers_from_there():
    found = drill.scratch_settings("db1", True, offsite_host="backup1", scratch="sms-drill")
    assert found["offsite_host"] == "backup1" and found["from_offsite"]
    assert found["offsite_subdir"] == "drill-sms-drill"  # never the live stack's "backups"
    assert found["offsite_clean"] == ["drill-sms-drill", "pitr/sms-drill", "pitr/sms-drill-rebuilt"]
    assert found["pitr_offsite_repo"] == "" and found["pitr_rebuilt_offsite_repo"] == ""  # a dump drill
    assert "backup1" in found["notes"][1] and "drill-sms-drill" in found["notes"][1]
    assert "WAL" not in found["notes"][1]


def test_with_a_backup_host_and_pitr_the_lost_and_the_rebuilt_cluster_archive_to_their_own_directories():
    found = drill.scratch_settings("", True, offsite_host=" backup1 ", scratch="sms-drill", pitr=True,
                                   offsite_mount="/srv/rollcall/offsite-pitr/")
    assert found["offsite_host"] == "backup1"
    assert found["pitr_offsite_repo"] == "/srv/rollcall/offsite-pitr/sms-drill"
    assert found["pitr_rebuilt_offsite_repo"] == "/srv/rollcall/offsite-pitr/sms-drill-rebuilt"
    assert "its WAL" in found["notes"][0]


def test_a_blank_scratch_name_with_a_backup_host_is_refused():
    with pytest.raises(drill.DrillError, match="directory of their own"):
        drill.scratch_settings("", True, offsite_host="backup1", scratch=" ")


def test_the_drill_runs_every_scratch_play_with_the_scratch_settings():
    """dr_drill.yml: the settings are computed before the first change and every play of the scratch stack (the
    anchor its teardown, deploy and restore imports share) takes them, with the safe values where the fact is absent."""
    plays = yaml.safe_load((ROOT / "playbooks/dr_drill.yml").read_text())
    plan = next(p for p in plays if p.get("name") == "Plan the drill")
    names = [t.get("name") for t in plan["tasks"]]
    assert names.index("Keep the scratch stack away from the live stack's data") < names.index(
        "Refuse a drill that would touch the live stack")
    imports = [p for p in plays if "ansible.builtin.import_playbook" in p]
    scratch = [p["vars"] for p in imports if p["ansible.builtin.import_playbook"] in ("teardown.yml", "deploy.yml",
                                                                                        "restore.yml")]
    assert len(scratch) >= 4
    for settings in scratch:
        # the backup host only through the settings (its own directory there), none where the fact is absent
        assert "drill_scratch_settings" in settings["rollcall_backup_offsite_host"]
        assert "default('')" in settings["rollcall_backup_offsite_host"]
        assert "offsite_subdir" in settings["rollcall_backup_offsite_subdir"]
        assert "drill_scratch_settings" in settings["rollcall_uploads_host"]
        assert "default('')" in settings["rollcall_uploads_host"]
        assert "drill_scratch_settings" in settings["rollcall_backup_uploads"]
        assert "default(false)" in settings["rollcall_backup_uploads"]
    restores = [p["vars"] for p in imports if p["ansible.builtin.import_playbook"] == "restore.yml"]
    recovery = [v for v in restores if v.get("drill_rebuilt")]
    assert len(recovery) == 1 and "from_offsite" in recovery[0]["restore_from"]
    assert "pitr_offsite_repo" in recovery[0]["pitr_from_repo"]
    lost = next(p for p in plays if p.get("name") == "DISASTER - the db host's disk is lost too (with a backup host)")
    assert plays.index(lost) < plays.index(next(p for p in plays if p.get("name", "").startswith("Rebuild")))
    assert "from_offsite" in lost["tasks"][0]["when"]


def _drill_task(name):
    plays = yaml.safe_load((ROOT / "playbooks/dr_drill.yml").read_text())
    for play in plays:
        for task in play.get("tasks", []):
            for inner in [task] + task.get("block", []):
                if inner.get("name") == name:
                    return inner
    raise AssertionError("no task %r in dr_drill.yml" % name)


@pytest.mark.parametrize("backups, picked", [
    # a restore's safety backup is the newest: the drill copies what a restore would take, not it
    ([{"name": "pg-3", "verified": True, "labels": {"reason": "safety backup before restoring pg-1"}},
      {"name": "pg-2", "verified": False, "labels": {}}, {"name": "pg-1", "verified": True, "labels": {}}], "pg-1"),
    ([{"name": "pg-2", "verified": True, "labels": {}}, {"name": "pg-1", "verified": True, "labels": {}}], "pg-2"),
    # only safety backups verified: the newest of them (still the live stack's data)
    ([{"name": "pg-3", "verified": True, "labels": {"reason": "safety backup before restoring pg-1"}},
      {"name": "pg-1", "verified": False, "labels": {}}], "pg-3"),
])
def test_drill_data_live_copies_the_backup_a_restore_would_take(backups, picked):
    import jinja2

    from ansible_collections.rollcall.ops.plugins.filter.backups import default_restore_backup
    from ansible_collections.rollcall.ops.plugins.module_utils import backup

    assert any(backup.is_safety_backup(b) for b in backups) or picked == backups[0]["name"]
    expression = _drill_task("Pick the backup the live stack would restore")["ansible.builtin.set_fact"][
        "drill_live_pick"]
    env = jinja2.Environment()
    template = expression.replace("rollcall.ops.default_restore_backup", "default_restore_backup")
    env.filters["default_restore_backup"] = default_restore_backup
    rendered = env.from_string(template).render(drill_live_list={"backups": backups}).strip()
    assert rendered == picked
    copy = _drill_task("Name the copy")["ansible.builtin.set_fact"]["drill_live_copy"]
    assert "drill_live_pick" in copy and "first" not in copy


# ------------------------------------------------------------------------------------------------ recovery point
def test_rpo_is_the_last_acknowledged_write_against_the_newest_survivor():
    point = drill.recovery_point(writes(10), survived=[1, 2, 3, 4])
    assert point["rpo_s"] == 6.0 and point["survived"] == 4 and point["lost"] == 6 and point["holes"] == []
    assert point["recovered_to_at"] == T0 + 3 and point["last_acked_at"] == T0 + 9


def test_nothing_lost_is_an_rpo_of_zero():
    assert drill.recovery_point(writes(5), survived=[1, 2, 3, 4, 5])["rpo_s"] == 0.0


def test_a_missing_write_older_than_the_recovery_point_is_a_hole():
    point = drill.recovery_point(writes(6), survived=[1, 3, 4])
    assert point["holes"] == [2] and point["rpo_s"] == 2.0


def test_nothing_survived_counts_the_whole_writing_time():
    point = drill.recovery_point(writes(4), survived=[])
    assert point["none_survived"] is True and point["rpo_s"] == 3.0 and point["recovered_to_at"] is None


def test_no_writes_measure_nothing():
    assert drill.recovery_point([], survived=[])["rpo_s"] is None


# ------------------------------------------------------------------------------------------------ judging
def test_worst_case_is_the_archive_timeout_with_pitr_and_the_backup_interval_without():
    assert drill.worst_case_rpo("pitr", 86400, 60) == 60.0
    assert drill.worst_case_rpo("dump", 86400, 60) == 86400.0
    with pytest.raises(drill.DrillError):
        drill.worst_case_rpo("magic")


def test_recovery_source_pitr_names_the_repository_and_the_backup_made_from_it():
    why = drill.recovery_source("pitr", {"name": "sms-20261203T000000Z", "finished_at": "x"})
    assert "point-in-time recovery" in why and "end of its archived WAL" in why and "sms-20261203T000000Z" in why


def test_recovery_source_pitr_on_mariadb_names_the_binary_log_replayed_onto_the_dump():
    why = drill.recovery_source("pitr", {"name": "mysql-sms-1-full"}, engine="mariadb")
    assert "binary log archived before the disaster, replayed onto the newest verified dump" in why
    assert "mysql-sms-1-full" in why and "WAL" not in why and "pgBackRest" not in why


def test_worst_case_why_per_engine_and_mode():
    assert drill.worst_case_why("pitr", "postgresql", 86400, 60) == "WAL archived at least every 1 min"
    assert drill.worst_case_why("pitr", "mariadb", 86400, 300) == (
        "binary log shipped every 5 min, as playbooks/archive_log.yml runs on its schedule")
    assert drill.worst_case_why("dump", "mariadb", 86400, 300) == "a backup every 1 d, no point-in-time recovery"


def test_the_mariadb_pitr_document_says_the_binary_log_and_its_shipping():
    doc = _doc(drill.recovery_point(writes(10), range(1, 10)), mode="pitr", engine="mariadb", archive_timeout_s=300)
    assert doc["worst_case_rpo_s"] == 300.0 and "binary log shipped every 5 min" in doc["worst_case_rpo_why"]
    assert "binary log" in doc["source_why"] and "WAL" not in drill.summary(doc)


def test_recovery_source_dump_names_the_dump_and_its_time():
    why = drill.recovery_source("dump", {"name": "sms-1", "finished_at": "2026-12-03T00:00:00Z"})
    assert why == "the newest verified dump, sms-1 (made 2026-12-03T00:00:00Z)"
    assert "unknown" in drill.recovery_source("dump", None)


def test_recovery_source_unknown_mode_is_refused():
    with pytest.raises(drill.DrillError):
        drill.recovery_source("magic", {})


def test_the_document_and_its_renderings_say_the_source():
    doc = _doc(drill.recovery_point(writes(10), range(1, 10)), mode="pitr")
    assert doc["source"] == "pitr" and "point-in-time recovery" in doc["source_why"]
    assert "recovered from pitr" in drill.summary(doc)
    assert "Recovered from: point-in-time" in drill.render_markdown(doc)
    assert "Recovered from: point-in-time" in drill.render_html(doc)


def test_judge_compares_each_seed_target():
    rows = {r["seed"]: r for r in drill.judge(rto_s=1000, rpo_s=30, worst_rpo_s=86400)}
    assert rows["000"]["rto_met"] and not rows["001"]["rto_met"] and rows["002"]["rto_met"]
    assert all(r["rpo_met"] for r in rows.values())
    assert not rows["000"]["worst_rpo_met"] and rows["001"]["worst_rpo_met"]


def _doc(point, rto_end=T0 + 120, mode="dump", checks=(), engine="postgresql", archive_timeout_s=60):
    return drill.document("rollcall", "rollcall-drill", engine, mode,
                          [{"step": "drill begins", "at": T0 - 60}, {"step": "DISASTER", "at": T0}], T0, rto_end,
                          point, list(checks), archive_timeout_s=archive_timeout_s, generated_at="2026-12-03T00:00:00Z")


def test_ok_with_pitr_inside_every_target():
    doc = _doc(drill.recovery_point(writes(10), range(1, 10)), mode="pitr")
    assert doc["status"] == "ok" and doc["reasons"] == [] and doc["rto_s"] == 120.0 and doc["rpo_s"] == 1.0


def test_warning_when_only_the_set_ups_worst_case_misses_a_target():
    doc = _doc(drill.recovery_point(writes(10), range(1, 10)), mode="dump")
    assert doc["status"] == "warning"
    assert len(doc["reasons"]) == 2 and all("not met by this set-up" in r for r in doc["reasons"])


def test_failed_on_a_hole_nothing_surviving_no_writes_a_failed_check_or_a_missed_rto():
    point = drill.recovery_point(writes(5), [1, 3])
    assert _doc(point, mode="pitr")["status"] == "failed"
    assert "not a consistent point" in _doc(point, mode="pitr")["reasons"][0]
    assert "none of the 3" in _doc(drill.recovery_point(writes(3), []), mode="pitr")["reasons"][0]
    assert "RPO was not measured" in _doc(drill.recovery_point([], []), mode="pitr")["reasons"][0]
    failed_check = _doc(drill.recovery_point(writes(3), [1, 2, 3]), mode="pitr",
                        checks=[{"name": "ready", "ok": False, "detail": "503"}])
    assert failed_check["status"] == "failed" and "check ready failed: 503" in failed_check["reasons"][0]
    slow = _doc(drill.recovery_point(writes(3), [1, 2, 3]), rto_end=T0 + 1000, mode="pitr")
    assert slow["status"] == "failed" and any("RTO 16.7 min is over seed 001" in r for r in slow["reasons"])


def test_renderers_show_the_figures_against_the_targets():
    doc = _doc(drill.recovery_point(writes(10), range(1, 8)), mode="dump")
    md = drill.render_markdown(doc)
    assert "RTO 2 min, RPO 3 s (7 of 10 acknowledged writes survived; recovered from dump)" in md
    assert "| 000 |" in md and "NOT met" in md and "| 60 | DISASTER |" in md
    page = drill.render_html(doc)
    assert "<svg" in page and "RTO 2 min" in page and "<script" not in page
    assert json.loads(drill.render_json(doc))["rpo_s"] == 3.0
    prom = drill.render_prometheus(doc)
    assert 'rollcall_dr_drill_rto_seconds{project="rollcall",engine="postgresql"} 120.0' in prom
    assert 'rollcall_dr_drill_ok{project="rollcall",engine="postgresql"} 1' in prom
    assert "NaN" in drill.render_prometheus(_doc(drill.recovery_point([], []), mode="pitr"))


# ------------------------------------------------------------------------------------------------ the modules
class _App(BaseHTTPRequestHandler):
    students = {}
    fail_after = None  # answer 503 to POSTs once this many students exist

    def log_message(self, *args):
        pass

    def _send(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.fail_after is not None and len(self.students) >= self.fail_after:
            return self._send(503, {"error": "down"})
        new_id = len(self.students) + 1
        self.students[new_id] = dict(body, id=new_id)
        return self._send(201, self.students[new_id])

    def do_GET(self):  # noqa: N802
        student_id = int(self.path.rsplit("/", 1)[1])
        if student_id in self.students:
            return self._send(200, self.students[student_id])
        return self._send(404, {"error": "not found"})


@pytest.fixture
def app():
    _App.students, _App.fail_after = {}, None
    server = ThreadingHTTPServer(("127.0.0.1", 0), _App)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield "http://127.0.0.1:%d" % server.server_address[1], _App
    server.shutdown()


def test_the_writer_records_acknowledged_writes_and_stops_on_failures(app):
    url, state = app
    state.fail_after = 4
    rc, result, _ = run_module("dr_writer", {"url": url, "prefix": "DR1", "interval": 0.05,
                                             "stop_after_failures": 2}, timeout=60)
    assert rc == 0, result
    assert [w["id"] for w in result["writes"]] == [1, 2, 3, 4] and result["failures"] == 2
    assert result["stopped_because"] == "failures" and "503" in result["last_error"]
    assert state.students[1]["student_number"] == "DR1000001"


def test_the_writer_refuses_a_url_off_loopback_and_writes_nothing_in_check_mode(app):
    url, state = app
    rc, result, _ = run_module("dr_writer", {"url": "http://10.0.0.5:8080", "prefix": "DR1"}, timeout=60)
    assert rc != 0 and "stays on loopback" in result["msg"]
    rc, result, _ = run_module("dr_writer", {"url": url, "prefix": "DR1"}, "--check", timeout=60)
    assert rc == 0 and result["writes"] == [] and state.students == {}


def test_the_report_counts_survivors_through_the_app_and_writes_once(app, tmp_path):
    url, state = app
    acked = writes(5)
    for w in acked[:3]:
        state.students[w["id"]] = {"id": w["id"], "student_number": w["number"]}
    state.students[4] = {"id": 4, "student_number": "SOMEONE-ELSE"}  # an id reused by another row is not a survivor
    args = {"url": url, "writes": acked, "disaster_at": T0 + 5, "recovered_at": T0 + 65, "project": "rollcall",
            "drill_project": "rollcall-drill", "engine": "postgresql", "mode": "pitr",
            "directory": str(tmp_path / "reports"), "name": "dr-test", "textfile": str(tmp_path / "dr.prom"),
            "events": [{"step": "DISASTER", "at": T0 + 5}]}
    rc, result, _ = run_module("dr_report", args, timeout=60)
    assert rc == 0, result
    assert result["status"] == "ok" and result["rto_s"] == 60.0 and result["rpo_s"] == 2.0
    assert result["recovery_point"]["survived"] == 3 and result["changed"] is True
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == ["dr-test.html", "dr-test.json", "dr-test.md"]
    assert "rollcall_dr_drill_rpo_seconds" in (tmp_path / "dr.prom").read_text()
    rc, result, _ = run_module("dr_report", args, timeout=60)
    assert rc != 0 and "already exists" in result["msg"]


def test_the_report_says_when_the_rebuilt_app_does_not_answer(tmp_path):
    args = {"url": "http://127.0.0.1:9", "writes": writes(2), "disaster_at": T0, "recovered_at": T0 + 1,
            "project": "p", "drill_project": "p-drill", "engine": "sqlite", "directory": str(tmp_path)}
    rc, result, _ = run_module("dr_report", args, timeout=60)
    assert rc != 0 and "did not answer" in result["msg"] and list(tmp_path.iterdir()) == []


def test_the_report_host_writes_from_the_survivors_the_app_host_found(tmp_path):
    """Given survived (an earlier call's answer on the app host), the report host does not ask the app."""
    args = {"url": "http://127.0.0.1:9", "writes": writes(4), "survived": [1, 2], "disaster_at": T0 + 4,
            "recovered_at": T0 + 34, "project": "p", "drill_project": "p-drill", "engine": "mariadb", "mode": "pitr",
            "directory": str(tmp_path), "name": "dr-x"}
    rc, result, _ = run_module("dr_report", args, timeout=60)
    assert rc == 0, result
    assert result["rpo_s"] == 2.0 and result["survived"] == [1, 2] and (tmp_path / "dr-x.md").exists()


# -------------------------------------------------------------------------------------------- molecule backup
def test_molecule_backup_drills_each_engine_on_ports_and_paths_of_its_own():
    """molecule/backup's drills run beside the other scenarios on one engine: a drill per engine, PITR on PostgreSQL
    and MariaDB (the binary log), the dump on SQLite, the live and scratch (+10) app ports used by no other scenario,
    each host's files on its own bind mount, which cleanup.yml removes with the stacks."""
    config = yaml.safe_load((ROOT / "molecule/backup/molecule.yml").read_text())
    hosts = config["provisioner"]["inventory"]["host_vars"]
    assert sorted(h["rollcall_db_engine"] for h in hosts.values()) == ["mariadb", "postgresql", "sqlite"]
    assert sorted(h["rollcall_db_engine"] for h in hosts.values() if h["dr_pitr"]) == ["mariadb", "postgresql"]
    ports = [p for h in hosts.values() for p in (h["rollcall_app_port"], h["rollcall_app_port"] + 10)]
    others = {int(p) for path in (ROOT / "molecule").glob("*/molecule.yml") if path.parent.name != "backup"
              for p in re.findall(r"rollcall_app_port: (\d+)", path.read_text())}
    assert len(set(ports)) == len(ports) and not set(ports) & others, (ports, others)
    cleanup = (ROOT / "molecule/backup/cleanup.yml").read_text()
    for platform in config["platforms"]:
        name, vars_ = platform["name"], hosts[platform["name"]]
        assert vars_["rollcall_project"] == name
        assert "%s:%s" % (vars_["dr_dir"], vars_["dr_dir"]) in platform["volumes"]
        assert vars_["rollcall_drill_backup_dir"].startswith(vars_["dr_dir"] + "/")
        assert vars_["dr_dir"] in cleanup and name.split("-")[-1] in re.search(r"cleanup_names: '(.*)'", cleanup)[1]


def test_a_deploy_takes_schema_answers_of_its_own_run_only():
    """The drill imports deploy.yml twice in one ansible-playbook run (the scratch stack, then its rebuild after the
    disaster): on a fleet the rebuild once took the first deploy's schema answer (learned by an earlier batch) and
    skipped the migration of the empty database. Each playbook run gets an id in preflight (the same on every host:
    run_once) and the schema question's key includes it."""
    preflight = yaml.safe_load((ROOT / "playbooks/preflight.yml").read_text())
    checks = next(p for p in preflight if p.get("name", "").startswith("Check every target host's settings"))
    named = next(t for t in checks["tasks"] if t.get("name") == "Name this playbook run")
    assert named["run_once"] is True and "now(" in named["ansible.builtin.set_fact"]["rollcall_run_id"]
    release = yaml.safe_load((ROOT / "roles/sms_app/tasks/release.yml").read_text())
    key = next(t for t in release if "sms_app_schema_key" in t.get("ansible.builtin.set_fact", {}))
    assert "rollcall_run_id" in key["ansible.builtin.set_fact"]["sms_app_schema_key"]
