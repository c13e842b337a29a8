"""plugins/module_utils/pitr.py: the decisions of point-in-time recovery, a test per branch (no server needed)."""

import json

import pytest

from ansible_collections.rollcall.ops.plugins.module_utils import pitr
from ansible_collections.rollcall.ops.plugins.module_utils.pitr import PITRError

DAY = 86400
NOW = 1796274959 + 10 * DAY


def backup(label, kind, stop, error=False):
    return {"label": label, "type": kind, "stop": stop, "error": error}


# -- configure_plan ------------------------------------------------------------------------------------------------
WANTED = pitr.wanted_settings("main", 60)


def test_wanted_settings_archive_to_the_stanza_within_the_timeout():
    assert WANTED == {"archive_mode": "on", "archive_command": "pgbackrest --stanza=main archive-push %p",
                      "archive_timeout": "60", "wal_level": "replica"}


def test_configure_sets_what_the_file_lacks_and_asks_for_a_restart():
    plan = pitr.configure_plan({"archive_mode": "off", "wal_level": "replica"}, {}, WANTED)
    assert plan["set"] == WANTED and plan["reset"] == [] and plan["restart"]


def test_configure_is_a_no_op_when_file_and_server_agree():
    plan = pitr.configure_plan({"archive_mode": "on", "wal_level": "replica"}, dict(WANTED), WANTED)
    assert plan == {"set": {}, "reset": [], "restart": False}


def test_configure_restarts_when_the_file_is_right_but_the_server_not_yet():
    plan = pitr.configure_plan({"archive_mode": "off", "wal_level": "replica"}, dict(WANTED), WANTED)
    assert plan == {"set": {}, "reset": [], "restart": True}


def test_configure_disabled_resets_ours_and_restarts_to_stop_archiving():
    plan = pitr.configure_plan({"archive_mode": "on", "wal_level": "replica"}, dict(WANTED), WANTED, enabled=False)
    assert plan["reset"] == sorted(WANTED) and plan["set"] == {} and plan["restart"]


def test_configure_disabled_on_a_stack_that_never_had_it_changes_nothing():
    plan = pitr.configure_plan({"archive_mode": "off", "wal_level": "replica"}, {}, WANTED, enabled=False)
    assert plan == {"set": {}, "reset": [], "restart": False}


# -- archiving (is point-in-time recovery on for a stack whose run does not say) ----------------------------------
def test_archiving_with_our_settings_in_the_file():
    assert pitr.archiving(dict(WANTED))


def test_archiving_not_without_the_settings():
    assert not pitr.archiving({})


def test_archiving_not_when_archive_mode_is_off():
    assert not pitr.archiving(dict(WANTED, archive_mode="off"))


def test_archiving_not_to_another_tool_or_stanza():
    assert not pitr.archiving(dict(WANTED, archive_command="cp %p /mnt/wal/%f"))
    assert not pitr.archiving(dict(WANTED), stanza="other")


def test_sql_literal_doubles_quotes():
    assert pitr.sql_literal("a'b") == "'a''b'"


# -- choose_type ---------------------------------------------------------------------------------------------------
def test_first_backup_is_full():
    assert pitr.choose_type([], NOW)[0] == "full"


def test_old_full_gives_a_new_full():
    assert pitr.choose_type([backup("F", "full", NOW - 8 * DAY)], NOW)[0] == "full"


def test_day_old_base_gives_a_diff():
    kind, why = pitr.choose_type([backup("F", "full", NOW - 2 * DAY), backup("I", "incr", NOW - 3600)], NOW)
    assert kind == "diff" and "diff every" in why


def test_recent_base_gives_an_incr():
    kind, why = pitr.choose_type([backup("F", "full", NOW - 2 * DAY), backup("D", "diff", NOW - 3600)], NOW)
    assert kind == "incr" and why.startswith("the newest full backup is %d s old and a diff or full one is recent"
                                             % (2 * DAY)), why


def test_failed_full_does_not_count():
    assert pitr.choose_type([backup("F", "full", NOW - 60, error=True)], NOW)[0] == "full"


def test_requested_type_wins():
    assert pitr.choose_type([backup("F", "full", NOW - 8 * DAY)], NOW, requested="incr") == ("incr", "asked for")


