"""Releases on one PostgreSQL stack of this machine's engine, through real ansible-playbook: the release/restore
sequence of issue 9, the warm standby and the switch-first rollback, then the image refreshes (issue 13 item 5):

deploy 1.0.0 -> deploy 1.1.0 -> restore (the newest backup is the pre-deploy one, schema 0001) -> rollback ->
restore of a newer-schema backup (refused) -> rollback to=1.1.0 -> restore of an older backup -> deploy 1.1.0.

Releases (deploy, rollback, roll-forward) and restores must fail no request under a light loopback load (a restore
migrates its side database forward before the swap, and the app waits through the swap); afterwards the app is
healthy, on the schema its release needs, with the backup's data. A refusal must change nothing.
Check mode of deploy.yml, rollback.yml and restore.yml runs, changes nothing and says what it would do; a gate
that never passes says how long it really waited, once. Last, back on 1.0.0, the app, database and proxy images are
refreshed and rolled back on the same stack (test_image_refresh.py; one stack instead of two: a PostgreSQL stack that
deploys 1.0.0 -> 1.1.0 costs minutes of the suite). The lock and the irreversible migration: test_release_edges.py.
"""

import json
import os
import subprocess
import sys
import time
import urllib.request

import docker
import pytest
from test_deploy import (
    DB_PASSWORD,
    SECRET,
    failures,
    get_json,
    playbook,
    task_names,
    task_result,
    teardown,
    write_inventory,
)
from test_image_refresh import refresh_app_image_and_roll_back

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                "bench"))
from loadgen import Load  # noqa: E402

PROJECT = "rc-a-seq"
PORT = 18400
URL = "http://127.0.0.1:%d" % PORT


def deployed_stack(tmp_path_factory, project, engine, port, **settings):
    """A throw-away stack deployed at 1.0.0 for a module's tests (rate limit off, backups verified natively);
    yields what the tests need and tears it down afterwards."""
    tmp = tmp_path_factory.mktemp(project)
    inventory = write_inventory(tmp, rollcall_project=project, rollcall_db_engine=engine, rollcall_app_port=port,
                                rollcall_rate_limit_per_minute=1000000, rollcall_state_dir=str(tmp / "state"),
                                rollcall_backup_dir=str(tmp / "bk"), rollcall_backup_verify_level="native",
                                rollcall_environment="test", **settings)
    try:
        proc, report = playbook(inventory)
        assert proc.returncode == 0, failures(report)
        yield {"inventory": inventory, "state": tmp / "state" / project, "backups": tmp / "bk",
               "url": "http://127.0.0.1:%d" % port}
    finally:
        teardown(inventory)


@pytest.fixture(scope="module")
def refreshed_images():
    """Tags of the images the refreshes build: removed after the stack's teardown (in use until then)."""
    tags = []
    yield tags
    for tag in tags:
        subprocess.run(["docker", "rmi", tag], capture_output=True, check=False)


@pytest.fixture(scope="module")
def stack(tmp_path_factory, refreshed_images):
    yield from deployed_stack(tmp_path_factory, PROJECT, "postgresql", PORT, rollcall_drain_seconds=1,
                              # the proxy image under test (a shared engine may hold another build of
                              # rollcall/proxy:1 while other runs use it: build this tree's under another tag)
                              rollcall_proxy_image=os.environ.get("ROLLCALL_IT_PROXY_IMAGE", "rollcall/proxy:1"))


def container_state(name):
    """(state, rollcall.version label) of a container, or None when there is none."""
    proc = subprocess.run(["docker", "inspect", "-f", '{{.State.Status}} {{index .Config.Labels "rollcall.version"}}',
                           name], capture_output=True, text=True, check=False)
    return tuple(proc.stdout.split()) if proc.returncode == 0 else None


def first_index(names, prefix):
    return next(i for i, name in enumerate(names) if name.startswith(prefix))


def revision():
    return subprocess.run(["docker", "exec", "-e", "PGPASSWORD=" + DB_PASSWORD, PROJECT + "-db", "psql", "-h",
                           "127.0.0.1", "-U", "sms", "-d", "sms", "-Atc", "SELECT version_num FROM alembic_version"],
                          capture_output=True, text=True, check=True).stdout.strip()


def live():
    """(version served, schema revision of the database, /health status)."""
    status, health = get_json(URL + "/health")
    return health["version"], revision(), health["status"]


