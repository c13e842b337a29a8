"""backup.restore_backup / verify_backup flows over an in-memory engine: one read of the artifact, checks while
restoring, the scratch database never left behind, the safety backup's app_version, the refusal's hint."""

import datetime
import errno
import json
import multiprocessing
import os
import threading
import uuid
from pathlib import Path

import jinja2
import pytest
import yaml

from ansible_collections.rollcall.ops.plugins.module_utils import artifact, backup
from ansible_collections.rollcall.ops.plugins.module_utils.artifact import ArtifactError
from ansible_collections.rollcall.ops.plugins.module_utils.engines.base import Engine, EngineError, Target

ROOT = Path(__file__).resolve().parents[2]

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
DATA = bytes(range(256)) * 12000  # about 3 MB: several chunks


class MemoryEngine(Engine):
    """Databases are byte strings; ``fail`` names a method that raises; ``read_only`` stops restores early."""

    name = "memory"

    def __init__(self):
        # its own server for the host's locks (backup.live_lock, scratch_lock): tests run side by side
        super().__init__(None, Target("memory", "sms", docker_host="memory://%s" % uuid.uuid4().hex))
        self.databases = {"sms": DATA}
        self.fail = None
        self.read_only = None
        self.calls = []

    def _step(self, what):
        self.calls.append(what)
        if self.fail == what:
            raise EngineError("%s failed (injected)" % what)

    def server_version(self):
        return "1"

    def tool_versions(self):
        return {}

    def database_exists(self, database):
        return database in self.databases

    def row_counts(self, database):
        self._step("row_counts")
        return {"t": len(self.databases[database])}

    def schema_revision(self, database):
        return None

    def privileges(self, database):
        self._step("privileges")
        return None

    def dump(self, sink):
        self._step("dump")
        sink(self.databases[self.target.database])
        return {"row_counts": {"t": len(self.databases[self.target.database])}, "format": "bytes"}

    def native_check(self, chunks):
        for _ in chunks:
            pass
        return "passed", "read"

    def create_database(self, database, like=None):
        self._step("create_database")
        self.databases[database] = b""

    def drop_database(self, database):
        self.databases.pop(database, None)

    def restore(self, chunks, database):
        self._step("restore")
        data = bytearray()
        for chunk in chunks:
            data += chunk
            if self.read_only and len(data) >= self.read_only:
                break  # a tool that stops before the end of its input
        self.databases[database] = bytes(data)

    def integrity_check(self, database):
        self._step("integrity_check")
        return "passed", "fine"

    def swap_in(self, scratch, database, keep_old):
        self._step("swap_in")
        self.databases[database] = self.databases.pop(scratch)


@pytest.fixture
def clock(monkeypatch):
    """Each backup one minute after the previous one (names carry the second)."""
    moments = iter(datetime.datetime(2026, 12, 1, 3, minute, tzinfo=datetime.UTC) for minute in range(60))
    monkeypatch.setattr(artifact, "utcnow", lambda: next(moments))


@pytest.fixture
def engine(clock):
    return MemoryEngine()


def flip_last_byte(directory, manifest):
    """Damage that only the end of the stream shows (same size, so the cheap checks pass)."""
    path = os.path.join(directory, manifest["data"]["file"])
    with open(path, "r+b") as handle:
        handle.seek(-1, os.SEEK_END)
        last = handle.read(1)
        handle.seek(-1, os.SEEK_END)
        handle.write(bytes([last[0] ^ 1]))


def test_restore_reads_the_artifact_once(engine, tmp_path, monkeypatch):
    made = backup.take_backup(engine, str(tmp_path), key=KEY)
    engine.databases["sms"] = b"changed since"
    opened = []
    read_plain = artifact.read_plain
    monkeypatch.setattr(artifact, "read_plain", lambda path, **kw: opened.append(path) or read_plain(path, **kw))
    report = backup.restore_backup(engine, str(tmp_path), made["name"], key=KEY, safety_backup=False)
    assert opened == [str(tmp_path / made["data"]["file"])], "one read: hashed and decrypted on the way in"
    assert engine.databases == {"sms": DATA}
    assert report["verification"]["status"] == "passed"
    assert artifact.read_verification(str(tmp_path), made["name"])["latest"]["level"] == "restore"


@pytest.mark.parametrize("read_only", [None, 1000])
def test_a_checksum_mismatch_at_the_end_of_the_stream_aborts_before_the_swap(engine, tmp_path, read_only):
    made = backup.take_backup(engine, str(tmp_path))
    flip_last_byte(str(tmp_path), made)
    engine.databases["sms"] = b"live"
    engine.read_only = read_only  # also when the tool stopped reading early: the rest is read for the checksum
    with pytest.raises(ArtifactError, match="refusing to restore .*checksum mismatch"):
        backup.restore_backup(engine, str(tmp_path), made["name"], safety_backup=False)
    assert "restore" in engine.calls and "swap_in" not in engine.calls
    assert engine.databases == {"sms": b"live"}, "scratch dropped, live untouched"
    assert artifact.read_verification(str(tmp_path), made["name"])["latest"]["status"] == "failed"


@pytest.mark.parametrize("given", [OTHER_KEY, None])
def test_a_key_that_does_not_fit_is_not_held_against_the_backup(engine, tmp_path, given):
    """The demo's backup key file deleted (a new one is made on first use): verify_backup.yml recorded the good
    backup as "failed verification (checksum)", restore.yml did too and offered an older backup made with the same
    key; health then called the newest backup failed even after the key was put back."""
    made = backup.take_backup(engine, str(tmp_path), key=KEY)
    backup.verify_backup(str(tmp_path), made["name"], "checksum", key=KEY)
    result = backup.verify_backup(str(tmp_path), made["name"], "checksum", key=given)
    assert result["status"] == "error" and result["steps"][-1]["cause"] == "key", result
    assert artifact.read_verification(str(tmp_path), made["name"])["latest"]["status"] == "error"
    backup.verify_backup(str(tmp_path), made["name"], "checksum", key=KEY)
    engine.databases["sms"] = b"live"
    engine.calls.clear()
    with pytest.raises(artifact.WrongKey) as caught:
        backup.restore_backup(engine, str(tmp_path), made["name"], key=given, safety_backup=False)
    text = str(caught.value)
    assert text.startswith("cannot restore %s: " % made["name"]) and "not found at fault" in text, text
    assert "older" not in text and "refusing" not in text, "no older backup offered: it needs the same key"
    assert engine.calls == [] and engine.databases == {"sms": b"live"}
    assert artifact.read_verification(str(tmp_path), made["name"])["latest"]["status"] == "passed", "not recorded"