def test_requested_incr_without_a_full_is_a_full():
    kind, why = pitr.choose_type([], NOW, requested="diff")
    assert kind == "full" and "no full backup" in why


def test_requested_type_unknown_is_refused():
    with pytest.raises(PITRError):
        pitr.choose_type([], NOW, requested="weekly")


# -- parse_info / window -------------------------------------------------------------------------------------------
INFO = [{"archive": [{"id": "15-1", "max": "000000010000000000000007", "min": "000000010000000000000001"}],
         "backup": [
             {"archive": {"start": "000000010000000000000004", "stop": "000000010000000000000004"}, "error": False,
              "info": {"size": 2, "repository": {"size": 1}}, "label": "20261203-051556F_20261203-060000I",
              "prior": "20261203-051556F", "timestamp": {"start": 1796278000, "stop": 1796278003}, "type": "incr"},
             {"archive": {"start": "000000010000000000000002", "stop": "000000010000000000000003"}, "error": False,
              "info": {"size": 22987928, "repository": {"size": 4543904}}, "label": "20261203-051556F",
              "prior": None, "timestamp": {"start": 1796274956, "stop": 1796274959}, "type": "full"}],
         "cipher": "aes-256-cbc", "name": "main", "status": {"code": 0, "message": "ok"}}]


def test_parse_info_sorts_backups_and_reads_the_archive_range():
    info = pitr.parse_info(json.dumps(INFO))
    assert info["exists"] and [b["type"] for b in info["backups"]] == ["full", "incr"]
    assert info["newest_backup"]["label"].endswith("I") and info["oldest_backup"]["stop"] == 1796274959
    assert info["archive_max"] == "000000010000000000000007" and info["backups"][0]["finished_at"].endswith("Z")


def test_parse_info_without_the_stanza():
    info = pitr.parse_info("[]")
    assert not info["exists"] and info["newest_backup"] is None


def test_parse_info_stanza_without_backups_exists():
    info = pitr.parse_info(json.dumps([{"name": "main", "status": {"code": 2, "message": "no valid backups"}}]))
    assert info["exists"] and info["newest_backup"] is None


# Two repositories (the local one and the backup host's): pgBackRest 2.45's output for a stanza whose repo2 has
# one full backup of its own and repo1 a full and an incremental one.
TWO_REPOS = [{
    "archive": [{"database": {"id": 1, "repo-key": 1}, "id": "15-1", "min": "000000010000000000000001",
                 "max": "000000010000000000000009"},
                {"database": {"id": 1, "repo-key": 2}, "id": "15-1", "min": "000000010000000000000005",
                 "max": "000000010000000000000009"}],
    "backup": [dict(INFO[0]["backup"][1], database={"id": 1, "repo-key": 1}),
               dict(INFO[0]["backup"][0], database={"id": 1, "repo-key": 1}),
               {"archive": {"start": "000000010000000000000005", "stop": "000000010000000000000005"},
                "database": {"id": 1, "repo-key": 2}, "error": False, "info": {"size": 3, "repository": {"size": 2}},
                "label": "20261203-061000F", "prior": None, "timestamp": {"start": 1796278200, "stop": 1796278210},
                "type": "full"}],
    "name": "main", "cipher": "aes-256-cbc",
    "repo": [{"key": 1, "cipher": "aes-256-cbc", "status": {"code": 0, "message": "ok"}},
             {"key": 2, "cipher": "aes-256-cbc", "status": {"code": 0, "message": "ok"}}],
    "status": {"code": 0, "message": "ok"}}]


def test_parse_info_two_repositories_one_at_a_time():
    local = pitr.parse_info(json.dumps(TWO_REPOS), repo_key=1)
    offsite = pitr.parse_info(json.dumps(TWO_REPOS), repo_key=2)
    assert [b["label"] for b in local["backups"]] == ["20261203-051556F", "20261203-051556F_20261203-060000I"]
    assert [b["label"] for b in offsite["backups"]] == ["20261203-061000F"] and offsite["backups"][0]["repo"] == 2
    assert local["archive_min"] == "000000010000000000000001"
    assert offsite["archive_min"] == "000000010000000000000005"


def test_parse_info_of_repository_one_on_a_single_repository_stanza_is_the_same():
    # what a live restore and backup_info read (repository 1) on a stack without the backup host's repository
    assert pitr.parse_info(json.dumps(INFO), repo_key=1)["backups"] == pitr.parse_info(json.dumps(INFO))["backups"]
    assert pitr.parse_info(json.dumps(INFO), repo_key=1)["exists"]


