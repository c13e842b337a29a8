"""MariaDB backups through the real modules: dump, manifest counts, verification at every level, faults."""

import json
import os
import uuid

import pytest
from conftest import wait_healthy
from modules import run_module

ROOT_PASSWORD = "maria-root-password-secret"

RICH = r"""
CREATE TABLE `odd ``name`` ✓` (id INT AUTO_INCREMENT PRIMARY KEY, txt VARCHAR(100) CHARACTER SET utf8mb4,
  bin VARBINARY(16), note TEXT NULL, total INT GENERATED ALWAYS AS (CHAR_LENGTH(txt) * 2) STORED) AUTO_INCREMENT = 1000;
INSERT INTO `odd ``name`` ✓` (txt, bin, note) VALUES ('🎓 emoji', 0x00FF10, NULL), ('quote '' and \\ slash',
  0x0A0D, 'line\nbreak'), ('(),(', NULL, '');
CREATE TABLE audit (id INT AUTO_INCREMENT PRIMARY KEY, msg VARCHAR(50));
CREATE TRIGGER odd_ai AFTER INSERT ON `odd ``name`` ✓` FOR EACH ROW INSERT INTO audit (msg) VALUES ('inserted');
INSERT INTO `odd ``name`` ✓` (txt) VALUES ('after the trigger');
CREATE VIEW odd_view AS SELECT id, txt FROM `odd ``name`` ✓`;
CREATE PROCEDURE count_odd() SELECT COUNT(*) FROM `odd ``name`` ✓`;
CREATE EVENT nightly ON SCHEDULE EVERY 1 DAY DISABLE DO DELETE FROM audit;
"""


@pytest.fixture(scope="module")
def maria(docker_client, require_image):
    require_image("rollcall/mariadb:10.11")
    container = docker_client.containers.run("rollcall/mariadb:10.11", detach=True,
                                             name="it-maria-%s" % uuid.uuid4().hex[:8], environment={
                                                 "MARIADB_ROOT_PASSWORD": ROOT_PASSWORD, "MARIADB_DATABASE": "sms",
                                                 "MARIADB_USER": "sms", "MARIADB_PASSWORD": "sms-password"})
    try:
        wait_healthy(container)
        result = container.exec_run(["mariadb", "--protocol=TCP", "-h", "127.0.0.1", "-u", "root", "sms", "-e", RICH],
                                    environment={"MYSQL_PWD": ROOT_PASSWORD})
        assert result.exit_code == 0, result.output.decode()
        yield container
    finally:
        container.remove(force=True, v=True)


def args(maria, directory, **extra):
    return dict({"engine": "mysql", "container": maria.name, "database": "sms", "user": "root",
                 "password": ROOT_PASSWORD, "directory": str(directory)}, **extra)


def test_backup_counts_rows_from_the_dump_and_verifies_at_every_level(maria, tmp_path):
    rc, result, output = run_module("db_backup", args(maria, tmp_path, compression="gzip",
                                                      encryption_key="ab" * 32))
    assert rc == 0, result.get("msg")
    assert ROOT_PASSWORD not in output
    manifest = result["manifest"]
    assert manifest["row_counts"] == {"odd `name` ✓": 4, "audit": 1}
    assert manifest["server_version"].startswith("10.11")
    for level in ("checksum", "native", "restore"):
        rc, verified, _ = run_module("backup_verify", args(maria, tmp_path, level=level, name=result["name"],
                                                           encryption_key="ab" * 32))
        assert rc == 0 and verified["status"] == "passed", verified
    assert "CHECK TABLE ok" in verified["steps"][-1]["detail"]
    databases = maria.exec_run(["mariadb", "--protocol=TCP", "-h", "127.0.0.1", "-u", "root", "-Nse",
                                "SHOW DATABASES"], environment={"MYSQL_PWD": ROOT_PASSWORD}).output.decode()
    assert "__rc_scratch" not in databases


def test_truncated_dump_fails_native_verification(maria, tmp_path):
    rc, result, _ = run_module("db_backup", args(maria, tmp_path))
    assert rc == 0
    path = tmp_path / (result["name"] + ".dump")
    data = path.read_bytes()[:-80]
    path.write_bytes(data)
    import hashlib

    manifest_path = tmp_path / (result["name"] + ".manifest.json")
    manifest = json.loads(manifest_path.read_text())
    manifest["data"].update(sha256=hashlib.sha256(data).hexdigest(), size=len(data))  # a consistent lie
    manifest_path.write_text(json.dumps(manifest))
    rc, verified, _ = run_module("backup_verify", args(maria, tmp_path, level="native", name=result["name"]))
    assert rc != 0 and "Dump completed' marker is missing" in verified["msg"]


