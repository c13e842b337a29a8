"""plugins/module_utils/preflight.py: each rule of roles/preflight refuses what it should, says what to change, and
lets the usual settings through. The playbooks' refusals are tested end to end in tests/integration
(test_playbook_inputs.py, test_survey_inputs.py)."""

import pytest

from ansible_collections.rollcall.ops.plugins.module_utils import preflight

APP = {"name": "app1", "app": True, "db": False, "db_hosts": 1, "inventory_hosts": ["app1", "db1"],
       "secret_key_length": 64, "db_password_length": 0, "db_host_set": False, "mssql_login_set": False,
       "offsite_host": "", "pitr": False}
DB = dict(APP, name="db1", app=False, db=True, secret_key_length=0, db_password_length=20)


def problems(playbook="deploy", host=APP, **given):
    return preflight.problems(playbook, given, host)


def one(playbook="deploy", host=APP, **given):
    found = problems(playbook, host, **given)
    assert len(found) == 1, found
    return found[0]


@pytest.mark.parametrize("playbook", ["deploy", "rollback", "restore", "backup", "health", "teardown", "audit",
                                      "maintenance", "patching", "dr_drill", "any"])
@pytest.mark.parametrize("host", [APP, DB], ids=["app", "db"])
def test_the_defaults_pass(playbook, host):
    given = {"rollcall_environment": "test"} if playbook == "restore" else {}
    assert problems(playbook, host, **given) == []


def test_project_names_containers_so_it_must_be_a_name():
    assert "rollcall_project 'my stack' must be 1 to 63 letters" in one(rollcall_project="my stack")
    assert "not reports or incidents" in one(rollcall_project="reports")
    assert problems(rollcall_project="sms-2026.a_b") == []


def test_engine_must_be_known():
    assert one(rollcall_db_engine="oracle") == (
        "rollcall_db_engine 'oracle' must be one of postgresql, mariadb, sqlite, mssql")


def test_database_name_and_user_are_identifiers():
    assert "rollcall_db_name 'sms-db' must be a plain identifier" in one(rollcall_db_name="sms-db")
    assert "rollcall_db_user 'x" in one(rollcall_db_user="x" * 33)
    assert problems(rollcall_db_user="x" * 32) == []


def test_app_version_is_an_image_tag():
    assert "rollcall_app_version '1.1.0 ' is not an image tag" in one(rollcall_app_version="1.1.0 ")
    assert problems(rollcall_app_version="1.0.0-p20261202") == []


def test_backup_choices():
    assert "must be checksum, native or restore" in one("backup", DB, rollcall_backup_verify_level="full")
    assert "must be full or differential" in one("backup", DB, rollcall_backup_type="incremental")
    assert "must be none or gzip" in one("backup", DB, rollcall_backup_compression="zstd")


def test_the_physical_backup_type_is_one_pgbackrest_knows():
    assert one("backup", DB, rollcall_pitr_backup_type="incremental") == (
        "rollcall_pitr_backup_type 'incremental' must be auto (full when none is recent, else differential), full, "
        "diff or incr")
    for kind in ("auto", "full", "diff", "incr"):
        assert problems("backup", DB, rollcall_pitr_backup_type=kind) == []
    assert one("backup", DB, rollcall_pitr_compress_type="zstd") == (
        "rollcall_pitr_compress_type 'zstd' must be one of none, gz, lz4, zst, bz2 (pgBackRest's)")
    assert problems("backup", DB, rollcall_pitr_compress_type="zst") == []


def test_differential_backups_are_for_sql_server_only():
    assert one("backup", DB, rollcall_backup_type="differential") == (
        "rollcall_backup_type 'differential' is for SQL Server (rollcall_db_engine mssql); postgresql backups are "
        "always full")
    host = dict(DB, mssql_login_set=True)
    assert problems("backup", host, rollcall_db_engine="mssql", rollcall_backup_type="differential") == []


@pytest.mark.parametrize("playbook", ["deploy", "backup", "restore", "archive_log", "dr_drill"])
def test_point_in_time_recovery_is_refused_where_the_engine_has_none(playbook):
    """deploy.yml -e rollcall_pitr=true on a SQLite stack passed (rc 0) and turned nothing on; restore.yml -e
    to_time=... said to turn it on with rollcall_pitr: true."""
    host = dict(APP, db=True, pitr=True)
    said = one(playbook, host, rollcall_db_engine="sqlite", rollcall_environment="test")
    assert said.startswith("rollcall_pitr: true: point-in-time recovery is for PostgreSQL (pgBackRest) and MariaDB")
    assert "this one runs sqlite, whose backups are copies of the file" in said
    assert said.endswith("Leave rollcall_pitr out (or false) for this stack")
    for engine in ("postgresql", "mariadb"):
        assert problems(playbook, dict(host, db_password_length=20), rollcall_db_engine=engine,
                        rollcall_environment="test") == []
    # health and the rest are not held up by the setting
    assert problems("health", host, rollcall_db_engine="sqlite") == []


