"""MariaDB point-in-time recovery's decisions (module_utils/binlog.py): a unit test per branch.

fixtures/mariadb-bin.000001 is a real binary log of MariaDB 10.11.18 (ROW format, CRC32): a CREATE TABLE and a
row at 16:48:40, a row at 16:48:41, a row at 16:48:44, then FLUSH BINARY LOGS (rotate to mariadb-bin.000002).
"""

import datetime
import errno
import json
import os
import struct
import zlib

import pytest

from ansible_collections.rollcall.ops.plugins.module_utils import artifact, binlog, keyring
from ansible_collections.rollcall.ops.plugins.module_utils.pitr import PITRError

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "mariadb-bin.000001")
# The same server with an audit trigger on sms.t writing into sms_audit.log (a row statement spanning two databases),
# a CREATE USER (no default database) and a row written to sms_audit only; see test_the_filter_*.
TWO_DATABASES = os.path.join(os.path.dirname(__file__), "fixtures", "mariadb-bin-two-databases.000002")


def at(hms):
    when = datetime.datetime.strptime("2026-12-03 " + hms, "%Y-%m-%d %H:%M:%S").replace(tzinfo=datetime.UTC)
    return int(when.timestamp())


def real_log():
    with open(FIXTURE, "rb") as handle:
        return handle.read()


def scan(data, chunk=1 << 20, **kwargs):
    scanner = binlog.Scanner(**kwargs)
    for start in range(0, len(data), chunk):
        scanner.feed(data[start:start + chunk])
    return scanner, scanner.result()


def fde_end(data):
    """Position after the format description event (the first event)."""
    return 4 + struct.unpack_from("<I", data, 4 + 9)[0]


def reseal(event):
    """An event with its CRC32 recomputed (for a test that changes a field, not damages it)."""
    return event[:-4] + struct.pack("<I", zlib.crc32(event[:-4]) & 0xFFFFFFFF)


# ------------------------------------------------------------------------------------------------ Scanner
@pytest.mark.parametrize("chunk", [1, 7, 4096])
def test_a_real_log_is_read_whatever_the_chunks(chunk):
    _, facts = scan(real_log(), chunk)
    assert facts == {"events": 21, "first_at": at("16:48:35"), "last_at": at("16:48:44"),
                     "next_file": "mariadb-bin.000002", "closed": True, "checksum": "crc32", "problems": []}


def test_replay_from_the_dumps_position_stops_at_the_targets_second():
    scanner, _ = scan(real_log(), start=735, stop=at("16:48:44"))
    assert scanner.stopped
    assert scanner.replayed_to == at("16:48:41")


def test_replay_to_the_newest_point_applies_every_commit_after_the_position():
    scanner, _ = scan(real_log(), start=735)
    assert not scanner.stopped
    assert scanner.replayed_to == at("16:48:44")


def test_nothing_after_the_position_before_the_stop_means_no_replayed_time():
    scanner, _ = scan(real_log(), start=735, stop=at("16:48:41"))
    assert scanner.stopped and scanner.replayed_to is None


def test_a_truncated_log_is_named_truncated():
    _, facts = scan(real_log()[:-10])
    assert any("truncated" in p for p in facts["problems"])
    assert facts["next_file"] is None and not facts["closed"]


def test_a_flipped_byte_fails_that_events_checksum():
    data = bytearray(real_log())
    data[700] ^= 0xFF  # inside the first Write_rows event (661..704)
    _, facts = scan(bytes(data))
    assert facts["problems"] == ["event at position 661 fails its CRC32 checksum (damaged)"]


def test_a_wrong_next_position_is_damage():
    data = bytearray(real_log())
    start = fde_end(data)  # the Gtid list event
    length = struct.unpack_from("<I", data, start + 9)[0]
    event = bytearray(data[start:start + length])
    struct.pack_into("<I", event, 13, 9999)
    data[start:start + length] = reseal(bytes(event))
    _, facts = scan(bytes(data))
    assert facts["problems"] == ["event at position 256 says the next one is at 9999, not 285 (damaged)"]


def test_an_impossible_length_stops_the_reading():
    data = bytearray(real_log())
    struct.pack_into("<I", data, fde_end(data) + 9, 3)
    _, facts = scan(bytes(data))
    assert facts["problems"] == ["event at position 256 has an impossible length 3 (damaged)"]


def test_not_a_binary_log():
    _, facts = scan(b"-- MariaDB dump 10.19\nCREATE TABLE ...")
    assert facts["problems"] == ["not a binary log (no magic number at the start)"]
    assert facts["events"] == 0


def test_an_empty_file():
    _, facts = scan(b"")
    assert facts["problems"] == ["empty or cut before its first event (no magic number)"]


def in_use(data):
    """The log as the server writes it (or left it when it crashed): the format description's in-use flag set in
    place, its CRC32 as the server computed it, over the event with the flag clear."""
    data = bytearray(data)
    struct.pack_into("<H", data, 4 + 17, binlog.LOG_IN_USE)
    return bytes(data)


def test_a_file_the_server_still_writes_or_a_crashed_one_left_is_not_closed_and_not_damaged():
    """Before, the check covered the flag: every file a crashed server left (docker kill) failed with "event at
    position 4 fails its CRC32 checksum (damaged)" and no backup.yml could archive the log again (seen on the
    demo)."""
    _, facts = scan(in_use(real_log()))
    assert facts["problems"] == [] and facts["closed"] is False
    data = bytearray(in_use(real_log()))
    data[4 + 20] ^= 0xFF  # a byte of the format description itself (its binlog version) still fails
    _, facts = scan(bytes(data))
    assert facts["problems"] == ["event at position 4 fails its CRC32 checksum (damaged)"]


def test_the_filtered_copy_of_a_crashed_servers_file_is_a_closed_one_whose_checks_hold():
    """mariadb-binlog checks a format description's CRC32 with the flag masked too: the copy clears it, so the
    CRC32 the filter writes holds either way."""
    _, out = filtered(in_use(real_log()))
    flags = struct.unpack_from("<H", out, 4 + 17)[0]
    assert flags & binlog.LOG_IN_USE == 0
    _, facts = scan(out)
    assert facts["problems"] == []


# ------------------------------------------------------------------------------------------------ names
# ------------------------------------------------------------------------------------------------ shipping
def test_the_first_change_is_the_first_event_after_the_files_header():
    assert binlog.first_change_at(real_log()) == at("16:48:40")  # the CREATE TABLE's transaction
    header = real_log()[:fde_end(real_log())]
    assert binlog.first_change_at(header) is None  # a file just opened holds only its frame
    assert binlog.first_change_at(b"") is None


