"""The database role matrix (issue 12, item 1), MariaDB: what each account may do on a real stack made by
deploy.yml, no root@'%', and a stack from before the matrix (root@'%', the app with ALL on its database) moved to it
by the next deploy while it serves.
"""

import os
import sys

import pytest
from conftest import health_test
from test_db_roles import NEW_ROOT_SUFFIX, rotate_under_load
from test_deploy import DB_PASSWORD, changed_tasks, failures, get_json, playbook, teardown, write_inventory

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "bench"))
from loadgen import Load  # noqa: E402

from ansible_collections.rollcall.ops.plugins.module_utils.db_roles import derived_password  # noqa: E402

PROJECT = "rc-l-rolesm"
PORT = 18531
ROOT_PASSWORD = "it-root-password-never-printed-78"


def sql(docker_client, user, password, statement, database="sms"):
    """(exit code, output) of statement run as user over TCP inside the db container."""
    container = docker_client.containers.get(PROJECT + "-db")
    code, output = container.exec_run(["mariadb", "--protocol=TCP", "-h", "127.0.0.1", "-u", user, "--batch",
                                       "--skip-column-names", "-e", statement, database],
                                      environment={"MYSQL_PWD": password})
    return code, output.decode("utf-8", "replace").strip()


def as_root(docker_client, statement):
    code, out = sql(docker_client, "root", ROOT_PASSWORD, statement, database="mysql")
    assert code == 0, out
    return out


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("rolesm")
    inventory = write_inventory(tmp_path, rollcall_project=PROJECT, rollcall_app_port=PORT,
                                rollcall_db_engine="mariadb", rollcall_db_root_password=ROOT_PASSWORD,
                                rollcall_environment="test", rollcall_rate_limit_per_minute=10 ** 6,
                                rollcall_state_dir=str(tmp_path / "state"),
                                rollcall_backup_dir=str(tmp_path / "b"))
    try:
        proc, report = playbook(inventory)
        assert proc.returncode == 0, failures(report)
        yield inventory
    finally:
        teardown(inventory)


def test_no_root_from_anywhere_and_each_account_may_only_its_job(stack, docker_client):
    hosts = as_root(docker_client, "SELECT CONCAT(user, '@', host) FROM mysql.user WHERE user = 'root' ORDER BY 1")
    assert hosts.split() == ["root@127.0.0.1", "root@localhost"], hosts
    app = ("sms", DB_PASSWORD)
    code, out = sql(docker_client, *app, "SELECT COUNT(*) FROM students")
    assert code == 0 and int(out) == 7, out
    code, out = sql(docker_client, *app, "INSERT INTO courses (code, title, credits) VALUES ('RL1', 'Roles', 1)")
    assert code == 0, out
    for statement in ("DROP TABLE attendance", "CREATE TABLE mine (id int)", "CREATE USER intruder",
                      "SELECT * FROM mysql.user", "GRANT SELECT ON sms.* TO 'sms_report'@'%'"):
        code, out = sql(docker_client, *app, statement)
        assert code != 0 and "denied" in out, (statement, out)

    backup = ("sms_backup", derived_password(ROOT_PASSWORD, "sms_backup"))
    code, out = sql(docker_client, *backup, "SELECT COUNT(*) FROM grades")
    assert code == 0 and int(out) > 0, out
    code, out = sql(docker_client, *backup, "DELETE FROM grades")
    assert code != 0 and "denied" in out, out
    monitor = ("sms_monitor", derived_password(ROOT_PASSWORD, "sms_monitor"))
    code, out = sql(docker_client, *monitor, "SELECT COUNT(*) FROM information_schema.processlist", database="")
    assert code == 0, out
    code, out = sql(docker_client, *monitor, "SELECT COUNT(*) FROM students")
    assert code != 0 and "denied" in out, out


def test_the_playbooks_run_with_the_least_accounts(stack):
    for name in ("backup.yml", "health.yml"):
        proc, report = playbook(stack, name)
        assert proc.returncode == 0, (name, failures(report))
    proc, report = playbook(stack, "deploy.yml")
    assert proc.returncode == 0, failures(report)
    assert changed_tasks(report) == [], "a re-run changes nothing: %s" % changed_tasks(report)
    status, health = get_json("http://127.0.0.1:%d/health" % PORT)
    assert status == 200 and health["status"] == "healthy" and health["version"] == "1.0.0", health


