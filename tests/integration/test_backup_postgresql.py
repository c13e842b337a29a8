"""Backups of a real PostgreSQL (in its container) through the real modules: happy paths, faults, fidelity."""

import concurrent.futures
import difflib
import json
import os
import subprocess
import time
import uuid

import pytest
from conftest import wait_healthy
from modules import run_module

PASSWORD = "pg-backup-password-not-in-logs"
KEY = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

RICH_SCHEMA = r"""
CREATE EXTENSION IF NOT EXISTS plpgsql;
CREATE SCHEMA "Odd Schema ""quoted"" é";
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN positive AS integer CHECK (VALUE > 0);
CREATE SEQUENCE ticket_seq START 100;
SELECT setval('ticket_seq', 4242);
CREATE TABLE "Odd Schema ""quoted"" é"."Table With Spaces ✓" (
  id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY, feeling mood NOT NULL, n positive, note text,
  data bytea, at timestamptz DEFAULT now());
COMMENT ON TABLE "Odd Schema ""quoted"" é"."Table With Spaces ✓" IS 'comment with ''quotes'' and ünicode';
INSERT INTO "Odd Schema ""quoted"" é"."Table With Spaces ✓" (feeling, n, note, data)
  SELECT (ARRAY['sad','ok','happy'])[1 + g % 3]::mood, g, CASE WHEN g % 5 = 0 THEN NULL ELSE 'row ' || g END,
         decode(md5(g::text), 'hex') FROM generate_series(1, 500) g;
CREATE TABLE measurements (day date NOT NULL, v numeric) PARTITION BY RANGE (day);
CREATE TABLE measurements_2026 PARTITION OF measurements FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
INSERT INTO measurements SELECT DATE '2026-01-01' + g, g * 1.5 FROM generate_series(0, 99) g;
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.v := coalesce(NEW.v, 0); RETURN NEW; END $$;
CREATE TRIGGER measurements_touch BEFORE INSERT ON measurements_2026 FOR EACH ROW EXECUTE FUNCTION touch();
CREATE VIEW happy AS SELECT id, note FROM "Odd Schema ""quoted"" é"."Table With Spaces ✓" WHERE feeling = 'happy';
CREATE MATERIALIZED VIEW per_mood AS SELECT feeling, count(*) FROM "Odd Schema ""quoted"" é"."Table With Spaces ✓"
  GROUP BY feeling;
CREATE ROLE reader NOLOGIN;
GRANT USAGE ON SCHEMA "Odd Schema ""quoted"" é" TO reader;
GRANT SELECT ON happy TO reader;
CREATE TABLE secrets (owner_name text, s text);
ALTER TABLE secrets ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON secrets USING (owner_name = current_user);
INSERT INTO secrets VALUES ('sms', 'mine'), ('other', 'theirs');
SELECT lo_from_bytea(0, 'large object payload');
"""


@pytest.fixture(scope="module")
def pg(docker_client, require_image):
    require_image("rollcall/postgres:15")
    name = "it-pgbk-%s" % uuid.uuid4().hex[:8]
    # started as roles/database starts it: pg_stat_statements preloaded, its extension in the postgres database
    # (docs/maintenance.md); the app database's dumps and restores must not notice
    container = docker_client.containers.run("rollcall/postgres:15", detach=True, name=name, environment={
        "POSTGRES_USER": "sms", "POSTGRES_PASSWORD": PASSWORD, "POSTGRES_DB": "sms"},
        command=["postgres", "--shared_preload_libraries=pg_stat_statements"])
    try:
        wait_healthy(container)
        psql(container, "postgres", "CREATE EXTENSION pg_stat_statements;")
        psql(container, "sms", RICH_SCHEMA)
        yield container
    finally:
        container.remove(force=True, v=True)


LOGIN = ["-h", "127.0.0.1", "-U", "sms"]