def test_a_restore_to_a_time_is_refused_where_the_engine_has_no_point_in_time_recovery():
    host = dict(DB, mssql_login_set=True)
    said = one("restore", host, rollcall_db_engine="mssql", to_time="2026-12-06T19:00:00Z",
               rollcall_environment="test")
    assert said.startswith("-e to_time: point-in-time recovery is for PostgreSQL") and "full and differential" in said
    assert "-e restore_backup_name=NAME" in said
    assert problems("restore", DB, to_time="2026-12-06T19:00:00Z", rollcall_environment="test") == []


def test_sql_server_is_backed_up_and_checked_never_deployed():
    assert "does not run deploy.yml on it" in one("deploy", APP, rollcall_db_engine="mssql")
    assert problems("health", APP, rollcall_db_engine="mssql") == []


def test_sql_server_needs_its_login_and_backup_directory_on_the_db_host():
    assert "needs rollcall_mssql_backup_dir" in one("backup", DB, rollcall_db_engine="mssql")
    assert problems("backup", APP, rollcall_db_engine="mssql") == []


def test_playbooks_that_create_the_app_need_a_long_secret_key():
    host = dict(APP, secret_key_length=47)
    for playbook in ("deploy", "rollback", "rotate_secret_key", "rotate_db_passwords"):
        assert "rollcall_secret_key is missing or shorter than 48 characters" in one(playbook, host)
    assert problems("backup", host) == []
    assert problems("deploy", dict(DB, secret_key_length=0)) == []  # the db host needs none


def test_playbooks_that_create_the_database_need_its_password_except_sqlite():
    host = dict(DB, db_password_length=11)
    assert "rollcall_db_password is missing or shorter than 12 characters" in one("deploy", host)
    assert problems("deploy", host, rollcall_db_engine="sqlite") == []
    assert problems("backup", host) == []


def test_an_app_needs_a_database_host_unless_sqlite():
    host = dict(APP, db_hosts=0)
    assert "the inventory has no db host and rollcall_db_host is not set" in one("deploy", host)
    assert problems("deploy", dict(host, db_host_set=True)) == []
    assert problems("deploy", host, rollcall_db_engine="sqlite") == []


def test_report_host_must_be_in_the_inventory():
    assert "rollcall_report_host 'web9' is not an app or db host" in one(rollcall_report_host="web9")
    assert problems(rollcall_report_host="db1") == []


def test_rollback_target_is_previous_or_a_version():
    assert "-e to='1.0.0;rm' must be 'previous' or a kept version" in one("rollback", to="1.0.0;rm")
    assert problems("rollback", to="previous") == [] and problems("rollback", to="1.0.0") == []
    assert problems("deploy", to="1.0.0;rm") == []  # only the rollback reads it


def test_backup_name_has_no_directory_part():
    assert "-e restore_backup_name='../x' must be a backup name" in one("restore", DB, rollcall_environment="test",
                                                                        restore_backup_name="../x")
    assert "restore_backup_name='..'" in one("restore", DB, rollcall_environment="test", restore_backup_name="..")
    assert "-e backup_name='../x' must be a backup name" in one("verify_backup", DB, backup_name="../x")


def test_the_other_playbooks_backup_name_is_refused_not_ignored():
    """Found on the demo: restore.yml -e backup_name=OLDER (verify_backup.yml's input) planned the newest backup."""
    said = one("restore", DB, rollcall_environment="test", backup_name="postgresql-sms-1-full")
    assert said == ("-e backup_name names the backup for verify_backup.yml; restore.yml's is -e restore_backup_name "
                    "(as given, it would take the newest backup, not this one): run again with "
                    "-e restore_backup_name=postgresql-sms-1-full")
    assert "restore.yml; verify_backup.yml's is -e backup_name" in one("verify_backup", DB, restore_backup_name="x")
    assert problems("restore", DB, rollcall_environment="test", restore_backup_name="x") == []
    assert problems("verify_backup", DB, backup_name="x") == []
    assert problems("backup", DB, backup_name="x") == [], "only the two playbooks that name a backup"


def test_drill_data_and_restore_source_choices():
    assert "-e drill_data='copy' must be seed" in one("dr_drill", drill_data="copy")
    assert "-e restore_from='s3' must be local" in one(restore_from="s3")
    assert "-e restore_from=offsite needs rollcall_backup_offsite_host" in one(restore_from="offsite")
    assert problems(restore_from="offsite", host=dict(APP, offsite_host="vault1")) == []


def test_audit_window_and_maintenance_cadence():
    assert "-e audit_since='last week' must be a duration" in one("audit", audit_since="last week")
    for since in ("7d", "24h", "90m", "now", "2026-12-01", "2026-12-01T10:00:00Z"):
        assert problems("audit", audit_since=since) == [], since
    assert "-e cadence='daily' must be weekly" in one("maintenance", DB, cadence="daily")
    assert problems("maintenance", DB, cadence="midmonth") == []