def test_a_stack_from_before_the_matrix_moves_to_it_while_serving(stack, docker_client):
    as_root(docker_client, "CREATE USER 'root'@'%%' IDENTIFIED BY '%s'; GRANT ALL ON *.* TO 'root'@'%%' WITH GRANT "
                           "OPTION; GRANT ALL ON sms.* TO 'sms'@'%%'; DROP USER 'sms_owner'@'%%', 'sms_report'@'%%', "
                           "'sms_backup'@'%%', 'sms_monitor'@'%%'; DELETE FROM mysql.global_priv WHERE user = "
                           "'rollcall_admin'; FLUSH PRIVILEGES;" % ROOT_PASSWORD)
    load = Load("http://127.0.0.1:%d/api/v1/students" % PORT, rate=20, total=100000, max_seconds=300).start()
    try:
        proc, report = playbook(stack, "deploy.yml")
    finally:
        load.stop()
    assert proc.returncode == 0, failures(report)
    assert load.failed == [] and load.ok > 0, load.failed[:5]
    assert as_root(docker_client, "SELECT COUNT(*) FROM mysql.user WHERE user = 'root' AND host = '%'") == "0"
    code, out = sql(docker_client, "sms", DB_PASSWORD, "DROP TABLE attendance")
    assert code != 0 and "denied" in out, out


def test_data_changes_are_audited_and_the_app_cannot_touch_the_audit(stack, docker_client):
    app = ("sms", DB_PASSWORD)
    code, out = sql(docker_client, *app, "SET @rollcall_actor = 'it:teacher'; "
                                         "UPDATE students SET first_name = 'Audited' ORDER BY id LIMIT 1")
    assert code == 0, out
    row = as_root(docker_client, "SELECT CONCAT_WS(' ', db_user, actor, operation, JSON_VALUE(new_row, "
                                 "'$.first_name'), JSON_VALUE(old_row, '$.id') = JSON_VALUE(new_row, '$.id')) FROM "
                                 "sms_audit.data_changes WHERE table_name = 'students' ORDER BY id DESC LIMIT 1")
    assert row == "sms it:teacher UPDATE Audited 1", row
    for statement in ("SELECT COUNT(*) FROM sms_audit.data_changes", "DELETE FROM sms_audit.data_changes",
                      "DROP TRIGGER rollcall_audit_students_upd"):
        code, out = sql(docker_client, *app, statement)
        assert code != 0 and "denied" in out, (statement, out)
    report = ("sms_report", derived_password(ROOT_PASSWORD, "sms_report"))
    code, out = sql(docker_client, *report, "SELECT COUNT(*) > 0 FROM sms_audit.data_changes")
    assert code == 0 and out == "1", out
    as_root(docker_client, "UPDATE sms_audit.data_changes SET changed_at = changed_at - INTERVAL 400 DAY ORDER BY id "
                           "LIMIT 1")
    before = int(as_root(docker_client, "SELECT COUNT(*) FROM sms_audit.data_changes"))
    proc, report = playbook(stack, "deploy.yml")
    assert proc.returncode == 0, failures(report)
    assert changed_tasks(report) == ["Remove audit rows older than the retention (database_audit_keep_days)"], \
        changed_tasks(report)
    assert int(as_root(docker_client, "SELECT COUNT(*) FROM sms_audit.data_changes")) == before - 1


def test_passwords_rotate_under_load(stack, docker_client):
    def opens(user, secret):
        return sql(docker_client, user, secret, "SELECT 1")[0] == 0

    rotate_under_load(stack, docker_client, PROJECT, PORT, ROOT_PASSWORD, opens)
    code, out = sql(docker_client, "sms", DB_PASSWORD, "SELECT 1")
    assert code != 0 and "locked" in out, "the idle login is locked (its old password says so): %s" % out
    code, said = health_test(docker_client.containers.get(PROJECT + "-db"))
    assert code == 0, "its health check keeps the container's root password: %s" % said

    # root@127.0.0.1 keeps the password the container was made with; the inventory's new admin password is
    # rollcall_admin's. Before (2026-12-06) the tools that log in as root inside the container used the inventory's
    # and failed with "Access denied for user 'root'@'127.0.0.1'": the security audit, the binary log's archiving.
    proc, report = playbook(stack, "security_audit.yml")
    assert "could not be audited" not in proc.stdout, failures(report)
    assert proc.returncode == 0, failures(report)
    # A deploy that makes the database container again (point-in-time recovery on: --log-bin) gives the new one
    # the inventory's root password while the data hold the old: its health test refused it for 120 s and the
    # deploy failed. The test now takes the server's "access denied" as an answer, and the role sets root's
    # password to the container's right after.
    db = docker_client.containers.get(PROJECT + "-db")
    proc, report = playbook(stack, "deploy.yml", "-e", "rollcall_pitr=true")
    assert proc.returncode == 0, failures(report)
    assert docker_client.containers.get(PROJECT + "-db").id != db.id, "the database container was made again"
    code, said = health_test(docker_client.containers.get(PROJECT + "-db"))
    assert code == 0, said
    proc, report = playbook(stack, "archive_log.yml")
    assert proc.returncode == 0, failures(report)
    code, out = sql(docker_client, "root", ROOT_PASSWORD + NEW_ROOT_SUFFIX, "SELECT 1")
    assert code == 0, "root in the container has the password its new container was made with: %s" % out
