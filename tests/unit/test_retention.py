"""retention: the plan (pure, a test per branch) and the file operations in a tmp directory."""

import datetime
import gzip
import os

import pytest

from ansible_collections.rollcall.ops.plugins.module_utils import retention
from ansible_collections.rollcall.ops.plugins.module_utils.retention import DAY, RetentionError, plan

NOW = datetime.datetime(2026, 3, 15, 12, 0, tzinfo=datetime.UTC).timestamp()


def f(name, days, size=100, kind="file"):
    return {"name": name, "kind": kind, "mtime": NOW - days * DAY, "size": size}


# ------------------------------------------------------------------------------------------------ policy
@pytest.mark.parametrize("text,expected", [(0, 0), ("0", 0), ("500", 500), ("10G", 10 * 1024 ** 3),
                                           ("10GB", 10 * 1024 ** 3), ("1.5 MiB", 1572864), ("2k", 2048)])
def test_parse_size(text, expected):
    assert retention.parse_size(text) == expected


@pytest.mark.parametrize("bad", ["ten", "10X", "-5", "", True, -1])
def test_parse_size_refuses_what_is_not_a_size(bad):
    with pytest.raises(RetentionError, match="max_total_size"):
        retention.parse_size(bad)


def test_policy_refuses_negative_figures():
    with pytest.raises(RetentionError, match="gzip_after_days is -1"):
        plan([], NOW, gzip_after_days=-1)
    with pytest.raises(RetentionError, match="delete_after_days is -3"):
        plan([], NOW, delete_after_days=-3)


def test_policy_refuses_delete_before_gzip():
    with pytest.raises(RetentionError, match=r"delete_after_days \(30\) must be more than gzip_after_days \(30\)"):
        plan([], NOW, gzip_after_days=30, delete_after_days=30)


def test_policy_allows_delete_without_gzip_and_gzip_without_delete():
    retention.check_policy(0, 90, 0)
    retention.check_policy(30, 0, 0)


# ------------------------------------------------------------------------------------------------ plan branches
def test_old_files_are_deleted_middle_aged_gzipped_young_kept():
    out = plan([f("r-new.json", 1), f("r-mid.json", 40), f("r-old.json", 100)], NOW, gzip_after_days=30,
               delete_after_days=90)
    assert out["delete"] == ["r-old.json"] and out["gzip"] == ["r-mid.json"]
    assert out["kept"] == ["r-mid.json", "r-new.json"]
    assert out["reasons"] == {"r-old.json": "older than 90 days", "r-mid.json": "older than 30 days"}


def test_boundaries_count_whole_days():
    out = plan([f("a", 30), f("b", 30 - 1 / DAY), f("c", 90)], NOW, gzip_after_days=30, delete_after_days=90)
    assert out["gzip"] == ["a"] and out["delete"] == ["c"] and "b" in out["kept"]


def test_zero_means_never():
    out = plan([f("a", 1000)], NOW)
    assert out["gzip"] == [] and out["delete"] == [] and out["kept"] == ["a"]


def test_gz_files_are_not_gzipped_again_but_deleted_when_old():
    out = plan([f("a.json.gz", 40), f("b.json.gz", 100)], NOW, gzip_after_days=30, delete_after_days=90)
    assert out["gzip"] == [] and out["delete"] == ["b.json.gz"] and out["kept"] == ["a.json.gz"]


def test_an_existing_gz_of_the_same_name_is_not_overwritten():
    out = plan([f("a.json", 40), f("a.json.gz", 40)], NOW, gzip_after_days=30)
    assert out["gzip"] == [] and "exists already" in out["untouched"]["a.json"]


def test_names_outside_the_patterns_and_dot_names_are_not_looked_at():
    out = plan([f("releases.json", 500), f("deploy.lock", 500), f(".hidden-audit-x.jsonl", 500),
                f("audit-2025-01.jsonl", 500)], NOW, patterns=["audit-*.jsonl", "audit-*.jsonl.gz"],
               delete_after_days=365)
    assert out["delete"] == ["audit-2025-01.jsonl"]
    assert out["kept"] == [] and out["untouched"] == {}


def test_symlinks_are_skipped_even_when_old():
    out = plan([f("health-x.json", 500, kind="link")], NOW, delete_after_days=90, gzip_after_days=30)
    assert out["delete"] == [] and out["gzip"] == []
    assert "symlink" in out["untouched"]["health-x.json"]


def test_special_files_are_skipped():
    out = plan([f("fifo", 500, kind="other")], NOW, delete_after_days=90)
    assert out["delete"] == [] and "special file" in out["untouched"]["fifo"]