@pytest.mark.parametrize("change,message", [
    ({"password": "wrong"}, "Access denied for user 'root'"),
    ({"database": "nope"}, "database nope does not exist"),
])
def test_bad_login_and_missing_database(maria, tmp_path, change, message):
    rc, result, output = run_module("db_backup", args(maria, tmp_path, **change))
    assert rc != 0 and message in result["msg"], result["msg"]
    assert os.listdir(tmp_path) == []
    assert ROOT_PASSWORD not in output


def sql(maria, statement, database="sms"):
    result = maria.exec_run(["mariadb", "--protocol=TCP", "-h", "127.0.0.1", "-u", "root", "-Nse", statement, database],
                            environment={"MYSQL_PWD": ROOT_PASSWORD})
    assert result.exit_code == 0, result.output.decode()
    return result.output.decode().strip()


OBJECTS = ("SELECT CONCAT_WS(',', (SELECT GROUP_CONCAT(trigger_name) FROM information_schema.triggers WHERE "
           "trigger_schema = DATABASE()), (SELECT GROUP_CONCAT(table_name) FROM information_schema.views WHERE "
           "table_schema = DATABASE()), (SELECT GROUP_CONCAT(routine_name) FROM information_schema.routines WHERE "
           "routine_schema = DATABASE()), (SELECT GROUP_CONCAT(event_name) FROM information_schema.events WHERE "
           "event_schema = DATABASE()))")


def engine_for(maria):
    import sys

    from modules import ROOT

    sys.path.insert(0, os.path.join(ROOT, ".collections"))
    from ansible_collections.rollcall.ops.plugins.module_utils import backup
    from ansible_collections.rollcall.ops.plugins.module_utils.engines.base import Target

    return backup, backup.open_engine(Target("mysql", "sms", user="root", password=ROOT_PASSWORD,
                                             container=maria.name))


def test_restore_over_the_live_database_swaps_in_tables_and_objects(maria, tmp_path):
    rc, made, _ = run_module("db_backup", args(maria, tmp_path, compression="gzip"))
    assert rc == 0, made.get("msg")
    before = sql(maria, OBJECTS)
    assert before == "odd_ai,odd_view,count_odd,nightly"
    # Damage the live database after the backup: new rows (the trigger fires), a dropped view.
    sql(maria, "INSERT INTO `odd ``name`` ✓` (txt) VALUES ('later'), ('later 2'); DROP VIEW odd_view;")
    rc, check, _ = run_module("db_restore", args(maria, tmp_path, name=made["name"]), "--check")
    assert rc == 0 and check["changed"], check
    assert sql(maria, "SELECT COUNT(*) FROM `odd ``name`` ✓`") == "6"
    rc, restored, output = run_module("db_restore", args(maria, tmp_path, name=made["name"], keep_old=True))
    assert rc == 0, restored.get("msg")
    assert ROOT_PASSWORD not in output
    assert restored["safety_backup"] and restored["old_kept_as"] == "sms__rc_old"
    assert sql(maria, "SELECT COUNT(*) FROM `odd ``name`` ✓`") == "4"
    assert sql(maria, "SELECT COUNT(*) FROM audit") == "1"
    assert sql(maria, OBJECTS) == before
    # The objects work against the restored tables, and the trigger still fires.
    sql(maria, "INSERT INTO `odd ``name`` ✓` (txt) VALUES ('after restore')")
    assert sql(maria, "SELECT COUNT(*) FROM audit") == "2"
    assert sql(maria, "SELECT COUNT(*) FROM odd_view") == "5"
    assert sql(maria, "SELECT AUTO_INCREMENT FROM information_schema.tables WHERE table_schema = 'sms' AND "
                      "table_name = 'odd `name` ✓'") == "1005"
    # The pre-restore state is kept whole: its 6 rows, and its objects minus the view that had been dropped.
    assert sql(maria, "SELECT COUNT(*) FROM `odd ``name`` ✓`", "sms__rc_old") == "6"
    assert sql(maria, OBJECTS, "sms__rc_old") == "odd_ai,count_odd,nightly"
    databases = sql(maria, "SHOW DATABASES")
    assert "__rc_scratch" not in databases
    sql(maria, "DROP DATABASE sms__rc_old")
    # Put the damage back through the safety backup: a restore of the restore.
    rc, again, _ = run_module("db_restore", args(maria, tmp_path, name=restored["safety_backup"],
                                                 safety_backup=False))
    assert rc == 0, again.get("msg")
    assert sql(maria, "SELECT COUNT(*) FROM `odd ``name`` ✓`") == "6"
    assert "sms__rc_old" not in sql(maria, "SHOW DATABASES")
    # Leave the fixture as the other tests expect it.
    rc, back, _ = run_module("db_restore", args(maria, tmp_path, name=made["name"], safety_backup=False))
    assert rc == 0, back.get("msg")


