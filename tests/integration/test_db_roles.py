"""The database role matrix (issue 12, item 1), PostgreSQL: what each login role may do on a real stack made by
deploy.yml, and a stack from before the matrix (the app's login SUPERUSER, owning everything, postgres without a
password) moved to it by the next deploy while it serves.
"""

import contextlib
import json
import os
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import request
from test_deploy import DB_PASSWORD, changed_tasks, failures, playbook, said_by, task_result, teardown, write_inventory

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "bench"))
from loadgen import Load  # noqa: E402

from ansible_collections.rollcall.ops.plugins.module_utils.db_roles import derived_password  # noqa: E402

PROJECT = "rc-l-roles"
PORT = 18530
ROOT_PASSWORD = "it-root-password-never-printed-77"


def psql(docker_client, role, password, sql, database="sms"):
    """(exit code, output) of sql run as role over TCP inside the db container (password authentication)."""
    container = docker_client.containers.get(PROJECT + "-db")
    code, output = container.exec_run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                                       "-U", role, "-d", database, "-c", sql], environment={"PGPASSWORD": password})
    return code, output.decode("utf-8", "replace").strip()


def as_postgres(docker_client, sql, database="sms"):
    container = docker_client.containers.get(PROJECT + "-db")
    code, output = container.exec_run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", database,
                                       "-c", sql], user="postgres")
    assert code == 0, output
    return output.decode().strip()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("roles")
    inventory = write_inventory(tmp_path, rollcall_project=PROJECT, rollcall_app_port=PORT,
                                rollcall_db_root_password=ROOT_PASSWORD, rollcall_environment="test",
                                rollcall_rate_limit_per_minute=10 ** 6,
                                rollcall_state_dir=str(tmp_path / "state"), rollcall_backup_dir=str(tmp_path / "b"))
    try:
        proc, report = playbook(inventory)
        assert proc.returncode == 0, failures(report)
        # A new stack's admin (its own password here) is given it without a warning that reads like a failure on a
        # first deploy ("[WARNING]: PostgreSQL server is unavailable: ... password authentication failed", which
        # postgresql_ping printed). The refused login itself is in the check task's result, which the JSON report
        # prints: the warnings are what must not have it.
        assert task_result(report, "Give the admin (postgres) its password")["changed"] is True
        warned = [str(w) for play in report["plays"] for task in play["tasks"] for result in task["hosts"].values()
                  for w in result.get("warnings", [])]
        assert not [w for w in warned if "unavailable" in w], warned
        assert "PostgreSQL server is unavailable" not in proc.stdout + proc.stderr
        yield inventory
    finally:
        teardown(inventory)


MATRIX = "Apply the role matrix (roles, memberships, ownership, privileges; one transaction)"


def matrix_changes(report):
    """The changes the role matrix module reported in a playbook's JSON report."""
    return task_result(report, MATRIX).get("changes", [])


def password(role):
    return derived_password(ROOT_PASSWORD, role)


def test_no_login_role_is_superuser_and_each_may_only_its_job(stack, docker_client):
    supers = as_postgres(docker_client, "SELECT string_agg(rolname, ',' ORDER BY rolname) FROM pg_roles "
                                        "WHERE rolsuper")
    assert supers == "postgres", "only the server's admin is superuser: %s" % supers
    owners = as_postgres(docker_client, "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class c JOIN "
                                        "pg_namespace n ON n.oid = relnamespace WHERE nspname = 'public'")
    assert owners == "sms_owner", "the schema's objects belong to the owner role: %s" % owners

    app = ("sms", DB_PASSWORD)
    code, out = psql(docker_client, *app, "SELECT count(*) FROM students")
    assert code == 0 and int(out) == 7, out
    code, out = psql(docker_client, *app, "INSERT INTO courses (code, title, credits) VALUES ('RL1', 'Roles', 1) "
                                          "RETURNING id")
    assert code == 0, "the app writes rows: %s" % out
    for sql, why in (("DROP TABLE attendance", "must be owner"),
                     ("CREATE TABLE mine (id int)", "permission denied for schema public"),
                     ("CREATE ROLE intruder", "permission denied to create role"),
                     ("SELECT rolpassword FROM pg_authid", "permission denied for table pg_authid"),
                     ("TRUNCATE grades", "permission denied for table grades")):
        code, out = psql(docker_client, *app, sql)
        assert code != 0 and why in out, (sql, out)

    as_postgres(docker_client, "CREATE DATABASE other_school", database="postgres")
    as_postgres(docker_client, "CREATE TABLE secrets (v text); INSERT INTO secrets VALUES ('x')",
                database="other_school")
    code, out = psql(docker_client, *app, "SELECT * FROM secrets", database="other_school")
    assert code != 0 and "permission denied for table secrets" in out, out

    backup = ("sms_backup", password("sms_backup"))
    code, out = psql(docker_client, *backup, "SELECT count(*) FROM grades")
    assert code == 0 and int(out) > 0, out
    code, out = psql(docker_client, *backup, "DELETE FROM grades")
    assert code != 0 and "permission denied" in out, out

    report = ("sms_report", password("sms_report"))
    code, out = psql(docker_client, *report, "SELECT count(*) FROM courses")
    assert code == 0, out
    code, out = psql(docker_client, *report, "UPDATE courses SET title = 'x'")
    assert code != 0 and "permission denied" in out, out

    monitor = ("sms_monitor", password("sms_monitor"))
    code, out = psql(docker_client, *monitor, "SELECT count(*) FROM pg_stat_activity WHERE usename = 'sms'")
    assert code == 0, out
    code, out = psql(docker_client, *monitor, "SELECT count(*) FROM students")
    assert code != 0 and "permission denied" in out, out