class PruningEngine(MemoryEngine):
    """A retention run (backup_prune) tries to delete the backup while it is being restored."""

    def __init__(self, directory):
        super().__init__()
        self.directory, self.tried = directory, []

    def restore(self, chunks, database):
        for name in artifact.list_backups(self.directory):
            try:
                backup.delete_backup(self.directory, name)
                self.tried.append((name, "deleted"))
            except artifact.InUse as exc:
                self.tried.append((name, str(exc)))
        super().restore(chunks, database)


def test_a_backup_being_restored_or_verified_is_not_deleted_under_it(clock, tmp_path):
    """backup.yml's retention beside restore.yml of an older backup (two AWX jobs, an operator and the nightly
    schedule) could delete the files the restore was about to read; a backup being read is now kept that time."""
    engine = PruningEngine(str(tmp_path))
    made = backup.take_backup(engine, str(tmp_path), key=KEY)
    engine.databases["sms"] = b"live"
    report = backup.restore_backup(engine, str(tmp_path), made["name"], key=KEY, safety_backup=False)
    assert report["verification"]["status"] == "passed" and engine.databases["sms"] == DATA
    assert engine.tried == [(made["name"], "backup %s is being read now (a restore or a verification): kept this "
                                           "time" % made["name"])]
    assert os.path.exists(tmp_path / made["data"]["file"])
    held = artifact.reading(str(tmp_path), backup.chain_names(str(tmp_path), made["name"]))
    with held, pytest.raises(artifact.InUse):
        backup.delete_backup(str(tmp_path), made["name"])
    assert backup.delete_backup(str(tmp_path), made["name"]), "once nobody reads it, it goes"
    assert not os.path.exists(tmp_path / made["data"]["file"])


def test_the_prune_module_keeps_a_backup_in_use_and_says_why(clock, tmp_path):
    from modules import run_module

    engine = MemoryEngine()
    names = [backup.take_backup(engine, str(tmp_path))["name"] for _ in range(3)]
    prune = {"directory": str(tmp_path), "engine": "memory", "database": "sms", "keep_last": 1, "keep_daily": 0,
             "keep_weekly": 0, "keep_monthly": 0}
    with artifact.reading(str(tmp_path), [names[0]]):  # a restore of the oldest, running now
        rc, result, _ = run_module("backup_prune", prune)
    assert rc == 0 and result["deleted"] == [names[1]] and result["changed"] is True, result
    assert sorted(result["kept"]) == sorted([names[2], names[0]])
    assert result["reasons"][names[0]].startswith("kept: a restore or a verification is reading it now")
    rc, result, _ = run_module("backup_prune", prune)
    assert rc == 0 and result["deleted"] == [names[0]], "the next run deletes it"


def test_chain_names_lists_the_parents_a_restore_needs():
    import json
    import tempfile
    with tempfile.TemporaryDirectory() as directory:
        for name, parent in (("full", None), ("diff", "full"), ("loop", "loop")):
            with open(artifact.manifest_path(directory, name), "w") as handle:
                json.dump({"name": name, "parent": parent}, handle)
        assert backup.chain_names(directory, "diff") == ["diff", "full"]
        assert backup.chain_names(directory, "full") == ["full"]
        assert backup.chain_names(directory, "loop") == ["loop"]
        assert backup.chain_names(directory, "missing") == ["missing"]


def test_cheap_checks_refuse_before_a_scratch_database_exists(engine, tmp_path):
    made = backup.take_backup(engine, str(tmp_path))
    with open(tmp_path / made["data"]["file"], "ab") as handle:
        handle.write(b"x")
    engine.calls.clear()
    with pytest.raises(ArtifactError, match=r"is %d bytes, the manifest says %d" % (len(DATA) + 1, len(DATA))):
        backup.restore_backup(engine, str(tmp_path), made["name"])
    assert engine.calls == [], "nothing was created, no safety backup taken"


@pytest.mark.parametrize("step", ["create_database", "restore", "row_counts", "integrity_check", "privileges",
                                  "dump", "swap_in"])
def test_a_failed_restore_never_leaves_its_scratch_database(engine, tmp_path, step):
    made = backup.take_backup(engine, str(tmp_path))
    engine.databases["sms"] = b"live"
    engine.fail = step  # "dump": the safety backup fails
    with pytest.raises(EngineError, match="%s failed" % step):
        backup.restore_backup(engine, str(tmp_path), made["name"])
    assert engine.databases == {"sms": b"live"}


def test_a_restore_swaps_only_when_no_backup_reads_the_live_database(engine, tmp_path, monkeypatch):
    """The swap waits (here: not at all) for a backup reading the live database; then nothing was swapped, the
    scratch database is gone and the live one is as it was."""
    made = backup.take_backup(engine, str(tmp_path))
    engine.databases["sms"] = b"live"
    monkeypatch.setattr(backup, "LIVE_SWAP_WAIT_S", 0)
    with backup.live_lock(engine, "backup X"), pytest.raises(EngineError, match="has been read by backup X"):
        backup.restore_backup(engine, str(tmp_path), made["name"], safety_backup=False)
    assert engine.databases == {"sms": b"live"}
    report = backup.restore_backup(engine, str(tmp_path), made["name"], safety_backup=False)  # the lock is free
    assert report["restored"] == made["name"] and engine.databases["sms"] != b"live"


class ParallelEngine(MemoryEngine):
    """Checks that only pass when all three run at the same time (a barrier of three)."""

    checks_in_parallel = True

    barrier = None  # set once the backup is made (taking it reads privileges too)

    def _step(self, what):
        if self.barrier and what in ("row_counts", "integrity_check", "privileges"):
            self.barrier.wait()
        super()._step(what)


