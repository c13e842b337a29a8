"""A restore keeps the app serving on MariaDB and SQLite too (PostgreSQL: test_release_sequence.py): the backup goes
into a side database while the live one serves, the swap is one atomic RENAME TABLE (MariaDB) or one write transaction
of SQLite's online backup API into the live file (the app is not restarted), and a light loopback load sees no failed
request. The data is the backup's afterwards."""

import docker
import pytest
from test_deploy import failures, get_json, playbook
from test_release_sequence import add_student, deployed_stack, under_load

PROJECT = "rc-a-online"
PORT = 18410
URL = "http://127.0.0.1:%d" % PORT
SQLITE_PROJECT = "rc-a-online-sqlite"
SQLITE_PORT = 18411
SQLITE_URL = "http://127.0.0.1:%d" % SQLITE_PORT


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


@pytest.fixture(scope="module")
def sqlite_stack(tmp_path_factory):
    yield from deployed_stack(tmp_path_factory, SQLITE_PROJECT, "sqlite", SQLITE_PORT, rollcall_seed_students=5)


def test_a_sqlite_restore_fails_no_request_and_does_not_restart_the_app(sqlite_stack):
    """Before (2026-12-06): the file was replaced and the app restarted to open it - 502 and 504 through the proxy
    for a few seconds, while the plan said "the app keeps serving"."""
    proc, report = playbook(sqlite_stack["inventory"], "backup.yml")
    assert proc.returncode == 0, failures(report)
    total = get_json(SQLITE_URL + "/api/v1/students")[1]["total"]
    add_student("S09102", SQLITE_URL)
    app = docker.from_env().containers.get(SQLITE_PROJECT + "-app")
    started = app.attrs["State"]["StartedAt"]
    under_load(sqlite_stack, "restore.yml")
    assert get_json(SQLITE_URL + "/api/v1/students")[1]["total"] == total, "the student added after the backup is gone"
    app.reload()
    assert app.attrs["State"]["StartedAt"] == started and app.attrs["RestartCount"] == 0, "the app was restarted"
    add_student("S09103", SQLITE_URL)  # written to the live file, which the app keeps open
    assert get_json(SQLITE_URL + "/api/v1/students")[1]["total"] == total + 1
    assert get_json(SQLITE_URL + "/health")[1]["status"] == "healthy"