def test_the_owner_sees_whether_another_roles_session_is_busy(stack, docker_client):
    """A restore's swap (as the owner) waits for busy sessions of the live database and ends idle ones at once. The
    state of another role's session (the Prometheus exporter's, as the monitor role) read as NULL without
    pg_read_all_stats, so every restore on a monitored stack waited its whole 5 s drain, and every request with it
    (found with playbooks/monitoring.yml on the demo: /health took 5.1 s during restore.yml)."""
    container = docker_client.containers.get(PROJECT + "-db")
    container.exec_run(["psql", "-X", "-q", "-h", "127.0.0.1", "-U", "sms_monitor", "-d", "sms", "-c",
                        "SELECT pg_sleep(20)"], environment={"PGPASSWORD": password("sms_monitor")}, detach=True)
    seen = ""
    for _ in range(50):
        code, seen = psql(docker_client, "sms_owner", password("sms_owner"),
                          "SELECT coalesce(state, 'NULL') FROM pg_stat_activity WHERE usename = 'sms_monitor' "
                          "AND query LIKE 'SELECT pg_sleep%'")
        assert code == 0, seen
        if seen:
            break
        time.sleep(0.1)
    assert seen == "active", "the owner reads the monitor's session as %r" % seen
    as_postgres(docker_client, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'sms_monitor' "
                               "AND query LIKE 'SELECT pg_sleep%'")


def test_the_playbooks_run_with_the_least_roles(stack):
    for name in ("backup.yml", "health.yml"):
        proc, report = playbook(stack, name)
        assert proc.returncode == 0, (name, failures(report))
    proc, report = playbook(stack, "deploy.yml")
    assert proc.returncode == 0, failures(report)
    assert changed_tasks(report) == [], "a re-run changes nothing: %s" % changed_tasks(report)


def test_a_stack_from_before_the_matrix_moves_to_it_while_serving(stack, docker_client):
    # Back to how stacks were made before: the app's login SUPERUSER and owner of everything, postgres with no
    # password, no other roles.
    as_postgres(docker_client, "ALTER ROLE sms SUPERUSER; ALTER DATABASE sms OWNER TO sms; "
                               "REASSIGN OWNED BY sms_owner TO sms; ALTER ROLE postgres PASSWORD NULL;")
    as_postgres(docker_client, "DROP OWNED BY sms_owner, sms_report, sms_backup, sms_monitor; DROP ROLE sms_owner, "
                               "sms_report, sms_backup, sms_monitor;")
    assert as_postgres(docker_client, "SELECT rolsuper FROM pg_roles WHERE rolname = 'sms'") == "t"
    load = Load("http://127.0.0.1:%d/api/v1/students" % PORT, rate=20, total=100000, max_seconds=300).start()
    try:
        proc, report = playbook(stack, "deploy.yml", "--diff")
    finally:
        load.stop()
    assert proc.returncode == 0, failures(report)
    assert load.failed == [], "requests failed while the roles changed: %s" % load.failed[:5]
    assert load.ok > 0
    assert as_postgres(docker_client, "SELECT rolsuper FROM pg_roles WHERE rolname = 'sms'") == "f"
    owners = as_postgres(docker_client, "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class c JOIN "
                                        "pg_namespace n ON n.oid = relnamespace WHERE nspname = 'public'")
    assert owners == "sms_owner", owners
    changes = matrix_changes(report)
    assert MATRIX in changed_tasks(report)
    assert "set NOSUPERUSER on role sms" in changes and "create role sms_owner" in " ".join(changes), changes
    assert any(line.startswith("database owner: sms_owner") for line in changes), changes


