"""SQLite backups through the real modules: a file on this host, and a file inside the app's container."""

import os
import sqlite3
import uuid

import pytest
from conftest import SECRET, wait_exit
from modules import run_module

KEY = "aa" * 32


def make_db(path, rows=300):
    con = sqlite3.connect(path)
    con.executescript("""
        PRAGMA foreign_keys = ON;
        CREATE TABLE "class ""A"" ✓" (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
        CREATE TABLE pupils (id INTEGER PRIMARY KEY, class_id INTEGER REFERENCES "class ""A"" ✓"(id),
                             photo BLOB, note TEXT);
        CREATE INDEX pupils_class ON pupils(class_id);
        CREATE VIEW named AS SELECT p.id, c.name FROM pupils p JOIN "class ""A"" ✓" c ON c.id = p.class_id;
        CREATE TRIGGER pupils_note AFTER INSERT ON pupils WHEN NEW.note IS NULL
          BEGIN UPDATE pupils SET note = 'none' WHERE id = NEW.id; END;
        CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL);
        INSERT INTO alembic_version VALUES ('0002');
    """)
    con.execute("INSERT INTO \"class \"\"A\"\" ✓\" (name) VALUES ('Ünïcode'), ('plain')")
    con.executemany("INSERT INTO pupils (class_id, photo, note) VALUES (?, ?, ?)",
                    [(1 + i % 2, bytes([i % 256]) * 50, None if i % 3 else "x") for i in range(rows)])
    con.commit()
    con.execute("PRAGMA journal_mode=WAL")  # a live database, as the app runs it
    return con


def dump_all(path):
    con = sqlite3.connect(path)
    try:
        return "\n".join(con.iterdump())
    finally:
        con.close()


@pytest.fixture
def setup(tmp_path):
    backups = tmp_path / "backups"
    backups.mkdir()
    db = str(tmp_path / "school.sqlite3")
    live = make_db(db)
    yield db, backups, live
    live.close()


def test_backup_of_a_live_database_verify_restore(setup):
    db, backups, live = setup
    before = dump_all(db)
    args = {"engine": "sqlite", "path": db, "directory": str(backups), "compression": "gzip", "encryption_key": KEY}
    rc, result, output = run_module("db_backup", args)
    assert rc == 0, result.get("msg")
    manifest = result["manifest"]
    assert manifest["database"] == "school" and manifest["schema_revision"] == "0002"
    assert manifest["row_counts"] == {'class "A" ✓': 2, "pupils": 300, "alembic_version": 1}
    assert KEY not in output
    common = {k: v for k, v in args.items() if k != "compression"}
    rc, verified, _ = run_module("backup_verify", dict(common, level="restore", name=result["name"]))
    assert rc == 0 and verified["status"] == "passed", verified
    assert "integrity_check ok" in verified["steps"][1]["detail"]
    assert not os.path.exists(db + "__rc_scratch")

    live.execute("DELETE FROM pupils WHERE id > 5")
    live.commit()
    live.close()
    rc, restored, _ = run_module("db_restore", common)
    assert rc == 0, restored.get("msg")
    assert dump_all(db) == before
    assert restored["safety_backup"] and restored["old_kept_as"] is None
    assert not [f for f in os.listdir(os.path.dirname(db)) if "__rc_" in f or f.endswith(".rc_part")]


def test_corrupt_file_fails_native_and_restore_keeps_the_original(setup):
    db, backups, live = setup
    args = {"engine": "sqlite", "path": db, "directory": str(backups)}
    rc, result, _ = run_module("db_backup", args)
    assert rc == 0
    data_file = backups / (result["name"] + ".dump")
    data = bytearray(data_file.read_bytes())
    data[4096:4096 + 512] = b"\xff" * 512  # damage a page, and make the manifest agree with the damage
    data_file.write_bytes(bytes(data))
    import hashlib
    import json

    manifest_file = backups / (result["name"] + ".manifest.json")
    manifest = json.loads(manifest_file.read_text())
    manifest["data"]["sha256"] = hashlib.sha256(bytes(data)).hexdigest()
    manifest_file.write_text(json.dumps(manifest))
    rc, verified, _ = run_module("backup_verify", dict(args, level="native", name=result["name"]))
    assert rc != 0 and verified["status"] == "failed"
    before = dump_all(db)
    rc, restored, _ = run_module("db_restore", dict(args, name=result["name"]))
    assert rc != 0 and "refusing to restore" in restored["msg"]
    assert dump_all(db) == before