def psql(container, database, sql):
    result = container.exec_run(["psql", "-X", "-v", "ON_ERROR_STOP=1", "-qAt", *LOGIN, "-d", database, "-c", sql],
                                environment={"PGPASSWORD": PASSWORD})
    assert result.exit_code == 0, result.output.decode()
    return result.output.decode()


def fingerprint(container, database):
    """Schema and data (large objects included) as pg_dump sees them, in plain format."""
    result = container.exec_run(["pg_dump", *LOGIN, "-d", database, "-Fp", "--blobs", "--restrict-key=rollcall"],
                                environment={"PGPASSWORD": PASSWORD})
    assert result.exit_code == 0, result.output.decode()[-500:]
    return result.output.decode()


@pytest.fixture
def directory(tmp_path):
    d = tmp_path / "backups"
    d.mkdir()
    return d


def args(pg, directory, **extra):
    base = {"engine": "postgresql", "container": pg.name, "database": "sms", "user": "sms", "password": PASSWORD,
            "directory": str(directory)}
    base.update(extra)
    return base


def backup(pg, directory, **extra):
    rc, result, output = run_module("db_backup", args(pg, directory, **extra))
    assert rc == 0, result.get("msg")
    assert PASSWORD not in output and KEY not in output
    return result


def test_backup_manifest_and_files(pg, directory):
    result = backup(pg, directory, encryption_key=KEY, compression="gzip", app_version="1.0.0")
    manifest = result["manifest"]
    assert manifest["engine"] == "postgresql" and manifest["database"] == "sms" and manifest["type"] == "full"
    assert manifest["row_counts"]['Odd Schema "quoted" é.Table With Spaces ✓'] == 500
    assert manifest["row_counts"]["public.measurements_2026"] == 100
    assert manifest["server_version"].startswith("15.")
    assert manifest["tool_versions"]["pg_dump"].startswith("pg_dump (PostgreSQL) 15")
    assert manifest["data"]["encrypted"] is True and len(manifest["data"]["key_id"]) == 16
    assert manifest["app_version"] == "1.0.0"
    files = sorted(os.listdir(directory))
    assert files == [result["name"] + ".dump.gz.enc", result["name"] + ".manifest.json"]
    raw = (directory / files[1]).read_text()
    assert KEY not in raw and PASSWORD not in raw
    assert os.stat(result["path"]).st_mode & 0o777 == 0o600


@pytest.mark.parametrize("level", ["checksum", "native", "restore"])
def test_verify_each_level_and_info_reports_it(pg, directory, level):
    name = backup(pg, directory, encryption_key=KEY)["name"]
    rc, result, _ = run_module("backup_verify", args(pg, directory, name=name, level=level, encryption_key=KEY))
    assert rc == 0, result.get("msg")
    assert result["status"] == "passed" and [s["level"] for s in result["steps"]] == \
        ["checksum", "native", "restore"][:["checksum", "native", "restore"].index(level) + 1]
    rc, info, _ = run_module("backup_info", {"directory": str(directory), "database": "sms"})
    assert info["count"] == 1 and info["backups"][0]["verified"] is True
    assert 0 <= info["newest_verified_age_s"] < 120
    assert "sms__rc_scratch" not in psql(pg, "sms", "SELECT string_agg(datname, ',') FROM pg_database")


def test_flipped_byte_fails_verification_and_restore_is_refused(pg, directory):
    name = backup(pg, directory)["name"]
    path = directory / (name + ".dump")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    rc, result, _ = run_module("backup_verify", args(pg, directory, name=name, level="native"))
    assert rc != 0 and result["status"] == "failed" and "checksum mismatch" in result["msg"]
    rc, info, _ = run_module("backup_info", {"directory": str(directory)})
    assert info["backups"][0]["verified"] is False and info["newest_verified_age_s"] is None
    before = fingerprint(pg, "sms")
    rc, result, _ = run_module("db_restore", args(pg, directory, name=name))
    assert rc != 0 and "refusing to restore" in result["msg"] and "target database was not replaced" in result["msg"]
    assert "-e restore_backup_name=NAME" in result["msg"] and "there is no older backup" in result["msg"]
    assert fingerprint(pg, "sms") == before


