"""The SQLite adapter's swap on this host (its helper runs with this Python): journal mode and file mode kept,
nothing live touched when the restored copy cannot be prepared."""

import os
import sqlite3
import stat

import pytest

from ansible_collections.rollcall.ops.plugins.module_utils import backup
from ansible_collections.rollcall.ops.plugins.module_utils.engines.base import EngineError, Target
from ansible_collections.rollcall.ops.plugins.module_utils.engines.sqlite import SQLite
from ansible_collections.rollcall.ops.plugins.module_utils.runner import LocalRunner


def make(path, rows, wal):
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE t (x)")
    con.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(rows)])
    con.commit()
    con.execute("PRAGMA journal_mode=%s" % ("WAL" if wal else "DELETE"))
    con.close()


def rows(path):
    con = sqlite3.connect(path)
    try:
        return con.execute("SELECT count(*) FROM t").fetchone()[0]
    finally:
        con.close()


def header_mode(path):
    with open(path, "rb") as f:
        return f.read(20)[18]


@pytest.fixture
def engine(tmp_path):
    live = str(tmp_path / "school.sqlite3")
    return SQLite(LocalRunner(), Target("sqlite", "school", path=live)), live


def test_an_older_backup_without_facts_keeps_the_live_files_wal_and_mode(engine):
    engine, live = engine
    make(live, 3, wal=True)
    os.chmod(live, 0o640)
    make(live + "__rc_scratch", 5, wal=False)
    engine.prepare_for({"database": "school"})
    assert engine.swap_in(live + "__rc_scratch", live, keep_old=False) is None
    assert header_mode(live) == 2 and stat.S_IMODE(os.stat(live).st_mode) == 0o640
    assert rows(live) == 5
    assert sorted(os.listdir(os.path.dirname(live))) == ["school.sqlite3"]


def test_the_backups_journal_mode_wins_over_the_live_files(engine):
    engine, live = engine
    make(live, 3, wal=True)
    make(live + "__rc_scratch", 5, wal=False)
    engine.prepare_for({"database": "school", "sqlite": {"journal_mode": "delete", "mode": 0o600, "uid": 0,
                                                         "gid": 0}})
    engine.swap_in(live + "__rc_scratch", live, keep_old=False)
    assert header_mode(live) == 1
    assert engine.reopen_needed  # the file was replaced: the app opens it again


# ------------------------------------------------------------------------ into the live file (no app restart)
# A SQLite restore replaced the file and restarted the app to open it: a few seconds of 502/504 through the proxy
# while the plan said "the app keeps serving", and writes the app made between the swap and its restart went to the
# replaced file. The restored data now go into the live file through the online backup API.

def test_the_restored_data_go_into_the_live_file_and_open_connections_read_them(engine):
    engine, live = engine
    make(live, 3, wal=True)
    os.chmod(live, 0o640)
    app = sqlite3.connect(live)  # the app's connection, held across the restore
    assert app.execute("SELECT count(*) FROM t").fetchone()[0] == 3
    inode = os.stat(live).st_ino
    make(live + "__rc_scratch", 5, wal=False)
    engine.prepare_for({"database": "school", "sqlite": {"journal_mode": "wal", "mode": 0o600, "uid": 0, "gid": 0}})
    old = engine.swap_in(live + "__rc_scratch", live, keep_old=True)
    assert engine.reopen_needed is False
    assert app.execute("SELECT count(*) FROM t").fetchone()[0] == 5  # no reopen needed
    app.execute("INSERT INTO t VALUES (99)")
    app.commit()
    app.close()
    assert os.stat(live).st_ino == inode and header_mode(live) == 2 and stat.S_IMODE(os.stat(live).st_mode) == 0o640
    assert rows(live) == 6
    assert old == live + "__rc_old" and rows(old) == 3 and header_mode(old) == 1
    assert stat.S_IMODE(os.stat(old).st_mode) == 0o640
    assert not os.path.exists(live + "__rc_scratch")
    assert sqlite3.connect(live).execute("PRAGMA integrity_check").fetchone() == ("ok",)