def test_parse_info_two_repositories_together():
    both = pitr.parse_info(json.dumps(TWO_REPOS))
    assert len(both["backups"]) == 3 and both["newest_backup"]["label"] == "20261203-061000F"
    assert [r["key"] for r in both["repos"]] == [1, 2] and both["exists"]


def test_parse_info_stanza_missing_in_one_repository_does_not_exist_yet():
    # repo2 added to a stack that archived to repo1 only: pgBackRest says "different across repos" (4)
    doc = [dict(TWO_REPOS[0], status={"code": 4, "message": "different across repos"},
                repo=[{"key": 1, "status": {"code": 0, "message": "ok"}},
                      {"key": 2, "status": {"code": 1, "message": "missing stanza path"}}])]
    assert not pitr.parse_info(json.dumps(doc))["exists"]
    assert pitr.parse_info(json.dumps(doc), repo_key=1)["exists"]
    assert "repo2: missing stanza path" in pitr.parse_info(json.dumps(doc))["status"]


def test_parse_info_repository_without_backup_yet_exists():
    doc = [dict(TWO_REPOS[0], status={"code": 4, "message": "different across repos"},
                repo=[{"key": 1, "status": {"code": 0, "message": "ok"}},
                      {"key": 2, "status": {"code": 2, "message": "no valid backups"}}])]
    assert pitr.parse_info(json.dumps(doc))["exists"]


def test_parse_info_unknown_repository_is_an_error():
    with pytest.raises(PITRError, match="no repository 3"):
        pitr.parse_info(json.dumps(TWO_REPOS), repo_key=3)


def test_choose_type_reads_one_repositorys_own_chain():
    # two days later: repo1's full backup is two days old (a diff is due); repo2's own full one is younger, and
    # its type is chosen from its own chain
    now = 1796274959 + 2 * DAY
    local = pitr.parse_info(json.dumps(TWO_REPOS), repo_key=1)["backups"]
    offsite = pitr.parse_info(json.dumps(TWO_REPOS), repo_key=2)["backups"]
    assert pitr.choose_type(local, now)[0] == "diff"
    assert pitr.choose_type(offsite, 1796278210 + 3600)[0] == "incr"
    assert pitr.choose_type([], 1796278210)[0] == "full"  # a new off-host repository starts with a full one


def test_parse_info_not_json_is_an_error():
    with pytest.raises(PITRError):
        pitr.parse_info("ERROR: [055]")


ARCHIVER = {"last_archived_wal": "000000010000000000000007", "last_archived_time": 1796278600.5,
            "last_failed_wal": None, "last_failed_time": None}


def test_window_reaches_the_last_archived_segment():
    win = pitr.window(pitr.parse_info(json.dumps(INFO)), ARCHIVER, 1796278660)
    assert win["earliest"] == 1796274959 and win["latest"] == 1796278600.5 and win["rpo_s"] == 59
    assert "last WAL segment" in win["latest_why"] and not win["archiving_failing"]


def test_window_without_a_backup_is_none():
    assert pitr.window(pitr.parse_info("[]"), ARCHIVER, NOW) is None


def test_window_ignores_a_segment_the_repository_does_not_hold():
    archiver = dict(ARCHIVER, last_archived_wal="000000010000000000000009")
    win = pitr.window(pitr.parse_info(json.dumps(INFO)), archiver, NOW)
    assert win["latest"] == 1796278003 and "newest backup" in win["latest_why"]


def test_window_of_a_lost_clusters_repository_ends_at_its_newest_backup():
    win = pitr.window(pitr.parse_info(json.dumps(INFO)), None, NOW)
    assert win["latest"] == 1796278003 and "gone" in win["latest_why"] and "to_time=latest" in win["latest_why"]
    assert not win["archiving_failing"]


def test_window_says_when_archiving_fails():
    archiver = dict(ARCHIVER, last_failed_wal="000000010000000000000008", last_failed_time=1796278700)
    win = pitr.window(pitr.parse_info(json.dumps(INFO)), archiver, NOW)
    assert win["archiving_failing"] and "000000010000000000000008" in win["archiving_error"]