def test_check_mode_on_a_matrix_stack_changes_nothing(stack, docker_client):
    as_postgres(docker_client, "REVOKE DELETE ON grades FROM sms")
    proc, report = playbook(stack, "deploy.yml", "--check", "--diff")
    assert proc.returncode == 0, failures(report)
    assert MATRIX in changed_tasks(report)
    assert [line for line in matrix_changes(report) if line.startswith("privileges: grades ")], matrix_changes(report)
    code, out = psql(docker_client, "sms", DB_PASSWORD, "DELETE FROM grades WHERE false")
    assert code != 0 and "permission denied" in out, "check mode granted nothing: %s" % out
    proc, report = playbook(stack, "deploy.yml")
    assert proc.returncode == 0, failures(report)
    code, out = psql(docker_client, "sms", DB_PASSWORD, "DELETE FROM grades WHERE false")
    assert code == 0, out


def test_the_security_audit_finds_no_superuser_but_the_admin(stack, docker_client):
    proc, report = playbook(stack, "security_audit.yml")
    text = proc.stdout
    assert "is SUPERUSER" not in text and "not in the expected role matrix" not in text, failures(report)
    as_postgres(docker_client, "CREATE ROLE planted LOGIN SUPERUSER PASSWORD 'planted-password-1'")
    try:
        proc, report = playbook(stack, "security_audit.yml")
        assert proc.returncode != 0, "a planted superuser is critical"
        assert "role planted" in proc.stdout and "planted-password-1" not in proc.stdout
    finally:
        as_postgres(docker_client, "DROP ROLE planted")


def test_data_changes_are_audited_and_the_app_cannot_touch_the_audit(stack, docker_client):
    code, out = psql(docker_client, "sms", DB_PASSWORD,
                     "UPDATE students SET first_name = 'Audited' WHERE id = (SELECT min(id) FROM students)")
    assert code == 0, out
    row = as_postgres(docker_client, "SELECT db_user || ' ' || operation || ' ' || (new_row->>'first_name') FROM "
                                     "audit.data_changes WHERE table_name = 'students' ORDER BY id DESC LIMIT 1")
    assert row == "sms UPDATE Audited", row
    for sql in ("SELECT count(*) FROM audit.data_changes", "DELETE FROM audit.data_changes",
                "DROP TRIGGER rollcall_audit ON students"):
        code, out = psql(docker_client, "sms", DB_PASSWORD, sql)
        assert code != 0 and ("permission denied" in out or "must be owner" in out), (sql, out)
    code, out = psql(docker_client, "sms_report", password("sms_report"), "SELECT count(*) > 0 FROM audit.data_changes")
    assert code == 0 and out == "t", out
    as_postgres(docker_client, "UPDATE audit.data_changes SET changed_at = now() - interval '400 days' "
                               "WHERE id = (SELECT min(id) FROM audit.data_changes)")
    before = int(as_postgres(docker_client, "SELECT count(*) FROM audit.data_changes"))
    proc, report = playbook(stack, "deploy.yml")
    assert proc.returncode == 0, failures(report)
    assert changed_tasks(report) == ["Remove audit rows older than the retention (database_audit_keep_days)"], \
        changed_tasks(report)
    assert int(as_postgres(docker_client, "SELECT count(*) FROM audit.data_changes")) == before - 1


# ---------------------------------------------------------------------------------- backup key rotation (item 3)
BACKUP_KEY = "ab" * 32


