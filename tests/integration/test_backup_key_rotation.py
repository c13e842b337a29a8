"""Backup key rotation against a real PostgreSQL, through the real modules (issue 12, item 3): after a rotation a
backup made with the old key still restores with the key ring; without the old key the error names its key id;
re-encryption moves it to the new key; the key report lists which backup uses which key."""

import hashlib
import json
import os
import uuid

import pytest
import yaml
from conftest import wait_healthy
from modules import run_module

from ansible_collections.rollcall.ops.plugins.module_utils.db_roles import derived_password

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PASSWORD = "pg-rotation-password-not-in-logs"
OLD = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
NEW = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"


def key_id(hex_key):
    return hashlib.sha256(b"rollcall-backup-key-id\0" + bytes.fromhex(hex_key)).hexdigest()[:16]


ID_OLD, ID_NEW = key_id(OLD), key_id(NEW)


@pytest.fixture(scope="module")
def pg(docker_client, require_image):
    require_image("rollcall/postgres:15")
    container = docker_client.containers.run(
        "rollcall/postgres:15", detach=True, name="rc-t12c-pg-%s" % uuid.uuid4().hex[:8],
        environment={"POSTGRES_USER": "sms", "POSTGRES_PASSWORD": PASSWORD, "POSTGRES_DB": "sms"})
    try:
        wait_healthy(container)
        psql(container, "CREATE TABLE students (id integer PRIMARY KEY, name text NOT NULL);"
                        "INSERT INTO students SELECT g, 'student ' || g FROM generate_series(1, 25) g;")
        # The roles the playbooks log in as (roles/database's matrix makes them on a deployed stack).
        for role, grants in (("sms_backup", "IN ROLE pg_read_all_data"),
                             ("sms_owner", "CREATEDB IN ROLE sms, pg_signal_backend")):
            psql(container, "CREATE ROLE %s LOGIN PASSWORD '%s' %s" % (role, derived_password(PASSWORD, role), grants))
        yield container
    finally:
        container.remove(force=True, v=True)


def psql(container, sql):
    result = container.exec_run(["psql", "-X", "-v", "ON_ERROR_STOP=1", "-qAt", "-h", "127.0.0.1", "-U", "sms",
                                 "-d", "sms", "-c", sql], environment={"PGPASSWORD": PASSWORD})
    assert result.exit_code == 0, result.output.decode()
    return result.output.decode().strip()


def args(pg, directory, **extra):
    return dict({"engine": "postgresql", "container": pg.name, "database": "sms", "user": "sms",
                 "password": PASSWORD, "directory": str(directory)}, **extra)


def run(module, params):
    rc, result, output = run_module(module, params)
    for secret in (OLD, NEW, PASSWORD):
        assert secret not in output, "%s printed a secret" % module
    return rc, result