# -- validate_target -----------------------------------------------------------------------------------------------
WIN = pitr.window(pitr.parse_info(json.dumps(INFO)), ARCHIVER, 1796278660)


def test_target_latest_is_none():
    assert pitr.validate_target(None, WIN, NOW) is None and pitr.validate_target("latest", WIN, NOW) is None


def test_target_inside_the_window():
    assert pitr.validate_target(pitr.iso(1796276000), WIN, NOW) == 1796276000


def test_target_with_an_offset_and_a_space():
    assert pitr.validate_target("2026-12-03 07:33:20+02", WIN, NOW) == pitr.parse_time("2026-12-03T05:33:20Z")


def test_target_without_a_backup_is_refused():
    with pytest.raises(PITRError, match="no pgBackRest backup"):
        pitr.validate_target(None, None, NOW)


def test_target_without_time_zone_is_refused():
    with pytest.raises(PITRError, match="no time zone"):
        pitr.validate_target("2026-12-03T05:20:00", WIN, NOW)


def test_target_not_a_time_is_refused():
    with pytest.raises(PITRError, match="not an ISO 8601"):
        pitr.validate_target("yesterday", WIN, NOW)


def test_target_in_the_future_is_refused():
    with pytest.raises(PITRError, match="future"):
        pitr.validate_target(pitr.iso(NOW + 60), WIN, NOW)


def test_target_before_the_oldest_backup_is_refused():
    with pytest.raises(PITRError, match="before the recoverable window"):
        pitr.validate_target(pitr.iso(1796274000), WIN, NOW)


def test_target_after_the_newest_archived_point_is_refused():
    with pytest.raises(PITRError, match="after the newest point"):
        pitr.validate_target(pitr.iso(1796278630), WIN, NOW)


def test_target_after_the_archived_point_is_fine_when_the_restore_archives_up_to_now():
    assert pitr.validate_target(pitr.iso(1796278630), WIN, NOW, reach_now=True) == 1796278630


def test_pg_time_is_what_pgbackrest_reads():
    assert pitr.pg_time(1796274993.261357) == "2026-12-03 05:16:33.261357+00"


# -- verify ----------------------------------------------------------------------------------------------------------
VERIFY_OK = """\
P00 DETAIL: archiveId: 15-1, wal start: 000000010000000000000001, wal stop: 000000010000000000000006
stanza: main
status: ok
  archiveId: 15-1, total WAL checked: 6, total valid WAL: 6
    missing: 0, checksum invalid: 0, size invalid: 0, other: 0
  backup: 20261203-051556F, status: valid, total files checked: 964, total valid files: 964
    missing: 0, checksum invalid: 0, size invalid: 0, other: 0
"""
VERIFY_GAP = VERIFY_OK.replace(
    "wal stop: 000000010000000000000006",
    "wal stop: 000000010000000000000004\n2026 P00 DETAIL: archiveId: 15-1, wal start: 000000010000000000000006, "
    "wal stop: 000000010000000000000006")


def test_segments_roll_over_the_log_file():
    assert pitr.next_segment("0000000100000000000000FF") == "000000010000000100000000"
    assert pitr.prev_segment("000000010000000100000000") == "0000000100000000000000FF"
    assert pitr.next_segment("000000010000000000000004") == "000000010000000000000005"


def test_verify_ok_passes():
    verdict = pitr.judge_verify(0, pitr.parse_verify(VERIFY_OK))
    assert verdict["passed"] and "no gap" in verdict["message"]


def test_verify_finds_a_gap_that_pgbackrest_reports_only_as_detail():
    verdict = pitr.judge_verify(0, pitr.parse_verify(VERIFY_GAP))
    assert not verdict["passed"]
    assert "WAL gap in archive 15-1: segment 000000010000000000000005 missing" in verdict["message"]


def test_verify_names_a_wider_gap_as_a_range():
    gaps = pitr.wal_gaps({"15-1": [("000000010000000000000001", "000000010000000000000002"),
                                   ("000000010000000000000006", "000000010000000000000007")]})
    assert gaps == [("15-1", "000000010000000000000003", "000000010000000000000005")]


def test_a_new_timeline_is_not_a_gap():
    assert pitr.wal_gaps({"15-1": [("000000010000000000000001", "000000010000000000000004"),
                                   ("000000020000000000000004", "000000020000000000000005")]}) == []