def test_the_first_change_is_found_in_a_head_cut_inside_an_event():
    data = real_log()
    change = [a for a, e in binlog.EventStream().feed(data) if binlog.HEADER.unpack_from(e)[1]
              not in binlog.FRAME_EVENTS][0]
    assert binlog.first_change_at(data[:change + 10]) is None  # the change's event cut off: not read
    assert binlog.first_change_at(data[:change + 200]) == at("16:48:40")


def test_the_index_lists_names_oldest_first_and_the_unshipped_ones_are_those_not_archived():
    names = binlog.index_names("./mariadb-bin.000006\n/var/lib/mysql/mariadb-bin.000007\n./mariadb-bin.000008\n\n")
    assert names == ["mariadb-bin.000006", "mariadb-bin.000007", "mariadb-bin.000008"]
    assert binlog.unshipped(names, archived("mariadb-bin.000006")) == ["mariadb-bin.000007", "mariadb-bin.000008"]
    assert binlog.unshipped(names, archived("mariadb-bin.000006", "mariadb-bin.000007")) == ["mariadb-bin.000008"]
    # 000006 deleted from the archive by its retention while the server still keeps it: not unshipped
    assert binlog.unshipped(names, archived("mariadb-bin.000007")) == ["mariadb-bin.000008"]


class HeadRunner:
    """The container's files as {path: bytes}; records what was read and how."""

    def __init__(self, files):
        self.files, self.calls = files, []

    def run(self, argv, user=None, **_kwargs):
        self.calls.append((argv, user))
        data = self.files.get(argv[-1])
        if data is None:
            return HeadResult(1, b"", "%s: No such file or directory" % argv[-1])
        return HeadResult(0, data[:int(argv[2])] if argv[0] == "head" else data, "")


class HeadResult:
    def __init__(self, rc, stdout, stderr):
        self.rc, self.stdout, self.stderr = rc, stdout, stderr

    def last_error_line(self):
        return self.stderr


class VariablesEngine:
    def __init__(self, rows):
        self.rows = rows

    def sql(self, _query, what=None):
        return self.rows


def test_shipping_finds_the_oldest_change_in_the_files_not_archived(tmp_path):
    """Read as mysql in the container: the index, then each unarchived file's head until one holds a change."""
    header = real_log()[:fde_end(real_log())]
    files = {"/var/lib/mysql/mariadb-bin.index": b"./mariadb-bin.000001\n./mariadb-bin.000002\n./mariadb-bin.000003\n",
             "/var/lib/mysql/mariadb-bin.000002": header, "/var/lib/mysql/mariadb-bin.000003": real_log()}
    runner = HeadRunner(files)
    write_archived(tmp_path, "mariadb-bin.000001")
    tool = binlog.BinlogPITR("sms-db", str(tmp_path), engine=VariablesEngine(
        [["1", "/var/lib/mysql/mariadb-bin", "/var/lib/mysql/mariadb-bin.index"]]))
    found = tool.shipping(now=at("16:50:00"), runner=runner)
    assert found == {"log_bin": True, "now": at("16:50:00"), "oldest_change_at": at("16:48:40"),
                     "unshipped": ["mariadb-bin.000002", "mariadb-bin.000003"],
                     "newest_archived": "mariadb-bin.000001", "archived_at": "2026-12-03T16:40:00Z"}
    assert [c[1] for c in runner.calls] == ["mysql"] * 3
    assert runner.calls[1][0] == ["head", "-c", str(binlog.HEAD_BYTES), "/var/lib/mysql/mariadb-bin.000002"]

    files["/var/lib/mysql/mariadb-bin.000003"] = header  # nothing written since the last archive run
    assert tool.shipping(now=at("16:50:00"), runner=HeadRunner(files))["oldest_change_at"] is None


def test_shipping_of_a_server_without_binary_log_or_with_an_unreadable_index(tmp_path):
    off = binlog.BinlogPITR("sms-db", str(tmp_path), engine=VariablesEngine([["0", "NULL", "NULL"]]))
    assert off.shipping(runner=HeadRunner({})) == {"log_bin": False}
    on = binlog.BinlogPITR("sms-db", str(tmp_path), engine=VariablesEngine([["1", "/var/lib/mysql/b", "NULL"]]))
    with pytest.raises(PITRError, match=r"reading /var/lib/mysql/b.index in sms-db failed: .*No such file"):
        on.shipping(runner=HeadRunner({}))


def write_archived(repo, name):
    manifest = {"kind": "binlog", "engine": "mysql", "binlog": {"file": name, "size": 100},
                "archived_at": "2026-12-03T16:40:00Z"}
    artifact.write_manifest(str(repo), name, manifest)


def test_names_and_their_successors_keep_the_padding():
    assert binlog.sequence("mariadb-bin.000012") == ("mariadb-bin", 12)
    assert binlog.next_name("mariadb-bin.000099") == "mariadb-bin.000100"
    assert binlog.next_name("mariadb-bin.999999") == "mariadb-bin.1000000"
    with pytest.raises(PITRError, match="not a binary log file name"):
        binlog.sequence("../etc/passwd")


# ------------------------------------------------------------------------------------------------ archive_plan
def archived(*names, size=100, last_at=0, next_file=None):
    return {n: {"binlog": {"size": size, "last_at": last_at, "next_file": next_file}} for n in names}


def test_archive_copies_the_closed_files_not_yet_there_and_never_the_active_one():
    plan = binlog.archive_plan([("b.000001", 100), ("b.000002", 50), ("b.000003", 10)], archived("b.000001"))
    assert plan == {"copy": ["b.000002"], "archived": ["b.000001"], "active": "b.000003"}


def test_archive_with_only_the_active_file_copies_nothing():
    assert binlog.archive_plan([("b.000001", 10)], {})["copy"] == []


def test_archive_refuses_a_server_without_binary_log():
    with pytest.raises(PITRError, match="log_bin is off"):
        binlog.archive_plan([], {})


def test_archive_refuses_a_reset_or_rebuilt_servers_file_under_an_archived_name():
    with pytest.raises(PITRError, match="RESET MASTER.*new directory"):
        binlog.archive_plan([("b.000001", 999), ("b.000002", 10)], archived("b.000001", size=100))