def databases(pg):
    return psql(pg, "sms", "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database")


def test_damage_at_the_end_of_the_stream_is_found_while_restoring(pg, directory):
    """One read: the checksum is only known at the end of the stream, and no swap happens before it."""
    older = backup(pg, directory)["name"]
    assert run_module("backup_verify", args(pg, directory, name=older))[0] == 0
    newest = backup(pg, directory)["name"]  # module runs take seconds: another name
    path = directory / (newest + ".dump")
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x01
    path.write_bytes(bytes(data))
    before = fingerprint(pg, "sms")
    rc, result, _ = run_module("db_restore", args(pg, directory, name=newest, safety_backup=False))
    assert rc != 0 and "checksum mismatch" in result["msg"], result["msg"]
    assert "the newest verified backup before it is %s" % older in result["msg"]
    assert fingerprint(pg, "sms") == before and "__rc_" not in databases(pg)


def test_truncated_artifact_is_caught_by_the_native_reader_too(pg, directory):
    name = backup(pg, directory)["name"]
    path = directory / (name + ".dump")
    manifest_path = directory / (name + ".manifest.json")
    manifest = json.loads(manifest_path.read_text())
    data = path.read_bytes()[:-2000]
    path.write_bytes(data)
    # Even with a manifest that agrees with the damage, pg_restore's full read fails.
    import hashlib

    manifest["data"]["sha256"] = hashlib.sha256(data).hexdigest()
    manifest_path.write_text(json.dumps(manifest))
    rc, result, _ = run_module("backup_verify", args(pg, directory, name=name, level="native"))
    assert rc != 0 and result["steps"][-1]["level"] == "native" and result["steps"][-1]["status"] == "failed"


def test_wrong_key(pg, directory):
    """The key, not the backup: the verification is "error" (not failed) and says so; health_check, given the
    inventory's keys, calls the key that does not read the newest backup critical before the night's backup
    refuses."""
    name = backup(pg, directory, encryption_key=KEY)["name"]
    rc, result, output = run_module("backup_verify", args(pg, directory, name=name, encryption_key="ff" * 32))
    assert rc != 0 and "wrong key" in result["msg"] and ("ff" * 32) not in output
    assert result["status"] == "error" and "This is about the key given, not the backup" in result["msg"], result
    assert "restore an older backup" not in result["msg"] and "rollcall_backup_old_keys" in result["msg"]
    recorded = json.loads((directory / (name + ".verify.json")).read_text())["latest"]
    assert recorded["status"] == "error" and recorded["steps"][-1]["cause"] == "key", recorded
    health = {"backup_directory": str(directory), "backup_database": "sms", "thresholds": {
        "verified_backup_age_hours": [None, None]}}
    rc, result, output = run_module("health_check", dict(health, backup_keys={"encryption_key": "ff" * 32}))
    [check] = result["checks"]
    assert rc == 0 and check["status"] == "critical", check
    assert "The next backup.yml will refuse" in check["reason"] and ("ff" * 32) not in output and KEY not in output
    rc, result, _ = run_module("health_check", dict(health, backup_keys={"encryption_key": "ff" * 32,
                                                                         "encryption_keys": [KEY]}))
    assert "The next backup.yml will refuse" not in result["checks"][0]["reason"], result


