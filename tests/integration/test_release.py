"""Releases on this machine's engine through real ansible-playbook: zero failed requests while deploying and
rolling back under load, then the image refreshes on the same stack (the longest test file; the lock and the
irreversible migration are in test_release_edges.py, so pytest-xdist's loadfile runs them on the other worker)."""

import os
import subprocess
import sys
import time

from test_deploy import DB_PASSWORD, SECRET, failures, playbook, teardown, write_inventory
from test_image_refresh import refresh_app_image_and_roll_back

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                "bench"))
from loadgen import Load  # noqa: E402


def container_state(name):
    """(state, rollcall.version label) of a container, or None when there is none."""
    proc = subprocess.run(["docker", "inspect", "-f", '{{.State.Status}} {{index .Config.Labels "rollcall.version"}}',
                           name], capture_output=True, text=True, check=False)
    return tuple(proc.stdout.split()) if proc.returncode == 0 else None


def task_result(report, prefix):
    """The localhost result of the one task whose name starts with prefix (the JSON callback's report)."""
    found = [task["hosts"]["localhost"] for play in report["plays"] for task in play["tasks"]
             if task["task"]["name"].split(" : ")[-1].startswith(prefix) and "localhost" in task["hosts"]]
    assert len(found) == 1, (prefix, len(found))
    return found[0]


def task_names(report):
    """The names of the tasks that ran (not skipped) on localhost, in order."""
    return [task["task"]["name"].split(" : ")[-1] for play in report["plays"] for task in play["tasks"]
            if "localhost" in task["hosts"] and not task["hosts"]["localhost"].get("skipped")]


def first_index(names, prefix):
    return next(i for i, name in enumerate(names) if name.startswith(prefix))


def test_deploy_and_rollback_under_load_fail_no_request(tmp_path):
    port = 18295
    inventory = write_inventory(tmp_path, rollcall_project="rc-it-rel", rollcall_db_engine="postgresql",
                                rollcall_app_port=port, rollcall_rate_limit_per_minute=1000000,
                                rollcall_state_dir=str(tmp_path / "state"), rollcall_backup_dir=str(tmp_path / "bk"),
                                rollcall_backup_verify_level="native", rollcall_drain_seconds=1,
                                # the proxy image under test (a shared engine may hold another build of
                                # rollcall/proxy:1 while other runs use it: build this tree's under another tag)
                                rollcall_proxy_image=os.environ.get("ROLLCALL_IT_PROXY_IMAGE", "rollcall/proxy:1"))
    url = "http://127.0.0.1:%d/api/v1/students?per_page=5" % port
    leftovers = []
    try:
        proc, report = playbook(inventory)
        assert proc.returncode == 0, failures(report)
        load = Load(url, rate=20, total=100000, max_seconds=300).start()
        time.sleep(1)
        proc, report = playbook(inventory, "deploy.yml", "-e", "rollcall_app_version=1.1.0")
        time.sleep(1)
        load.stop()
        assert proc.returncode == 0, failures(report)
        assert SECRET not in proc.stdout and DB_PASSWORD not in proc.stdout
        assert load.failed == [] and load.ok > 100, (load.ok, load.failed[:10])
        assert load.versions.get("1.0.0") and load.versions.get("1.1.0"), load.versions
        # The release that was live stays running, without traffic, as the warm standby.
        assert container_state("rc-it-rel-app-standby") == ("running", "1.0.0")
        assert container_state("rc-it-rel-app") == ("running", "1.1.0")

        load = Load(url, rate=20, total=100000, max_seconds=300).start()
        time.sleep(1)
        proc, report = playbook(inventory, "rollback.yml")
        time.sleep(1)
        load.stop()
        assert proc.returncode == 0, failures(report)
        assert load.failed == [] and load.ok > 50, (load.ok, load.failed[:10])
        assert load.versions.get("1.0.0") and load.versions.get("1.1.0"), load.versions
        # Traffic went back to the warm standby (no new container), which is the live 1.0.0 now; 1.1.0 is gone, as
        # it cannot serve on the schema the rollback took down.
        assert task_result(report, "Switch traffic back to the warm standby")["changed"] is True
        assert task_result(report, "Start the new release next to the live one").get("skipped") is True
        # Switch first: traffic went back before the schema question, the plan and the deploy lock.
        names = task_names(report)
        switched = first_index(names, "Switch traffic back to the warm standby")
        assert switched < first_index(names, "Ask the live release what the schema is"), names
        assert switched < first_index(names, "Plan the rollback"), names
        assert switched < first_index(names, "Take the deploy lock"), names
        assert container_state("rc-it-rel-app") == ("running", "1.0.0")
        assert container_state("rc-it-rel-app-standby") is None
        assert container_state("rc-it-rel-app-next") is None
        revision = subprocess.run(["docker", "exec", "-e", "PGPASSWORD=" + DB_PASSWORD, "rc-it-rel-db", "psql", "-h",
                                   "127.0.0.1", "-U", "sms", "-d", "sms", "-Atc", "SELECT version_num FROM "
                                   "alembic_version"], capture_output=True, text=True, check=True).stdout.strip()
        assert revision == "0001", "the rollback took the schema down to 1.0.0's revision"
        backups = [n for n in os.listdir(tmp_path / "bk") if n.endswith(".manifest.json")]
        assert len(backups) == 1, "one verified backup, taken before the 1.1.0 migration"

        # Issue 13 item 5 on this stack (test_image_refresh.py): the app image refreshed under load, rolled back.
        # Then the database engine's update (test_db_image.py) and the proxy's (test_proxy_image.py) on the same stack.
        refresh_app_image_and_roll_back(tmp_path, inventory, url, "rc-it-rel", str(tmp_path / "state"), leftovers)
    finally:
        teardown(inventory)
        for tag in leftovers:  # the refreshed images, in use until the teardown when a step failed
            subprocess.run(["docker", "rmi", tag], capture_output=True, check=False)
