"""Release edge cases through real ansible-playbook: two deploys started at once (the deploy lock), and a rollback
over a migration that cannot be undone (kept schema, or the pre-deploy backup restored), and a rollback that fails
after its switch to the standby (traffic back on the release that was live), and a deploy run again after one cut
with Ctrl-C mid-migration. Apart from test_release_sequence.py, so the two long files run side by side."""

import concurrent.futures
import contextlib
import json
import os
import signal
import subprocess
import time

from test_deploy import BIN, ROOT, failures, get_json, playbook, task_names, task_result, teardown, write_inventory
from test_release_sequence import container_state


def test_two_deploys_at_once_one_fails_on_the_lock(tmp_path):
    inventory = write_inventory(tmp_path, rollcall_project="rc-it-lock", rollcall_db_engine="sqlite",
                                rollcall_app_port=18296, rollcall_state_dir=str(tmp_path / "state"),
                                rollcall_deploy_lock_timeout=0, rollcall_actor="first-or-second")
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(os.path.dirname(inventory), "..", "ansible.cfg"))
    del env["ANSIBLE_CONFIG"]
    try:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            runs = list(pool.map(lambda _: playbook(inventory), range(2)))
        codes = sorted(proc.returncode for proc, _ in runs)
        assert codes[0] == 0 and codes[1] != 0, codes
        refused = [failures(report) for proc, report in runs if proc.returncode != 0][0]
        assert "deploy lock for rc-it-lock is held by first-or-second" in refused[-1][1], refused
        # The lock is free again: a third deploy has nothing to do.
        proc, report = playbook(inventory)
        assert proc.returncode == 0 and report["stats"]["localhost"]["changed"] == 0, failures(report)
    finally:
        teardown(inventory)