def test_a_swap_that_fails_half_way_leaves_the_live_database_as_it_was(maria, tmp_path, monkeypatch):
    backup, engine = engine_for(maria)
    rc, made, _ = run_module("db_backup", args(maria, tmp_path))
    assert rc == 0, made.get("msg")
    before_rows, before_objects = engine.row_counts("sms"), sql(maria, OBJECTS)
    sql(maria, "DELETE FROM audit")  # so the restored data differs from the live data
    live_rows = engine.row_counts("sms")
    replay = engine._replay
    calls = []

    def failing_replay(objects, database):
        calls.append(database)
        if len(calls) == 1:  # the restored objects, after the tables moved: the worst moment to fail
            replay(objects[:1], database)
            raise backup.EngineError("injected failure while re-creating the restored objects")
        return replay(objects, database)

    monkeypatch.setattr(engine, "_replay", failing_replay)
    with pytest.raises(backup.EngineError, match="injected failure"):
        backup.restore_backup(engine, str(tmp_path), made["name"], safety_backup=False)
    assert engine.row_counts("sms") == live_rows and live_rows != before_rows
    assert sql(maria, OBJECTS) == before_objects
    databases = sql(maria, "SHOW DATABASES")
    assert "__rc_scratch" not in databases and "__rc_old" not in databases
    monkeypatch.undo()
    rc, back, _ = run_module("db_restore", args(maria, tmp_path, name=made["name"], safety_backup=False))
    assert rc == 0, back.get("msg")
    assert engine.row_counts("sms") == before_rows


def test_restore_into_another_database_is_faithful(maria, tmp_path):
    """Schema + data fingerprint: the original and a restore of its backup dump to the same SQL."""
    import sys

    from modules import ROOT

    sys.path.insert(0, os.path.join(ROOT, ".collections"))
    from ansible_collections.rollcall.ops.plugins.module_utils import backup
    from ansible_collections.rollcall.ops.plugins.module_utils.engines.base import Target

    rc, made, _ = run_module("db_backup", args(maria, tmp_path, compression="gzip"))
    assert rc == 0, made.get("msg")
    engine = backup.open_engine(Target("mysql", "sms", user="root", password=ROOT_PASSWORD, container=maria.name))
    manifest = json.loads((tmp_path / (made["name"] + ".manifest.json")).read_text())
    engine.drop_database("sms_copy")
    engine.create_database("sms_copy")
    try:
        engine.restore(backup.plain_stream(str(tmp_path), manifest), "sms_copy")

        def fingerprint(database):
            out = maria.exec_run(["mysqldump", "--protocol=TCP", "-h", "127.0.0.1", "-u", "root", "--skip-comments",
                                  "--skip-dump-date", "--routines", "--triggers", "--events", "--hex-blob",
                                  database], environment={"MYSQL_PWD": ROOT_PASSWORD})
            assert out.exit_code == 0, out.output.decode()[-300:]
            return out.output.decode()

        original, copy = fingerprint("sms"), fingerprint("sms_copy")
        for needle in ("AUTO_INCREMENT=1004", "GENERATED ALWAYS AS", "CREATE DEFINER", "TRIGGER odd_ai",
                       "EVENT `nightly`", "PROCEDURE `count_odd`", "VIEW `odd_view`", "0x00FF10", "'🎓 emoji'"):
            assert needle in copy, needle
        assert copy == original
    finally:
        engine.drop_database("sms_copy")