def test_a_verification_that_cannot_log_in_is_not_the_backups_fault(pg, directory):
    """backup.yml beside rotate_db_passwords.yml (found on the demo): the dump passed, the verification's restore
    could not log in with the old password, and the good backup was recorded as "failed restore verification", with
    a hint to restore an older one; health.yml then said the newest backup failed verification (critical). The
    verification now says it could not run, records "error" (not verified, not failed), and passes once it can."""
    name = backup(pg, directory)["name"]
    rc, result, output = run_module("backup_verify", args(pg, directory, name=name, level="restore",
                                                          password="a-password-changed-meanwhile"))
    assert rc != 0 and result["status"] == "error", result
    assert ("backup %s could not be verified at level restore: " % name) in result["msg"], result["msg"]
    assert "password authentication failed" in result["msg"] and "not the backup" in result["msg"]
    assert "restore an older backup" not in result["msg"] and "a-password-changed-meanwhile" not in output
    assert [s["status"] for s in result["steps"]] == ["passed", "passed", "error"], result["steps"]
    recorded = json.loads((directory / (name + ".verify.json")).read_text())["latest"]
    rc, info, _ = run_module("backup_info", {"directory": str(directory), "database": "sms"})
    [item] = [i for i in info["backups"] if i["name"] == name]
    assert not item["verified"] and recorded["status"] == "error", (item, recorded)
    rc, result, _ = run_module("backup_verify", args(pg, directory, name=name, level="restore"))
    assert rc == 0 and result["status"] == "passed", result


@pytest.mark.parametrize("change,message", [
    ({"password": "wrong-password"}, "password authentication failed"),
    ({"database": "does_not_exist"}, "database does_not_exist does not exist at 127.0.0.1:5432"),
    ({"container": "it-no-such-container"}, "container it-no-such-container does not exist"),
    ({"port": 1}, "Connection refused"),
])
def test_bad_connections_fail_clearly_and_leave_nothing(pg, directory, change, message):
    rc, result, output = run_module("db_backup", args(pg, directory, **change))
    assert rc != 0
    assert message in result["msg"], result["msg"]
    assert os.listdir(directory) == []
    assert PASSWORD not in output


@pytest.mark.parametrize("database", ["../../etc", "sms;DROP DATABASE sms", "sms\nx"])
def test_injection_and_traversal_names_are_refused(pg, directory, database):
    rc, result, _ = run_module("db_backup", args(pg, directory, database=database))
    assert rc != 0 and "cannot be used in a backup name" in result["msg"]
    assert os.listdir(directory) == []


def test_full_disk_leaves_nothing_and_keeps_older_backups(pg, tmp_path):
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(small)], check=True)
    psql(pg, "sms", "CREATE TABLE filler AS SELECT md5(random()::text) AS v FROM generate_series(1, 20000)")
    try:
        (small / "postgresql-sms-20200101T000000Z-full.manifest.json").write_text("{}")  # an older backup
        rc, result, _ = run_module("db_backup", args(pg, small))
        assert rc != 0 and "No space left on device" in result["msg"] and "nothing was kept" in result["msg"]
        assert os.listdir(small) == ["postgresql-sms-20200101T000000Z-full.manifest.json"]
    finally:
        subprocess.run(["umount", str(small)], check=True)
        psql(pg, "sms", "DROP TABLE filler")


def test_read_only_backup_directory_says_what_to_do(pg, tmp_path):
    backups = tmp_path / "ro"
    backups.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(backups)], check=True)
    try:
        name = backup(pg, backups)["name"]
        subprocess.run(["mount", "-o", "remount,ro", str(backups)], check=True)
        rc, result, _ = run_module("db_backup", args(pg, backups))
        assert rc != 0 and "[Errno" not in result["msg"], result["msg"]
        assert "is on a read-only file system; mount it read-write or choose a writable directory" in result["msg"]
        rc, result, _ = run_module("db_restore", args(pg, backups, name=name))
        assert rc != 0 and "read-only file system" in result["msg"] and "safety_backup=false" in result["msg"]
        rc, result, _ = run_module("db_restore", args(pg, backups, name=name, safety_backup=False))
        assert rc == 0 and "read-only file system" in result["verification"]["not_recorded"], result
    finally:
        subprocess.run(["umount", str(backups)], check=True)