# ------------------------------------------------------------------------------------------------ gaps
def test_a_contiguous_chain_has_no_gap():
    chain = dict(archived("b.000001", next_file="b.000002"), **archived("b.000002", next_file="b.000003"))
    assert binlog.gaps(chain) == []


def test_one_missing_file_is_named():
    problems = binlog.gaps(dict(archived("b.000001"), **archived("b.000003")))
    assert len(problems) == 1
    assert problems[0].startswith("binary log gap: b.000002 missing from the repository between b.000001 and "
                                  "b.000003")


def test_several_missing_files_are_named_as_a_range():
    problems = binlog.gaps(dict(archived("b.000001"), **archived("b.000005")))
    assert "b.000002 .. b.000004 missing" in problems[0]


def test_a_rotate_naming_another_file_is_a_break():
    problems = binlog.gaps(dict(archived("b.000001", next_file="c.000001"), **archived("b.000002")))
    assert problems == ["binary log b.000001 rotated to c.000001, but the repository's next file is b.000002"]


# ------------------------------------------------------------------------------------------------ bases, window
def manifest(name, finished, file="b.000001", position=4, engine="mysql", database="sms", kind="full"):
    return {"name": name, "engine": engine, "database": database, "type": kind,
            "finished_at": binlog.iso(finished), "mysql": {"binlog": {"file": file, "position": position}}
            if file else {}}


def test_bases_are_full_dumps_of_the_database_with_a_log_position_oldest_first():
    manifests = [manifest("late", 200), manifest("early", 100), manifest("other-db", 150, database="x"),
                 manifest("pg", 150, engine="postgresql"), manifest("no-log", 150, file=None)]
    assert [b["name"] for b in binlog.base_candidates(manifests, "sms")] == ["early", "late"]


def test_a_dump_whose_verification_failed_is_no_base():
    manifests = [manifest("failed", 100), manifest("good", 200)]
    assert [b["name"] for b in binlog.base_candidates(manifests, "sms", failed={"failed"})] == ["good"]


def bases(*pairs):
    return [{"name": n, "finished": f, "file": file, "position": 4} for n, f, file in pairs]


def test_no_window_without_a_dump_whose_log_file_is_archived():
    assert binlog.window([], archived("b.000001"), 1000) is None
    assert binlog.window(bases(("d", 100, "b.000009")), archived("b.000001"), 1000) is None


def test_the_window_runs_from_the_oldest_usable_dump_to_the_last_archived_event():
    chain = dict(archived("b.000001", last_at=150), **archived("b.000002", last_at=400))
    win = binlog.window(bases(("old", 100, "b.000001"), ("new", 300, "b.000002")), chain, 1000)
    assert (win["earliest"], win["latest"], win["rpo_s"], win["newest_file"]) == (100, 400, 600, "b.000002")


def test_the_window_never_ends_before_the_newest_dump():
    win = binlog.window(bases(("d", 500, "b.000001")), archived("b.000001", last_at=450), 1000)
    assert win["latest"] == 500


def test_another_stacks_dumps_in_a_shared_directory_are_no_base():
    """Two MariaDB stacks whose databases share a name and a backup directory run their servers at the same time, so
    the times of same_server cannot tell their dumps apart: a restore of one stack's log could start from the other
    stack's dump (its data, another server's position). The project each dump records tells them apart."""
    manifests = [dict(manifest("ours", 100), project="a"), dict(manifest("theirs", 200), project="b"),
                 manifest("legacy", 150)]
    assert [b["name"] for b in binlog.base_candidates(manifests, "sms", project="a")] == ["ours", "legacy"]
    assert [b["name"] for b in binlog.base_candidates(manifests, "sms")] == ["ours", "legacy", "theirs"]


def test_a_base_records_when_its_dump_started():
    dump = dict(manifest("d", 200), started_at=binlog.iso(190))
    assert binlog.base_candidates([dump], "sms")[0]["started"] == 190
    assert binlog.base_candidates([manifest("legacy", 200)], "sms")[0]["started"] is None


def span(name, first_at, last_at):
    return {name: {"binlog": {"first_at": first_at, "last_at": last_at}}}


def test_same_server_when_the_file_was_being_written_while_the_dump_ran():
    dump = {"name": "d", "file": "b.000001", "started": 200, "finished": 210}
    assert binlog.same_server(dump, span("b.000001", 150, 260))
    assert binlog.same_server(dump, span("b.000001", 211, 198)), "a second of the log's clock either way"
    assert not binlog.same_server(dump, span("b.000002", 150, 260)), "its file is not archived"
    assert not binlog.same_server(dump, span("b.000001", 300, 400)), "the file opened after the dump: a new server's"
    assert not binlog.same_server(dump, span("b.000001", 100, 150)), "the file closed before the dump: a lost one's"
    assert binlog.same_server(dump, {"b.000001": {"binlog": {}}}), "a file without times (archived before them)"
    assert binlog.same_server(dict(dump, started=None), span("b.000001", 100, 150)), "a dump without its start"


def test_a_rebuilt_servers_dumps_are_no_base_for_the_lost_ones_log_and_the_other_way_round():
    """The demo after teardown -e teardown_volumes=true and a deploy on a new repository: the lost server's dumps
    and the rebuilt one's share the backup directory, their log files the names. A replay of the lost archive
    (pitr_from_repo) started from the rebuilt server's newest dump at a position of another file; now each archive
    has its own server's dumps only."""
    lost = dict(span("b.000001", 100, 300), **span("b.000002", 300, 500))
    rebuilt = span("b.000001", 1000, 1200)
    found = [{"name": "lost-1", "file": "b.000001", "started": 190, "finished": 200},
             {"name": "lost-2", "file": "b.000002", "started": 390, "finished": 400},
             {"name": "new-1", "file": "b.000001", "started": 1090, "finished": 1100}]
    assert binlog.choose_base(found, lost, None)["name"] == "lost-2"
    assert binlog.window(found, lost, 2000)["latest"] == 500
    assert binlog.choose_base(found, rebuilt, None)["name"] == "new-1"
    win = binlog.window(found, rebuilt, 2000)
    assert (win["earliest"], win["latest"]) == (1100, 1200)
    with pytest.raises(PITRError, match="no dump to start from"):
        binlog.choose_base(found, rebuilt, 450)  # the lost server's times are not in the new archive


# ------------------------------------------------------------------------------------------------ the target
WIN = {"earliest": 100, "latest": 400, "earliest_at": binlog.iso(100), "latest_at": binlog.iso(400),
       "latest_why": "w"}