def test_the_backup_key_rotates_under_load(stack):
    """rotate_backup_key.yml on a serving stack whose backups were plain: a new backup with the key, 0 failed
    requests (the key rotation never touches the app; this shows it)."""
    proc, report = playbook(stack, "backup.yml")  # a plain backup (no key yet)
    assert proc.returncode == 0, failures(report)
    inventory = Path(stack)
    text = inventory.read_text()
    data = yaml.safe_load(text)
    data["all"]["vars"]["rollcall_backup_key"] = BACKUP_KEY
    # Kept afterwards, as an operator would: the later tests back up and restore with the key (a run without it,
    # after backups made with it, is refused: keyring.key_break).
    inventory.write_text(yaml.safe_dump(data))
    # The stack's backups so far are plain: unsigned, so the key ring cannot check them; refused until the
    # operator says to take them as they are.
    proc, report = playbook(stack, "rotate_backup_key.yml")
    assert proc.returncode != 0
    assert any("-e allow_unsigned=true" in msg for _task, msg in failures(report)), failures(report)
    load = Load("http://127.0.0.1:%d/api/v1/students" % PORT, rate=20, total=100000, max_seconds=300).start()
    try:
        proc, report = playbook(stack, "rotate_backup_key.yml", "-e", "allow_unsigned=true")
    finally:
        load.stop()
    assert proc.returncode == 0, failures(report)
    assert load.failed == [] and load.ok > 20, load.failed[:5]
    said = [r["msg"] for play in report["plays"] for t in play["tasks"] for r in t["hosts"].values()
            if t["task"]["name"].endswith("Say what the rotation did")]
    assert said and "New backups use key id " in said[0], said
    assert BACKUP_KEY not in proc.stdout + proc.stderr


# ------------------------------------------------------------------------------------ password rotation (item 3)
NEW_APP_PASSWORD = "it-db-password-rotated-never-printed-43"
NEW_ROOT_SUFFIX = "-rotated"


def rotate_under_load(stack, docker_client, project, port, old_root, opens, extra=()):
    """Put new app and admin passwords in the stack's inventory and run rotate_db_passwords.yml under load: the app
    moves to its second login with 0 failed requests, the first login is idle, the matrix's passwords follow the
    admin's, the database never restarts, a second run changes nothing. Returns the playbooks' outputs."""
    new_root = old_root + NEW_ROOT_SUFFIX
    db = docker_client.containers.get(project + "-db")
    started = (db.id, db.attrs["State"]["StartedAt"])
    inventory = Path(stack)
    # playbooks/monitoring.yml's database exporter, which logs in as the monitor role (its password follows the
    # admin's): the rotation gives it the new login. It kept the old one (mysql_up 0) when the database container's
    # comparisons (env: ignore) stayed in force under Mitogen for the exporter's task after it.
    engine, up = ("postgres", "pg_up") if db.image.tags[0].startswith("rollcall/postgres") else ("mysql", "mysql_up")
    data = yaml.safe_load(inventory.read_text())
    data["all"]["vars"]["rollcall_monitoring_ports"] = {engine: port + 1000}
    inventory.write_text(yaml.safe_dump(data))
    exporter_play = inventory.parent / "db_exporter.yml"
    exporter_play.write_text(yaml.safe_dump([{"hosts": "db", "gather_facts": False, "tasks": [
        {"name": "The database exporter", "ansible.builtin.include_role": {
            "name": "rollcall.ops.monitoring", "tasks_from": "db_exporter"}}]}]))
    proc, report = playbook(stack, str(exporter_play))
    assert proc.returncode == 0, failures(report)
    exporter = project + "-db-exporter"

    def exporter_up():
        deadline = time.time() + 30
        while time.time() < deadline:
            with contextlib.suppress(OSError):
                status, _headers, body = request("http://127.0.0.1:%d" % (port + 1000), "/metrics")
                line = [x for x in body.decode().splitlines() if x.startswith(up + " ")]
                if status == 200 and line:
                    return line[0]
            time.sleep(1)
        return None

    assert exporter_up() == up + " 1"
    inventory.write_text(inventory.read_text().replace(DB_PASSWORD, NEW_APP_PASSWORD).replace(old_root, new_root))
    outputs = []
    load = Load("http://127.0.0.1:%d/api/v1/students" % port, rate=20, total=100000, max_seconds=400).start()
    try:
        proc, report = playbook(stack, "rotate_db_passwords.yml", *extra)
    finally:
        load.stop()
    outputs.append(proc.stdout + proc.stderr)
    assert proc.returncode == 0, failures(report)
    assert load.failed == [] and load.ok > 50, "requests failed during the rotation: %s" % load.failed[:5]
    assert said_by(report, "Say what was rotated") == [
        "Rotated: sms_alt gets the new password and the app moves to it; sms, in use until then, is made idle; the "
        "admin's and the roles' passwords are now the inventory's. The app serves from sms_alt on every app host; the "
        "database did not restart."]
    assert opens("sms_alt", NEW_APP_PASSWORD), "the app's second login opens with the new password"
    assert not opens("sms", DB_PASSWORD) and not opens("sms", NEW_APP_PASSWORD), "the first login is idle"
    app = docker_client.containers.get(project + "-app")
    assert app.labels["rollcall.db-login"] == "sms_alt"
    assert not docker_client.containers.list(all=True, filters={"name": "^/%s-app-standby$" % project}), \
        "the standby ran with the idle login: removed"
    assert opens("sms_backup", derived_password(new_root, "sms_backup"))
    assert not opens("sms_backup", derived_password(old_root, "sms_backup")), "the matrix follows the admin password"
    db = docker_client.containers.get(project + "-db")
    assert (db.id, db.attrs["State"]["StartedAt"]) == started, "the database never restarted"
    env = docker_client.containers.get(exporter).attrs["Config"]["Env"]
    dsn = [e for e in env if e.startswith("DATA_SOURCE_NAME=")]
    has_new_login = bool(dsn) and derived_password(new_root, "sms_monitor") in dsn[0]  # never printed
    assert has_new_login, "the exporter has the monitor's new login"
    assert exporter_up() == up + " 1", "the exporter logs in after the rotation"
    status, _headers, _body = request("http://127.0.0.1:%d" % port, "/api/v1/students")
    assert status == 200
    state = Path(yaml.safe_load(inventory.read_text())["all"]["vars"]["rollcall_state_dir"]) / project
    events = [json.loads(line) for line in (state / "audit.jsonl").read_text().splitlines()]
    assert [e["message"] for e in events if e["event"] == "db_passwords_rotated"] == [
        "sms_alt gets the new password and the app moves to it; sms, in use until then, is made idle; the admin's "
        "and the roles' passwords are the inventory's"]

    proc, report = playbook(stack, "rotate_db_passwords.yml")
    outputs.append(proc.stdout + proc.stderr)
    assert proc.returncode == 0, failures(report)
    assert changed_tasks(report) == [], "a second run changes nothing: %s" % changed_tasks(report)
    assert said_by(report, "Say what was rotated") == []
    said = said_by(report, "Say that there was nothing to rotate")
    assert said and said[0].startswith("Nothing to rotate: the inventory's password is the one sms_alt uses "
                                       "already"), said
    for text in outputs:
        for secret in (DB_PASSWORD, NEW_APP_PASSWORD, old_root, new_root):
            assert secret not in text, "a password was printed"
    return outputs


