"""The SQLite adapter's swap on this host (its helper runs with this Python): journal mode and file mode kept,
nothing live touched when the restored copy cannot be prepared."""

import os
import sqlite3
import stat

import pytest

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
