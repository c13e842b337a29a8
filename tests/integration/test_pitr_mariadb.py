"""MariaDB point-in-time recovery (issue 14; docs/pitr.md, "MariaDB"; plugins/module_utils/binlog.py) on a small stack
of its own (rc-it-binlog: the database only, made by roles/database with rollcall_pitr: true, so the server writes its
binary log): a row, a dump and the log archived by roles/backup; row A, the time noted, row B; a restore to the
noted time (rollcall.ops.binlog, then roles/backup's pitr_restore tasks turning it into a backup) brings back A and
not B, also from a copy made by action=mirror (the backup host's copy); a time before the window is refused; a
removed archived file is named by verify as a gap; a wrong key is named as such. The log is archived on demand
(FLUSH BINARY LOGS), so nothing waits for a timer.
"""

import concurrent.futures
import json
import os
import time

import docker.errors
import pytest
import yaml
from test_deploy import failures, playbook
from test_pitr import (
    database_stack,
    refuses_a_new_server_on,
    remove,
    results,
    role_run,
    run_tasks,
    said,
    without_pitr_setting,
)

from ansible_collections.rollcall.ops.plugins.module_utils import artifact

PROJECT = os.environ.get("ROLLCALL_IT_BINLOG_PROJECT", "rc-it-binlog")
CONTAINER = PROJECT + "-db"
SCRATCH = CONTAINER + "-pitr"
ROOT_PASSWORD = "binlog-root-password-never-printed"
KEY = "cd" * 32


def task_result(report, name):
    """The localhost result of the task called ``name`` (in a role or not) of a playbook's JSON report."""
    for play in report["plays"]:
        for task in play["tasks"]:
            if task["task"]["name"].split(" : ")[-1] == name and "localhost" in task["hosts"]:
                return task["hosts"]["localhost"]
    raise AssertionError("no task %r in the report" % name)


def binlog_time(value):
    """An archived file's last_at (epoch seconds or ISO 8601) as epoch seconds."""
    if isinstance(value, (int, float)):
        return int(value)
    return int(time.mktime(time.strptime(value.replace("Z", "").split(".")[0][:19], "%Y-%m-%dT%H:%M:%S"))
               - time.timezone)


def sql(docker_client, query, container=CONTAINER, database="sms"):
    code, output = docker_client.containers.get(container).exec_run(
        ["mariadb", "--protocol=TCP", "-h", "127.0.0.1", "-u", "root", "-N", "-B", database, "-e", query],
        environment={"MYSQL_PWD": ROOT_PASSWORD})
    assert code == 0, output
    return output.decode().strip()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, docker_client, require_image):
    require_image("rollcall/mariadb:10.11")
    yield from database_stack(tmp_path_factory, docker_client, PROJECT, "binlog", rollcall_db_engine="mariadb",
                              rollcall_db_root_password=ROOT_PASSWORD, rollcall_pitr=True, rollcall_backup_key=KEY,
                              rollcall_backup_uploads=False)


def test_a_deploy_without_rollcall_pitr_keeps_the_binary_log(stack, docker_client):
    """A deploy that does not say rollcall_pitr again keeps the binary log on, without a restart (before, it
    recreated the server with the log off and said nothing)."""
    tmp_path, inventory = stack
    before = docker_client.containers.get(CONTAINER).attrs
    proc, report = role_run(tmp_path, without_pitr_setting(inventory), "database_plain.yml", "rollcall.ops.database")
    assert proc.returncode == 0, failures(report) or proc.stderr[-2000:]
    after = docker_client.containers.get(CONTAINER).attrs
    assert (after["Id"], after["State"]["StartedAt"]) == (before["Id"], before["State"]["StartedAt"]), "no restart"
    assert "--log-bin=mariadb-bin" in after["Config"]["Cmd"] and sql(docker_client, "SELECT @@log_bin") == "1"
    [msg] = said(report, "Say that point-in-time recovery stays on")
    assert msg.startswith("Point-in-time recovery stays on for %s: its database writes its binary log" % CONTAINER)