def test_rotation_restore_with_the_ring_clear_errors_and_reencryption(pg, tmp_path):
    directory = tmp_path / "backups"
    directory.mkdir()
    ring = {"encryption_key": NEW, "encryption_keys": [OLD]}

    # A backup made with the old key, before the rotation.
    rc, made = run("db_backup", args(pg, directory, encryption_key=OLD, compression="gzip"))
    assert rc == 0, made.get("msg")
    old_name = made["name"]
    assert made["manifest"]["data"]["key_id"] == ID_OLD

    # The key report: which backup uses which key, and whether the ring reads it.
    rc, report = run("backup_keys", dict(ring, directory=str(directory), require_readable=True))
    assert rc == 0, report.get("msg")
    assert report["by_key"] == {ID_OLD: [old_name]} and report["ring"] == [ID_NEW, ID_OLD]
    assert report["backups"][0]["in_ring"] and not report["backups"][0]["current"]
    assert report["changed"] is False

    # Without the old key in the ring: refused, naming the key id and where to add the key.
    rc, refused = run("backup_keys", {"directory": str(directory), "encryption_key": NEW, "require_readable": True})
    assert rc != 0 and ID_OLD in refused["msg"] and "rollcall_backup_old_keys" in refused["msg"]
    assert refused["unreadable"] == [old_name]

    # The data changes after the backup; the old-key backup restores it with the ring.
    psql(pg, "DELETE FROM students WHERE id > 10; INSERT INTO students VALUES (99, 'added later')")
    rc, restored = run("db_restore", args(pg, directory, name=old_name, **ring))
    assert rc == 0, restored.get("msg")
    assert psql(pg, "SELECT count(*), max(id) FROM students") == "25|25"
    safety = json.loads((directory / (restored["safety_backup"] + ".manifest.json")).read_text())
    assert safety["data"]["key_id"] == ID_NEW and safety["signature"]["key_id"] == ID_NEW  # new backups: new key

    # A missing old key: restore and verification fail naming the key id; the database is untouched.
    psql(pg, "INSERT INTO students VALUES (100, 'after the restore')")
    rc, failed = run("db_restore", args(pg, directory, name=old_name, encryption_key=NEW))
    assert rc != 0 and "key id %s" % ID_OLD in failed["msg"] and "rollcall_backup_old_keys" in failed["msg"]
    assert "the target database was not replaced" in failed["msg"]
    assert psql(pg, "SELECT count(*) FROM students") == "26"
    rc, failed = run("backup_verify", args(pg, directory, name=old_name, encryption_key=NEW))
    assert rc != 0 and "key id %s" % ID_OLD in failed["msg"]

    # A damaged ring entry (a truncated key): a clear error naming its place, never its value.
    rc, failed = run("backup_verify", args(pg, directory, name=old_name, encryption_key=NEW,
                                           encryption_keys=[OLD[:-4]]))
    assert rc != 0 and "entry 1 of encryption_keys" in failed["msg"] and "32 bytes" in failed["msg"]
    assert OLD[:-4] not in json.dumps(failed)

    # Re-encryption: check mode says what it would do and changes nothing.
    before = sorted(p.name for p in directory.iterdir())
    rc, planned = run_module("backup_keys", dict(ring, directory=str(directory), action="reencrypt"), "--check")[:2]
    assert rc == 0 and planned["changed"] is True and [d["name"] for d in planned["reencrypted"]] == [old_name]
    assert sorted(p.name for p in directory.iterdir()) == before

    rc, done = run("backup_keys", dict(ring, directory=str(directory), action="reencrypt"))
    assert rc == 0, done.get("msg")
    assert done["changed"] is True and [d["name"] for d in done["reencrypted"]] == [old_name]
    assert done["reencrypted"][0]["from_key_id"] == ID_OLD and done["reencrypted"][0]["to_key_id"] == ID_NEW

    # The old backup now reads (a restore-level verification) with the new key alone.
    rc, verified = run("backup_verify", args(pg, directory, name=old_name, encryption_key=NEW, level="restore"))
    assert rc == 0 and verified["status"] == "passed", verified.get("msg")
    rc, report = run("backup_keys", {"directory": str(directory), "encryption_key": NEW, "require_readable": True})
    assert rc == 0 and list(report["by_key"]) == [ID_NEW] and sorted(report["by_key"][ID_NEW]) == sorted(
        [old_name, restored["safety_backup"]])
    rc, info = run("backup_info", {"directory": str(directory), "database": "sms"})
    assert {b["key_id"] for b in info["backups"]} == {ID_NEW}

    # Idempotent: nothing left to re-encrypt.
    rc, again = run("backup_keys", dict(ring, directory=str(directory), action="reencrypt"))
    assert rc == 0 and again["changed"] is False and again["reencrypted"] == []


