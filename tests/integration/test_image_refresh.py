"""Our images (issue 13 item 5) on this machine's engine through real ansible-playbook, on the PostgreSQL stack of
test_release_sequence.py (a stack of its own would double the cost; that test calls
``refresh_app_image_and_roll_back`` at its end, with 1.0.0 live): the app image refreshed with its base's updates
(rollcall.ops.image_refresh) and released through roles/sms_app under load with zero failed requests; the release
history records the refreshed image and keeps the old one warm; a second refresh with nothing pending builds
nothing; rollback.yml goes back to the image that was live; the database's and the proxy's refresh
(test_db_image.py, test_proxy_image.py) on the same stack. The patching role's image tasks run without its
OS-package part, which would upgrade this machine's own packages (the test inventory's host is the controller)."""

import json
import os
import subprocess
import sys
import time

from patching_steps import images_built, inspect, steps_playbook
from test_db_image import assert_database_kept, failed_update_restores, update_database
from test_deploy import BIN, ROOT, failures, playbook, task_result
from test_proxy_image import assert_proxy_kept, failed_refresh_restores, refresh_proxy

sys.path.insert(0, os.path.join(ROOT, "bench"))
from loadgen import Load  # noqa: E402

# The patching role's image part alone: the plan (what check mode shows too), then refresh and release.
IMAGES_PLAYBOOK = steps_playbook('Refresh our images like patching does', 'app', [
    ('Which images have a base with updates', 'images_plan.yml'),
    ('Refresh and release the app image', 'images.yml'),
])



def successful(state_dir, project):
    with open(os.path.join(state_dir, project, "releases.json")) as handle:
        entries = json.load(handle)
    return [e for e in entries if e["outcome"] == "success"]


def refresh_app_image_and_roll_back(tmp_path, inventory, url, project, state_dir, leftovers):
    """The scenario, on a stack whose live release is 1.0.0 (rollcall/sms-app:1.0.0). With the database engine's
    update (test_db_image.py) on the same stack; ``leftovers``: images the caller removes after its teardown."""
    original = inspect("rollcall/sms-app:1.0.0", "{{.Id}}")
    assert inspect(project + "-app", "{{.Image}}") == original
    images = tmp_path / "images.yml"
    images.write_text(IMAGES_PLAYBOOK)
    tag = None
    try:
        # Forced: the refresh must happen whether or not Debian published updates since the base was built. The
        # plan looks at the app image only here (the proxy and database images cost the same again each).
        load = Load(url, rate=20, total=100000, max_seconds=300).start()
        time.sleep(1)
        try:
            with images_built("rollcall/sms-app:1.0.0-p*", leftovers):
                proc, report = playbook(inventory, str(images), "-e", "rollcall_patching_images_force=true",
                                        "-e", '{"rollcall_patching_images_which": ["app"]}')
        finally:
            time.sleep(1)
            load.stop()
        assert proc.returncode == 0, failures(report)
        plans = task_result(report, "Note the image plans")["ansible_facts"]["patching_images_plan"]
        assert list(plans) == ["app"] and plans["app"]["image_id"] == original, plans
        refresh = task_result(report, "Build the refreshed app image")
        assert refresh["changed"] is True, refresh
        tag, version = refresh["refreshed"]["image"], refresh["refreshed"]["version"]
        assert tag in leftovers, (tag, leftovers)  # removed after the caller's teardown (in use until then)
        assert tag == "rollcall/sms-app:" + version and version.startswith("1.0.0-p"), refresh["refreshed"]
        assert load.failed == [] and load.ok > 50, (load.ok, load.failed[:10])
        # Recorded like any release; the release before it stays kept and warm.
        refreshed_id = inspect(tag, "{{.Id}}")
        current = successful(state_dir, project)[-1]
        assert (current["version"], current["image"], current["image_id"]) == (version, tag, refreshed_id), current
        assert inspect(project + "-app", "{{.Image}}") == refreshed_id != original
        assert inspect(project + "-app-standby", '{{index .Config.Labels "rollcall.version"}}') == "1.0.0"
        assert inspect(tag, '{{index .Config.Labels "rollcall.refreshed-from"}}') == original

        # Nothing pending in the refreshed image: nothing is built.
        env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
        again = subprocess.run([os.path.join(BIN, "ansible"), "localhost", "-m", "rollcall.ops.image_refresh", "-a",
                                "image=%s state=refreshed" % tag, "-o"], cwd=ROOT, env=env, capture_output=True,
                               text=True, timeout=600, check=False)
        assert again.returncode == 0 and '"changed": false' in again.stdout, again.stdout[-2000:]
        assert '"refreshed": null' in again.stdout and '"pending": 0' in again.stdout, again.stdout[-2000:]

        # The database engine's update on this stack: rollcall/postgres:15 refreshed, the database recreated on it.
        db_tag = update_database(tmp_path, inventory, project, leftovers)

        # The proxy image's refresh (test_proxy_image.py) under load: recreated once, the gap measured.
        proxy_tag, proxy_container, _ = refresh_proxy(tmp_path, inventory, url, project, state_dir, leftovers)

        # A plain deploy of 1.0.0 keeps the refreshed builds: the app's (recorded in the release history), the
        # database's (database-image.json) and the proxy's (proxy-image.json: the same proxy container, not
        # recreated); nothing goes back to the unrefreshed images.
        proc, report = playbook(inventory, "deploy.yml", "-e", "rollcall_app_version=1.0.0")
        assert proc.returncode == 0, failures(report)
        assert inspect(project + "-app", "{{.Image}}") == refreshed_id
        assert successful(state_dir, project)[-1]["version"] == version
        assert_database_kept(project, db_tag)
        assert_proxy_kept(project, proxy_tag, proxy_container)

        # An image refresh rolls back like a release: to the image that was live (the warm standby).
        proc, report = playbook(inventory, "rollback.yml")
        assert proc.returncode == 0, failures(report)
        assert inspect(project + "-app", "{{.Image}}") == original
        assert successful(state_dir, project)[-1]["version"] == "1.0.0"

        # A database image that never becomes healthy: the database goes back to the image it ran, the run stops.
        failed_update_restores(tmp_path, inventory, project, db_tag)

        # A proxy image that fails the gate: the proxy goes back to the image it ran, serving the same upstream.
        failed_refresh_restores(tmp_path, inventory, project, proxy_tag, url.replace("/api/v1/students?per_page=5",
                                                                                     "/health/ready"))
    finally:
        if tag:
            for name in (project + "-app-standby",):  # the refreshed release, warm after the rollback
                subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
            subprocess.run(["docker", "rmi", tag], capture_output=True, check=False)