def test_restore_to_a_time_brings_back_a_not_b_and_verify_finds_a_gap(stack, docker_client):
    tmp_path, inventory = stack
    started = time.time()
    repo = tmp_path / "b" / "pitr" / PROJECT
    assert sql(docker_client, "SELECT @@log_bin, @@binlog_format") == "1\tROW"
    assert "--log-bin=mariadb-bin" in docker_client.api.inspect_container(CONTAINER)["Config"]["Cmd"]

    # As the app's tables: a trigger writes every insert into another database (roles/database's audit triggers
    # write into <db>_audit), so each row statement spans two databases in the log.
    sql(docker_client, "CREATE DATABASE it_audit; CREATE TABLE it_audit.log (id INT AUTO_INCREMENT PRIMARY KEY, "
                       "msg VARCHAR(10)); GRANT INSERT ON it_audit.* TO sms_owner@'%'; "
                       "CREATE TABLE it_binlog (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(10)); "
                       "CREATE DEFINER = sms_owner@'%' TRIGGER it_binlog_ai AFTER INSERT ON it_binlog FOR EACH ROW "
                       "INSERT INTO it_audit.log (msg) VALUES (NEW.v); INSERT INTO it_binlog (v) VALUES ('base')")
    proc, report = run_tasks(tmp_path, inventory, "backup.yml", [
        {"name": "Back up (the dump, then the binary log archived and verified)",
         "ansible.builtin.include_role": {"name": "rollcall.ops.backup"}}])
    assert proc.returncode == 0, failures(report) or proc.stderr[-2000:]
    assert ROOT_PASSWORD not in proc.stdout and KEY not in proc.stdout
    dumps = sorted((tmp_path / "b").glob("mysql-sms-*.manifest.json"))
    assert len(dumps) == 1
    position = json.loads(dumps[0].read_text())["mysql"]["binlog"]
    assert position["file"].startswith("mariadb-bin.") and position["position"] > 4, position
    archived = sorted(p.name for p in repo.glob("mariadb-bin.*.manifest.json"))
    assert archived and all(oct((repo / a).stat().st_mode & 0o777) == "0o600" for a in archived)
    assert all(p.name.endswith(".binlog.gz.enc") for p in repo.glob("mariadb-bin.*.binlog*"))

    sql(docker_client, "INSERT INTO it_binlog (v) VALUES ('A')")
    # in the log, not for the replay: a statement without default database, a row of another database only
    sql(docker_client, "CREATE USER it_binlog_u@'%' IDENTIFIED BY 'x'", database="mysql")
    sql(docker_client, "INSERT INTO it_audit.log (msg) VALUES ('alone')", database="it_audit")
    time.sleep(1.2)
    noted = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time()))
    time.sleep(1.2)
    sql(docker_client, "INSERT INTO it_binlog (v) VALUES ('B')")

    common = {"container": CONTAINER, "repo": str(repo), "login_password": ROOT_PASSWORD, "encryption_key": KEY,
              "backup_dir": str(tmp_path / "b"), "database": "sms"}
    proc, report = run_tasks(tmp_path, inventory, "restore.yml", [
        {"name": "Too early", "rollcall.ops.binlog": dict(common, action="restore", to_time="2001-01-01T00:00:00Z"),
         "check_mode": True, "register": "early", "failed_when": False},
        {"name": "Restore to the noted time", "register": "restored",
         "rollcall.ops.binlog": dict(common, action="restore", to_time=noted,
                                     query="SELECT GROUP_CONCAT(v ORDER BY id) FROM it_binlog")},
        {"name": "Info", "rollcall.ops.binlog": dict(common, action="info")},
        {"name": "Backup info", "rollcall.ops.backup_info": {"directory": str(tmp_path / "b"), "database": "sms",
                                                             "binlog_repo": str(repo)}},
    ])
    assert proc.returncode == 0, failures(report) or proc.stderr[-2000:]
    assert ROOT_PASSWORD not in proc.stdout
    early = results(report, "Too early")
    assert "before the recoverable window" in early["msg"], early
    restored = results(report, "Restore to the noted time")
    assert restored["passed"] and restored["changed"], restored
    assert restored["query_result"] == "base,A", restored  # A is back, B is not
    assert restored["counts"]["it_binlog"] == 2 and restored["base"] == dumps[0].name[:-len(".manifest.json")]
    info = results(report, "Info")
    assert info["window"]["rpo_s"] < 60 and info["newest_recoverable_at"], info
    newest = results(report, "Backup info")
    assert newest["newest_recoverable_at"] == info["newest_recoverable_at"] and newest["pitr"]["bases"] == 1, newest
    assert sql(docker_client, "SELECT GROUP_CONCAT(v ORDER BY id) FROM it_binlog") == "base,A,B"  # live untouched
    scratch = docker_client.api.inspect_container(SCRATCH)
    assert scratch["HostConfig"]["NetworkMode"] == "none"

    # The backup host's copy (action=mirror, as roles/backup runs it into the sshfs mount of the backup host's
    # directory): copied as it is, verified there, twice is nothing new, and a restore from the copy is the same.
    offsite = tmp_path / "offsite" / PROJECT
    from_copy = dict(common, repo=str(offsite), scratch=CONTAINER + "-copy")
    proc, report = run_tasks(tmp_path, inventory, "mirror.yml", [
        {"name": "Mirror", "rollcall.ops.binlog": dict(common, action="mirror", mirror_repo=str(offsite))},
        {"name": "Mirror again", "rollcall.ops.binlog": dict(common, action="mirror", mirror_repo=str(offsite))},
        {"name": "Restore from the copy", "rollcall.ops.binlog": dict(
            from_copy, action="restore", to_time=noted, archive_first=False,
            query="SELECT GROUP_CONCAT(v ORDER BY id) FROM it_binlog")},
        {"name": "Drop its scratch instance", "rollcall.ops.binlog": dict(from_copy, action="drop_scratch")},
    ])
    assert proc.returncode == 0, failures(report) or proc.stderr[-2000:]
    mirrored, again = results(report, "Mirror"), results(report, "Mirror again")
    assert mirrored["changed"] and mirrored["passed"] and mirrored["copied"], mirrored
    assert not again["changed"] and again["copied"] == [] and again["present"] == mirrored["copied"], again
    assert sorted(p.name for p in offsite.iterdir()) == sorted(p.name for p in repo.iterdir()
                                                              if p.name != ".archive.lock")  # the lock stays home
    assert results(report, "Restore from the copy")["query_result"] == "base,A"

    # The role's path (restore.yml -e to_time): archive, verify, replay, and a dump of the scratch instance that
    # restore.yml then restores as any backup (labelled with the target).
    remove(docker_client, SCRATCH, SCRATCH + "-data")
    proc, report = run_tasks(tmp_path, inventory, "pitr_restore.yml", [
        {"name": "Point-in-time recovery into a backup",
         "ansible.builtin.include_role": {"name": "rollcall.ops.backup", "tasks_from": "pitr_restore"},
         "vars": {"to_time": noted}}])
    assert proc.returncode == 0, failures(report) or proc.stderr[-2000:]
    made = [json.loads(p.read_text()) for p in (tmp_path / "b").glob("mysql-sms-*.manifest.json")]
    pitr_made = [m for m in made if m["labels"].get("pitr_target")]
    assert len(pitr_made) == 1 and pitr_made[0]["row_counts"] == {"it_binlog": 2}, pitr_made
    with pytest.raises(docker.errors.NotFound):
        docker_client.containers.get(SCRATCH)  # removed after the dump

    # playbooks/archive_log.yml (AWX, every 5 minutes): the log archived, verified and copied off the host between
    # backups, without a dump; a second run with nothing written closes no file and copies nothing.
    dumps_before = sorted(p.name for p in (tmp_path / "b").glob("mysql-sms-*.manifest.json"))
    sql(docker_client, "INSERT INTO it_binlog (v) VALUES ('E')")
    written = time.time()
    ship = ("-e", "backup_binlog_offsite_repo=" + str(offsite))
    listing = sorted(p.name for p in repo.iterdir())
    proc, report = playbook(inventory, "archive_log.yml", "--check", *ship)  # says it would close the file, no more
    assert proc.returncode == 0, failures(report) or proc.stderr[-2000:]
    would = task_result(report, "Archive the binary log up to now")
    assert would["changed"] and "would close" in would["message"] and not would["flushed"], would
    assert sorted(p.name for p in repo.iterdir()) == listing
    proc, report = playbook(inventory, "archive_log.yml", *ship)
    assert proc.returncode == 0, failures(report) or proc.stderr[-2000:]
    assert ROOT_PASSWORD not in proc.stdout and KEY not in proc.stdout
    shipped = task_result(report, "Archive the binary log up to now")
    assert shipped["flushed"] and len(shipped["copied"]) == 1, shipped
    newest = json.loads((repo / (shipped["copied"][0] + ".manifest.json")).read_text())
    assert binlog_time(newest["binlog"]["last_at"]) >= int(written) - 1, newest["binlog"]
    assert (offsite / (shipped["copied"][0] + ".manifest.json")).exists()  # on the backup host's copy too
    assert task_result(report, "Copy the archived binary log to the backup host and verify it there (rollcall_"
                               "backup_offsite_host)")["passed"]
    assert sorted(p.name for p in (tmp_path / "b").glob("mysql-sms-*.manifest.json")) == dumps_before  # no dump
    listing = sorted(p.name for p in repo.iterdir())
    proc, report = playbook(inventory, "archive_log.yml", *ship)
    assert proc.returncode == 0, failures(report) or proc.stderr[-2000:]
    idle = task_result(report, "Archive the binary log up to now")
    assert not idle["flushed"] and idle["copied"] == [] and not idle["changed"], idle
    assert "holds no change" in idle["message"], idle
    assert sorted(p.name for p in repo.iterdir()) == listing

    # Retention (binlog.retention_plan): a new dump, and the dumps' retention down to it; with no days kept, the
    # archived files before its log file go (backup.yml and archive_log.yml apply it after each archive), what is
    # left verifies and still recovers.
    before = sorted(p.name[:-len(".manifest.json")] for p in repo.glob("mariadb-bin.*.manifest.json"))
    proc, report = playbook(inventory, "backup.yml", *ship, "-e", "rollcall_pitr_binlog_keep_days=0",
                            "-e", "rollcall_backup_keep_last=1", "-e", "rollcall_backup_keep_daily=0",
                            "-e", "rollcall_backup_keep_weekly=0", "-e", "rollcall_backup_keep_monthly=0")
    assert proc.returncode == 0, failures(report) or proc.stderr[-2000:]
    kept = sorted((tmp_path / "b").glob("mysql-sms-*.manifest.json"))
    assert len(kept) == 1, kept
    new_base = json.loads(kept[0].read_text())["mysql"]["binlog"]["file"]
    pruned = task_result(report, "Apply the archive's retention (the files no kept dump can replay from)")
    expected = [n for n in before if n < new_base]
    assert expected and pruned["deleted"] == expected and pruned["changed"], (pruned, before, new_base)
    after = sorted(p.name[:-len(".manifest.json")] for p in repo.glob("mariadb-bin.*.manifest.json"))
    assert after[0] == new_base and not set(after) & set(expected), after
    assert not [p for p in repo.iterdir() if p.name.split(".binlog")[0] in expected]  # data files gone too
    proc, report = run_tasks(tmp_path, inventory, "after_prune.yml", [
        {"name": "Info", "rollcall.ops.binlog": dict(common, action="info")},
        {"name": "Verify", "rollcall.ops.binlog": dict(common, action="verify")}])
    assert proc.returncode == 0, failures(report) or proc.stderr[-2000:]
    assert results(report, "Info")["window"] and results(report, "Verify")["passed"]

    # A gap: two more files archived, the first of them removed from the repository; then a wrong key.
    for value in ("C", "D"):
        sql(docker_client, "INSERT INTO it_binlog (v) VALUES ('%s')" % value)
        proc, report = run_tasks(tmp_path, inventory, "archive.yml", [
            {"name": "Archive", "rollcall.ops.binlog": dict(common, action="archive")}])
        assert proc.returncode == 0, failures(report) or proc.stderr[-2000:]
    names = sorted(p.name[:-len(".manifest.json")] for p in repo.glob("mariadb-bin.*.manifest.json"))
    victim = names[-2]
    for path in repo.glob(victim + ".*"):
        os.remove(path)
    proc, report = run_tasks(tmp_path, inventory, "verify.yml", [
        {"name": "Verify", "rollcall.ops.binlog": dict(common, action="verify", fail_on_problem=False)},
        {"name": "Wrong key", "rollcall.ops.binlog": dict(common, action="verify", fail_on_problem=False,
                                                          encryption_key="ef" * 32)},
        {"name": "Restore past the gap", "rollcall.ops.binlog": dict(common, action="restore", archive_first=False),
         "failed_when": False},
    ])
    assert proc.returncode == 0, failures(report) or proc.stderr[-2000:]
    verified = results(report, "Verify")
    assert not verified["passed"] and "binary log gap: %s missing" % victim in verified["message"], verified
    wrong = results(report, "Wrong key")
    assert not wrong["passed"] and "wrong key" in wrong["message"], wrong
    past = results(report, "Restore past the gap")
    assert "%s is missing from the repository" % victim in past["msg"], past
    with pytest.raises(docker.errors.NotFound):
        docker_client.containers.get(SCRATCH)  # refused before a scratch instance was made

    # A key rotation (rotate_backup_key.yml): a new current key, the old one in the ring. The files archived before
    # keep their key and read with the ring; a file archived now is written with the new key. Before, the module
    # took one key: after a rotation every archive_log.yml, backup.yml and restore.yml -e to_time failed with
    # "wrong key" for the older files.
    new_key = "ab" * 32
    rotated = dict(common, encryption_key=new_key, encryption_keys=[KEY])
    sql(docker_client, "INSERT INTO it_binlog (v) VALUES ('E')")
    proc, report = run_tasks(tmp_path, inventory, "rotated.yml", [
        {"name": "Archive", "rollcall.ops.binlog": dict(rotated, action="archive")},
        {"name": "Verify with the ring", "rollcall.ops.binlog": dict(rotated, action="verify", fail_on_problem=False)},
        {"name": "Verify without", "rollcall.ops.binlog": dict(common, action="verify", encryption_key=new_key,
                                                               fail_on_problem=False)},
        {"name": "Info", "rollcall.ops.binlog": dict(rotated, action="info")}])
    assert proc.returncode == 0, failures(report) or proc.stderr[-2000:]
    ring = results(report, "Verify with the ring")
    assert ring["passed"], ring  # (the archive run also copied again the file the gap test removed)
    assert "wrong key" in results(report, "Verify without")["message"]
    by_key = results(report, "Info")["key_ids"]
    old_id, new_id = (artifact.key_id(artifact.load_key(k)) for k in (KEY, new_key))
    assert sorted(by_key) == sorted([old_id, new_id]), by_key
    assert max(sum(by_key.values(), [])) in by_key[new_id] and "mariadb-bin.000001" in by_key[old_id], by_key
    assert KEY not in proc.stdout and new_key not in proc.stdout
    print("binlog: backup, restores and verify in %.1f s" % (time.time() - started))