def test_verify_damaged_backup_and_segments_fail():
    text = VERIFY_OK.replace("status: valid", "status: invalid").replace("total valid WAL: 6", "total valid WAL: 5") \
        .replace("status: ok", "status: error")
    verdict = pitr.judge_verify(0, pitr.parse_verify(text))
    assert len(verdict["problems"]) == 3 and "1 of 6 WAL segments" in verdict["message"]


def test_verify_counts_bad_files_when_nothing_else_says():
    text = VERIFY_OK.replace("other: 0\n  backup", "other: 2\n  backup")
    assert "2 files are missing" in pitr.judge_verify(0, pitr.parse_verify(text))["message"]


def test_verify_failing_command_fails():
    verdict = pitr.judge_verify(28, pitr.parse_verify(""), "ERROR: [028]: backup and archive info files missing")
    assert not verdict["passed"] and "exit code 28" in verdict["message"]


def test_verify_printing_nothing_fails():
    assert not pitr.judge_verify(0, pitr.parse_verify(""))["passed"]


# -- the scratch instance ------------------------------------------------------------------------------------------
MOUNTS = [{"Type": "volume", "Name": "p-dbdata", "Destination": pitr.DATA_DIR},
          {"Type": "bind", "Source": "/srv/conf", "Destination": pitr.CONFIG_DIR},
          {"Type": "volume", "Name": "p-pitr", "Destination": pitr.REPO_DIR}]


def test_scratch_mounts_are_read_only_copies_of_the_live_ones():
    assert pitr.scratch_mounts(MOUNTS) == [("/srv/conf", pitr.CONFIG_DIR, True), ("p-pitr", pitr.REPO_DIR, True)]
    assert pitr.data_volume(MOUNTS) == "p-dbdata"


def test_scratch_mounts_missing_means_pitr_is_off():
    with pytest.raises(PITRError, match="rollcall_pitr: true"):
        pitr.scratch_mounts(MOUNTS[:1])


def test_scratch_mounts_from_another_repository_keep_the_live_configuration():
    assert pitr.scratch_mounts(MOUNTS, "/srv/old-repo") == [("/srv/conf", pitr.CONFIG_DIR, True),
                                                            ("/srv/old-repo", pitr.REPO_DIR, True)]


def test_scratch_mounts_from_another_repository_still_need_the_configuration():
    with pytest.raises(PITRError, match=pitr.CONFIG_DIR):
        pitr.scratch_mounts(MOUNTS[:1], "/srv/old-repo")


def test_repo_source_without_repo_is_the_live_one():
    assert pitr.repo_source(None, MOUNTS) == "live"
    assert pitr.repo_source("", MOUNTS) == "live"


def test_repo_source_naming_the_live_repository_is_the_live_one():
    assert pitr.repo_source("p-pitr", MOUNTS) == "live"
    bound = MOUNTS[:2] + [{"Type": "bind", "Source": "/b/pitr/p", "Destination": pitr.REPO_DIR}]
    assert pitr.repo_source("/b/pitr/p/", bound) == "live"


OFFSITE_MOUNTS = MOUNTS + [{"Type": "bind", "Source": "/srv/rollcall/offsite-pitr/p",
                             "Destination": pitr.OFFSITE_REPO_DIR}]


def test_repo_source_offsite():
    assert pitr.repo_source("offsite", OFFSITE_MOUNTS) == "offsite"
    assert pitr.repo_source("/srv/rollcall/offsite-pitr/p/", OFFSITE_MOUNTS) == "offsite"


def test_scratch_mounts_offsite_is_the_backup_hosts_repository_as_repository_one():
    assert pitr.scratch_mounts(OFFSITE_MOUNTS, "offsite") == [
        ("/srv/conf", pitr.CONFIG_DIR, True), ("/srv/rollcall/offsite-pitr/p", pitr.REPO_DIR, True)]


def test_scratch_mounts_offsite_without_one_says_how_to_get_it():
    with pytest.raises(PITRError, match="rollcall_backup_offsite_host"):
        pitr.scratch_mounts(MOUNTS, "offsite")