def test_a_target_without_a_window_is_refused():
    with pytest.raises(PITRError, match="nothing to recover from"):
        binlog.validate_target("latest", None, 1000)


def test_latest_is_the_newest_point():
    assert binlog.validate_target("latest", WIN, 1000) is None
    assert binlog.validate_target(None, WIN, 1000) is None


def test_a_target_in_the_future_is_refused():
    with pytest.raises(PITRError, match="in the future"):
        binlog.validate_target(binlog.iso(2000), WIN, 1000)


def test_a_target_before_the_window_is_refused_with_the_window():
    with pytest.raises(PITRError, match="before the recoverable window"):
        binlog.validate_target(binlog.iso(50), WIN, 1000)


def test_a_target_after_the_archive_is_refused_unless_an_archive_run_comes_first():
    with pytest.raises(PITRError, match="after the newest point"):
        binlog.validate_target(binlog.iso(500), WIN, 1000)
    assert binlog.validate_target(binlog.iso(500), WIN, 1000, reach_now=True) == 500


def test_the_base_is_the_newest_dump_finished_before_the_target():
    found = bases(("a", 100, "b.000001"), ("b", 300, "b.000002"), ("c", 500, "b.000003"))
    chain = archived("b.000001", "b.000002", "b.000003")
    assert binlog.choose_base(found, chain, 350)["name"] == "b"
    assert binlog.choose_base(found, chain, None)["name"] == "c"


def test_no_base_before_the_target_is_refused():
    with pytest.raises(PITRError, match="no dump to start from"):
        binlog.choose_base(bases(("a", 100, "b.000001")), archived("b.000001"), 50)


def test_the_files_run_from_the_dumps_file_to_the_first_reaching_the_target():
    chain = {}
    for number, last in ((1, 150), (2, 250), (3, 350), (4, 450)):
        chain.update(archived("b.%06d" % number, last_at=last))
    base = bases(("a", 120, "b.000002"))[0]
    assert binlog.files_for(base, chain, 300) == ["b.000002", "b.000003"]
    assert binlog.files_for(base, chain, 250.7) == ["b.000002"]
    assert binlog.files_for(base, chain, None) == ["b.000002", "b.000003", "b.000004"]


def test_a_missing_file_between_the_dump_and_the_target_is_refused():
    chain = dict(archived("b.000001", last_at=150), **archived("b.000003", last_at=350))
    with pytest.raises(PITRError, match="b.000002 is missing from the repository"):
        binlog.files_for(bases(("a", 120, "b.000001"))[0], chain, 300)


# ------------------------------------------------------------------------------------------------ the replay
def test_the_stop_is_the_targets_second_rounded_down_in_utc():
    assert binlog.stop_datetime(at("16:48:42") + 0.66) == "2026-12-03 16:48:42"


def test_the_replay_command_reads_the_filtered_files_to_the_targets_second():
    assert binlog.replay_argv(["b.000002", "b.000003"], at("16:48:42")) == [
        "mariadb-binlog", "--no-defaults", "--stop-datetime=2026-12-03 16:48:42", binlog.REPLAY_DIR + "/b.000002",
        binlog.REPLAY_DIR + "/b.000003"]
    assert binlog.replay_argv(["b.000002"], None) == ["mariadb-binlog", "--no-defaults",
                                                      binlog.REPLAY_DIR + "/b.000002"]


# ------------------------------------------------------------------------------------------------ DatabaseFilter
def events(data):
    """[(position, type code, what)] of a log: table maps name their database, rows events their table id and
    whether they end the statement, statements their default database."""
    found, at = [], 4
    while at < len(data):
        length = struct.unpack_from("<I", data, at + 9)[0]
        event = data[at:at + length]
        code, what = event[4], None
        if code == binlog.TABLE_MAP_EVENT:
            what = event[19 + 9:19 + 9 + event[19 + 8]].decode()
        elif code in binlog.ROWS_EVENTS:
            what = (int.from_bytes(event[19:25], "little"), bool(struct.unpack_from("<H", event, 25)[0] & 1))
        elif code in binlog.QUERY_EVENTS:
            status = struct.unpack_from("<H", event, 19 + 11)[0]
            what = event[19 + 13 + status:19 + 13 + status + event[19 + 8]].decode()
        found.append((at, code, what))
        at += length
    return found


def filtered(data, database="sms", start=None, chunk=1 << 20):
    keep = binlog.DatabaseFilter(database, start)
    out = b"".join(keep.feed(data[i:i + chunk]) for i in range(0, len(data), chunk)) + keep.close()
    return keep, out


def two_databases():
    with open(TWO_DATABASES, "rb") as handle:
        return handle.read()


@pytest.mark.parametrize("chunk", [1, 100, 1 << 20])
def test_the_filter_keeps_one_databases_rows_and_ends_each_statement_on_them(chunk):
    keep, out = filtered(two_databases(), chunk=chunk)
    _, facts = scan(out)
    assert facts["problems"] == [] and facts["next_file"] == "mariadb-bin.000003"  # positions and CRC32s right
    found = events(out)
    assert [w for _, c, w in found if c == binlog.TABLE_MAP_EVENT] == ["sms", "sms", "sms"]
    assert [w for _, c, w in found if c in binlog.ROWS_EVENTS] == [(19, False), (19, True), (19, True), (19, True)]
    # CREATE DATABASE sms_audit is logged with that database, CREATE USER with none: both gone
    assert [w for _, c, w in found if c in binlog.QUERY_EVENTS] == ["sms"] * 3
    assert keep.dropped == 8  # those two; sms_audit's map and 2 rows; the sms_audit-only statement (3)
    assert sum(1 for _, c, _ in found if c == 16) == 4  # every transaction's commit (Xid) is kept


def test_the_filter_keeps_every_row_of_its_database_and_drops_a_statement_without_one():
    keep, out = filtered(real_log())
    # the fixture's CREATE TABLE sms.t ran without a default database: mariadb-binlog's --database drops it too
    assert keep.dropped == 1 and len(out) == len(real_log()) - (513 - 372)
    assert [w for _, c, w in events(out) if c in binlog.ROWS_EVENTS] == [(18, True)] * 3
    assert scan(out)[1]["problems"] == []


