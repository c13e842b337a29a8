"""A restore keeps the app serving on MariaDB too (PostgreSQL: test_release_sequence.py): the backup goes into a side
database while the live one serves, the swap is one atomic RENAME TABLE, and a light loopback load sees no failed
request. The data is the backup's afterwards."""

import time

import pytest
from test_deploy import DB_PASSWORD, failures, get_json, playbook, teardown, write_inventory
from test_release_sequence import Load, add_student

PROJECT = "rc-a-online"
PORT = 18410
URL = "http://127.0.0.1:%d" % PORT


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    tmp = tmp_path_factory.mktemp(PROJECT)
    inventory = write_inventory(tmp, rollcall_project=PROJECT, rollcall_db_engine="mariadb", rollcall_app_port=PORT,
                                rollcall_rate_limit_per_minute=1000000, rollcall_state_dir=str(tmp / "state"),
                                rollcall_backup_dir=str(tmp / "bk"), rollcall_backup_verify_level="native",
                                rollcall_environment="test", rollcall_seed_students=5)
    try:
        proc, report = playbook(inventory)
        assert proc.returncode == 0, failures(report)
        yield {"inventory": inventory, "state": tmp / "state" / PROJECT, "backups": tmp / "bk"}
    finally:
        teardown(inventory)


def test_a_mariadb_restore_fails_no_request(stack):
    proc, report = playbook(stack["inventory"], "backup.yml")
    assert proc.returncode == 0, failures(report)
    total = get_json(URL + "/api/v1/students")[1]["total"]
    add_student("S09101", URL)
    assert get_json(URL + "/api/v1/students")[1]["total"] == total + 1
    load = Load(URL + "/api/v1/students?per_page=5", rate=20, total=100000, max_seconds=300).start()
    time.sleep(1)
    proc, report = playbook(stack["inventory"], "restore.yml")
    time.sleep(1)
    load.stop()
    assert proc.returncode == 0, failures(report)
    assert load.failed == [] and load.ok > 20, (load.ok, load.failed[:10])
    assert DB_PASSWORD not in proc.stdout
    assert get_json(URL + "/api/v1/students")[1]["total"] == total, "the student added after the backup is gone"
    assert get_json(URL + "/health")[1]["status"] == "healthy"