def test_a_tampered_signed_plain_backup_is_refused(pg, directory):
    """A valid dump of other data put in place, its sha256 and size recomputed in the manifest."""
    made = backup(pg, directory, encryption_key=KEY, encrypt=False)
    assert made["manifest"]["data"]["encrypted"] is False and made["manifest"]["signature"]
    other = directory / "other"
    other.mkdir()
    with open(backup(pg, other, database="postgres")["path"], "rb") as handle:
        forged = handle.read()
    (directory / (made["name"] + ".dump")).write_bytes(forged)
    manifest_path = directory / (made["name"] + ".manifest.json")
    manifest = json.loads(manifest_path.read_text())
    manifest["data"].update(sha256=__import__("hashlib").sha256(forged).hexdigest(), size=len(forged))
    manifest_path.write_text(json.dumps(manifest))
    rc, result, _ = run_module("backup_verify", args(pg, directory, name=made["name"], level="native",
                                                     encryption_key=KEY))
    assert rc != 0 and "does not match its signature" in result["msg"]
    before = fingerprint(pg, "sms")
    rc, result, _ = run_module("db_restore", args(pg, directory, name=made["name"], encryption_key=KEY))
    assert rc != 0 and "refusing to restore" in result["msg"] and "does not match its signature" in result["msg"]
    assert fingerprint(pg, "sms") == before
    rc, result, _ = run_module("backup_verify", args(pg, directory, name=made["name"], encryption_key="ff" * 32))
    assert rc != 0 and "wrong key" in result["msg"]


def test_restore_brings_back_everything_and_keeps_a_safety_backup(pg, directory):
    before = fingerprint(pg, "sms")
    name = backup(pg, directory, encryption_key=KEY)["name"]
    psql(pg, "sms", 'DELETE FROM "Odd Schema ""quoted"" é"."Table With Spaces ✓" WHERE id > 10; '
                    "SELECT setval('ticket_seq', 1); DROP VIEW happy; SELECT lo_unlink(min(oid)) FROM "
                    "pg_largeobject_metadata")
    assert fingerprint(pg, "sms") != before
    rc, check, _ = run_module("db_restore", args(pg, directory, name=name, encryption_key=KEY), "--check")
    assert rc == 0 and check["changed"] is True and "would restore" in check["msg"]
    assert fingerprint(pg, "sms") != before, "check mode changes nothing"
    rc, result, _ = run_module("db_restore", args(pg, directory, name=name, encryption_key=KEY, app_version="1.1.0"))
    assert rc == 0, result.get("msg")
    after = fingerprint(pg, "sms")
    # Seen once (2026-12-06, a fresh clone under load; passed on every run since): the restored dump differed from
    # the one before; say how, line by line, should it happen again.
    assert after == before, "\n".join(list(difflib.unified_diff(before.splitlines(), after.splitlines(), "before",
                                                                "after", lineterm="", n=1))[:60])
    assert result["safety_backup"] and (directory / (result["safety_backup"] + ".manifest.json")).exists()
    safety = json.loads((directory / (result["safety_backup"] + ".manifest.json")).read_text())
    assert safety["app_version"] == "1.1.0" and safety["signature"]["algorithm"] == "hmac-sha256"
    assert [s["level"] for s in result["verification"]["steps"]] == ["checksum", "native", "restore"]
    assert psql(pg, "sms", "SELECT last_value FROM ticket_seq").strip() == "4242"
    assert psql(pg, "sms", "SELECT has_table_privilege('reader', 'happy', 'SELECT')").strip() == "t"
    databases = psql(pg, "sms", "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database")
    assert "__rc_" not in databases