# ------------------------------------------------------------------------------------- the playbook
def test_the_playbook_refuses_without_the_old_key_then_rotates_and_reencrypts(pg, tmp_path):
    from test_deploy import failures, playbook, write_inventory

    directory, state = tmp_path / "backups", tmp_path / "state"
    directory.mkdir(mode=0o700)
    rc, made = run("db_backup", args(pg, directory, encryption_key=OLD))
    assert rc == 0, made.get("msg")
    settings = dict(rollcall_project="rc-t12c-rot", rollcall_environment="test", rollcall_db_engine="postgresql",
                    rollcall_db_container=pg.name, rollcall_db_password=PASSWORD, rollcall_backup_dir=str(directory),
                    rollcall_backup_uploads=False, rollcall_backup_verify_level="checksum",
                    rollcall_state_dir=str(state), rollcall_backup_key=NEW, rollcall_actor="it-rotation")
    audit = state / "rc-t12c-rot" / "audit.jsonl"

    # The new key is set but the old one is not in the ring: refused before anything changes, and audited.
    before = sorted(p.name for p in directory.iterdir())
    proc, report = playbook(write_inventory(tmp_path, **settings), "rotate_backup_key.yml")
    assert proc.returncode != 0
    found = failures(report)
    assert any(ID_OLD in msg and "rollcall_backup_old_keys" in msg for _, msg in found), found
    assert sorted(p.name for p in directory.iterdir()) == before
    lines = [json.loads(line) for line in audit.read_text().splitlines()]
    assert lines[-1]["event"] == "backup_key_rotation_failed" and lines[-1]["actor"] == "it-rotation"

    # With the old key in the ring and -e reencrypt=true: a fresh backup with the new key, the old one re-encrypted.
    inventory = write_inventory(tmp_path, rollcall_backup_old_keys=[OLD], **settings)
    proc, report = playbook(inventory, "rotate_backup_key.yml", "-e", "reencrypt=true")
    assert proc.returncode == 0, failures(report) or proc.stderr[-2000:]
    for secret in (OLD, NEW, PASSWORD):
        assert secret not in proc.stdout + proc.stderr
    rc, keys = run("backup_keys", {"directory": str(directory), "encryption_key": NEW, "require_readable": True})
    assert rc == 0 and list(keys["by_key"]) == [ID_NEW] and len(keys["by_key"][ID_NEW]) == 2
    assert made["name"] in keys["by_key"][ID_NEW]
    said = [r["msg"] for play in report["plays"] for t in play["tasks"] for r in t["hosts"].values()
            if t["task"]["name"].endswith("Say what the rotation did")]
    assert said and "New backups use key id %s" % ID_NEW in said[0] and "Re-encrypted %s" % made["name"] in said[0]
    assert "may be removed from rollcall_backup_old_keys" in said[0]
    # one list, in words: "Backups per key id: <id>: a, b." (it ended "a, b;  Keep ..." with a stray separator)
    assert "Backups per key id: %s: %s." % (ID_NEW, ", ".join(keys["by_key"][ID_NEW])) in said[0], said[0]
    line = json.loads(audit.read_text().splitlines()[-1])
    assert line["event"] == "backup_key_rotated" and "key id %s" % ID_NEW in line["message"]
    assert "re-encrypted 1" in line["message"]

    # Run again: every kept backup is on the current key, so it is not a new key; nothing changes, nothing is audited.
    before, lines = sorted(p.name for p in directory.iterdir()), audit.read_text()
    proc, report = playbook(inventory, "rotate_backup_key.yml")
    assert proc.returncode == 0, failures(report) or proc.stderr[-2000:]
    said = [r["msg"] for play in report["plays"] for t in play["tasks"] for r in t["hosts"].values()
            if "Say that there is nothing to rotate" in t["task"]["name"] and not r.get("skipped")]
    assert said and said[0].startswith("Nothing to rotate, nothing was changed: all 2 kept backups were made with "
                                       "key id %s" % ID_NEW), said
    assert sorted(p.name for p in directory.iterdir()) == before and audit.read_text() == lines

    # -e generate=true is for an inventory whose keys are generated files (the demo's): refused here, nothing changed.
    proc, report = playbook(inventory, "rotate_backup_key.yml", "-e", "generate=true")
    assert proc.returncode != 0
    assert any("generate=true makes the backup key of an inventory whose secrets are generated files" in msg
               for _, msg in failures(report)), failures(report)
    assert sorted(p.name for p in directory.iterdir()) == before and audit.read_text() == lines


