"""backup.prune_plan: retention decisions, without files."""

import datetime
import json

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.rollcall.ops.plugins.module_utils.backup import (
    compare_counts,
    describe_duration,
    parse_duration,
    prune_plan,
)

START = datetime.datetime(2026, 1, 1, 2, 0, tzinfo=datetime.UTC)


def items(days, verified=None, failed=()):
    """One backup a day for ``days`` days (newest last in time); ``verified`` indexes passed verification."""
    out = []
    for i in range(days):
        when = START + datetime.timedelta(days=i)
        status = "failed" if i in failed else ("passed" if verified is None or i in verified else None)
        out.append({"name": "b%03d" % i, "finished_at": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "verified": status == "passed",
                    "verification": {"status": status} if status else None})
    return out


def test_gfs_keeps_last_daily_weekly_monthly():
    keep, delete, reasons = prune_plan(items(120), keep_last=3, keep_daily=7, keep_weekly=4, keep_monthly=3)
    assert keep[:7] == ["b%03d" % i for i in range(119, 112, -1)]
    assert len(set(keep)) == len(keep) and not set(keep) & set(delete)
    assert len(keep) + len(delete) == 120
    months = {reasons[n] for n in keep if "monthly" in reasons[n]}
    assert months, "monthly windows keep something beyond the dailies"
    assert "b000" in delete


def test_never_deletes_the_newest_verified_backup():
    keep, delete, reasons = prune_plan(items(30, verified={3}), keep_last=1, keep_daily=0, keep_weekly=0,
                                       keep_monthly=0)
    assert "b003" in keep and reasons["b003"] == "the newest verified backup"
    assert keep == ["b029", "b003"]


def test_a_failed_newest_verification_deletes_nothing():
    keep, delete, reasons = prune_plan(items(30, failed={29}), keep_last=1, keep_daily=0, keep_weekly=0,
                                       keep_monthly=0)
    assert delete == [] and len(keep) == 30
    assert "failed verification" in reasons["b000"]


def test_never_leaves_zero_and_handles_empty():
    keep, delete, _ = prune_plan(items(1), keep_last=1, keep_daily=0, keep_weekly=0, keep_monthly=0)
    assert keep == ["b000"] and delete == []
    assert prune_plan([], 1, 0, 0, 0) == ([], [], {})


def test_damaged_entries_are_never_planned_for_deletion():
    entries = items(3) + [{"name": "broken", "error": "bad manifest"}]
    keep, delete, _ = prune_plan(entries, keep_last=1, keep_daily=0, keep_weekly=0, keep_monthly=0)
    assert "broken" not in keep + delete


def test_compare_counts():
    assert compare_counts({"a": 1, "b": 2}, {"a": 1, "b": 2}) == []
    assert compare_counts({"a": 1, "b": 2}, {"a": 1, "c": 2}) == [
        "b: backup had 2 rows, restore has None", "c: backup had None rows, restore has 2"]


def test_a_kept_differential_keeps_its_full_backup():
    entries = items(10)
    for i in range(1, 10):  # b000 full, b001..b009 differentials on it (SQL Server)
        entries[i]["parent"] = "b000"
    keep, delete, reasons = prune_plan(entries, keep_last=2, keep_daily=0, keep_weekly=0, keep_monthly=0)
    assert keep == ["b009", "b008", "b000"]
    assert reasons["b000"] == "the full backup that kept differential b009 builds on"
    assert "b000" not in delete and len(delete) == 7


def test_a_full_backup_whose_differentials_all_go_may_go_too():
    entries = items(6)
    entries[1]["parent"] = entries[2]["parent"] = "b000"  # old chain
    entries[4]["parent"] = entries[5]["parent"] = "b003"  # new chain
    keep, delete, _ = prune_plan(entries, keep_last=2, keep_daily=0, keep_weekly=0, keep_monthly=0)
    assert keep == ["b005", "b004", "b003"] and delete == ["b002", "b001", "b000"]


# ------------------------------------------------------------------ keep_within (issue 14 item 3, seed 002)
STAMP = "%Y-%m-%dT%H:%M:%SZ"
NOW = datetime.datetime(2026, 3, 10, 12, 0, 30, tzinfo=datetime.UTC)
ONLY_LAST = dict(keep_last=1, keep_daily=0, keep_weekly=0, keep_monthly=0)


