"""A restore keeps the app serving on MariaDB and SQLite too (PostgreSQL: test_release_sequence.py): the backup goes
into a side database while the live one serves, the swap is one atomic RENAME TABLE (MariaDB) or one write transaction
of SQLite's online backup API into the live file (the app is not restarted), and a light loopback load sees no failed
request. The data is the backup's afterwards."""

import contextlib
import threading
import time

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


def test_a_restore_makes_its_helper_anew_and_kills_it(stack):
    """The restore's helper idles in `sleep infinity` as PID 1, which ignores SIGTERM: removing it with a stop waited
    10 s on every restore (17 s for the demo's, 7 s now). And a helper an interrupted restore left (here: one still
    running) was taken as it was, while the interrupted run's stop could kill it under the next restore (found on the
    demo: `container rollcall-files is not running (exited)`). Now it is killed, and made anew on every restore."""
    proc, report = playbook(stack["inventory"], "backup.yml")  # (this test alone has none yet)
    assert proc.returncode == 0, failures(report)
    api = docker.from_env()
    helper = PROJECT + "-files"
    image = api.containers.get(PROJECT + "-app").image.id
    left = api.containers.run(image, ["sleep", "infinity"], name=helper, detach=True,
                              labels={"rollcall.project": PROJECT, "rollcall.role": "restore-helper"})
    # Read live (dockerd keeps only its last 256 events: a busy engine drops them before a later query)
    stream = api.events(decode=True, filters={"type": "container", "container": helper})
    events = []

    def read():
        with contextlib.suppress(Exception):  # the stream closed below
            for e in stream:
                events.append((e["Action"], e["Actor"]["ID"], e["Actor"]["Attributes"].get("signal")))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        proc, report = playbook(stack["inventory"], "restore.yml")
        assert proc.returncode == 0, failures(report)
        time.sleep(1)
    finally:
        stream.close()
        reader.join(10)
    kills = [(cid, signal) for action, cid, signal in events if action == "kill"]
    assert kills and all(signal == "9" for _, signal in kills), events  # never a SIGTERM and 10 s of waiting
    made = {cid for action, cid, _ in events if action == "create"} - {left.id}
    assert ("destroy", left.id, None) in events and made, events
    assert {cid for action, cid, _ in events if action == "destroy"} >= made | {left.id}, "a helper was left"
    assert get_json(URL + "/health")[1]["status"] == "healthy"