def test_directories_are_skipped_unless_allowed():
    entries = [f("20260101T000000Z", 100, kind="dir"), f("20260101T000000Z.tar.gz", 100)]
    out = plan(entries, NOW, delete_after_days=90)
    assert out["delete"] == ["20260101T000000Z.tar.gz"] and "directory" in out["untouched"]["20260101T000000Z"]
    out = plan(entries, NOW, delete_after_days=90, directories=True)
    assert sorted(out["delete"]) == ["20260101T000000Z", "20260101T000000Z.tar.gz"]


def test_directories_are_never_gzipped():
    out = plan([f("20260101T000000Z", 40, kind="dir")], NOW, gzip_after_days=30, directories=True)
    assert out["gzip"] == [] and out["kept"] == ["20260101T000000Z"]


def test_size_cap_deletes_the_oldest_until_it_fits():
    entries = [f("a", 5, 400), f("b", 4, 400), f("c", 3, 400), f("d", 2, 400)]
    out = plan(entries, NOW, max_total_bytes=1000)
    assert out["delete"] == ["a", "b"] and out["kept"] == ["c", "d"]
    assert "size cap of 1000 bytes" in out["reasons"]["a"]


def test_size_cap_counts_after_age_deletions_and_drops_a_planned_gzip():
    entries = [f("old", 100, 5000), f("mid", 40, 600), f("new", 1, 600)]
    out = plan(entries, NOW, gzip_after_days=30, delete_after_days=90, max_total_bytes=1000)
    assert out["delete"] == ["old", "mid"] and out["gzip"] == [] and out["kept"] == ["new"]


def test_size_cap_not_reached_deletes_nothing():
    out = plan([f("a", 5, 400)], NOW, max_total_bytes=400)
    assert out["delete"] == []


def test_interrupted_gzip_leftovers_are_removed_after_the_grace():
    out = plan([f(".a.json.gz.1234abcd.rc-tmp", 1), f(".b.json.gz.1234abcd.rc-tmp", 0)], NOW)
    assert out["delete"] == [".a.json.gz.1234abcd.rc-tmp"]


# ------------------------------------------------------------------------------------------------ rotation
def test_live_file_of_an_earlier_month_is_rotated_and_never_gzipped_or_deleted():
    out = plan([f("audit.jsonl", 400)], NOW, patterns=["audit*"], gzip_after_days=30, delete_after_days=365,
               rotate="audit.jsonl", rotate_month="2026-02")
    assert out["rotate"] == {"from": "audit.jsonl", "to": "audit-2026-02.jsonl"}
    assert out["delete"] == [] and out["gzip"] == [] and out["kept"] == []


def test_live_file_of_this_month_is_not_rotated():
    out = plan([f("audit.jsonl", 0)], NOW, rotate="audit.jsonl", rotate_month="2026-03")
    assert out["rotate"] is None


def test_live_file_without_a_readable_first_line_is_not_rotated():
    out = plan([f("audit.jsonl", 40)], NOW, rotate="audit.jsonl", rotate_month=None)
    assert out["rotate"] is None and out["delete"] == []


def test_live_file_that_is_a_symlink_is_not_rotated():
    out = plan([f("audit.jsonl", 40, kind="link")], NOW, rotate="audit.jsonl", rotate_month="2026-01")
    assert out["rotate"] is None and "not a regular file" in out["untouched"]["audit.jsonl"]


def test_rotated_name_avoids_taken_names():
    assert retention.rotated_name("audit.jsonl", "2026-01", set()) == "audit-2026-01.jsonl"
    assert retention.rotated_name("audit.jsonl", "2026-01", {"audit-2026-01.jsonl.gz"}) == "audit-2026-01-2.jsonl"
    assert retention.rotated_name("audit.jsonl", "2026-01", {"audit-2026-01.jsonl", "audit-2026-01-2.jsonl"}) \
        == "audit-2026-01-3.jsonl"


def test_first_month_skips_torn_and_foreign_lines():
    lines = ['{"at": "2026-0', "[1, 2]", '{"at": "yesterday"}', '{"at": "2025-13-01T00:00:00Z"}',
             '{"at": "2025-12-31T23:59:59Z", "event": "deploy_success"}']
    assert retention.first_month(lines) == "2025-12"
    assert retention.first_month([]) is None
    assert retention.first_month(['{"when": "2025-12-01"}'], field="when") == "2025-12"


# ------------------------------------------------------------------------------------------------ on disk
def plant(path, name, days, data=b"x" * 1000):
    full = path / name
    full.write_bytes(data)
    os.utime(full, (NOW - days * DAY, NOW - days * DAY))
    return full