def snapshots(count, every=datetime.timedelta(minutes=15), newest=NOW - datetime.timedelta(seconds=30)):
    """``count`` verified backups ``every`` apart, the newest first, finished at ``newest`` (30 s before NOW: the
    prune runs after the backup was verified)."""
    return [{"name": "s%04d" % k, "finished_at": (newest - k * every).strftime(STAMP), "verified": True,
             "verification": {"status": "passed"}} for k in range(count)]


def test_backups_within_the_window_are_kept_with_the_window_as_reason():
    keep, delete, reasons = prune_plan(snapshots(8), keep_within=3600, now=NOW, **ONLY_LAST)
    # 30 s, 15 min 30 s, ... 60 min 30 s old: the first four are within the hour, s0000 is also the last one
    assert keep == ["s0000", "s0001", "s0002", "s0003"]
    assert reasons["s0000"] == "one of the last 1"
    assert {reasons[n] for n in keep[1:]} == {"taken within the last hour"}
    assert delete == ["s0004", "s0005", "s0006", "s0007"]


def test_a_backup_just_outside_the_window_is_pruned_unless_another_rule_keeps_it():
    entries = [{"name": "edge", "finished_at": (NOW - datetime.timedelta(seconds=3600)).strftime(STAMP)},
               {"name": "out", "finished_at": (NOW - datetime.timedelta(seconds=3601)).strftime(STAMP)}]
    entries.insert(0, {"name": "new", "finished_at": NOW.strftime(STAMP)})
    keep, delete, reasons = prune_plan(entries, keep_within=3600, now=NOW, **ONLY_LAST)
    assert keep == ["new", "edge"] and delete == ["out"], "exactly keep_within old is within"
    keep, delete, reasons = prune_plan(entries, keep_within=3600, now=NOW, keep_last=1, keep_daily=1,
                                       keep_weekly=0, keep_monthly=0)
    assert keep == ["new", "edge"] and delete == ["out"], "the daily window keeps the day's newest only"
    keep, _, reasons = prune_plan(entries, keep_within=3600, now=NOW, keep_last=3, keep_daily=0,
                                  keep_weekly=0, keep_monthly=0)
    assert keep == ["new", "edge", "out"] and reasons["out"] == "one of the last 3"


def test_keep_within_zero_changes_nothing():
    for entries, kwargs in ((items(120), dict(keep_last=3, keep_daily=7, keep_weekly=4, keep_monthly=3)),
                            (items(30, verified={3}), ONLY_LAST), (items(30, failed={29}), ONLY_LAST),
                            (snapshots(700), ONLY_LAST)):
        before = prune_plan(entries, **kwargs)
        assert prune_plan(entries, keep_within=0, now=NOW, **kwargs) == before
        assert prune_plan(entries, keep_within=0, **kwargs) == before, "now is only needed with a window"


def test_seed_002_keeps_672_snapshots_of_7_days_and_prunes_the_673rd():
    week = parse_duration("7d")
    keep, delete, reasons = prune_plan(snapshots(700), keep_within=week, now=NOW, **ONLY_LAST)
    assert keep == ["s%04d" % k for k in range(672)]
    assert reasons["s0671"] == "taken within the last 7 days"  # 6 days 23 h 45 min 30 s old
    assert delete[0] == "s0672" and len(delete) == 700 - 672  # 7 days and 30 s old
    # with the usual GFS counts beside it (nightly backups before the snapshots), the weekly and monthly windows
    # keep older ones as before
    keep, delete, reasons = prune_plan(snapshots(700) + items(60), keep_within=week, now=NOW)
    assert set(keep) >= {"s%04d" % k for k in range(672)}
    older = {reasons[n].split(" window")[0] for n in keep if n.startswith("b")}
    assert older == {"newest of its weekly", "newest of its monthly"}
    assert "b000" in delete


def test_keep_within_keeps_the_guarantees():
    entries = snapshots(4, every=datetime.timedelta(days=2))
    for entry in entries[:3]:
        entry.update(verified=False, verification=None)
    keep, delete, reasons = prune_plan(entries, keep_within=3600, now=NOW, **ONLY_LAST)
    assert keep == ["s0000", "s0003"] and reasons["s0003"] == "the newest verified backup"
    entries[0]["verification"] = {"status": "failed"}
    keep, delete, _ = prune_plan(entries, keep_within=3600, now=NOW, **ONLY_LAST)
    assert delete == [] and len(keep) == 4
    keep, delete, _ = prune_plan(snapshots(1, newest=NOW - datetime.timedelta(days=30)), keep_within=60, now=NOW,
                                 **ONLY_LAST)
    assert keep == ["s0000"] and delete == [], "never deletes all"