def test_the_filter_starts_at_the_position_keeping_the_files_gtid_state():
    _, out = filtered(two_databases(), start=1122)
    found = events(out)
    assert [c for _, c, _ in found[:5]] == [binlog.FORMAT_DESCRIPTION_EVENT, 163, 161, 161, 162]
    assert not [w for _, c, w in found if c in binlog.QUERY_EVENTS]  # the DDL before the position is gone
    assert [w for _, c, w in found if c in binlog.ROWS_EVENTS][0] == (19, False)


def test_the_filter_refuses_what_is_not_a_binary_log_or_is_cut():
    with pytest.raises(PITRError, match="not a binary log"):
        filtered(b"-- MariaDB dump")
    with pytest.raises(PITRError, match="truncated"):
        filtered(two_databases()[:-7])


def test_a_restore_passes_only_when_the_replay_ran_and_the_tables_read():
    assert binlog.judge_restore({"replay_rc": 0, "counts": {"t": 1}}) == {"passed": True, "problems": []}
    failed = binlog.judge_restore({"replay_rc": 1, "replay_error": "mariadb-binlog: boom", "counts": None})
    assert failed["problems"] == ["replaying the binary log failed: mariadb-binlog: boom",
                                  "the restored database could not be read (row counts)"]


def test_the_plan_names_the_dump_the_files_and_the_second():
    plan = binlog.restore_plan(at("16:48:42"), "sms-db", "sms-db-pitr", "sms-db-pitr-data", "img",
                               {"name": "d1", "position": 735}, ["b.000002"])
    assert "d1" in plan[1] and "b.000002 from position 735 to 2026-12-03 16:48:42 UTC" in plan[3]


def test_the_summary_says_the_window_or_that_there_is_none():
    chain = dict(archived("b.000001", last_at=150), **archived("b.000002", last_at=400))
    found = bases(("d", 100, "b.000001"))
    said = binlog.summary(chain, found, binlog.window(found, chain, 1000))
    assert said == {"kind": "binlog", "files": 2, "bases": 1, "newest_file": "b.000002",
                    "earliest_recoverable_at": binlog.iso(100), "newest_recoverable_at": binlog.iso(400), "rpo_s": 600}
    empty = binlog.summary(chain, [], None)
    assert empty["newest_file"] == "b.000002" and empty["newest_recoverable_at"] is None


def query_event(when, db, query):
    """A QUERY_EVENT (post-header: thread, exec time, db length, error code, no status vars) without its position
    and CRC32, which with_event fills in."""
    body = struct.pack("<IIBHH", 1, 0, len(db), 0, 0) + db + b"\0" + query
    return struct.pack("<IBIIIH", when, 2, 1, 19 + len(body) + 4, 0, 0) + body


def with_event(event):
    """The fixture's format description, then ``event`` at its position, sealed with its CRC32."""
    data = real_log()
    fde = data[:fde_end(data)]
    event = event[:13] + struct.pack("<I", len(fde) + len(event) + 4) + event[17:]
    return fde + event + struct.pack("<I", zlib.crc32(event) & 0xFFFFFFFF)


def test_a_swap_renaming_the_databases_tables_from_outside_stops_the_replay():
    rename = query_event(at("16:50:00"), b"", b"RENAME TABLE `sms`.`t` TO `sms__rc_old`.`t`")
    with pytest.raises(PITRError, match="changes tables of sms from outside it at 2026-12-03T16:50:00Z"):
        filtered(with_event(rename))
    # after the target it does not matter: the replay stops before it
    keep = binlog.DatabaseFilter("sms", stop=at("16:49:00"))
    keep.feed(with_event(rename))
    assert keep.dropped == 1


def test_grants_and_other_databases_ddl_are_dropped_quietly():
    for query in (b"GRANT SELECT ON `sms`.* TO `sms_report`@`%`", b"DROP TABLE `other`.`t`",
                  b"RENAME TABLE `smsx`.`t` TO `smsx`.`u`"):
        keep, _ = filtered(with_event(query_event(at("16:50:00"), b"", query)))
        assert keep.dropped == 1, query


# ------------------------------------------------------------------------------------------------ archiving a file
class FakeRunner:
    """Streams a log file to the sink as ``cat`` in the container would."""

    def __init__(self, data, rc=0):
        self.data, self.rc = data, rc

    def run(self, argv, sink=None, user=None, **_kwargs):
        for start in range(0, len(self.data), 300):
            sink(self.data[start:start + 300])

        class Result:
            rc = self.rc

            @staticmethod
            def last_error_line():
                return "cat: no such file"
        return Result()


KEY = bytes(range(32))


def archive_one(repo, data=None, rc=0):
    tool = binlog.BinlogPITR("sms-db", str(repo), KEY)
    return tool, tool._copy("/var/lib/mysql", "mariadb-bin.000001", runner=FakeRunner(data or real_log(), rc))