def test_a_production_restore_needs_the_database_name_confirmed():
    assert one("restore", DB) == (
        "this replaces the production database sms; run again with -e confirm=sms to go ahead")
    assert problems("restore", DB, confirm="sms") == []
    assert problems("restore", APP) == []  # the app hosts of a restore run are not asked


def test_a_rollback_allowed_to_restore_needs_the_confirmation_in_production():
    assert "-e restore_backup=true may replace the production database sms" in one("rollback", restore_backup=True)
    assert problems("rollback", restore_backup=True, confirm="sms") == []
    assert problems("rollback", restore_backup=True, rollcall_environment="test") == []


@pytest.mark.parametrize("environment", ["production", "test"])
def test_a_confirmation_that_names_another_database_refuses(environment):
    found = one("restore", DB, confirm="sms_staging", rollcall_environment=environment)
    assert found.startswith("-e confirm='sms_staging' does not name the database this run may replace (sms, ")
    assert ("without confirm" in found) == (environment == "test")
    found = one("rollback", restore_backup=True, confirm="wrong", rollcall_environment=environment)
    assert "does not name the database this run may replace (sms" in found
    # Where nothing is replaced, a confirmation is not looked at.
    assert problems("rollback", confirm="wrong", rollcall_environment=environment) == []
    assert problems("restore", APP, confirm="wrong", rollcall_environment=environment) == []
    assert problems("restore", DB, confirm="sms", rollcall_environment=environment) == []


def test_a_teardown_confirmation_that_is_not_yes_refuses_in_every_environment():
    # Outside production a teardown needs no confirmation, but one that says no (or anything but yes) is a no.
    for environment in ("test", "production"):
        for answer in ("no", "sms", "false"):
            [problem] = problems("teardown", rollcall_environment=environment, confirm=answer)
            assert problem.startswith("-e confirm='%s' is not yes: nothing was removed" % answer), problem
        [problem] = problems("teardown", rollcall_environment=environment, confirm="no", teardown_volumes=True)
        assert "is not yes" in problem
    assert problems("teardown", rollcall_environment="test") == []
    assert problems("teardown", rollcall_environment="test", confirm="yes") == []


def test_teardown_of_volumes_needs_yes():
    assert "teardown_volumes=true deletes the database and uploads of rollcall" in one("teardown",
                                                                                      teardown_volumes=True)
    assert problems("teardown", teardown_volumes=True, confirm="yes") == []


def test_every_problem_is_reported_at_once():
    found = problems("rollback", dict(APP, secret_key_length=0), rollcall_db_engine="oracle", to="a b")
    assert len(found) == 3


@pytest.mark.parametrize("name", sorted(preflight.SERIALS))
@pytest.mark.parametrize("value", [0, "0", -1, "150%", "0%", "half", " 50% ", [], [1, 0], True])
def test_a_batch_size_ansible_would_read_as_every_host_at_once_or_not_at_all_is_refused(name, value):
    """-e rollcall_serial=0 deployed every app host in one batch (Ansible's serial 0 is all hosts): nothing
    was left serving the old release while the new one started; patching would restart every host at once."""
    found = problems("deploy", dict(APP, serials={name: value}))
    assert len(found) == 1 and found[0].startswith("%s '%s' must be a number of hosts of at least 1" % (name, value))
    assert "Ansible would take every host at once for 0" in found[0]


@pytest.mark.parametrize("value", [1, "2", "50%", "100%", [1, "50%"], ["25%", 2]])
def test_batch_sizes_ansible_takes_pass(value):
    assert problems("deploy", dict(APP, serials={name: value for name in preflight.SERIALS})) == []


@pytest.mark.parametrize("value", ["bk", "./backups", "~/backups", ["/ok", "rel"]])
def test_a_relative_host_path_is_refused(value):
    """-e rollcall_backup_dir=bk wrote a verified backup into the controller's playbooks/bk (the local connection's
    working directory), where no later run looked."""
    [found] = problems("backup", dict(DB, paths={"rollcall_backup_dir": value}))
    assert found.startswith("rollcall_backup_dir '") and "must be an absolute path" in found, found
    assert "'/ok'" not in found


def test_absolute_host_paths_pass():
    paths = {name: ["/etc/rollcall/k1"] if name.endswith("files") else "/var/x" for name in preflight.PATHS}
    assert problems("backup", dict(DB, paths=paths)) == []


def test_the_role_reads_every_path_and_batch_size_the_rules_know():
    import os

    import yaml
    defaults = os.path.join(os.path.dirname(__file__), "..", "..", "roles", "preflight", "defaults", "main.yml")
    with open(defaults) as handle:
        read = yaml.safe_load(handle)
    assert tuple(read["preflight_paths"]) == preflight.PATHS
    assert sorted(read["preflight_serials"]) == sorted(preflight.SERIALS)