@pytest.mark.parametrize("fail", [None, "row_counts", "integrity_check", "privileges"])
def test_an_engine_that_allows_it_runs_the_three_checks_at_once_and_reports_the_first_failure(clock, tmp_path,
                                                                                              fail):
    engine = ParallelEngine()
    made = backup.take_backup(engine, str(tmp_path))
    engine.databases["sms"] = b"live"
    engine.fail, engine.barrier = fail, threading.Barrier(3, timeout=10)
    if fail is None:
        backup.restore_backup(engine, str(tmp_path), made["name"], safety_backup=False)
        assert engine.databases == {"sms": DATA}
    else:
        with pytest.raises(EngineError, match="%s failed" % fail):
            backup.restore_backup(engine, str(tmp_path), made["name"], safety_backup=False)
        assert engine.databases == {"sms": b"live"}, "no swap, no scratch left"
    assert {"integrity_check", "privileges", "row_counts"} <= set(engine.calls)


def test_run_checks_raises_the_first_error_in_the_order_given_after_all_ended():
    ended = []

    def check(name, error=None):
        def run(database):
            ended.append(name)
            if error:
                raise EngineError(error)
            return name
        return run

    engine = ParallelEngine()
    engine.barrier = threading.Barrier(3, timeout=10)
    with pytest.raises(EngineError, match="^first$"):
        backup._run_checks(engine, [check("a", "first"), check("b", "second"), check("c")], "x")
    assert sorted(ended) == ["a", "b", "c"]
    assert backup._run_checks(engine, [check("a"), check("b"), check("c")], "x") == ["a", "b", "c"]


@pytest.mark.parametrize("step", ["create_database", "restore", "row_counts", "integrity_check"])
def test_verify_by_restore_never_leaves_its_scratch_database(engine, tmp_path, step):
    made = backup.take_backup(engine, str(tmp_path))
    engine.fail = step
    result = backup.verify_backup(str(tmp_path), made["name"], "restore", engine=engine)
    assert result["status"] == "failed" and "%s failed" % step in result["steps"][-1]["detail"]
    assert set(engine.databases) == {"sms"}


def test_the_report_says_why_no_safety_backup_was_taken(engine, tmp_path):
    """A restore after DROP DATABASE said "safety backup ." (restore.yml printed an empty name): the report says
    why there is none, and the role prints it."""
    made = backup.take_backup(engine, str(tmp_path))
    del engine.databases["sms"]
    report = backup.restore_backup(engine, str(tmp_path), made["name"])
    assert report["safety_backup"] is None and engine.databases == {"sms": DATA}
    assert report["safety_backup_why"] == "the database sms did not exist: nothing to keep"
    report = backup.restore_backup(engine, str(tmp_path), made["name"], safety_backup=False)
    assert report["safety_backup"] is None and report["safety_backup_why"] == "safety_backup=false"
    report = backup.restore_backup(engine, str(tmp_path), made["name"])
    assert report["safety_backup"] and report["safety_backup_why"] == ""
    tasks = yaml.safe_load((ROOT / "roles/backup/tasks/restore.yml").read_text())
    [task] = [t for t in tasks if t.get("name") == "Say what was restored"]
    said = jinja2.Environment().from_string(task["ansible.builtin.debug"]["msg"])
    absent = said.render(backup_restored={"restored": "b1", "safety_backup": None, "before_swap": {},
                                          "safety_backup_why": "the database sms did not exist: nothing to keep"})
    assert absent == "Restored b1; no safety backup (the database sms did not exist: nothing to keep)."
    taken = said.render(backup_restored={"restored": "b1", "safety_backup": "s1", "before_swap": {}})
    assert taken == "Restored b1; safety backup s1."


def test_the_safety_backup_records_the_app_version_and_comes_just_before_the_swap(engine, tmp_path):
    made = backup.take_backup(engine, str(tmp_path), app_version="1.0.0")
    engine.databases["sms"] = b"live data"
    engine.calls.clear()
    report = backup.restore_backup(engine, str(tmp_path), made["name"], app_version="1.1.0")
    safety = artifact.read_manifest(str(tmp_path), report["safety_backup"])
    assert safety["app_version"] == "1.1.0" and safety["row_counts"] == {"t": len(b"live data")}
    assert engine.calls[-2:] == ["dump", "swap_in"]


def test_the_refusal_names_the_newest_verified_older_backup(engine, tmp_path):
    directory = str(tmp_path)
    oldest = backup.take_backup(engine, directory)["name"]
    older = backup.take_backup(engine, directory)["name"]
    assert backup.verify_backup(directory, oldest, "checksum")["status"] == "passed"
    newest = backup.take_backup(engine, directory)
    flip_last_byte(directory, newest)
    with pytest.raises(ArtifactError) as caught:
        backup.restore_backup(engine, directory, newest["name"], safety_backup=False)
    message = str(caught.value)
    assert "-e restore_backup_name=NAME" in message and "name: NAME with rollcall.ops.db_restore" in message
    assert "the newest verified backup before it is %s" % oldest in message and older not in message


def test_the_hint_without_a_verified_older_backup(engine, tmp_path):
    directory = str(tmp_path)
    assert "there is no older backup" in backup.older_backup_hint(directory, "memory-sms-20261201T030000Z-full")
    older = backup.take_backup(engine, directory)["name"]
    newest = backup.take_backup(engine, directory)["name"]
    assert "the next older one is %s (not verified yet" % older in backup.older_backup_hint(directory, newest,
                                                                                           "memory", "sms")
    # a mistyped name (verify_backup.yml -e backup_name=nope): the newest names instead of "no older backup"
    hint = backup.older_backup_hint(directory, "nope", "memory", "sms")
    assert hint.endswith("; nope is not a backup name; the newest of sms in %s: %s, %s" % (directory, newest, older))