def test_restore_plan_offsite_reads_the_backup_hosts_repository():
    plan = pitr.restore_plan(None, "p-db", "s", "v", "i", offsite="/srv/rollcall/offsite-pitr/p")
    assert "both repositories" in plan[0] and "/srv/rollcall/offsite-pitr/p" in plan[0] and "--repo=1" in plan[2]


def test_repo_source_another_repository():
    assert pitr.repo_source("/b/pitr/p", MOUNTS) == "repository"
    assert pitr.repo_source("/b/pitr/p", MOUNTS[:1]) == "repository"


def test_preview_target_latest_is_none():
    assert pitr.preview_target("latest", NOW) is None
    assert pitr.preview_target(None, NOW) is None


def test_preview_target_parses_a_time():
    assert pitr.preview_target("2026-12-03T05:33:20Z", 1796276000 + 10) == 1796276000


def test_preview_target_in_the_future_is_refused():
    with pytest.raises(PITRError, match="future"):
        pitr.preview_target("2026-12-03T05:33:20Z", 1796276000 - 10)


def test_restore_args_latest_replays_everything_without_a_target_action():
    assert pitr.restore_args(None) == ["restore", "--repo=1", "--type=default", "--archive-mode=off"]


def test_restore_args_in_parallel_only_when_asked():
    assert pitr.restore_args(None, process_max=2)[-1] == "--process-max=2"
    assert not any(a.startswith("--process-max") for a in pitr.restore_args(None, process_max=1))


def test_restore_args_to_a_time_promote_there():
    assert pitr.restore_args(1796276000) == ["restore", "--repo=1", "--type=time",
                                             "--target=2026-12-03 05:33:20.000000+00", "--target-action=promote",
                                             "--archive-mode=off"]


def test_restore_plan_from_another_repository_says_so():
    plan = pitr.restore_plan(None, "p-db", "s", "v", "i", repo="/b/pitr/old")
    assert "/b/pitr/old" in plan[0] and "not p-db's own" in plan[0]


def test_restore_plan_names_the_target_and_the_scratch_instance():
    plan = pitr.restore_plan(1796276000, "p-db", "p-db-pitr", "p-db-pitr-data", "rollcall/postgres:15")
    assert any("--type=time --target=2026-12-03 05:33:20.000000+00 --target-action=promote" in s for s in plan)
    assert any("p-db-pitr-data" in s for s in plan)
    assert "newest archived point" in pitr.restore_plan(None, "p-db", "s", "v", "i")[-3]


def test_restore_passes_when_promoted_at_or_before_the_target():
    verdict = pitr.judge_restore(100.0, {"started": True, "in_recovery": False, "replay_time": 99.5, "counts": {}})
    assert verdict == {"passed": True, "problems": []}


def test_restore_still_in_recovery_fails():
    verdict = pitr.judge_restore(None, {"started": True, "in_recovery": True, "replay_time": None, "counts": {}})
    assert "still in recovery" in verdict["problems"][0]


def test_restore_past_the_target_fails():
    verdict = pitr.judge_restore(100.0, {"started": True, "in_recovery": False, "replay_time": 101, "counts": {}})
    assert "after the target" in verdict["problems"][0]


def test_restore_unreadable_fails():
    verdict = pitr.judge_restore(None, {"started": True, "in_recovery": False, "counts": None})
    assert "could not be read" in verdict["problems"][0]


def test_restore_out_of_wal_says_gap():
    log = "FATAL:  recovery ended before configured recovery target was reached\n"
    verdict = pitr.judge_restore(100.0, {"started": False, "log": log})
    assert "action=verify" in verdict["problems"][0]


def test_restore_not_started_quotes_the_log():
    verdict = pitr.judge_restore(None, {"started": False, "log": "LOG: a\nFATAL: could not open file\n"})
    assert verdict["problems"] == ["the scratch instance did not start: FATAL: could not open file"]


def test_summary_answers_the_newest_recoverable_point():
    info = pitr.parse_info(json.dumps(INFO))
    got = pitr.summary(info, WIN)
    assert got["newest_recoverable_at"] == "2026-12-03T06:16:40.500000Z" and got["newest_backup_type"] == "incr"
    assert got["rpo_s"] == 59 and got["archiving_error"] is None and got["backups"] == 2


def test_summary_without_a_backup():
    got = pitr.summary(pitr.parse_info("[]"), None)
    assert got["newest_recoverable_at"] is None and got["newest_backup"] is None