def test_irreversible_migration_rollback_keeps_the_schema_or_restores_the_backup(tmp_path, docker_client):
    port = 18298
    inventory = write_inventory(tmp_path, rollcall_project="rc-it-irrev", rollcall_db_engine="postgresql",
                                rollcall_app_port=port, rollcall_state_dir=str(tmp_path / "state"),
                                rollcall_backup_dir=str(tmp_path / "bk"), rollcall_backup_verify_level="native",
                                rollcall_backup_key="cd" * 32, rollcall_environment="test",
                                # test-only knob: the newer release says migration 0002 cannot be undone
                                rollcall_app_extra_env={"SMS_IRREVERSIBLE": "0002"})
    try:
        proc, report = playbook(inventory)
        assert proc.returncode == 0, failures(report)
        proc, report = playbook(inventory, "deploy.yml", "-e", "rollcall_app_version=1.1.0")
        assert proc.returncode == 0, failures(report)
        (backup,) = [n[:-len(".manifest.json")] for n in os.listdir(tmp_path / "bk") if n.endswith(".manifest.json")]

        # Switch first: the 1.0.0 standby answered ready on schema 0002, so traffic went back before the plan; the
        # plan cannot take 0002 down, so the rollback ends with the code back and the schema kept, saying how to get
        # the older schema too (docs/decisions/rollback-switch-first.md).
        proc, report = playbook(inventory, "rollback.yml")
        assert proc.returncode == 0, failures(report)
        summary = task_result(report, "Plan the rollback")["summary"]
        assert "code back, schema left at 0002" in summary and "migration 0002 cannot be undone" in summary, summary
        assert "restore_backup_name=" + backup in summary, summary
        status, health = get_json("http://127.0.0.1:%d/health" % port)
        assert status == 200 and health["version"] == "1.0.0", health
        assert health["checks"]["migrations"]["revision"] == "0002", "the schema that cannot go back is kept"
        # 1.1.0 serves on 0002, so it stays as the warm standby (a roll forward is one switch).
        assert container_state("rc-it-irrev-app-standby") == ("running", "1.1.0")

        # The summary's command brings the older schema back under the 1.0.0 that serves now.
        proc, report = playbook(inventory, "restore.yml", "-e", "restore_backup_name=" + backup)
        assert proc.returncode == 0, failures(report)
        status, health = get_json("http://127.0.0.1:%d/health" % port)
        assert status == 200 and health["version"] == "1.0.0", health
        assert health["checks"]["migrations"]["revision"] == "0001", "the backup from before the deploy is back"

        # The other order: with -e restore_backup=true the plan comes first and restores instead of switching.
        proc, report = playbook(inventory, "deploy.yml", "-e", "rollcall_app_version=1.1.0")
        assert proc.returncode == 0, failures(report)
        proc, report = playbook(inventory, "rollback.yml", "-e", "restore_backup=true")
        assert proc.returncode == 0, failures(report)
        assert "Switch traffic back to the warm standby" not in " ".join(task_names(report))
        status, health = get_json("http://127.0.0.1:%d/health" % port)
        assert status == 200 and health["version"] == "1.0.0", health
        assert health["checks"]["migrations"]["revision"] == "0001", "the backup from before the deploy is back"
        _, students = get_json("http://127.0.0.1:%d/api/v1/students" % port)
        assert students["total"] == 7

        # A rollback that went back to the standby and then fails under the lock (here: a container in the way of the
        # renames) sends traffic back to the release that was live, records the failure, says so, and can be run again.
        proc, report = playbook(inventory, "deploy.yml", "-e", "rollcall_app_version=1.1.0")
        assert proc.returncode == 0, failures(report)
        docker_client.containers.create("rollcall/sms-app:1.0.0", name="rc-it-irrev-app-swap", command=["true"])
        proc, report = playbook(inventory, "rollback.yml")
        assert proc.returncode != 0
        said = failures(report)[-1][1]
        assert said.startswith("Rollback of 1.0.0 failed: renaming or retiring the app's containers around "
                               "rc-it-irrev-app failed"), said
        assert "Traffic went back to the release that was live" in said, said
        assert task_result(report, "Switch traffic back to the warm standby")["changed"] is True
        assert task_result(report, "Send traffic back to the release that was live")["changed"] is True
        status, health = get_json("http://127.0.0.1:%d/health" % port)
        assert status == 200 and health["version"] == "1.1.0", health
        assert container_state("rc-it-irrev-app") == ("running", "1.1.0")
        assert container_state("rc-it-irrev-app-standby") == ("running", "1.0.0")
        history = json.loads((tmp_path / "state" / "rc-it-irrev" / "releases.json").read_text())
        assert (history[-1]["version"], history[-1]["kind"], history[-1]["outcome"]) == ("1.0.0", "rollback", "failed")
        docker_client.containers.get("rc-it-irrev-app-swap").remove(v=True)  # the image's VOLUME too
        proc, report = playbook(inventory, "rollback.yml")
        assert proc.returncode == 0, failures(report)
        status, health = get_json("http://127.0.0.1:%d/health" % port)
        assert status == 200 and health["version"] == "1.0.0", health
    finally:
        for leftover in docker_client.containers.list(all=True, filters={"name": "^/rc-it-irrev-app-swap$"}):
            leftover.remove(force=True, v=True)
        teardown(inventory)