def test_a_name_without_any_file_is_no_backup_and_an_incomplete_one_is_left_to_the_verification(engine, tmp_path):
    directory = str(tmp_path)
    older = backup.take_backup(engine, directory)["name"]
    newest = backup.take_backup(engine, directory)["name"]
    message = backup.no_such_backup(directory, "memory-sms-2026*", "memory", "sms")
    assert message.startswith("there is no backup memory-sms-2026* in %s, nothing was verified" % directory)
    assert "the newest of sms there: %s, %s" % (newest, older) in message and "-e backup_name=NAME" in message
    assert "restore" not in message.replace("rollcall.ops.backup_verify", "")
    assert backup.no_such_backup(directory, newest) is None
    os.unlink(os.path.join(directory, newest + ".manifest.json"))  # its data is there: incomplete, not absent
    assert backup.no_such_backup(directory, newest) is None
    assert backup.verify_backup(directory, newest, "checksum")["status"] == "failed"


def test_a_read_only_directory_is_said_before_restoring_when_a_safety_backup_is_due(engine, tmp_path, monkeypatch):
    made = backup.take_backup(engine, str(tmp_path))
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    monkeypatch.setattr(backup, "_access_error", lambda directory: (errno.EROFS, os.strerror(errno.EROFS)))
    with pytest.raises(ArtifactError, match="read-only file system; mount it read-write .*safety_backup=false"):
        backup.restore_backup(engine, str(tmp_path), made["name"])
    assert "create_database" not in engine.calls