def test_keep_old_keeps_the_replaced_database_open_and_the_next_swap_replaces_it(pg, directory):
    """The swap is one psql session (engines/postgresql.py swap_script): with keep_old the replaced database stays,
    taking connections, with what it held; a later restore without keep_old drops that leftover and its own old."""
    name = backup(pg, directory)["name"]
    before = fingerprint(pg, "sms")
    psql(pg, "sms", "CREATE TABLE only_in_the_replaced (id int); INSERT INTO only_in_the_replaced VALUES (7)")
    rc, result, _ = run_module("db_restore", args(pg, directory, name=name, keep_old=True, safety_backup=False))
    assert rc == 0, result.get("msg")
    assert result["old_kept_as"] == "sms__rc_old"
    assert psql(pg, "sms__rc_old", "SELECT id FROM only_in_the_replaced").strip() == "7"
    assert fingerprint(pg, "sms") == before
    rc, result, _ = run_module("db_restore", args(pg, directory, name=name, safety_backup=False))
    assert rc == 0, result.get("msg")
    assert result["old_kept_as"] is None
    databases = psql(pg, "sms", "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database")
    assert "__rc_" not in databases and fingerprint(pg, "sms") == before


def test_prune_check_mode_diff_then_delete(pg, directory):
    names = []
    for stamp in ("20260101T010000Z", "20260102T010000Z", "20260103T010000Z", "20260103T020000Z"):
        name = "postgresql-sms-%s-full" % stamp
        (directory / (name + ".dump")).write_bytes(b"x")
        (directory / (name + ".manifest.json")).write_text(json.dumps({
            "name": name, "engine": "postgresql", "database": "sms", "type": "full",
            "finished_at": "%s-%s-%sT%s:%s:%sZ" % (stamp[:4], stamp[4:6], stamp[6:8], stamp[9:11], stamp[11:13],
                                                   stamp[13:15]),
            "data": {"file": name + ".dump", "size": 1, "encrypted": False}}))
        names.append(name)
    prune = {"directory": str(directory), "engine": "postgresql", "database": "sms", "keep_last": 1,
             "keep_daily": 2, "keep_weekly": 0, "keep_monthly": 0}
    rc, result, _ = run_module("backup_prune", prune, "--check", "--diff")
    assert rc == 0 and result["changed"] is True
    assert result["deleted"] == [names[2], names[0]]
    assert len(os.listdir(directory)) == 8, "check mode deletes nothing"
    rc, result, _ = run_module("backup_prune", prune)
    assert rc == 0 and sorted(result["kept"]) == [names[1], names[3]]
    assert sorted(os.listdir(directory)) == sorted([n + s for n in (names[1], names[3])
                                                    for s in (".dump", ".manifest.json")])
    rc, again, _ = run_module("backup_prune", prune)
    assert rc == 0 and again["changed"] is False


