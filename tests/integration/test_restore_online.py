"""A restore keeps the app serving on MariaDB too (PostgreSQL: test_release_sequence.py): the backup goes into a side
database while the live one serves, the swap is one atomic RENAME TABLE, and a light loopback load sees no failed
request. The data is the backup's afterwards."""

import pytest
from test_deploy import failures, get_json, playbook
from test_release_sequence import add_student, deployed_stack, under_load

PROJECT = "rc-a-online"
PORT = 18410
URL = "http://127.0.0.1:%d" % PORT


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    yield from deployed_stack(tmp_path_factory, PROJECT, "mariadb", PORT, rollcall_seed_students=5)


def test_a_mariadb_restore_fails_no_request(stack):
    proc, report = playbook(stack["inventory"], "backup.yml")
    assert proc.returncode == 0, failures(report)
    total = get_json(URL + "/api/v1/students")[1]["total"]
    add_student("S09101", URL)
    assert get_json(URL + "/api/v1/students")[1]["total"] == total + 1
    under_load(stack, "restore.yml")
    assert get_json(URL + "/api/v1/students")[1]["total"] == total, "the student added after the backup is gone"
    assert get_json(URL + "/health")[1]["status"] == "healthy"