def test_a_new_server_on_the_lost_ones_archive_is_refused(stack, docker_client):
    """After the tests above archived the stack's log (test_pitr.refuses_a_new_server_on)."""
    tmp_path, inventory = stack
    repo = tmp_path / "b" / "pitr" / PROJECT
    assert list(repo.glob("mariadb-bin.*.manifest.json")), "the stack's archived log"
    refuses_a_new_server_on(tmp_path, inventory, docker_client, repo, PROJECT + "-new", "MariaDB server")


def test_the_log_of_a_crashed_server_is_archived_and_verifies(stack, docker_client):
    """The file a killed server was writing keeps its in-use flag, and the server computed its format description's
    CRC32 with that flag clear. Before, archiving it failed ("event at position 4 fails its CRC32 checksum
    (damaged); not archived") on every run after a crash, so backup.yml failed every night (seen on the demo after
    docker kill)."""
    tmp_path, inventory = stack
    sql(docker_client, "CREATE TABLE IF NOT EXISTS it_crash (v INT); INSERT INTO it_crash VALUES (1)")
    container = docker_client.containers.get(CONTAINER)
    container.kill()
    container.start()
    deadline = time.time() + 60
    while True:
        code, _ = container.exec_run(["mariadb-admin", "--protocol=TCP", "-h", "127.0.0.1", "-u", "root", "ping"],
                                     environment={"MYSQL_PWD": ROOT_PASSWORD})
        if code == 0:
            break
        assert time.time() < deadline, "the database did not come back after its kill"
        time.sleep(0.5)
    repo = tmp_path / "crash-repo"
    common = {"container": CONTAINER, "repo": str(repo), "login_password": ROOT_PASSWORD, "encryption_key": KEY}
    proc, report = run_tasks(tmp_path, inventory, "archive_crashed.yml", [
        {"name": "Archive", "rollcall.ops.binlog": dict(common, action="archive")},
        {"name": "Verify", "rollcall.ops.binlog": dict(common, action="verify")}])
    assert proc.returncode == 0, failures(report) or proc.stderr[-2000:]
    archived = results(report, "Archive")
    assert archived["changed"] and archived["copied"], archived
    crashed = [json.loads(p.read_text())["binlog"] for p in repo.glob("mariadb-bin.*.manifest.json")]
    assert [b for b in crashed if b["next_file"] is None], "the killed server's file (no rotation) is archived"
    assert results(report, "Verify")["passed"]