def test_deploy_after_ctrl_c_mid_migration_runs_its_own_migration(tmp_path, docker_client):
    """Ctrl-C while the one-off migration container waits on a lock leaves that container running. The next deploy
    (after break_lock, as the lock message says) must run and wait for a migration of its own, not take the leftover
    container's place and go on at once with nothing migrated by it. (Without the pre-deploy backup: its pg_dump
    would wait behind the leftover's ALTER TABLE until that ended; a data-only migration does not hold it up.)"""
    project, state = "rc-it-ctrlc", tmp_path / "state"
    inventory = write_inventory(tmp_path, rollcall_project=project, rollcall_db_engine="postgresql",
                                rollcall_app_port=18299, rollcall_state_dir=str(state),
                                rollcall_backup_dir=str(tmp_path / "bk"), rollcall_backup_key="ef" * 32,
                                rollcall_environment="test", rollcall_pre_deploy_backup=False)
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), PATH=BIN + os.pathsep + os.environ["PATH"])

    def hold(on):
        """A reader holding ACCESS SHARE on students: the migration's ALTER TABLE waits behind it."""
        db = docker_client.containers.get(project + "-db")
        if on:
            db.exec_run(["psql", "-d", "sms", "-c", "BEGIN; SELECT count(*) FROM students; SELECT pg_sleep(300)"],
                        user="postgres", detach=True)
        else:
            db.exec_run(["psql", "-d", "sms", "-Atc", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE query LIKE '%pg_sleep(300)%' AND pid <> pg_backend_pid()"], user="postgres")

    def migrate_container():
        found = docker_client.containers.list(all=True, filters={"name": "^/%s-migrate$" % project})
        return found[0] if found else None

    try:
        proc, report = playbook(inventory)
        assert proc.returncode == 0, failures(report)
        hold(True)
        run = subprocess.Popen([os.path.join(BIN, "ansible-playbook"), "-i", inventory,
                                os.path.join(ROOT, "playbooks", "deploy.yml"), "-e", "rollcall_app_version=1.1.0"],
                               cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
        deadline = time.time() + 180
        while migrate_container() is None and time.time() < deadline and run.poll() is None:
            time.sleep(0.5)
        leftover = migrate_container()
        assert leftover is not None, "the deploy never started its migration (rc %s)" % run.poll()
        os.killpg(run.pid, signal.SIGINT)  # Ctrl-C
        assert run.wait(timeout=60) != 0
        leftover.reload()
        assert leftover.status == "running", "the interrupted migration should still wait on the lock"

        subprocess.run([os.path.join(BIN, "ansible"), "localhost", "-i", inventory, "-m", "rollcall.ops.app_release",
                        "-a", "action=break_lock app=%s state_dir=%s" % (project, state)],
                       cwd=ROOT, env=env, capture_output=True, check=True)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            rerun = pool.submit(playbook, inventory, "deploy.yml", "-e", "rollcall_app_version=1.1.0")
            deadline = time.time() + 90
            while time.time() < deadline and not rerun.done():
                current = migrate_container()
                if current is not None and current.id != leftover.id:
                    break
                time.sleep(0.5)
            time.sleep(1)
            hold(False)
            proc, report = rerun.result(timeout=600)
        assert proc.returncode == 0, failures(report)
        migrated = task_result(report, "Migrate the schema in a one-off container to 0002")
        assert migrated["changed"] is True, "the rerun took the leftover container's place instead of migrating"
        status, health = get_json("http://127.0.0.1:18299/health")
        assert status == 200 and health["version"] == "1.1.0", health
        assert health["checks"]["migrations"]["revision"] == "0002", health
        assert migrate_container() is None, "the one-off container is removed when it has answered"
    finally:
        with contextlib.suppress(Exception):  # no database container: nothing holds a lock
            hold(False)
        teardown(inventory)


def test_a_lost_release_history_is_adopted_from_the_live_container(tmp_path):
    """releases.json removed by hand (or a new state directory under a running stack): the next deploy of a new
    version recorded only itself, and rollback.yml then had nothing to go back to although the old release's image
    was on the host ("No release to roll back to. Kept on every host: none."). A deploy now records the live release
    from its container first (kind adopt), once, and a rollback goes back to it."""
    project, state = "rc-it-adopt", tmp_path / "state"
    inventory = write_inventory(tmp_path, rollcall_project=project, rollcall_db_engine="sqlite",
                                rollcall_app_port=18291, rollcall_state_dir=str(state),
                                rollcall_environment="test", rollcall_pre_deploy_backup=False)
    history = state / project / "releases.json"
    try:
        proc, report = playbook(inventory)
        assert proc.returncode == 0, failures(report)
        history.unlink()
        proc, report = playbook(inventory, "rollback.yml")
        assert proc.returncode != 0
        said = failures(report)[-1][1]
        assert "records no release: a new state directory, or releases.json was removed" in said, said
        assert str(history) in said and "Run playbooks/deploy.yml with the version that runs now" in said, said
        proc, report = playbook(inventory, "deploy.yml", "-e", "rollcall_app_version=1.1.0")
        assert proc.returncode == 0, failures(report)
        entries = json.loads(history.read_text())
        assert [(e["kind"], e["version"], e["schema_revision"]) for e in entries] == [
            ("adopt", "1.0.0", "0001"), ("deploy", "1.1.0", "0002")], entries
        assert entries[0]["image_id"].startswith("sha256:") and "had no record of the live release" in \
            entries[0]["reason"]
        proc, report = playbook(inventory, "rollback.yml")
        assert proc.returncode == 0, failures(report)
        assert container_state(project + "-app") == ("running", "1.0.0")
        proc, report = playbook(inventory)  # 1.0.0 again: the history knows it, nothing adopted twice
        assert proc.returncode == 0 and report["stats"]["localhost"]["changed"] == 0, failures(report)
        assert [e["kind"] for e in json.loads(history.read_text())] == ["adopt", "deploy", "rollback"]
    finally:
        teardown(inventory)