def test_an_unwritable_directory_still_gives_the_verification_result(engine, tmp_path, monkeypatch):
    made = backup.take_backup(engine, str(tmp_path))

    def refuse(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(os, "open", refuse)
    result = backup.verify_backup(str(tmp_path), made["name"], "checksum")
    assert result["status"] == "passed" and "read-only file system" in result["not_recorded"]


def test_a_tampered_signed_plain_backup_is_refused(engine, tmp_path):
    made = backup.take_backup(engine, str(tmp_path), key=KEY, encrypt=False)
    assert made["data"]["encrypted"] is False and made["signature"]["key_id"] == artifact.key_id(KEY)
    forged = b"forged" + DATA[6:]
    with open(tmp_path / made["data"]["file"], "wb") as handle:
        handle.write(forged)
    path = artifact.manifest_path(str(tmp_path), made["name"])
    manifest = artifact.read_manifest(str(tmp_path), made["name"])
    manifest["data"]["sha256"] = __import__("hashlib").sha256(forged).hexdigest()
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(manifest, handle)
    result = backup.verify_backup(str(tmp_path), made["name"], "checksum", key=KEY)
    assert result["status"] == "failed" and "does not match its signature" in result["steps"][-1]["detail"]
    engine.calls.clear()
    with pytest.raises(ArtifactError, match="refusing to restore .*does not match its signature"):
        backup.restore_backup(engine, str(tmp_path), made["name"], key=KEY, safety_backup=False)
    assert engine.calls == []
    # Without the key the signature cannot be checked, and the result says so.
    assert "not checked: no key given" in backup.verify_backup(str(tmp_path), made["name"], "checksum")["steps"][0][
        "detail"]


def test_before_swap_runs_on_the_checked_side_database_before_the_safety_backup_and_the_swap(engine, tmp_path):
    made = backup.take_backup(engine, str(tmp_path))
    engine.databases["sms"] = b"live"
    engine.calls.clear()
    seen = []

    def migrate(side):
        seen.append((side, engine.databases["sms"], list(engine.calls)))
        engine.databases[side] += b" migrated"
        return {"from": "0001", "to": "0002"}

    report = backup.restore_backup(engine, str(tmp_path), made["name"], before_swap=migrate)
    side, live_then, calls_then = seen[0]
    assert side == engine.scratch_name("sms") and live_then == b"live", "the live database still served meanwhile"
    assert calls_then[-1] == "privileges" and "dump" not in calls_then and "swap_in" not in calls_then
    assert report["before_swap"] == {"from": "0001", "to": "0002"}
    assert engine.databases == {"sms": DATA + b" migrated"}, "what was swapped in is the migrated side database"


def test_a_failed_before_swap_swaps_nothing_and_drops_the_side_database(engine, tmp_path):
    made = backup.take_backup(engine, str(tmp_path))
    engine.databases["sms"] = b"live"
    engine.calls.clear()

    def migrate(side):
        raise EngineError("sms-app migrate in container x before the swap failed: boom")

    with pytest.raises(EngineError, match="before the swap failed: boom"):
        backup.restore_backup(engine, str(tmp_path), made["name"], before_swap=migrate)
    assert engine.databases == {"sms": b"live"}
    assert "dump" not in engine.calls and "swap_in" not in engine.calls, "no safety backup, no swap"
    assert len(os.listdir(tmp_path)) == 2, "no safety backup was written"


def test_command_before_swap_names_the_side_database_and_parses_the_answer(monkeypatch):
    from ansible_collections.rollcall.ops.plugins.module_utils import docker as docker_utils
    from ansible_collections.rollcall.ops.plugins.module_utils.runner import Result

    ran = []

    class FakeRunner:
        def __init__(self, container, docker_host=None):
            self.where = "container %s" % container

        def run(self, argv):
            ran.append(argv)
            if "fail" in argv:
                return Result(1, b"", "sms-app: migrate failed: no such revision\n")
            return Result(0, b"schema 0001 -> 0002\n{\"changed\": true, \"from\": \"0001\", \"to\": \"0002\"}\n")

    monkeypatch.setattr(docker_utils, "ContainerRunner", FakeRunner)
    hook = backup.command_before_swap("rc-files", ["sms-app", "migrate", "--database", "{database}"])
    assert hook("sms__rc_scratch") == {"changed": True, "from": "0001", "to": "0002"}
    assert ran[-1] == ["sms-app", "migrate", "--database", "sms__rc_scratch"]
    with pytest.raises(EngineError, match="sms-app migrate in container rc-files before the swap failed: "
                                          "sms-app: migrate failed: no such revision; the live database"):
        backup.command_before_swap("rc-files", ["sms-app", "migrate", "fail"])("x")


# ------------------------------------------------------------------ uploads: the staging directory (issue 9 review)
def tree(path):
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


@pytest.fixture
def uploads(tmp_path):
    path = tmp_path / "uploads"
    path.mkdir()
    (path / "a.pdf").write_text("report card")
    return path


def test_the_safety_backup_of_a_restore_can_itself_be_restored(engine, tmp_path, uploads):
    """Found on the demo: the safety backup was taken while the restore's staging directory sat in the uploads, so
    it held that directory; restoring it (undoing a restore) then failed after the swap with the files hidden."""
    backups = tmp_path / "backups"
    backups.mkdir()
    made = backup.take_backup(engine, str(backups), files={"path": str(uploads)})
    (uploads / "added-later.txt").write_text("new")
    after_backup = tree(uploads)
    first = backup.restore_backup(engine, str(backups), made["name"])
    assert tree(uploads) == ["a.pdf"]
    undo = backup.restore_backup(engine, str(backups), first["safety_backup"])
    assert undo["files_restored"] == str(uploads)
    assert tree(uploads) == after_backup, "the restore undone: the files as they were, no staging directory"


def test_a_backup_that_holds_a_staging_directory_restores_without_it(engine, tmp_path, uploads, monkeypatch):
    """Backups made before the fix hold the staging directory: it is left out when extracting."""
    backups = tmp_path / "backups"
    backups.mkdir()
    (uploads / backup.STAGING).mkdir()
    (uploads / backup.STAGING / "a.pdf").write_text("half a restore")
    monkeypatch.setattr(backup, "NOT_STAGING", [])  # archive as before the fix
    made = backup.take_backup(engine, str(backups), files={"path": str(uploads)})
    monkeypatch.undo()
    assert backup.NOT_STAGING
    (uploads / "a.pdf").unlink()
    backup.restore_backup(engine, str(backups), made["name"], safety_backup=False)
    assert tree(uploads) == ["a.pdf"] and (uploads / "a.pdf").read_text() == "report card"


def test_a_new_backup_leaves_a_staging_directory_out(engine, tmp_path, uploads):
    backups = tmp_path / "backups"
    backups.mkdir()
    (uploads / backup.STAGING).mkdir()
    (uploads / backup.STAGING / "x").write_text("staged")
    made = backup.take_backup(engine, str(backups), files={"path": str(uploads)})
    listing = backup.LocalRunner().run(["tar", "-tf", "-"], stdin=artifact.read_plain(
        str(backups / made["files"]["uploads"]["file"])))
    assert listing.rc == 0 and "./a.pdf" in listing.text.split() and backup.STAGING not in listing.text


def test_uploads_that_cannot_be_put_in_place_say_the_database_was_swapped(engine, tmp_path, uploads, monkeypatch):
    backups = tmp_path / "backups"
    backups.mkdir()
    made = backup.take_backup(engine, str(backups), files={"path": str(uploads)})
    engine.databases["sms"] = b"live"
    monkeypatch.setattr(backup, "SWAP_FILES", "echo 'mv: cannot move' >&2; exit 1")
    with pytest.raises(backup.FilesNotInPlace, match="the database was restored and swapped in; putting the "
                                                      "restored uploads in place failed .*cannot move.* by hand"):
        backup.restore_backup(engine, str(backups), made["name"], safety_backup=False)
    assert engine.databases["sms"] == DATA, "the swap had happened"
    assert (uploads / backup.STAGING / "a.pdf").exists(), "the restored files are kept where the message says"


# ------------------------------------------------------------------ which backup a restore takes by default
def test_the_default_restore_skips_safety_backups_and_refuses_when_only_they_are_left():
    regular = {"name": "b1", "labels": {}}
    pre_deploy = {"name": "b0", "labels": {"reason": "pre-deploy"}}
    safety = {"name": "s1", "labels": {"reason": backup.SAFETY_REASON + " b1"}}
    assert backup.default_restore([safety, regular, pre_deploy]) is regular
    assert backup.default_restore([regular, safety]) is regular
    assert backup.default_restore([{"name": "x"}]) == {"name": "x"}, "an older manifest has no labels"
    assert backup.default_restore([safety]) is None
    assert backup.default_restore([]) is None


def test_a_second_run_of_the_same_restore_restores_the_same_backup_not_the_first_runs_safety_backup(engine,
                                                                                                    tmp_path):
    """Found on the demo: restore.yml twice in a row undid the first restore (its safety backup was the newest)."""
    made = backup.take_backup(engine, str(tmp_path))
    engine.databases["sms"] = b"changed after the backup"
    first = backup.restore_backup(engine, str(tmp_path), backup.newest_name(str(tmp_path), for_restore=True))
    assert first["restored"] == made["name"] and first["safety_backup"]
    assert backup.newest_name(str(tmp_path)) == first["safety_backup"], "the safety backup is the newest"
    assert backup.newest_name(str(tmp_path), for_restore=True) == made["name"]
    assert backup.is_safety_backup(artifact.read_manifest(str(tmp_path), first["safety_backup"]))


def test_only_safety_backups_left_is_a_refusal_that_says_to_name_one(engine, tmp_path):
    made = backup.take_backup(engine, str(tmp_path))
    first = backup.restore_backup(engine, str(tmp_path), made["name"])
    for leftover in tmp_path.glob(made["name"] + ".*"):
        leftover.unlink()
    with pytest.raises(ArtifactError, match="only backups of sms .* are safety backups .*name the one to restore"):
        backup.newest_name(str(tmp_path), database="sms", for_restore=True)
    assert backup.newest_name(str(tmp_path), database="sms") == first["safety_backup"]


def test_the_restore_plans_filter_is_the_same_choice():
    from ansible_collections.rollcall.ops.plugins.filter.backups import FilterModule

    choose = FilterModule().filters()["default_restore_backup"]
    safety = {"name": "s1", "labels": {"reason": backup.SAFETY_REASON + " b1"}}
    assert choose([safety, {"name": "b1", "labels": {}}])["name"] == "b1"
    assert choose([safety]) is None and choose(None) is None


def test_the_key_options_filter_passes_only_what_the_inventory_gives():
    """roles/backup and roles/health (its key check) build the modules' key options with it."""
    from ansible_collections.rollcall.ops.plugins.filter.backups import FilterModule

    args = FilterModule().filters()["backup_key_args"]
    assert args(None, None, [], []) == {}
    assert args("k", "/f", ["o"], ["/o"]) == {"encryption_key": "k", "encryption_keys": ["o"],
                                             "encryption_key_files": ["/o"]}
    assert args(None, "/f", None, None) == {"encryption_key_file": "/f"}
    assert args("", None) == {"encryption_key": ""}, "a key defined empty is passed (the module says it is empty)"


def test_an_uploads_archive_that_does_not_list_fails_native_verification_saying_how(engine, tmp_path, uploads,
                                                                                    monkeypatch):
    backups = tmp_path / "backups"
    backups.mkdir()
    real = backup.LocalRunner.run

    def cut_short(self, argv, sink=None, **kwargs):  # tar -c whose archive ends in the middle of a file
        if argv[0] == "tar" and "-cf" in argv and sink is not None:
            parts = []
            result = real(self, argv, sink=parts.append, **kwargs)
            sink(b"".join(parts)[:1030])
            return result
        return real(self, argv, sink=sink, **kwargs)

    monkeypatch.setattr(backup.LocalRunner, "run", cut_short)
    made = backup.take_backup(engine, str(backups), files={"path": str(uploads)})
    result = backup.verify_backup(str(backups), made["name"], "native", engine=engine)
    native = [step for step in result["steps"] if step["level"] == "native"][0]
    assert result["status"] == "failed" and native["status"] == "failed", result
    assert native["detail"].startswith("the uploads archive is damaged: tar: Unexpected EOF in archive"), native
    assert native["detail"].endswith("(after 2 entries)"), native  # ./ and ./a.pdf, whose data is cut


def test_files_missing_from_the_live_uploads_are_a_warning_of_a_passed_verification(engine, tmp_path, uploads):
    """Found on the demo: an upload's file removed by hand from the volume; health stayed ok and every later backup
    "passed restore verification", although a restore of it brings back a row whose download answers 404."""
    backups = tmp_path / "backups"
    backups.mkdir()
    engine.databases["sms"] = b"xy"  # MemoryEngine: table t has a row per byte: two uploads, one file (a.pdf)
    made = backup.take_backup(engine, str(backups), files={"path": str(uploads), "table": "t"})
    assert made["files"]["uploads"]["table"] == "t"
    result = backup.verify_backup(str(backups), made["name"], "restore", engine=engine)
    assert result["status"] == "passed", result
    assert result["data_warnings"] == [
        "the uploads archive holds 1 file where the t table has 2 rows: 1 upload had no file in %s when the backup "
        "was made, so its download answers 404 now and after a restore of this backup (the backup is whole otherwise; "
        "look for the files in another backup, and what removed them from %s)" % (uploads, uploads)]
    recorded = artifact.read_verification(str(backups), made["name"])["latest"]
    assert recorded["data_warnings"] == result["data_warnings"], "kept for health.yml"

    (uploads / "b.pdf").write_text("the other one")  # both files there: nothing to say
    whole = backup.take_backup(engine, str(backups), files={"path": str(uploads), "table": "t"})
    assert "data_warnings" not in backup.verify_backup(str(backups), whole["name"], "native", engine=engine)
    (uploads / "a.pdf").unlink()
    (uploads / "b.pdf").unlink()
    untold = backup.take_backup(engine, str(backups), files={"path": str(uploads)})  # no table named: no check
    assert "data_warnings" not in backup.verify_backup(str(backups), untold["name"], "native", engine=engine)


def test_a_restore_of_a_backup_missing_upload_files_restores_and_says_which_downloads_will_404(engine, tmp_path,
                                                                                                 uploads):
    """The restore's own count, as it extracts (tar -v): the operator restoring such a backup learns it then, not
    from the next day's health report."""
    backups = tmp_path / "backups"
    backups.mkdir()
    engine.databases["sms"] = b"xy"  # two uploads rows, one file (a.pdf)
    made = backup.take_backup(engine, str(backups), files={"path": str(uploads), "table": "t"})
    engine.databases["sms"] = b"live"
    report = backup.restore_backup(engine, str(backups), made["name"], safety_backup=False)
    assert engine.databases["sms"] == b"xy" and tree(uploads) == ["a.pdf"], "restored whole all the same"
    [said] = report["data_warnings"]
    assert said.startswith("the uploads archive holds 1 file where the t table has 2 rows: 1 upload had no file")
    recorded = artifact.read_verification(str(backups), made["name"])["latest"]
    assert recorded["status"] == "passed" and recorded["data_warnings"] == [said], "health.yml reads it"

    (uploads / "b.pdf").write_text("the other one")
    whole = backup.take_backup(engine, str(backups), files={"path": str(uploads), "table": "t"})
    assert "data_warnings" not in backup.restore_backup(engine, str(backups), whole["name"], safety_backup=False)
    assert tree(uploads) == ["a.pdf", "b.pdf"]


@pytest.mark.parametrize("files, counts, said", [
    (0, {"public.uploads": 0}, None),
    (3, {"public.uploads": 2}, None),  # more files than rows: an upload in progress, a row a restore took away
    (2, {"public.uploads": 2, "public.students": 50}, None),
    (1, {"public.students": 50}, None),  # no such table in this backup (an older schema)
    (0, {"public.uploads": 2, "audit.uploads": 2}, None),  # two of that name: which one is meant is unknown
    (0, {"uploads": 1}, "holds 0 files where the uploads table has 1 row: 1 upload had no file in /data/uploads"),
    (2, {"sms.uploads": 5}, "holds 2 files where the uploads table has 5 rows: 3 uploads had no file in /data/up"),
])
def test_uploads_shortfall_compares_files_with_the_rows_of_the_named_table(files, counts, said):
    found = backup.uploads_shortfall(files, {"path": "/data/uploads", "table": "uploads"}, counts)
    assert found is None if said is None else said in found, found
    assert backup.uploads_shortfall(0, {"path": "/data/uploads"}, counts) is None, "no table named, no check"


def test_the_tar_listing_is_counted_across_chunks_without_keeping_it():
    listing = backup.TarListing()
    for chunk in (b"./\n./a.p", b"df\n./sub/\n./sub/b", b".jpg\n\n./odd name.txt"):
        listing.write(chunk)
    listing.close()
    assert (listing.entries, listing.files) == (5, 3)


# ------------------------------------------------------------------------------------------- shared directories
def test_a_backup_records_its_project_and_a_restore_takes_only_its_own_projects(engine, tmp_path):
    """Found on the demo: two stacks with one backup directory; restore.yml of one picked the other's newest backup
    (another engine's there, refused only by the engine check; the same engine's would have been restored)."""
    mine = backup.take_backup(engine, str(tmp_path), project="school")
    theirs = backup.take_backup(engine, str(tmp_path), project="other")
    assert artifact.read_manifest(str(tmp_path), mine["name"])["project"] == "school"
    assert "project" not in backup.take_backup(engine, str(tmp_path)), "no project given: none recorded"
    legacy = backup.newest_name(str(tmp_path))
    # the newest of this project, or one that records none (made before projects were recorded)
    assert backup.newest_name(str(tmp_path), project="other") == legacy
    (tmp_path / (legacy + ".manifest.json")).unlink()
    assert backup.newest_name(str(tmp_path), project="school", for_restore=True) == mine["name"]
    assert backup.newest_name(str(tmp_path), project="other") == theirs["name"]
    assert backup.newest_name(str(tmp_path)) == theirs["name"], "no project asked: every backup counts"
    listed = backup.select(backup.describe(str(tmp_path)), project="school")
    assert [i["name"] for i in listed] == [mine["name"]] and listed[0]["project"] == "school"

    # another project's backup, named: refused before anything is read; the database is untouched
    engine.databases["sms"] = b"live data"
    with pytest.raises(EngineError, match="made of project other's database, and this restore is for project school"):
        backup.restore_backup(engine, str(tmp_path), theirs["name"], project="school")
    assert engine.databases == {"sms": b"live data"}
    # its own: restored, and the safety backup records the project too
    report = backup.restore_backup(engine, str(tmp_path), mine["name"], project="school")
    assert artifact.read_manifest(str(tmp_path), report["safety_backup"])["project"] == "school"


def test_the_inventorys_engine_name_selects_the_manifests():
    items = [{"name": "a", "engine": "mysql", "database": "sms"}, {"name": "b", "engine": "postgresql",
                                                                   "database": "sms"}]
    assert [i["name"] for i in backup.select(items, "mariadb", "sms")] == ["a"]
    assert [i["name"] for i in backup.select(items, "postgresql", "sms", project="x")] == ["b"]
    assert backup.engine_name("mariadb") == "mysql" and backup.engine_name("sqlite") == "sqlite"


def test_a_failure_after_the_swap_still_lets_the_run_finish_the_restore_then_fails_with_it():
    """MariaDB with point-in-time recovery: after the swap a restore takes a dump and archives the log. When that
    failed (a repository that cannot be written), the run stopped there: the audit triggers were not re-created for
    a restored database from before the audit, and the app was not checked. Seen by hand with rollcall_pitr_repo
    through a file: now the audit and the health check run, and the run ends failed saying the data is restored."""
    tasks = yaml.safe_load((ROOT / "roles/backup/tasks/restore.yml").read_text())
    [restart] = [t for t in tasks if t.get("name") == "Start point-in-time recovery again after the swap (MariaDB)"]
    noted = restart["rescue"][0]["ansible.builtin.set_fact"]
    assert "backup_pitr_restart_error" in noted
    for playbook, after in (("restore.yml", ["Restore the SMS database", "Check the app after the restore"]),
                            ("rollback.yml", ["Roll back (or forward) the SMS app", "Keep the audit of data changes"])):
        plays = [p["name"] for p in yaml.safe_load((ROOT / "playbooks" / playbook).read_text())]
        said = plays.index("Say that point-in-time recovery did not start again after the restore (MariaDB)")
        assert all(plays.index(name) < said for name in after) and plays[said + 1] == "Tell AWX how it went", plays
    failing = yaml.safe_load((ROOT / "roles/backup/tasks/pitr_restart_failed.yml").read_text())[0]
    assert failing["when"] == "backup_pitr_restart_error is defined"
    assert "The restore is done" in failing["ansible.builtin.fail"]["msg"]


def test_the_scratch_database_is_used_by_one_run_at_a_time_and_a_stuck_one_is_named(tmp_path):
    """Two restore-level verifications (or one beside a restore) loaded into the same <db>__rc_scratch and dropped
    each other's; the lock makes the second wait, and after the wait it names who holds the scratch database."""
    engine = MemoryEngine()
    clock = {"now": 0.0}

    def sleep(seconds):
        clock["now"] += seconds

    with backup.scratch_lock(engine, "sms__rc_scratch", "restoring backup A", directory=str(tmp_path)):
        second = backup.scratch_lock(engine, "sms__rc_scratch", "verifying backup B by a restore",
                                     directory=str(tmp_path), sleep=sleep, clock=lambda: clock["now"], wait_s=30)
        with pytest.raises(EngineError) as refused, second:
            raise AssertionError("the scratch database was taken twice")
        # another database's scratch is another lock
        with backup.scratch_lock(engine, "other__rc_scratch", "x", directory=str(tmp_path), wait_s=0):
            pass
    said = str(refused.value)
    assert said.startswith("verifying backup B by a restore: the scratch database sms__rc_scratch on ")
    assert "in use for 30 s by restoring backup A (pid %d, since " % os.getpid() in said
    assert said.endswith("nothing was changed: run again when it has finished")
    with backup.scratch_lock(engine, "sms__rc_scratch", "again", directory=str(tmp_path), wait_s=0):
        pass  # released


def test_backups_share_the_live_database_and_a_swap_has_it_alone(tmp_path):
    """backup.yml beside restore.yml: a backup started during the swap failed (`not currently accepting
    connections`), and the swap ended a running backup's sessions. Backups take the live lock shared (together),
    the swap exclusive: each waits for the other, and after the wait the message names who held it."""
    engine = MemoryEngine()
    clock = {"now": 0.0}

    def sleep(seconds):
        clock["now"] += seconds

    def lock(what, swap):
        return backup.live_lock(engine, what, swap=swap, directory=str(tmp_path), sleep=sleep,
                                clock=lambda: clock["now"])

    # two backups at once are fine; a swap waits for them
    with lock("backup A", False), lock("backup B", False), pytest.raises(EngineError) as swap_refused, \
            lock("restoring backup C", True):
        raise AssertionError("a swap while backups read the live database")
    said = str(swap_refused.value)
    assert said.startswith("restoring backup C: the live database ") and " has been read by backup " in said
    assert "for %d s; nothing was changed" % backup.LIVE_SWAP_WAIT_S in said
    clock["now"] = 0.0
    with lock("restoring backup C", True), pytest.raises(EngineError) as backup_refused, lock("backup D", False):
        raise AssertionError("a backup while the swap runs")
    said = str(backup_refused.value)
    assert " has been swapped in by restoring backup C (pid %d" % os.getpid() in said
    assert "for %d s; nothing was changed" % backup.LIVE_READ_WAIT_S in said
    with lock("backup E", False):
        pass  # released


# ----------------------------------------------------------------------------- two backups in the same second
def test_a_name_reservation_makes_a_second_run_in_the_same_second_wait_for_the_next(tmp_path):
    clock = [datetime.datetime(2026, 12, 7, 3, 0, 0, 250000, tzinfo=datetime.UTC)]
    waited = []

    def sleep(seconds):
        waited.append(round(seconds, 2))
        clock[0] += datetime.timedelta(seconds=seconds)

    first = artifact.NameReservation(str(tmp_path), "postgresql", "sms", now=lambda: clock[0], sleep=sleep)
    second = artifact.NameReservation(str(tmp_path), "postgresql", "sms", now=lambda: clock[0], sleep=sleep)
    assert first.name == "postgresql-sms-20261207T030000Z-full" and waited == [0.75]
    assert second.name == "postgresql-sms-20261207T030001Z-full" and second.started > first.started
    assert sorted(os.listdir(tmp_path)) == [".postgresql-sms-20261207T030000Z-full.reserved",
                                            ".postgresql-sms-20261207T030001Z-full.reserved"]
    first.release()
    second.release()
    assert os.listdir(tmp_path) == []
    third = artifact.NameReservation(str(tmp_path), "postgresql", "sms", now=lambda: clock[0], sleep=sleep)
    assert third.name == second.name  # released: free again (no manifest was written)
    third.release()


def test_two_backups_started_together_both_succeed(engine, tmp_path):
    """Before: both took the same name and the second failed at its very end ("appeared while it was being
    written"), its dump thrown away. Two processes (take_backup sets signal handlers: the main thread's)."""
    context = multiprocessing.get_context("fork")
    answers = context.Queue()
    go = context.Event()

    def run():
        go.wait(10)
        try:
            answers.put(("ok", backup.take_backup(engine, str(tmp_path))["name"]))
        except Exception as exc:  # noqa: BLE001 - sent back for the assertion
            answers.put(("error", str(exc)))

    workers = [context.Process(target=run) for _ in range(2)]
    for worker in workers:
        worker.start()
    go.set()
    found = [answers.get(timeout=30) for _ in workers]
    for worker in workers:
        worker.join(10)
    assert [kind for kind, _ in found] == ["ok", "ok"] and found[0][1] != found[1][1], found
    assert not [e for e in os.listdir(tmp_path) if e.endswith(".reserved")]


def test_what_a_backup_killed_hard_left_is_removed_and_nothing_else(tmp_path):
    """A backup killed with SIGKILL (the OOM killer, a job cancelled hard, a reboot) left its temporary file, as large
    as its dump, for good; each such run took that much of the backup disk."""
    now = 1796630000.0
    entries = {
        ".postgresql-sms-20261207T030000Z-full.dump.enc.4242.tmp": (now - 3600, False),  # dead writer: removed
        ".postgresql-sms-20261207T040000Z-full.dump.enc.4343.tmp": (now - 3600, True),  # its writer still runs
        ".postgresql-sms-20261207T050000Z-full.dump.enc.4444.tmp": (now - 60, False),  # too fresh to judge
        ".postgresql-sms-20261207T030000Z-full.reserved": (now - 7200, False),  # an old reservation: removed
        ".postgresql-sms-20261207T060000Z-full.reserved": (now - 10, False),
        "postgresql-sms-20261207T030000Z-full.manifest.json": (now - 7200, False),
        ".hidden-notes.tmp": (now - 7200, False),  # not a writer's name
    }
    for entry, (mtime, _alive) in entries.items():
        (tmp_path / entry).write_bytes(b"x" * 10)
        os.utime(tmp_path / entry, (mtime, mtime))
    alive = {int(e.split(".")[-2]) for e, (_m, up) in entries.items() if e.endswith(".tmp") and up
             and e.split(".")[-2].isdigit()}
    removed = artifact.remove_stale_leftovers(str(tmp_path), now=now, alive=lambda pid: pid in alive)
    assert removed == [(".postgresql-sms-20261207T030000Z-full.dump.enc.4242.tmp", 10),
                       (".postgresql-sms-20261207T030000Z-full.reserved", 10)]
    assert sorted(os.listdir(tmp_path)) == sorted(set(entries) - {e for e, _ in removed})


def test_what_says_the_server_could_not_be_reached_is_told_apart_from_a_bad_backup():
    from ansible_collections.rollcall.ops.plugins.module_utils import backup as b
    from ansible_collections.rollcall.ops.plugins.module_utils.engines.base import EngineError
    from ansible_collections.rollcall.ops.plugins.module_utils.runner import RunnerError

    for said in ('password authentication failed for user "sms_owner"', "Access denied for user 'sms_backup'@'%'",
                 "could not connect to server: Connection refused", "container sms-db is not running",
                 "FATAL:  the database system is starting up"):
        assert b.server_unreachable(EngineError(said)) and b.server_unreachable(RunnerError(said)), said
    for said in ("backup had 10 rows, restore has 9", "pg_restore: error: could not read input file: end of file",
                 "relation \"students\" does not exist"):
        assert not b.server_unreachable(EngineError(said)), said
    assert not b.server_unreachable(b.ArtifactError("password authentication failed"))  # never about the server
    steps = [("checksum", "passed", "x"), ("native", "passed", "y"), ("restore", "error", "z")]
    now = datetime.datetime.now(datetime.UTC)
    assert b._result("n", now, 0, steps)["status"] == "error"
    assert b._result("n", now, 0, steps[:2] + [("restore", "failed", "z")])["status"] == "failed"
    assert b._result("n", now, 0, steps[:2])["status"] == "passed"