def test_keep_within_needs_now_and_a_positive_window():
    with pytest.raises(ValueError, match="needs now"):
        prune_plan(snapshots(3), keep_within=3600, **ONLY_LAST)
    with pytest.raises(ValueError, match="keep_within is -1 seconds"):
        prune_plan(snapshots(3), keep_within=-1, now=NOW, **ONLY_LAST)


@pytest.mark.parametrize("text, seconds", [
    ("7d", 604800), ("36h", 129600), ("90m", 5400), ("0", 0), (0, 0), ("0d", 0), (" 7D ", 604800),
    ("1.5d", 129600), ("2w", 1209600), ("30s", 30), ("45min", 2700), ("0.0", 0),
])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text, message", [
    ("7", "keep_within '7' has no unit: write it with d (days), h (hours) or m (minutes), such as 7d"),
    (672, "keep_within 672 has no unit"),
    ("7 days", "keep_within '7 days' is not a duration: write a whole or decimal number followed by d (days)"),
    ("-7d", "is not a duration"), ("d", "is not a duration"), ("7x", "is not a duration"), ("", "is not a duration"),
    (None, "is not a duration"), (True, "keep_within True is not a duration"),
])
def test_parse_duration_refuses_with_what_to_write(text, message):
    with pytest.raises(ValueError) as caught:
        parse_duration(text)
    assert message in str(caught.value) and "0 for off" in str(caught.value)


def test_parse_duration_names_the_setting():
    with pytest.raises(ValueError, match="^offsite keep_within 'week' is not a duration"):
        parse_duration("week", what="offsite keep_within")


@pytest.mark.parametrize("seconds, text", [
    (604800, "7 days"), (86400, "day"), (129600, "36 hours"), (3600, "hour"), (5400, "90 minutes"),
    (60, "minute"), (90, "90 seconds"),
])
def test_describe_duration(seconds, text):
    assert describe_duration(seconds) == text


# ------------------------------------------------------------------ the module
def run_prune(capsys, args):
    from ansible_collections.rollcall.ops.plugins.modules import backup_prune as module

    with patch_module_args(args), pytest.raises(SystemExit) as caught:
        module.main()
    return caught.value.code, json.loads(capsys.readouterr().out)


def write_backup(directory, finished):
    name = "postgresql-sms-%s-full" % finished.strftime("%Y%m%dT%H%M%SZ")
    (directory / (name + ".dump")).write_bytes(b"x")
    (directory / (name + ".manifest.json")).write_text(json.dumps({
        "name": name, "engine": "postgresql", "database": "sms", "type": "full",
        "finished_at": finished.strftime(STAMP), "data": {"file": name + ".dump", "size": 1, "encrypted": False}}))
    return name


def test_module_refuses_a_bad_keep_within_with_what_to_write(tmp_path, capsys):
    rc, result = run_prune(capsys, {"directory": str(tmp_path), "engine": "postgresql", "database": "sms",
                                    "keep_within": "7 days"})
    assert rc == 1 and result["failed"] is True
    assert result["msg"] == ("keep_within '7 days' is not a duration: write a whole or decimal number followed by "
                             "d (days), h (hours) or m (minutes), such as 7d, 36h or 90m, or 0 for off")


def test_module_keeps_the_window_in_check_mode(tmp_path, capsys):
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    names = [write_backup(tmp_path, now - age) for age in (datetime.timedelta(hours=1), datetime.timedelta(days=2),
                                                           datetime.timedelta(days=10))]
    args = {"directory": str(tmp_path), "engine": "postgresql", "database": "sms", "keep_last": 1,
            "keep_daily": 0, "keep_weekly": 0, "keep_monthly": 0, "keep_within": "3d", "_ansible_check_mode": True}
    rc, result = run_prune(capsys, args)
    assert rc == 0 and result["changed"] is True
    assert result["kept"] == names[:2] and result["deleted"] == names[2:]
    assert result["reasons"][names[1]] == "taken within the last 3 days"
    assert len(list(tmp_path.iterdir())) == 6, "check mode deletes nothing"
    rc, result = run_prune(capsys, dict(args, keep_within="0"))
    assert rc == 0 and result["kept"] == names[:1]