def test_the_demo_makes_its_own_key_and_keeps_the_old_one_in_the_ring(pg, tmp_path):
    """inventories/local's way: the key in a generated file; -e generate=true keeps it among the old keys' files
    (never overwritten), pins the point-in-time repository's cipher pass derived from it, and writes a new key."""
    from test_deploy import failures, playbook, write_inventory
    directory, state, secrets = tmp_path / "backups", tmp_path / "state", tmp_path / "secrets"
    directory.mkdir(mode=0o700)
    secrets.mkdir(mode=0o700)
    (secrets / "backup_key").write_text(OLD + "\n")
    rc, made = run("db_backup", args(pg, directory, encryption_key=OLD))
    assert rc == 0, made.get("msg")
    # the lines of inventories/local/group_vars/all.yml, as they are there
    with open(os.path.join(ROOT, "inventories", "local", "group_vars", "all.yml")) as demo_vars:
        demo = yaml.safe_load(demo_vars)
    inventory = write_inventory(
        tmp_path, rollcall_project="rc-t12c-gen", rollcall_environment="test", rollcall_db_engine="postgresql",
        rollcall_db_container=pg.name, rollcall_db_password=PASSWORD, rollcall_backup_dir=str(directory),
        rollcall_backup_uploads=False, rollcall_backup_verify_level="checksum", rollcall_state_dir=str(state),
        rollcall_secrets_dir=str(secrets),
        rollcall_backup_key=demo["rollcall_backup_key"],
        rollcall_backup_old_key_files=demo["rollcall_backup_old_key_files"])

    # Check mode writes no key and takes no backup, and says what would happen.
    before = sorted(p.name for p in directory.iterdir())
    proc, report = playbook(inventory, "rotate_backup_key.yml", "-e", "generate=true", "--check")
    assert proc.returncode == 0, failures(report) or proc.stderr[-2000:]
    assert (secrets / "backup_key").read_text() == OLD + "\n" and sorted(os.listdir(secrets)) == ["backup_key"]
    assert sorted(p.name for p in directory.iterdir()) == before
    assert "would keep key id %s in the key ring" % ID_OLD in proc.stdout
    # before the first rotation there is no backup_old_keys/: nothing to warn about (every demo backup warned)
    assert "Unable to find" not in proc.stdout + proc.stderr, proc.stderr[-2000:]

    proc, report = playbook(inventory, "rotate_backup_key.yml", "-e", "generate=true")
    assert proc.returncode == 0, failures(report) or proc.stderr[-2000:]
    new = (secrets / "backup_key").read_text().strip()
    assert len(new) == 64 and new != OLD and new not in proc.stdout + proc.stderr
    kept = list((secrets / "backup_old_keys").iterdir())
    assert len(kept) == 1 and kept[0].read_text() == OLD + "\n" and kept[0].stat().st_mode & 0o777 == 0o600
    assert (secrets / "pitr_cipher_pass").read_text().strip() == hashlib.sha256(
        ("rollcall-pitr:" + OLD).encode()).hexdigest()
    rc, keys = run("backup_keys", {"directory": str(directory), "encryption_key": new,
                                   "encryption_key_files": [str(kept[0])], "require_readable": True})
    assert rc == 0, keys.get("msg")
    assert keys["by_key"][ID_OLD] == [made["name"]] and len(keys["by_key"][key_id(new)]) == 1

    # The key file deleted by hand: the demo's lookup makes another key, and the next backup used to be made with it
    # without a word, every older backup unreadable with the inventory's keys. Now it is refused, nothing written.
    (secrets / "backup_key").unlink()
    before = sorted(p.name for p in directory.iterdir())
    proc, report = playbook(inventory, "backup.yml")
    assert proc.returncode != 0, "a backup with a key that read no backup went ahead"
    said = " ".join(" ".join(f) for f in failures(report))
    regenerated = (secrets / "backup_key").read_text().strip()
    assert ("was made with key id %s, and the key given now has key id %s" % (key_id(new), key_id(regenerated))
            in said), said
    assert "-e rollcall_backup_key_lost=true" in said and regenerated not in proc.stdout + proc.stderr
    assert sorted(p.name for p in directory.iterdir()) == before
    # the old key lost for good: said so, the backup is taken with the key there is
    proc, report = playbook(inventory, "backup.yml", "-e", "rollcall_backup_key_lost=true")
    assert proc.returncode == 0, failures(report) or proc.stderr[-2000:]
    rc, keys = run("backup_keys", {"directory": str(directory), "encryption_key": regenerated})
    assert rc == 0 and len(keys["by_key"][key_id(regenerated)]) == 1, keys