def test_a_file_is_archived_encrypted_with_a_signed_manifest_and_verifies(tmp_path):
    tool, copied = archive_one(tmp_path)
    assert copied["size"] == len(real_log()) and copied["last_at"] == binlog.iso(at("16:48:44"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mariadb-bin.000001.binlog.gz.enc",
                                                          "mariadb-bin.000001.manifest.json"]
    assert real_log()[4:40] not in (tmp_path / "mariadb-bin.000001.binlog.gz.enc").read_bytes()
    manifest = binlog.read_archive(str(tmp_path))["mariadb-bin.000001"]
    assert manifest["signature"]["algorithm"] == "hmac-sha256" and manifest["binlog"]["events"] == 21
    assert tool.verify()["passed"]
    with pytest.raises(artifact.ArtifactError, match="already exists"):  # never over an archived file
        archive_one(tmp_path)


def test_after_a_key_rotation_old_files_read_with_the_ring_and_new_ones_are_written_with_the_new_key(tmp_path):
    archive_one(tmp_path)  # archived with KEY
    new_key = bytes(range(32, 64))
    rotated = binlog.BinlogPITR("sms-db", str(tmp_path), keyring.KeyRing(new_key, [KEY]))
    assert rotated.verify()["passed"], "the file archived before the rotation reads with the ring"
    rotated._copy("/var/lib/mysql", "mariadb-bin.000002", runner=FakeRunner(real_log()))
    archived = binlog.read_archive(str(tmp_path))
    assert archived["mariadb-bin.000002"]["signature"]["key_id"] == artifact.key_id(new_key)
    assert binlog.files_by_key(archived) == {artifact.key_id(KEY): ["mariadb-bin.000001"],
                                             artifact.key_id(new_key): ["mariadb-bin.000002"]}
    without_ring = binlog.BinlogPITR("sms-db", str(tmp_path), keyring.KeyRing(new_key))
    [problem] = [p for p in without_ring.verify()["problems"] if "wrong key" in p]
    assert problem.startswith("binary log mariadb-bin.000001: wrong key") and "rollcall_backup_old_keys" in problem


def test_files_archived_without_a_key_are_listed_as_none():
    assert binlog.files_by_key({"b.000002": {"data": {}}, "b.000001": {"data": {}}}) == {"none": ["b.000001",
                                                                                             "b.000002"]}


def test_a_damaged_server_file_is_not_archived(tmp_path):
    with pytest.raises(PITRError, match="truncated.*not archived"):
        archive_one(tmp_path, real_log()[:-10])
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(PITRError, match="reading binary log mariadb-bin.000001 in sms-db failed: cat: no such"):
        archive_one(tmp_path, rc=1)
    assert list(tmp_path.iterdir()) == []


def test_what_an_interrupted_run_left_without_a_manifest_is_replaced(tmp_path):
    (tmp_path / "mariadb-bin.000001.binlog.gz.enc").write_bytes(b"half of it")
    tool, _ = archive_one(tmp_path)
    assert tool.verify()["passed"]


def test_a_full_disk_keeps_nothing_and_says_what_to_do(tmp_path, monkeypatch):
    def full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(artifact.ArtifactWriter, "write", full)
    with pytest.raises(artifact.ArtifactError, match="No space left on device; free space in .*nothing was kept"):
        archive_one(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_manifest_that_cannot_be_written_takes_the_data_file_with_it(tmp_path, monkeypatch):
    def refuse(*_args, **_kwargs):
        raise artifact.ArtifactError("writing the manifest failed")

    monkeypatch.setattr(artifact, "write_manifest", refuse)
    with pytest.raises(artifact.ArtifactError, match="writing the manifest failed"):
        archive_one(tmp_path)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------- the mirror (the backup host's copy)
def test_mirror_copies_what_the_other_repository_lacks_and_it_verifies_there(tmp_path):
    local, offsite = tmp_path / "local", tmp_path / "offsite"
    local.mkdir()
    archive_one(local)
    result = binlog.mirror(str(local), str(offsite))
    assert result["copied"] == ["mariadb-bin.000001"]
    assert sorted(p.name for p in offsite.iterdir()) == sorted(p.name for p in local.iterdir()
                                                              if p.name != binlog.LOCK_FILE)  # the lock stays home
    assert binlog.BinlogPITR("sms-db", str(offsite), KEY).verify()["passed"]
    again = binlog.mirror(str(local), str(offsite))  # idempotent: nothing twice
    assert again["copied"] == [] and again["present"] == ["mariadb-bin.000001"]


def test_mirror_in_check_mode_copies_nothing(tmp_path):
    local, offsite = tmp_path / "local", tmp_path / "offsite"
    local.mkdir()
    archive_one(local)
    assert binlog.mirror(str(local), str(offsite), check_mode=True)["copy"] == ["mariadb-bin.000001"]
    assert not offsite.exists()


def test_mirror_replaces_what_an_interrupted_copy_left(tmp_path):
    local, offsite = tmp_path / "local", tmp_path / "offsite"
    local.mkdir()
    offsite.mkdir()
    archive_one(local)
    (offsite / "mariadb-bin.000001.binlog.gz.enc").write_bytes(b"half of it")
    assert binlog.mirror(str(local), str(offsite))["copied"] == ["mariadb-bin.000001"]
    assert binlog.BinlogPITR("sms-db", str(offsite), KEY).verify()["passed"]


def test_mirror_refuses_another_servers_file_under_the_same_name():
    ours = {"mariadb-bin.000001": {"data": {"sha256": "a"}}, "mariadb-bin.000002": {"data": {"sha256": "b"}}}
    theirs = {"mariadb-bin.000001": {"data": {"sha256": "z"}}}
    with pytest.raises(PITRError, match="different contents.*rollcall_pitr_offsite_repo"):
        binlog.mirror_plan(ours, theirs)
    assert binlog.mirror_plan(ours, {"mariadb-bin.000001": {"data": {"sha256": "a"}}}) == {
        "copy": ["mariadb-bin.000002"], "present": ["mariadb-bin.000001"]}


def test_mirror_onto_a_full_disk_keeps_nothing_there_and_says_what_to_do(tmp_path, monkeypatch):
    local, offsite = tmp_path / "local", tmp_path / "offsite"
    local.mkdir()
    archive_one(local)
    real_fsync = os.fsync

    def full(fd):
        if str(offsite) in os.readlink("/proc/self/fd/%d" % fd):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(artifact.ArtifactError, match="No space left on device.*nothing was kept"):
        binlog.mirror(str(local), str(offsite))
    assert list(offsite.iterdir()) == []


# ------------------------------------------------------------------ a frequent run leaves an idle file open
def test_a_file_holding_only_its_header_holds_no_change():
    assert not binlog.holds_changes(["Format_desc", "Gtid_list", "Binlog_checkpoint"])
    assert not binlog.holds_changes(["Format_desc", "Start_encryption", "Gtid_list", "Binlog_checkpoint"])
    assert not binlog.holds_changes([])  # nothing read: nothing to close for


def test_a_file_with_a_transaction_or_a_statement_holds_changes():
    assert binlog.holds_changes(["Format_desc", "Gtid_list", "Binlog_checkpoint", "Gtid", "Query"])
    assert binlog.holds_changes(iter(["Format_desc", "Gtid"]))


class FakeSQL:
    """The SQL an archive run sends, answered as a MariaDB server would (the file being written and its events)."""

    def __init__(self, events):
        self.events, self.sent = events, []

    def sql(self, statement, what=""):
        self.sent.append(statement)
        if statement.startswith("SHOW MASTER STATUS"):
            return [["mariadb-bin.000003", "389", "", ""]]
        if statement.startswith("SHOW BINLOG EVENTS"):
            return [["mariadb-bin.000003", "4", kind, "1", "100", ""] for kind in self.events]
        if statement.startswith("SELECT @@log_bin"):
            return [["1", "/var/lib/mysql/mariadb-bin"]]
        if statement.startswith("SHOW BINARY LOGS"):
            return [["mariadb-bin.000002", "500"], ["mariadb-bin.000003", "389"]]
        return []


@pytest.mark.parametrize("events, flush_idle, closes", [
    (["Format_desc", "Gtid_list", "Binlog_checkpoint"], False, False),
    (["Format_desc", "Gtid_list", "Binlog_checkpoint", "Gtid", "Query"], False, True),
    (["Format_desc", "Gtid_list", "Binlog_checkpoint"], True, True),
])
def test_an_archive_run_closes_the_file_being_written_only_when_asked_and_needed(tmp_path, events, flush_idle,
                                                                                  closes):
    engine = FakeSQL(events)
    tool = binlog.BinlogPITR("sms-db", str(tmp_path), KEY, engine=engine)
    tool._copy = lambda directory, name, runner=None: {"name": name}
    result = tool.archive(flush_idle=flush_idle)
    assert result["flushed"] is closes and ("FLUSH BINARY LOGS;" in engine.sent) is closes
    assert result["copied"] == ["mariadb-bin.000002"]  # the closed file is archived either way
    assert any(s.startswith("SHOW BINLOG EVENTS IN 'mariadb-bin.000003'") for s in engine.sent) is not flush_idle
    checked = binlog.BinlogPITR("sms-db", str(tmp_path), KEY, engine=FakeSQL(events)).archive(
        flush_idle=flush_idle, check_mode=True)
    assert checked["would_flush"] is closes and not checked["flushed"]


# ------------------------------------------------------------------------------------- retention of the archive
DAY = 86400.0
NOW = 1_800_000_000.0


def archived_files(*specs):
    """{name: manifest} of archived files: (number, days ago of the last event)."""
    return {"mariadb-bin.%06d" % n: {"binlog": {"last_at": NOW - days * DAY}, "data": {"file": "f%d" % n}}
            for n, days in specs}


def base(name, number):
    return {"name": name, "file": "mariadb-bin.%06d" % number, "finished": 0, "position": 4}


def test_retention_deletes_the_files_before_the_oldest_base_once_past_the_days_kept():
    archived = archived_files((1, 30), (2, 20), (3, 10), (4, 2), (5, 0))
    plan = binlog.retention_plan(archived, [base("d-new", 4), base("d-old", 3)], NOW, 7 * DAY)
    assert plan["delete"] == ["mariadb-bin.000001", "mariadb-bin.000002"] and plan["oldest_base"] == "d-old"
    assert plan["keep"] == ["mariadb-bin.000003", "mariadb-bin.000004", "mariadb-bin.000005"]
    assert "mariadb-bin.000003" in plan["why"] and "7 days" in plan["why"]
    assert binlog.gaps({n: {"binlog": {}} for n in plan["keep"]}) == []  # what is left is still one chain


def test_retention_keeps_recent_files_before_the_oldest_base():
    archived = archived_files((1, 8), (2, 3), (3, 1))
    plan = binlog.retention_plan(archived, [base("d", 3)], NOW, 7 * DAY)
    assert plan["delete"] == ["mariadb-bin.000001"]
    assert binlog.retention_plan(archived, [base("d", 3)], NOW, 0)["delete"] == ["mariadb-bin.000001",
                                                                                 "mariadb-bin.000002"]


def test_retention_deletes_nothing_without_a_base_whose_file_is_archived():
    archived = archived_files((5, 30), (6, 20))
    for bases in ([], [base("d", 3)]):  # no dump, or a dump whose file is not (or no longer) archived
        plan = binlog.retention_plan(archived, bases, NOW, 0)
        assert plan["delete"] == [] and plan["oldest_base"] is None and "nothing is deleted" in plan["why"]


def test_retention_never_deletes_the_newest_file_nor_another_base_names_files():
    archived = archived_files((1, 30), (2, 30))
    archived["other-bin.000001"] = {"binlog": {"last_at": NOW - 40 * DAY}, "data": {"file": "o"}}
    plan = binlog.retention_plan(archived, [base("d", 2)], NOW, 0)
    assert plan["delete"] == ["mariadb-bin.000001"] and "other-bin.000001" in plan["keep"]
    newest_only = binlog.retention_plan(archived_files((1, 30)), [base("d", 1)], NOW, 0)
    assert newest_only["delete"] == []


def test_prune_deletes_manifest_then_data_and_check_mode_deletes_nothing(tmp_path, monkeypatch):
    archived = archived_files((1, 30), (2, 30), (3, 0))
    for name, manifest in archived.items():
        (tmp_path / (name + ".manifest.json")).write_text(json.dumps(dict(manifest, name=name)))
        (tmp_path / manifest["data"]["file"]).write_text("data")
    tool = binlog.BinlogPITR("sms-db", str(tmp_path), KEY)
    monkeypatch.setattr(tool, "status", lambda *a, **k: (archived, [base("d", 2)], None))
    checked = tool.prune("/b", "sms", 7, check_mode=True, now=NOW)
    assert checked["delete"] == ["mariadb-bin.000001"] and checked["deleted"] == []
    assert len(list(tmp_path.iterdir())) == 6
    done = tool.prune("/b", "sms", 7, now=NOW)
    assert done["deleted"] == ["mariadb-bin.000001"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [binlog.LOCK_FILE, "f2", "f3",
                                                          "mariadb-bin.000002.manifest.json",
                                                          "mariadb-bin.000003.manifest.json"]


def test_prune_that_cannot_delete_says_where_and_what_went_before(tmp_path, monkeypatch):
    archived = archived_files((1, 30), (2, 30), (3, 0))
    tool = binlog.BinlogPITR("sms-db", str(tmp_path), KEY)
    monkeypatch.setattr(tool, "status", lambda *a, **k: (archived, [base("d", 3)], None))
    (tmp_path / "mariadb-bin.000001.manifest.json").write_text(json.dumps(dict(archived["mariadb-bin.000001"],
                                                                           name="mariadb-bin.000001")))
    # 000002's manifest is not there
    with pytest.raises(artifact.ArtifactError, match=r"deleting binary log mariadb-bin.000002.*deleted before it: "
                                                     r"mariadb-bin.000001"):
        tool.prune("/b", "sms", 7, now=NOW)


def test_the_scratch_instance_takes_the_live_containers_root_password_when_none_is_given():
    from ansible_collections.rollcall.ops.plugins.module_utils import docker as dockerlib
    from ansible_collections.rollcall.ops.plugins.module_utils.engines.mysql import MySQL

    def root_password(live):  # what BinlogPITR.restore gives the scratch instance without a login password
        return dockerlib.env_value(live, *MySQL.ROOT_PASSWORD_ENV) or ""

    live = {"Config": {"Env": ["PATH=/bin", "MARIADB_ROOT_PASSWORD=made=with"]}}
    assert root_password(live) == "made=with"
    assert root_password({"Config": {"Env": ["MYSQL_ROOT_PASSWORD=old"]}}) == "old"
    assert root_password({"Config": {}}) == ""


def test_a_repository_that_cannot_be_made_is_said_not_a_traceback(tmp_path):
    """rollcall_pitr_repo through a file (or on a read-only or full disk): the module ended with a traceback
    ("Module result deserialization failed") after a restore's swap (seen by hand)."""
    afile = tmp_path / "f"
    afile.write_text("x")
    with pytest.raises(artifact.ArtifactError) as caught:
        binlog.make_repo(str(afile / "pitr"), "archiving the binary log")
    said = str(caught.value)
    assert said.startswith("archiving the binary log into %s failed: Not a directory" % (afile / "pitr"))
    assert said.endswith("nothing was archived (rollcall_pitr_repo names the repository)")
    binlog.make_repo(str(tmp_path / "ok" / "pitr"), "archiving")
    assert oct((tmp_path / "ok" / "pitr").stat().st_mode & 0o777) == "0o700"


# ------------------------------------------------------------------------- two runs at once (the repository's lock)
def test_a_second_run_waits_for_the_repositorys_lock_and_gives_up_saying_so(tmp_path):
    """archive_log.yml on its schedule beside a manual run: both copied the same file, one deleted the other's data
    file as an interrupted run's leftover, and every later run failed on a manifest without its data."""
    clock = {"now": 0.0}

    def sleep(seconds):
        clock["now"] += seconds

    held = binlog.repo_lock(str(tmp_path), "archiving the binary log")
    second = binlog.repo_lock(str(tmp_path), "archiving the binary log", sleep=sleep, clock=lambda: clock["now"])
    refused = pytest.raises(PITRError, match=r"^archiving the binary log: another run has been changing the "
                                             r"repository .* for 600 s .*nothing was changed: run again")
    with held, refused, second:
        raise AssertionError("the lock was taken twice")
    with binlog.repo_lock(str(tmp_path), "archiving the binary log", wait_s=0):  # free again once released
        pass


def test_a_run_that_waited_copies_only_what_the_other_did_not(tmp_path, monkeypatch):
    tool = binlog.BinlogPITR("sms-db", str(tmp_path), KEY)
    monkeypatch.setattr(tool, "server_logs", lambda: ("/var/lib/mysql", [("mariadb-bin.000001", 100),
                                                                          ("mariadb-bin.000002", 10)]))
    monkeypatch.setattr(binlog, "archive_plan", lambda logs, archived: {
        "copy": [] if "mariadb-bin.000001" in archived else ["mariadb-bin.000001"], "skipped": []})
    seen = []

    def read_archive(repo):  # the other run archived the file while this one waited for the lock
        seen.append(repo)
        return {} if len(seen) == 1 else {"mariadb-bin.000001": {"binlog": {"size": 100},
                                                                 "data": {"file": "mariadb-bin.000001.x"}}}
    monkeypatch.setattr(binlog, "read_archive", read_archive)
    monkeypatch.setattr(tool, "_copy", lambda directory, name: pytest.fail("copied %s twice" % name))
    (tmp_path / "mariadb-bin.000001.x").write_bytes(b"data")  # the other run's complete copy
    result = tool.archive(flush=False)
    assert result["copied"] == [] and result["recopied"] == [] and len(seen) == 3, result


def test_a_manifest_whose_data_file_is_gone_is_archived_again_from_the_server(tmp_path):
    """What two runs at once left before the lock: mariadb-bin.000006's manifest without its data file, and every
    later run failed ("cannot read mariadb-bin.000006.binlog.gz.enc (No such file or directory)")."""
    archived = {"mariadb-bin.000001": {"binlog": {"size": 100}, "data": {"file": "one.enc"}},
                "mariadb-bin.000002": {"binlog": {"size": 200}, "data": {"file": "two.enc"}},
                "mariadb-bin.000003": {"binlog": {"size": 300}, "data": {"file": "three.enc"}}}
    (tmp_path / "one.enc").write_bytes(b"x")
    logs = [("mariadb-bin.000001", 100), ("mariadb-bin.000002", 200), ("mariadb-bin.000003", 999),
            ("mariadb-bin.000004", 10)]
    # 000002 is gone and the server has it as archived: again; 000003's size differs (another file): left to the
    # plan's refusal; 000001 is whole
    assert binlog.without_data(str(tmp_path), archived, logs) == ["mariadb-bin.000002"]
    assert binlog.without_data(str(tmp_path), archived, logs[1:2]) == []  # only the file being written: not closed


def test_archiving_refuses_a_key_that_did_not_write_the_newest_archived_file(tmp_path):
    """A deleted or regenerated backup key: archive_log.yml (every 5 minutes) went on archiving with the new key
    without a word, every file archived before unreadable with the inventory's keys."""
    other = bytes(range(1, 33))

    def made_with(key):
        part = {"file": "x", "encrypted": True, "key_id": artifact.key_id(key)}
        return {"binlog": {"size": 1}, "data": part, "signature": {"key_id": artifact.key_id(key)}}

    archived = {"mariadb-bin.000001": made_with(other), "mariadb-bin.000002": made_with(KEY),
                "mariadb-bin.000003": {"binlog": {"size": 1}, "data": {"file": "y"}}}  # plain: names no key
    with pytest.raises(PITRError) as caught:
        binlog.BinlogPITR("sms-db", str(tmp_path), other).check_key(archived)
    said = str(caught.value)
    assert said.startswith("Nothing was archived: the newest archived binary log file in %s, mariadb-bin.000002, "
                           "was made with key id %s, and the key given now has key id %s"
                           % (tmp_path, artifact.key_id(KEY), artifact.key_id(other)))
    assert said.endswith("If the old key is lost for good: the files archived with it cannot be read again, and the "
                         "archive's verification fails on them: start a new archive, rollcall_pitr_repo pointed at a "
                         "new directory, then playbooks/backup.yml (and -e rollcall_backup_key_lost=true for its "
                         "dump; docs/pitr.md).")
    binlog.BinlogPITR("sms-db", str(tmp_path), KEY).check_key(archived)  # the key that wrote it
    binlog.BinlogPITR("sms-db", str(tmp_path), keyring.KeyRing(other, [KEY])).check_key(archived)  # a rotation
    binlog.BinlogPITR("sms-db", str(tmp_path), other).check_key({})  # nothing archived yet