def test_uploads_travel_in_the_same_backup_set(pg, directory):
    setup = ("mkdir -p /srv/uploads/sub && printf 'report card' > /srv/uploads/a.pdf && "
             "head -c 100000 /dev/urandom > /srv/uploads/sub/photo.jpg && printf x > '/srv/uploads/odd name ✓.txt'")
    assert pg.exec_run(["sh", "-c", setup]).exit_code == 0

    def listing():
        return pg.exec_run(["sh", "-c", "cd /srv/uploads && find . -type f -exec sha256sum {} + | sort"]).output

    before = listing()
    made = backup(pg, directory, encryption_key=KEY, compression="gzip", uploads_path="/srv/uploads",
                  uploads_container=pg.name)
    part = made["manifest"]["files"]["uploads"]
    assert part["file"] == made["name"] + ".uploads.tar.gz.enc" and part["path"] == "/srv/uploads"
    rc, verified, _ = run_module("backup_verify", args(pg, directory, name=made["name"], level="native",
                                                       encryption_key=KEY))
    assert rc == 0 and "uploads archive lists" in verified["steps"][-1]["detail"], verified

    pg.exec_run(["sh", "-c", "rm /srv/uploads/a.pdf && printf new > /srv/uploads/added-later.txt"])
    changed = listing()
    assert changed != before
    rc, restored, _ = run_module("db_restore", args(pg, directory, name=made["name"], encryption_key=KEY))
    assert rc == 0, restored.get("msg")
    assert restored["files_restored"] == "/srv/uploads"
    assert listing() == before
    assert pg.exec_run(["test", "-e", "/srv/uploads/.rc_restore"]).exit_code != 0
    safety = json.loads((directory / (restored["safety_backup"] + ".manifest.json")).read_text())
    assert "uploads" in safety["files"], "the safety backup holds the uploads it replaced"

    # Undoing the restore: its safety backup (taken while the restore's staging directory sat in the uploads)
    # restores too, files as they were before the restore and no staging directory (failed after the swap before).
    rc, undone, _ = run_module("db_restore", args(pg, directory, name=restored["safety_backup"], encryption_key=KEY,
                                                  safety_backup=False))
    assert rc == 0, undone.get("msg")
    assert listing() == changed
    assert pg.exec_run(["test", "-e", "/srv/uploads/.rc_restore"]).exit_code != 0
    rc, _, _ = run_module("db_restore", args(pg, directory, name=made["name"], encryption_key=KEY,
                                             safety_backup=False))
    assert rc == 0 and listing() == before

    # A damaged uploads part fails verification even when the dump itself is fine.
    part_path = directory / part["file"]
    data = bytearray(part_path.read_bytes())
    data[len(data) // 2] ^= 0x01
    part_path.write_bytes(bytes(data))
    rc, verified, _ = run_module("backup_verify", args(pg, directory, name=made["name"], encryption_key=KEY))
    assert rc != 0 and "corrupt" in verified["msg"]


def test_directory_format_with_parallel_jobs_round_trips(pg, directory):
    before = fingerprint(pg, "sms")
    made = backup(pg, directory, archive_format="directory", jobs=2, encryption_key=KEY)
    assert made["manifest"]["archive_format"] == "directory"
    assert made["manifest"]["format"] == "pg_dump directory (-Fd -j 2), as tar"
    rc, verified, _ = run_module("backup_verify", args(pg, directory, name=made["name"], level="restore", jobs=2,
                                                       encryption_key=KEY))
    assert rc == 0 and verified["status"] == "passed", verified
    psql(pg, "sms", "DELETE FROM measurements")
    rc, restored, _ = run_module("db_restore", args(pg, directory, name=made["name"], jobs=2, encryption_key=KEY,
                                                    safety_backup=False))
    assert rc == 0, restored.get("msg")
    assert fingerprint(pg, "sms") == before
    leftovers = pg.exec_run(["sh", "-c", "ls -d /tmp/rollcall-* 2>/dev/null | wc -l"]).output.decode().strip()
    assert leftovers == "0"


def test_stacks_sharing_a_backup_directory_keep_to_their_own_backups(pg, directory):
    """Found on the demo: two stacks, one backup directory, the same database name; restore.yml of one took the
    other's newest backup. Backups record their project; listing, retention and restores keep to it."""
    mine = backup(pg, directory, project="school")["name"]
    time.sleep(1.1)  # names carry the second
    theirs = backup(pg, directory, project="other")["name"]
    rc, info, _ = run_module("backup_info", {"directory": str(directory), "engine": "postgresql", "database": "sms",
                                             "project": "school"})
    assert rc == 0 and [b["name"] for b in info["backups"]] == [mine] and info["backups"][0]["project"] == "school"

    # the newest backup for this project, not the other's newer one; the other's, named, is refused untouched
    before = fingerprint(pg, "sms")
    rc, refused, _ = run_module("db_restore", args(pg, directory, name=theirs, project="school", safety_backup=False))
    assert rc != 0 and "made of project other's database, and this restore is for project school" in refused["msg"]
    assert fingerprint(pg, "sms") == before
    rc, restored, _ = run_module("db_restore", args(pg, directory, project="school", safety_backup=False))
    assert rc == 0 and restored["restored"] == mine, restored.get("msg")

    # retention of one stack never counts or deletes the other's backups
    rc, pruned, _ = run_module("backup_prune", {"directory": str(directory), "engine": "postgresql", "database": "sms",
                                                "project": "other", "keep_last": 1, "keep_daily": 0,
                                                "keep_weekly": 0, "keep_monthly": 0})
    assert rc == 0 and pruned["kept"] == [theirs] and pruned["deleted"] == [], pruned


def test_restore_level_verifications_at_once_take_turns_with_the_scratch_database(pg, directory):
    """A nightly backup.yml beside a manual one (or beside restore.yml): both loaded into <db>__rc_scratch, each
    dropped the other's mid-load, and both good backups were reported as failing verification ("pg_restore into
    sms__rc_scratch failed: ... server closed the connection unexpectedly"; by hand on the demo, two runs at once).
    The scratch database's lock makes them take turns."""
    psql(pg, "postgres", "DROP DATABASE IF EXISTS race")
    psql(pg, "postgres", "CREATE DATABASE race")
    psql(pg, "race", "CREATE TABLE bulk AS SELECT g AS id, md5(g::text) AS pad FROM generate_series(1, 400000) g")
    name = backup(pg, directory, database="race")["name"]

    def verify(_):
        return run_module("backup_verify", args(pg, directory, database="race", name=name, level="restore"))

    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        results = list(pool.map(verify, range(3)))
    for rc, result, _ in results:
        assert rc == 0 and result["status"] == "passed", result.get("msg") or result["steps"]
    assert "race__rc_scratch" not in psql(pg, "sms", "SELECT string_agg(datname, ',') FROM pg_database")


def test_a_backup_waits_for_a_restore_s_swap_and_a_swap_for_the_backups(pg, directory):
    """backup.yml started while restore.yml swapped (a nightly job beside a manual restore; by hand on the demo)
    failed with `pg_dump failed: database "sms" is not currently accepting connections`: the swap stops new
    connections for a moment. The live database's lock (backup.live_lock: shared for backups, exclusive for the
    swap) makes the backup wait for the swap and read the restored database, and a swap wait for the backups."""
    import threading

    from ansible_collections.rollcall.ops.plugins.module_utils import backup as flow
    from ansible_collections.rollcall.ops.plugins.module_utils.engines.base import Target

    psql(pg, "postgres", "DROP DATABASE IF EXISTS swapped")
    psql(pg, "postgres", "CREATE DATABASE swapped")
    psql(pg, "swapped", "CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 10) g")
    live = type("Engine", (), {"target": Target("postgresql", "swapped", host="127.0.0.1", container=pg.name)})()
    released = threading.Event()

    def swap():  # what restore_backup holds around swap_in: the lock, the live database closed to new connections
        with flow.live_lock(live, "a restore's swap in this test", swap=True):
            psql(pg, "postgres", "ALTER DATABASE swapped ALLOW_CONNECTIONS false")
            holding.set()
            time.sleep(4)
            psql(pg, "postgres", "ALTER DATABASE swapped ALLOW_CONNECTIONS true")
            psql(pg, "swapped", "INSERT INTO t SELECT g FROM generate_series(11, 15) g")  # "the restored data"
            released.set()

    holding = threading.Event()
    swapper = threading.Thread(target=swap)
    swapper.start()
    try:
        assert holding.wait(30)
        result = backup(pg, directory, database="swapped")  # failed at once before: not accepting connections
        assert released.is_set(), "the backup did not wait for the swap"
        assert result["manifest"]["row_counts"] == {"public.t": 15}, "it read the database after the swap"
    finally:
        swapper.join(60)
        psql(pg, "postgres", "ALTER DATABASE swapped ALLOW_CONNECTIONS true")