def test_passwords_rotate_under_load_and_a_deploy_refuses_an_unknown_password(stack, docker_client):
    def opens(role, secret):
        return psql(docker_client, role, secret, "SELECT 1")[0] == 0

    # A new password in the inventory and a deploy (not the rotation): refused before anything changes.
    inventory = Path(stack)
    original = inventory.read_text()
    inventory.write_text(original.replace(DB_PASSWORD, NEW_APP_PASSWORD))
    proc, report = playbook(stack, "deploy.yml")
    assert proc.returncode != 0
    assert any("opens neither app login" in msg and "rotate_db_passwords.yml" in msg for _task, msg in failures(report))
    proc, report = playbook(stack, "rotate_db_passwords.yml", "--check")
    assert proc.returncode == 0, failures(report)
    assert opens("sms", DB_PASSWORD) and not opens("sms_alt", NEW_APP_PASSWORD), "check mode changed nothing"
    assert said_by(report, "Say what was rotated") == [
        "Check mode, nothing changed. A real run: sms_alt gets the new password and the app moves to it; sms, in use "
        "until then, is made idle; the admin's and the roles' passwords would become the inventory's."]
    # The app's plan could not ask the database with a password only a real run sets: said so, not "creates the stack".
    unknown = said_by(report, "Say what check mode cannot know (the database is not running yet, or not with these "
                              "settings)")
    assert unknown and "the new password is given to the login sms_alt only in a real run" in unknown[0], unknown
    assert "creates the stack" not in unknown[0]
    # A new admin password too: check mode cannot log in as the admin, and says so last.
    inventory.write_text(original.replace(DB_PASSWORD, NEW_APP_PASSWORD).replace(ROOT_PASSWORD, ROOT_PASSWORD + "-new"))
    proc, report = playbook(stack, "rotate_db_passwords.yml", "--check")
    assert proc.returncode == 0, failures(report)
    assert said_by(report, "Say what was rotated") == []
    said = said_by(report, "Say what check mode could not look at (the new admin password is not set yet)")
    assert said and said[0].startswith(
        "Check mode, nothing changed: the inventory has a new admin password, which only a real run sets"), said
    assert opens("sms", DB_PASSWORD) and opens("postgres", ROOT_PASSWORD), "check mode changed nothing"
    inventory.write_text(original)

    rotate_under_load(stack, docker_client, PROJECT, PORT, ROOT_PASSWORD, opens)
    assert opens("postgres", ROOT_PASSWORD + NEW_ROOT_SUFFIX), "the admin's password rotated too"
    # A release that migrates, after the rotation: its migration logs in as the owner role (sms_owner, whatever
    # login the app uses), with the owner's new password.
    proc, report = playbook(stack, "deploy.yml", "-e", "rollcall_app_version=1.1.0")
    assert proc.returncode == 0, failures(report)
    app = docker_client.containers.get(PROJECT + "-app")
    assert (app.labels["rollcall.version"], app.labels["rollcall.db-login"]) == ("1.1.0", "sms_alt")