def test_gzip_file_replaces_the_original_keeping_mode_and_mtime(tmp_path):
    src = plant(tmp_path, "r.json", 40, b'{"a": 1}\n' * 100)
    os.chmod(src, 0o640)
    fd = retention.open_directory(str(tmp_path))
    try:
        assert retention.gzip_file(fd, "r.json") is True
    finally:
        os.close(fd)
    assert sorted(os.listdir(tmp_path)) == ["r.json.gz"]
    gz = tmp_path / "r.json.gz"
    assert gzip.decompress(gz.read_bytes()) == b'{"a": 1}\n' * 100
    st = gz.stat()
    assert oct(st.st_mode & 0o777) == "0o640" and int(st.st_mtime) == int(NOW - 40 * DAY)


def test_gzip_file_leaves_a_file_that_changes_meanwhile(tmp_path, monkeypatch):
    plant(tmp_path, "audit-2026-01.jsonl", 40)
    real_fstat, calls = os.fstat, []

    def growing(fd):
        st = real_fstat(fd)
        calls.append(fd)
        if len(calls) > 1:  # the second look, after compressing: pretend a line was appended
            return os.stat_result((st.st_mode, st.st_ino, st.st_dev, st.st_nlink, st.st_uid, st.st_gid,
                                   st.st_size + 10, st.st_atime, st.st_mtime, st.st_ctime))
        return st

    monkeypatch.setattr(retention.os, "fstat", growing)
    fd = retention.open_directory(str(tmp_path))
    try:
        assert retention.gzip_file(fd, "audit-2026-01.jsonl") is False
    finally:
        os.close(fd)
    assert sorted(os.listdir(tmp_path)) == ["audit-2026-01.jsonl"]


def test_gzip_file_refuses_a_symlink(tmp_path):
    target = plant(tmp_path, "real.json", 40)
    (tmp_path / "link.json").symlink_to(target)
    fd = retention.open_directory(str(tmp_path))
    try:
        with pytest.raises(OSError):
            retention.gzip_file(fd, "link.json")
    finally:
        os.close(fd)
    assert sorted(os.listdir(tmp_path)) == ["link.json", "real.json"]


def test_open_directory_refuses_a_symlinked_directory(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(RetentionError, match="never follows symlinks"):
        retention.open_directory(str(tmp_path / "link"))


def test_rotate_file_keeps_an_open_writer_s_lines(tmp_path):
    live = tmp_path / "audit.jsonl"
    live.write_text('{"at": "2026-02-01T00:00:00Z"}\n')
    writer = os.open(live, os.O_WRONLY | os.O_APPEND)  # opened before the rotation
    fd = retention.open_directory(str(tmp_path))
    try:
        retention.rotate_file(fd, "audit.jsonl", "audit-2026-02.jsonl")
        os.write(writer, b'{"at": "2026-02-28T23:59:59Z"}\n')
        with pytest.raises(FileExistsError):  # never replaces a rotated file
            (tmp_path / "audit.jsonl").write_text("new\n")
            retention.rotate_file(fd, "audit.jsonl", "audit-2026-02.jsonl")
    finally:
        os.close(fd)
        os.close(writer)
    assert (tmp_path / "audit-2026-02.jsonl").read_text().count("\n") == 2


def test_list_entries_and_delete_entry_do_not_follow_symlinks(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("precious")
    work = tmp_path / "work"
    work.mkdir()
    bundle = work / "20260101T000000Z"
    bundle.mkdir()
    (bundle / "report.json").write_text("{}")
    (bundle / "escape").symlink_to(outside)
    (work / "link-out").symlink_to(outside)
    fd = retention.open_directory(str(work))
    try:
        kinds = {e["name"]: (e["kind"], e["size"]) for e in retention.list_entries(fd)}
        assert kinds["link-out"][0] == "link"
        assert kinds["20260101T000000Z"] == ("dir", 2 + len(str(outside)))  # the link itself, not its target
        retention.delete_entry(fd, "20260101T000000Z")
    finally:
        os.close(fd)
    assert sorted(os.listdir(work)) == ["link-out"] and (outside / "keep.txt").read_text() == "precious"


def test_read_head_returns_complete_lines(tmp_path):
    (tmp_path / "audit.jsonl").write_bytes(b'{"at": "2026-01-01"}\n{"at": "2026-01-02"}\n{"at": "2026-')
    fd = retention.open_directory(str(tmp_path))
    try:
        assert retention.read_head(fd, "audit.jsonl", limit=30) == ['{"at": "2026-01-01"}']
    finally:
        os.close(fd)