def test_two_archive_runs_at_once_keep_every_file_whole(stack, docker_client):
    """archive_log.yml on its 5-minute schedule beside a manual run (or backup.yml): both copied the same log file,
    one deleted the other's data file as an interrupted run's leftover after the other wrote its manifest, and every
    later run failed ("cannot read mariadb-bin.000006.binlog.gz.enc (No such file or directory)"; by hand on a
    MariaDB copy of the demo). The repository's lock serialises them; a manifest left without its data file is
    archived again from the server."""
    tmp_path, inventory = stack
    repo = tmp_path / "race-repo"
    common = {"container": CONTAINER, "repo": str(repo), "login_password": ROOT_PASSWORD, "encryption_key": KEY}
    play = tmp_path / "archive_race.yml"
    play.write_text(yaml.safe_dump([{"name": "race", "hosts": "db", "gather_facts": False, "tasks": [
        {"name": "Archive", "rollcall.ops.binlog": dict(common, action="archive")}]}]))
    for round_ in range(3):
        sql(docker_client, "CREATE TABLE IF NOT EXISTS it_race (v INT); INSERT INTO it_race VALUES (%d)" % round_)
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            runs = list(pool.map(lambda _: playbook(inventory, str(play)), range(2)))
        for proc, report in runs:
            assert proc.returncode == 0, failures(report) or proc.stderr[-2000:]
    manifests = sorted(repo.glob("mariadb-bin.*.manifest.json"))
    for path in manifests:
        data = json.loads(path.read_text())["data"]["file"]
        assert (repo / data).exists(), "%s lost its data file" % path.name

    # What the race left before the lock: a manifest without its data file. The next run archives it again.
    lost = json.loads(manifests[-1].read_text())
    (repo / lost["data"]["file"]).unlink()
    proc, report = run_tasks(tmp_path, inventory, "archive_again.yml", [
        {"name": "Archive", "rollcall.ops.binlog": dict(common, action="archive", flush=False)},
        {"name": "Verify", "rollcall.ops.binlog": dict(common, action="verify")}])
    assert proc.returncode == 0, failures(report) or proc.stderr[-2000:]
    again = results(report, "Archive")
    assert again["recopied"] == [lost["binlog"]["file"]] and "archived again" in again["message"], again
    assert results(report, "Verify")["passed"]