def manifests(stack):
    """Backup name -> manifest, oldest first."""
    found = {}
    for name in sorted(os.listdir(stack["backups"])):
        if name.endswith(".manifest.json"):
            found[name[:-len(".manifest.json")]] = json.loads((stack["backups"] / name).read_text())
    return dict(sorted(found.items(), key=lambda item: item[1]["finished_at"]))


def stack_containers(client):
    """(name, row) for every container of the stack, from the engine's list call filtered by name. Not
    ``containers.list``: it inspects every container it listed, which races with other tests removing theirs on the
    shared engine (a 404 for a container listed a moment before)."""
    return [(row["Names"][0].lstrip("/"), row)
            for row in client.api.containers(all=True, filters={"name": "^/" + PROJECT})]


def snapshot(stack):
    """Everything a refused or check-mode run must leave as it was."""
    client = docker.from_env()
    containers = sorted((name, row["Id"], row["State"]) for name, row in stack_containers(client))
    state = {name: (stack["state"] / name).read_bytes() for name in ("releases.json", "audit.jsonl")
             if (stack["state"] / name).exists()}
    return {"containers": containers, "revision": revision(), "state": state,
            "backups": sorted(os.listdir(stack["backups"])) if stack["backups"].exists() else [],
            "version": get_json(URL + "/health")[1]["version"]}


def under_load(stack, name, *extra):
    """Run a release playbook under a light loopback load: it must succeed and fail no request. Returns the
    playbook's process and report, and the versions the load saw answering."""
    load = Load(stack["url"] + "/api/v1/students?per_page=5", rate=20, total=100000, max_seconds=300).start()
    time.sleep(1)
    proc, report = playbook(stack["inventory"], name, *extra)
    time.sleep(1)
    load.stop()
    assert proc.returncode == 0, failures(report)
    assert load.failed == [] and load.ok > 20, (name, extra, load.ok, load.failed[:10], app_errors(stack))
    assert SECRET not in proc.stdout and DB_PASSWORD not in proc.stdout
    return proc, report, load.versions


def app_errors(_stack):
    """What the app and the database logged about failed requests (a failed request is rare and must be
    explained: the lines with an error, a traceback or a 5xx status, from every container of the stack)."""
    lines = []
    client = docker.from_env()
    for name, row in stack_containers(client):
        try:
            text = client.api.logs(row["Id"], tail=400, timestamps=True).decode("utf-8", "replace").splitlines()
        except docker.errors.NotFound:  # removed since it was listed (a standby the playbook replaced)
            continue
        lines += ["%s: %s" % (name, line) for line in text
                  if any(mark in line for mark in ('"level": "error"', '"status": 5', "Traceback", "ERROR", "FATAL"))]
    return lines[-40:]


def maintenance(stack, *extra):
    """A restore under the same light load: it must succeed and fail no request."""
    return under_load(stack, "restore.yml", *extra)


def refused(stack, name, *extra):
    """The playbook fails, changing nothing; returns the last failure message."""
    before = snapshot(stack)
    proc, report = playbook(stack["inventory"], name, *extra)
    assert proc.returncode != 0, "%s %s should have been refused" % (name, extra)
    assert snapshot(stack) == before, "a refused %s changed something" % name
    return failures(report)[-1][1]


def messages(report):
    return [result.get("msg", "") for play in report["plays"] for task in play["tasks"]
            for result in task["hosts"].values() if isinstance(result.get("msg"), str)]


