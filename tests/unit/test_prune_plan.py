"""backup.prune_plan: retention decisions, without files."""

import datetime

from ansible_collections.rollcall.ops.plugins.module_utils.backup import compare_counts, prune_plan

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