def test_a_restore_while_autovacuum_works_on_the_live_database(stack, docker_client):
    """The swap ended the live database's autovacuum workers with pg_terminate_backend, which PostgreSQL refuses to a
    login that is not a superuser (the restore's is the owner): "swapping in the restored database failed: must be
    a superuser to terminate superuser process" whenever autovacuum was working on the live (or the side) database at
    that moment (Molecule backup, on a fresh clone). The rename ends them itself."""
    proc, report = playbook(stack, "backup.yml")
    assert proc.returncode == 0, failures(report)
    container = docker_client.containers.get(PROJECT + "-db")

    def admin(sql):
        code, output = container.exec_run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", "sms",
                                           "-c", sql], user="postgres")
        assert code == 0, output
        return output.decode().strip()

    admin("ALTER SYSTEM SET autovacuum_naptime = 1")
    admin("SELECT pg_reload_conf()")
    try:
        # a table autovacuum works on for a long time: every row dead, the vacuum throttled to a crawl
        admin("SET ROLE sms_owner; CREATE TABLE slow_vacuum AS SELECT g AS id, md5(g::text) AS pad "
              "FROM generate_series(1, 200000) g")
        admin("ALTER TABLE slow_vacuum SET (autovacuum_vacuum_cost_delay = 100, autovacuum_vacuum_cost_limit = 1, "
              "autovacuum_vacuum_threshold = 0, autovacuum_vacuum_scale_factor = 0)")
        admin("DELETE FROM slow_vacuum")
        deadline = time.time() + 60
        while admin("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker' "
                    "AND datname = 'sms'") == "0":
            assert time.time() < deadline, "autovacuum did not start on the live database"
            time.sleep(0.5)
        proc, report = playbook(stack, "restore.yml")
        assert proc.returncode == 0, failures(report)
        assert admin("SELECT to_regclass('slow_vacuum') IS NULL") == "t"  # the backup from before it is live
    finally:
        admin("ALTER SYSTEM RESET autovacuum_naptime")
        admin("SELECT pg_reload_conf()")
        admin("DROP TABLE IF EXISTS slow_vacuum")


def test_a_table_the_restores_login_may_not_read_is_named_not_an_invalid_snapshot(stack, docker_client):
    """A table made by hand as postgres (the owner may not read it): the restore's safety backup failed with pg_dump's
    "invalid snapshot identifier" (the snapshot's session had failed on that table first). It says what failed."""
    container = docker_client.containers.get(PROJECT + "-db")
    code, output = container.exec_run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "sms", "-c",
                                       "CREATE TABLE by_hand AS SELECT 1 AS x"], user="postgres")
    assert code == 0, output
    try:
        proc, report = playbook(stack, "restore.yml")
        assert proc.returncode != 0
        said = " ".join(msg for _task, msg in failures(report))
        assert "counting the rows of the snapshot pg_dump reads failed" in said and "by_hand" in said, said
        assert "invalid snapshot identifier" not in said, said
        # The nightly backup (made by the backup role, which reads everything) fails its restore-level check, and
        # with it every deploy's verified backup: it said only 'must be member of role "postgres"'.
        proc, report = playbook(stack, "backup.yml")
        assert proc.returncode != 0
        said = " ".join(msg for _task, msg in failures(report))
        assert ("the backup has table public.by_hand owned by postgres, and the restore's login" in said
                and "ALTER TABLE public.by_hand OWNER TO " in said), said
    finally:
        container.exec_run(["psql", "-X", "-q", "-d", "sms", "-c", "DROP TABLE IF EXISTS by_hand"], user="postgres")