def add_student(number, url=URL):
    body = json.dumps({"student_number": number, "first_name": "Late", "last_name": "Comer",
                       "email": "late.%s@students.example.edu" % number.lower(), "grade_level": 10}).encode()
    request = urllib.request.Request(url + "/api/v1/students", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback test URL
        assert response.status == 201


def check_mode(stack, name, *extra):
    """--check runs, changes nothing and prints the plan; returns the plan's summary line."""
    before = snapshot(stack)
    proc, report = playbook(stack["inventory"], name, "--check", *extra)
    assert proc.returncode == 0, failures(report) or proc.stderr[-2000:]
    assert snapshot(stack) == before, "check mode of %s changed something" % name
    said = [m for m in messages(report) if m.startswith("Check mode")]
    assert said, messages(report)
    return said[-1]


def test_deploy_check_mode_changes_nothing_and_says_the_plan(stack):
    said = check_mode(stack, "deploy.yml", "-e", "rollcall_app_version=1.1.0")
    assert "1.1.0" in said and "0001 -> 0002" in said and "backup" in said, said


def test_release_sequence_serves_or_refuses(stack):
    inventory = stack["inventory"]
    assert live()[:2] == ("1.0.0", "0001")

    _, _, versions = under_load(stack, "deploy.yml", "-e", "rollcall_app_version=1.1.0")
    assert live() == ("1.1.0", "0002", "healthy")
    assert versions.get("1.0.0") and versions.get("1.1.0"), versions
    # The release that was live stays running, without traffic, as the warm standby.
    assert container_state(PROJECT + "-app-standby") == ("running", "1.0.0")
    assert container_state(PROJECT + "-app") == ("running", "1.1.0")
    (pre_deploy, manifest), = manifests(stack).items()
    assert manifest["schema_revision"] == "0001"
    assert manifest["app_version"] == "1.0.0", "the pre-deploy backup records the release that served its data"

    # Restore the newest backup (schema 0001) under 1.1.0 (needs 0002): migrated forward with 1.1.0's image.
    maintenance(stack)
    assert live() == ("1.1.0", "0002", "healthy")
    assert get_json(URL + "/api/v1/students")[1]["total"] == 7
    safety = [m for n, m in manifests(stack).items() if n != pre_deploy]
    assert len(safety) == 1 and safety[0]["schema_revision"] == "0002", safety
    assert safety[0]["app_version"] == "1.1.0", "the safety backup records the release that served its data"
    safety_name = [n for n in manifests(stack) if n != pre_deploy][0]

    proc, report, versions = under_load(stack, "rollback.yml")
    assert live() == ("1.0.0", "0001", "healthy"), "the rollback took the schema down to 1.0.0's revision"
    assert any("Rolling back from 1.1.0 to 1.0.0" in m for m in messages(report)), messages(report)
    assert versions.get("1.0.0") and versions.get("1.1.0"), versions
    # Traffic went back to the warm standby (no new container), which is the live 1.0.0 now; 1.1.0 is gone, as it
    # cannot serve on the schema the rollback took down.
    assert task_result(report, "Switch traffic back to the warm standby")["changed"] is True
    # Switch first: traffic went back before the schema question, the plan and the deploy lock.
    names = task_names(report)
    switched = first_index(names, "Switch traffic back to the warm standby")
    assert switched < first_index(names, "Ask the live release what the schema is"), names
    assert switched < first_index(names, "Plan the rollback"), names
    assert switched < first_index(names, "Take the deploy lock"), names
    # Under the lock it only renamed and recorded (roles/sms_app promote.yml), with the plan made for the switch: no
    # second read of the history, no new container. 1.1.0 was signalled to stop as -retiring, and the rollback
    # waited for it to be gone before the schema went down.
    assert not [n for n in names if n.startswith(("Start the new release", "Plan the release"))], names
    renamed = first_index(names, "Make the new release the live one")
    assert task_result(report, "Make the new release the live one")["changed"] is True
    assert first_index(names, "Take the deploy lock") < renamed < first_index(names, "Record the release"), names
    retired = first_index(names, "Wait until the newer release has stopped")
    assert renamed < retired < first_index(names, "Migrate the schema in a one-off container to 0001"), names
    assert task_result(report, "Wait until the newer release has stopped")["retired"] in ("removed", "killed")
    assert container_state(PROJECT + "-app") == ("running", "1.0.0")
    assert container_state(PROJECT + "-app-standby") is None
    assert container_state(PROJECT + "-app-next") is None
    assert container_state(PROJECT + "-app-retiring") is None

    # The same command again (a re-run from the shell history, a second launch of the AWX job) does not bring
    # back the release it just left: refused, changing nothing, naming the way forward.
    message = refused(stack, "rollback.yml")
    assert "No release to roll back to" in message and "1.0.0 is live" in message, message
    assert "-e to=1.1.0" in message, message

    # A backup made on a newer schema than the live release runs on: refused before anything changes.
    message = refused(stack, "restore.yml", "-e", "restore_backup_name=" + safety_name)
    assert "0002" in message and "rollback.yml -e to=1.1.0" in message, message

    # Roll forward to the kept 1.1.0: the schema goes up with 1.1.0's image.
    under_load(stack, "rollback.yml", "-e", "to=1.1.0")
    assert live() == ("1.1.0", "0002", "healthy")
    assert len(manifests(stack)) == 3, "a verified backup before the roll-forward migration"
    # 1.0.0 runs on the newer schema (as after a deploy), so it stays as the warm standby: going back is one switch.
    assert container_state(PROJECT + "-app-standby") == ("running", "1.0.0")

    # An older backup, by name: restored and migrated forward.
    add_student("S09001")
    maintenance(stack, "-e", "restore_backup_name=" + pre_deploy)
    assert live() == ("1.1.0", "0002", "healthy")
    assert get_json(URL + "/api/v1/students")[1]["total"] == 7

    add_student("S09002")
    proc, report, _ = under_load(stack, "deploy.yml", "-e", "rollcall_app_version=1.1.0")
    assert report["stats"]["localhost"]["changed"] == 0, "1.1.0 is live on its schema: nothing to do"
    done = [m for m in messages(report) if m.startswith("SMS 1.1.0")]
    assert done and "with 8 students" in done[-1], done

    # Going to the release that is live already: nothing to do, and it says so.
    proc, report = playbook(inventory, "rollback.yml", "-e", "to=1.1.0")
    assert proc.returncode == 0 and report["stats"]["localhost"]["changed"] == 0, failures(report)
    assert any("1.1.0 is already live" in m for m in messages(report)), messages(report)
    assert not any("Rolling back from 1.1.0 to 1.1.0" in m for m in messages(report)), messages(report)

    # A deploy of the kept 1.0.0 (-e rollcall_app_version forgotten: the inventory says 1.0.0) that also turns on
    # point-in-time recovery: refused before the database play restarts the database for it (it did, then refused
    # and said "Nothing was changed"): roles/sms_app tasks/early_plan.yml.
    message = refused(stack, "deploy.yml", "-e", "rollcall_app_version=1.0.0", "-e", "rollcall_pitr=true",
                      "-e", "rollcall_pitr_cipher_pass=it-seq-pitr-cipher-pass")
    assert "Deploy of 1.0.0 refused: 1.0.0 needs schema 0001, but the database is at 0002" in message, message
    assert "Nothing was changed" in message and "rollback.yml -e to=1.0.0" in message, message


def test_rollback_and_restore_check_mode_change_nothing(stack):
    said = check_mode(stack, "rollback.yml")
    assert "1.0.0" in said and "0002 -> 0001" in said, said
    assert check_mode(stack, "rollback.yml", "-e", "to=") == said, "a blank answer (-e to=) is no answer"
    said = check_mode(stack, "restore.yml")
    assert "restore" in said.lower(), said


def test_gate_says_its_real_wait_once(stack):
    before = live()
    started = time.monotonic()
    proc, report = playbook(stack["inventory"], "deploy.yml", "-e", "rollcall_app_version=1.2.0-broken",
                            "-e", "rollcall_ready_timeout=6")
    took = time.monotonic() - started
    assert proc.returncode != 0
    gate = [result for play in report["plays"] for task in play["tasks"] if "ready" in task["task"]["name"]
            for result in task["hosts"].values()]
    assert gate and all(result.get("attempts", 1) == 1 for result in gate), "no retry noise"
    message = failures(report)[-1][1]
    waited = float(message.split("did not pass /health/ready after ")[1].split(" s")[0])
    assert 6 <= waited < 12 and waited < took, message
    assert "did not pass /health/ready after %s s (rollcall_ready_timeout=6): 503 " % message.split(
        "after ")[1].split(" s")[0] in message, "the last answer is shown: %s" % message
    assert "Release %s keeps serving" % before[0] in message, message
    # its log lines, without the gate's own requests for /health/ready (four a second: they were all it showed)
    logs = message.split("Last log lines of the new container: ", 1)[1]
    assert '"path":"/health/ready"' not in logs.replace(" ", ""), logs
    assert live()[0::2] == before[0::2], "the release that was live keeps serving, healthy"


def test_missing_image_hint_names_what_make_images_builds(stack):
    message = refused(stack, "deploy.yml", "-e", "rollcall_app_version=9.9.9")
    assert "rollcall/sms-app:9.9.9 is not on" in message and "Build with `make images`" not in message, message
    assert "`make images` builds only rollcall/sms-app 1.0.0, 1.1.0" in message, message


def test_image_refreshes_on_the_release_stack(stack, refreshed_images):
    """Issue 13 item 5 on this stack, back on 1.0.0 (test_image_refresh.py): the app image refreshed under load and
    rolled back, the database engine's update (test_db_image.py) and the proxy's (test_proxy_image.py). Their
    helpers read the stack's state under the directory its inventory was written to."""
    proc, report = playbook(stack["inventory"], "rollback.yml", "-e", "to=1.0.0")
    assert proc.returncode == 0, failures(report)
    assert live()[0] == "1.0.0"
    refresh_app_image_and_roll_back(stack["state"].parent.parent, stack["inventory"],
                                    stack["url"] + "/api/v1/students?per_page=5", PROJECT, str(stack["state"].parent),
                                    refreshed_images)