@pytest.mark.parametrize("live_state", ["absent", "not a database", "page size"])
def test_the_file_is_replaced_when_it_cannot_take_the_data_in_place(engine, live_state):
    engine, live = engine
    if live_state == "not a database":
        with open(live, "wb") as f:
            f.write(b"garbage" * 2000)
    elif live_state == "page size":
        con = sqlite3.connect(live)
        con.execute("PRAGMA page_size=8192")
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("CREATE TABLE t (x)")
        con.commit()
        con.close()
    make(live + "__rc_scratch", 5, wal=False)
    engine.prepare_for({"database": "school"})
    old = engine.swap_in(live + "__rc_scratch", live, keep_old=live_state != "absent")
    assert engine.reopen_needed is True
    assert rows(live) == 5
    if live_state == "page size":
        assert header_mode(live) == 2  # the live file's WAL mode, on the replacing file
    expected = ["school.sqlite3"] + (["school.sqlite3__rc_old"] if live_state != "absent" else [])
    assert sorted(os.listdir(os.path.dirname(live))) == expected
    assert (old is None) == (live_state == "absent")


def test_a_copy_that_cannot_be_prepared_replaces_nothing_and_is_removed(engine):
    engine, live = engine
    make(live, 3, wal=True)
    with open(live + "__rc_scratch", "wb") as f:
        f.write(b"not a database" * 100)
    engine.prepare_for({"database": "school", "sqlite": {"journal_mode": "wal"}})
    with pytest.raises(EngineError, match="not a database"):
        engine.swap_in(live + "__rc_scratch", live, keep_old=True)
    assert rows(live) == 3
    assert sorted(os.listdir(os.path.dirname(live))) == ["school.sqlite3"]

# ------------------------------------------------------------------------ the copy into place, counted
# The helper says how many bytes it received, and a copy that received fewer than were sent fails instead of passing
# for the whole backup. Seen once in Molecule's backup scenario (2026-12-06): a restore-level verification whose
# scratch copy held nothing ("backup had 20 rows, restore has None" for every table) after the native check of the
# same backup had passed.

class LosingRunner(LocalRunner):
    """Takes every chunk (as the feeder sends them) and delivers none: the command's input ends at once."""

    def run(self, argv, stdin=None, sink=None, env=None, user=None):
        if stdin is not None:
            for _chunk in stdin:
                pass
            stdin = iter([])
        return super().run(argv, stdin=stdin, sink=sink, env=env, user=user)


@pytest.fixture
def database(tmp_path):
    path = str(tmp_path / "live" / "sms.sqlite3")
    os.makedirs(os.path.dirname(path))
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE students (id INTEGER PRIMARY KEY, name TEXT)")
        con.executemany("INSERT INTO students (name) VALUES (?)", [("s%d" % i,) for i in range(20)])
    return path


def test_a_backup_restores_and_verifies_with_every_byte_received(tmp_path, database):
    engine = SQLite(LocalRunner(), Target("sqlite", "sms", path=database))
    made = backup.take_backup(engine, str(tmp_path))
    result = backup.verify_backup(str(tmp_path), made["name"], "restore", engine=engine, record=False)
    assert result["status"] == "passed", result["steps"]


def test_a_copy_whose_input_ended_early_fails_saying_so(tmp_path, database):
    made = backup.take_backup(SQLite(LocalRunner(), Target("sqlite", "sms", path=database)), str(tmp_path))
    losing = SQLite(LosingRunner(), Target("sqlite", "sms", path=database))
    result = backup.verify_backup(str(tmp_path), made["name"], "restore", engine=losing, record=False)
    assert result["status"] == "failed"
    detail = result["steps"][-1]["detail"]
    assert "received 0 of the" in detail and "its input ended early" in detail, detail
    with pytest.raises(EngineError, match="received 0 of the .* bytes sent"):
        losing.restore(iter([b"x" * 1000]), database + "__rc_scratch")
    with sqlite3.connect(database) as con:
        assert con.execute("SELECT count(*) FROM students").fetchone()[0] == 20, "the live file is untouched"
