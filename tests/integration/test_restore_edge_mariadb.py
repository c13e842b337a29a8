"""MariaDB restores at the edges: into a database that does not exist (a new server), and a database whose own
properties (default character set, collation, comment) differ from the server's and must come back."""

import os
import sys
import uuid

import pytest
from conftest import wait_healthy
from modules import ROOT, run_module
from test_backup_mariadb import ROOT_PASSWORD, args, sql

# latin1 and a comment, unlike the server's utf8mb4 default. The procedure is created while the database is
# latin1_swedish_ci and the database then moves to latin1_german1_ci, so mysqldump writes its
# `ALTER DATABASE edge ...` lines around the routine (they must change the database being loaded, not `edge`).
EDGE = """
CREATE DATABASE edge CHARACTER SET latin1 COLLATE latin1_swedish_ci COMMENT 'Schüler, class\\t✓';
USE edge;
CREATE TABLE pupils (id INT PRIMARY KEY, name VARCHAR(40) CHARACTER SET utf8mb4);
INSERT INTO pupils VALUES (1, 'Zoë ✓'), (2, 'Ärne');
CREATE PROCEDURE pupil_count() SELECT COUNT(*) FROM pupils;
ALTER DATABASE edge COLLATE latin1_german1_ci;
"""
PROPERTIES = ("SELECT CONCAT_WS('|', default_character_set_name, default_collation_name, schema_comment) FROM "
              "information_schema.schemata WHERE schema_name = 'edge'")
BACKUP_PROPERTIES = "latin1|latin1_german1_ci|Schüler, class\\t✓"  # -N -s output escapes the tab


@pytest.fixture(scope="module")
def maria(docker_client, require_image):
    container = docker_client.containers.run(require_image("rollcall/mariadb:10.11"), detach=True,
                                             name="rc-c-maria-%s" % uuid.uuid4().hex[:8],
                                             environment={"MARIADB_ROOT_PASSWORD": ROOT_PASSWORD})
    try:
        wait_healthy(container)
        sql(container, EDGE, "mysql")
        yield container
    finally:
        container.remove(force=True, v=True)


@pytest.fixture(scope="module")
def made(maria, tmp_path_factory):
    """One backup of `edge` for every test here (they restore it and leave `edge` as the backup has it)."""
    directory = tmp_path_factory.mktemp("edge")
    rc, result, _ = run_module("db_backup", args(maria, directory, database="edge", compression="gzip"))
    assert rc == 0, result.get("msg")
    return directory, result


def leftovers(maria):
    return [d for d in sql(maria, "SHOW DATABASES", "mysql").split() if "__rc_" in d]


def test_the_manifest_records_the_database_properties(made):
    _, result = made
    manifest = result["manifest"]
    assert manifest["mysql"]["database"] == {"charset": "latin1", "collation": "latin1_german1_ci",
                                             "comment": "Schüler, class\t✓"}
    assert manifest["privileges_sha256"], "the post-restore check needs a fingerprint of the properties"


def test_restore_into_a_database_that_does_not_exist(maria, made):
    directory, result = made
    sql(maria, "DROP DATABASE edge", "mysql")
    rc, restored, _ = run_module("db_restore", args(maria, directory, database="edge", name=result["name"]))
    assert rc == 0, restored.get("msg")
    assert restored["safety_backup"] is None and restored["old_kept_as"] is None
    assert restored["safety_backup_why"] == "the database edge did not exist: nothing to keep"
    assert sql(maria, PROPERTIES, "mysql") == BACKUP_PROPERTIES
    assert sql(maria, "SELECT GROUP_CONCAT(name ORDER BY id) FROM pupils", "edge") == "Zoë ✓,Ärne"
    assert sql(maria, "CALL pupil_count()", "edge") == "2"
    assert leftovers(maria) == []


def test_restore_over_the_live_database_brings_back_its_properties(maria, made):
    directory, result = made
    sql(maria, "ALTER DATABASE edge CHARACTER SET utf8mb4 COLLATE utf8mb4_bin COMMENT 'changed'; "
               "INSERT INTO pupils VALUES (3, 'later')", "edge")
    rc, restored, _ = run_module("db_restore", args(maria, directory, database="edge", name=result["name"],
                                                    safety_backup=False))
    assert rc == 0, restored.get("msg")
    assert sql(maria, PROPERTIES, "mysql") == BACKUP_PROPERTIES
    assert sql(maria, "SELECT COUNT(*) FROM pupils", "edge") == "2"
    assert sql(maria, "CALL pupil_count()", "edge") == "2"
    assert leftovers(maria) == []


def test_the_post_restore_check_notices_lost_database_properties(maria, made, monkeypatch):
    """A restore whose new database lost the comment (created the old way: the server's defaults) is refused."""
    directory, result = made
    sys.path.insert(0, os.path.join(ROOT, ".collections"))
    from ansible_collections.rollcall.ops.plugins.module_utils import backup
    from ansible_collections.rollcall.ops.plugins.module_utils.engines.base import Target

    engine = backup.open_engine(Target("mysql", "edge", user="root", password=ROOT_PASSWORD, container=maria.name))
    sql(maria, "INSERT INTO pupils VALUES (3, 'later')", "edge")
    monkeypatch.setattr(engine, "create_database", lambda database, like=None: engine.sql(
        "CREATE DATABASE `%s`;" % database))
    with pytest.raises(backup.EngineError, match="differ"):
        backup.restore_backup(engine, str(directory), result["name"], safety_backup=False)
    assert sql(maria, "SELECT COUNT(*) FROM pupils", "edge") == "3", "the live database was not replaced"
    assert sql(maria, PROPERTIES, "mysql") == BACKUP_PROPERTIES
    assert leftovers(maria) == []