def test_missing_file_is_a_clear_error(tmp_path):
    backups = tmp_path / "b"
    backups.mkdir()
    rc, result, _ = run_module("db_backup", {"engine": "sqlite", "path": str(tmp_path / "nope.sqlite3"),
                                             "directory": str(backups)})
    assert rc != 0 and "does not exist" in result["msg"]
    assert os.listdir(backups) == []


def test_backup_from_inside_the_app_container(docker_client, require_image, run_container, tmp_path):
    """The SMS on SQLite keeps its database in a volume of the app container; tools run there."""
    app = require_image("rollcall/sms-app:1.0.0")
    volume = "it-sqlite-%s" % uuid.uuid4().hex[:8]
    env = {"DATABASE_URL": "sqlite:////data/db/sms.sqlite3", "SECRET_KEY": SECRET}
    volumes = {volume: {"bind": "/data/db", "mode": "rw"}}
    try:
        code, output = wait_exit(run_container(app, command=["sh", "-c", "sms-app migrate && sms-app seed "
                                                                         "--students 9"], environment=env,
                                               volumes=volumes))
        assert code == 0, output
        container = run_container(app, environment=env, volumes=volumes)
        backups = tmp_path / "b"
        backups.mkdir()
        args = {"engine": "sqlite", "path": "/data/db/sms.sqlite3", "container": container.name,
                "directory": str(backups)}
        rc, result, _ = run_module("db_backup", args)
        assert rc == 0, result.get("msg")
        assert result["manifest"]["row_counts"]["students"] == 9
        assert result["manifest"]["schema_revision"] == "0001"
        rc, verified, _ = run_module("backup_verify", dict(args, level="restore", name=result["name"]))
        assert rc == 0 and verified["status"] == "passed", verified
        leftovers = container.exec_run(["ls", "/data/db"]).output.decode().split()
        assert leftovers == ["sms.sqlite3"]
    finally:
        for c in docker_client.containers.list(all=True, filters={"volume": volume}):
            c.remove(force=True, v=True)
        docker_client.volumes.get(volume).remove(force=True)


def test_check_mode_verifies_without_creating_anything(setup):
    db, backups, live = setup
    args = {"engine": "sqlite", "path": db, "directory": str(backups)}
    rc, made, _ = run_module("db_backup", args)
    assert rc == 0
    rc, checked, _ = run_module("backup_verify", dict(args, level="restore", name=made["name"]), "--check")
    assert rc == 0 and checked["status"] == "passed" and checked["level"] == "native"
    assert not (backups / (made["name"] + ".verify.json")).exists(), "check mode records nothing"
    rc, planned, _ = run_module("db_backup", args, "--check")
    assert rc == 0 and planned["changed"] is True and "would back up" in planned["msg"]
    assert len(os.listdir(backups)) == 2, "check mode makes no backup"


def test_a_backup_missing_upload_files_warns_when_verified_checked_and_restored(setup, tmp_path):
    """Through the real modules: the backup restores whole, and each step names the downloads that will 404."""
    db, backups, live = setup
    live.executescript("CREATE TABLE uploads (id INTEGER PRIMARY KEY, name TEXT); "
                       "INSERT INTO uploads (name) VALUES ('a.pdf'), ('b.pdf');")
    live.commit()
    files = tmp_path / "uploads"
    files.mkdir()
    (files / "a.pdf").write_text("report card")  # b.pdf's file is gone
    args = {"engine": "sqlite", "path": db, "directory": str(backups)}
    rc, made, _ = run_module("db_backup", dict(args, uploads_path=str(files), uploads_table="uploads"))
    assert rc == 0, made.get("msg")
    said = "the uploads archive holds 1 file where the uploads table has 2 rows: 1 upload had no file in %s" % files
    rc, verified, _ = run_module("backup_verify", dict(args, name=made["name"], level="native"))
    assert rc == 0 and verified["status"] == "passed" and verified["data_warnings"][0].startswith(said), verified
    rc, checked, _ = run_module("db_restore", dict(args, name=made["name"]), "--check")
    assert rc == 0 and checked["data_warnings"][0].startswith(said), checked
    assert any(w.startswith("backup %s: %s" % (made["name"], said)) for w in checked.get("warnings", [])), checked
    (files / "a.pdf").unlink()
    rc, restored, _ = run_module("db_restore", dict(args, name=made["name"]))
    assert rc == 0 and restored["files_restored"] == str(files), restored.get("msg")
    assert restored["data_warnings"][0].startswith(said)
    assert any(w.startswith("backup %s: %s" % (made["name"], said)) for w in restored.get("warnings", [])), restored
    assert sorted(os.listdir(files)) == ["a.pdf"]
