"""SQLite restores keep the file as it was: WAL journal mode, permissions and owner (the live file's, or the
backup's when the file is gone)."""

import os
import sqlite3
import stat

import pytest
from modules import run_module
from test_backup_sqlite import dump_all, make_db


def journal(path):
    """The journal mode the file itself records (header bytes 18-19: 2 = WAL, 1 = rollback journal)."""
    with open(path, "rb") as f:
        header = f.read(20)
    return {b"\x02\x02": "wal", b"\x01\x01": "delete"}.get(header[18:20], repr(header[18:20]))


def owner_and_mode(path):
    st = os.stat(path)
    return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)


@pytest.fixture(scope="module")
def backed_up(tmp_path_factory):
    """A WAL database, mode 0640, owned by 4321:4322 (when root runs the tests), and one backup of it."""
    base = tmp_path_factory.mktemp("edge")
    db, backups = str(base / "school.sqlite3"), base / "backups"
    backups.mkdir()
    make_db(db, rows=20).close()
    os.chmod(db, 0o640)
    if os.geteuid() == 0:
        os.chown(db, 4321, 4322)
    args = {"engine": "sqlite", "path": db, "directory": str(backups)}
    rc, made, _ = run_module("db_backup", args)
    assert rc == 0, made.get("msg")
    return db, args, made, owner_and_mode(db), dump_all(db)


def test_the_manifest_records_journal_mode_and_file_mode(backed_up):
    db, _, made, (uid, gid, mode), _ = backed_up
    assert made["manifest"]["sqlite"] == {"journal_mode": "wal", "mode": mode, "uid": uid, "gid": gid}
    assert mode == 0o640


def test_restore_over_the_live_file_keeps_its_mode_owner_and_wal(backed_up):
    db, args, made, _, before = backed_up
    live = sqlite3.connect(db)
    live.execute("DELETE FROM pupils WHERE id > 3")
    live.commit()
    live.close()
    os.chmod(db, 0o600)  # changed since the backup: the live file's settings are the ones kept
    if os.geteuid() == 0:
        os.chown(db, 4400, 4401)
    expected = owner_and_mode(db)
    held = sqlite3.connect(db)  # the app's connection, open across the restore
    inode = os.stat(db).st_ino
    rc, restored, _ = run_module("db_restore", dict(args, name=made["name"], safety_backup=False))
    assert rc == 0, restored.get("msg")
    assert dump_all(db) == before
    assert journal(db) == "wal"
    assert owner_and_mode(db) == expected
    # into the live file: the held connection reads the restored rows, and the app need not open it again
    assert restored["app_must_reopen"] is False and os.stat(db).st_ino == inode
    assert held.execute("SELECT count(*) FROM pupils").fetchone()[0] == 20
    held.close()


def test_restore_of_a_missing_file_takes_mode_owner_and_wal_from_the_backup(backed_up):
    db, args, made, recorded, before = backed_up
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.unlink(db + suffix)
    rc, restored, _ = run_module("db_restore", dict(args, name=made["name"]))
    assert rc == 0, restored.get("msg")
    assert restored["safety_backup"] is None
    assert restored["app_must_reopen"] is True  # a new file: an app must open it
    assert journal(db) == "wal"
    assert owner_and_mode(db) == recorded
    assert dump_all(db) == before
    assert not [f for f in os.listdir(os.path.dirname(db)) if "__rc_" in f or f.endswith(".rc_part")]
