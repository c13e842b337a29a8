"""Point-in-time recovery with pgBackRest (issue 14; docs/pitr.md) on a small stack of its own (rc-it-pitr: the
database only, made by roles/database with rollcall_pitr: true): row A, the time noted, row B; a restore to the
noted time into a scratch instance brings back A and not B; a time outside the window is refused; a WAL segment
removed from the repository is found by verify, with a clear message.

The test forces WAL switches (pg_switch_wal) instead of waiting for archive_timeout (60 s) to keep it short.
"""

import contextlib
import json
import os
import time
from pathlib import Path

import docker.errors
import pytest
import yaml
from test_deploy import failures, playbook, write_inventory

from ansible_collections.rollcall.ops.plugins.module_utils.docker import run_once

# ROLLCALL_IT_PITR_PROJECT: another name for ad-hoc runs beside a suite whose start-up sweep removes rc-it-*.
PROJECT = os.environ.get("ROLLCALL_IT_PITR_PROJECT", "rc-it-pitr")
CONTAINER = PROJECT + "-db"
SCRATCH = CONTAINER + "-pitr"
# images/postgres with pgBackRest; ROLLCALL_IT_PITR_IMAGE runs another build (a helper's own tag).
IMAGE = os.environ.get("ROLLCALL_IT_PITR_IMAGE", "rollcall/postgres:15")


def sql(docker_client, query, container=CONTAINER, database="sms"):
    code, output = docker_client.containers.get(container).exec_run(
        ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", database, "-c", query], user="postgres")
    assert code == 0, output
    return output.decode().strip()


def run_tasks(tmp_path, inventory, name, tasks):
    path = tmp_path / name
    path.write_text(yaml.safe_dump([{"name": name, "hosts": "db", "gather_facts": False, "tasks": tasks}]))
    return playbook(inventory, str(path))


def results(report, name):
    """The localhost result of the task called ``name``."""
    for play in report["plays"]:
        for task in play["tasks"]:
            if task["task"]["name"] == name:
                return task["hosts"]["localhost"]
    raise AssertionError("no task %r in the report" % name)


def remove(docker_client, container=None, volume=None):
    if container:  # v: its anonymous volumes too (the image's VOLUME), or each run leaves one on the engine
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.containers.get(container).remove(force=True, v=True)
    if volume:
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.volumes.get(volume).remove(force=True)


def database_stack(tmp_path_factory, docker_client, project, label, **settings):
    """A stack of its own with the database only, made by roles/database (rollcall_pitr among ``settings``):
    yields (tmp_path, inventory); the containers, volumes and network go at the end. test_pitr_mariadb.py too."""
    container, scratch = project + "-db", project + "-db-pitr"
    tmp_path = tmp_path_factory.mktemp(label)
    inventory = write_inventory(tmp_path, rollcall_project=project, rollcall_environment="test",
                                rollcall_state_dir=str(tmp_path / "state"), rollcall_backup_dir=str(tmp_path / "b"),
                                **settings)
    started = time.time()
    try:
        proc, report = run_tasks(tmp_path, inventory, "database.yml", [
            {"name": "The database with point-in-time recovery",
             "ansible.builtin.include_role": {"name": "rollcall.ops.database"}}])
        assert proc.returncode == 0, failures(report) or proc.stderr[-2000:]
        print("%s: the database stack in %.1f s" % (label, time.time() - started))
        yield tmp_path, inventory
    finally:
        remove(docker_client, scratch, scratch + "-data")
        remove(docker_client, container, project + "-dbdata")
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.networks.get(project + "-net").remove()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, docker_client, require_image):
    require_image(IMAGE)
    _, has_tool = run_once(docker_client, IMAGE, ["sh", "-c", "command -v pgbackrest || true"])
    assert has_tool.strip(), "%s has no pgbackrest: rebuild it (make images) from images/postgres/Dockerfile" % IMAGE
    yield from database_stack(tmp_path_factory, docker_client, PROJECT, "pitr", rollcall_pitr=True,
                              rollcall_pitr_cipher_pass="it-pitr-cipher-pass-never-printed", database_image=IMAGE)


def archived_after(docker_client, moment, timeout=30):
    """Wait until the server archived a segment after ``moment`` (epoch)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        last = sql(docker_client, "SELECT coalesce(extract(epoch FROM last_archived_time), 0) FROM pg_stat_archiver")
        # an exec whose output the engine lost reads as '' (seen once in CI, with exit code 0): ask again
        if last and float(last) > moment:
            return
        time.sleep(0.5)
    raise AssertionError("no WAL segment archived within %d s" % timeout)


def without_pitr_setting(inventory):
    """A copy of the stack's inventory without rollcall_pitr: a run of someone who did not pass it again."""
    data = yaml.safe_load(Path(inventory).read_text())
    data["all"]["vars"].pop("rollcall_pitr")
    path = Path(str(inventory) + ".plain.yml")
    path.write_text(yaml.safe_dump(data))
    return str(path)


def role_run(tmp_path, inventory, name, role, **include):
    """One play on the db host that includes ``role`` (include: tasks_from and the like)."""
    return run_tasks(tmp_path, inventory, name, [
        {"name": "Run %s" % role, "ansible.builtin.include_role": dict({"name": role}, **include)}])


def said(report, name):
    """The messages of the tasks called ``name`` (without their role's prefix) that ran."""
    return [result.get("msg") for play in report["plays"] for task in play["tasks"]
            for result in task["hosts"].values()
            if task["task"]["name"].split(" : ", 1)[-1] == name and not result.get("skipped")]


def refuses_a_new_server_on(tmp_path, inventory, docker_client, repo, project, engine_words):
    """A deploy whose data volume is not there starts a new server; with rollcall_pitr_repo naming a repository
    that holds an archive (the lost server's) roles/database refuses before creating anything, saying the way on.
    Before: PostgreSQL failed later with pgBackRest's "[028] backup and archive info files exist but do not match the
    database" (the database up, no role matrix, the next backup "password authentication failed"); MariaDB started,
    and every backup.yml failed after its dump ("is not the one archived under that name"). test_pitr_mariadb.py
    too."""
    data = yaml.safe_load(Path(inventory).read_text())
    data["all"]["vars"].update(rollcall_project=project, rollcall_pitr_repo=str(repo))
    rebuilt = Path(str(inventory) + ".rebuilt.yml")
    rebuilt.write_text(yaml.safe_dump(data))
    try:
        proc, report = role_run(tmp_path, str(rebuilt), "database_rebuilt.yml", "rollcall.ops.database")
        assert proc.returncode != 0, "a new server was started on the lost one's archive"
        [(_task, msg)] = failures(report)
        assert msg.startswith("Nothing was changed: the database volume %s-dbdata does not exist, so this deploy "
                              "would start a new %s, but the point-in-time repository %s holds the archive"
                              % (project, engine_words, repo)), msg
        assert "rollcall_pitr_repo to a new directory" in msg and "-e pitr_from_repo=%s" % repo in msg, msg
        for kind, name in ((docker_client.containers, project + "-db"), (docker_client.volumes, project + "-dbdata"),
                           (docker_client.networks, project + "-net")):
            with pytest.raises(docker.errors.NotFound):
                kind.get(name)
    finally:
        remove(docker_client, project + "-db", project + "-dbdata")
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.networks.get(project + "-net").remove()


def test_a_new_cluster_on_the_lost_ones_repository_is_refused(stack, docker_client):
    tmp_path, inventory = stack
    repo = tmp_path / "b" / "pitr" / PROJECT
    assert (repo / "archive" / "main" / "archive.info").exists(), "the stack's stanza"
    refuses_a_new_server_on(tmp_path, inventory, docker_client, repo, PROJECT + "-new", "PostgreSQL cluster")


def test_a_new_cluster_on_an_existing_volume_is_not_archived_into_the_lost_ones_repository(stack, docker_client):
    """The volume is there (a stack rebuilt without point-in-time recovery after a teardown with volumes: make demo),
    then a deploy with rollcall_pitr: the deploy turned archiving on (ALTER SYSTEM, a restart) and failed with
    pgBackRest's "[028] backup and archive info files exist but do not match the database", leaving a server whose
    every WAL segment failed to archive (seen on the demo). Now it refuses before the settings change."""
    tmp_path, inventory = stack
    project = PROJECT + "-again"
    repo = tmp_path / "b" / "pitr" / PROJECT
    data = yaml.safe_load(Path(inventory).read_text())
    data["all"]["vars"].update(rollcall_project=project, rollcall_pitr_repo=str(repo))
    again = Path(str(inventory) + ".again.yml")
    again.write_text(yaml.safe_dump(data))
    docker_client.volumes.create(project + "-dbdata")  # an existing volume: the server in it goes on
    try:
        proc, report = role_run(tmp_path, str(again), "database_again_repo.yml", "rollcall.ops.database")
        assert proc.returncode != 0, "archiving was turned on into another cluster's repository"
        [(_task, msg)] = failures(report)
        assert msg.startswith("Point-in-time recovery was not turned on for %s-db: the repository "
                              "(rollcall_pitr_repo) holds the archive of another PostgreSQL cluster" % project), msg
        assert "rollcall_pitr_repo to a new directory" in msg and "pitr_from_repo" in msg, msg
        assert sql(docker_client, "SHOW archive_mode", container=project + "-db") == "off", "no setting changed"
    finally:
        remove(docker_client, project + "-db", project + "-dbdata")
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.networks.get(project + "-net").remove()


def test_a_run_without_rollcall_pitr_keeps_it_on(stack, docker_client):
    """After `deploy.yml -e rollcall_pitr=true`, a run that does not say rollcall_pitr again (a plain deploy.yml,
    backup.yml, restore.yml -e to_time) keeps what the stack runs: the database keeps archiving without a restart,
    the backup role knows point-in-time recovery is on, and the run says why. Before, backup.yml took no physical
    backup and restore.yml -e to_time said recovery was off."""
    tmp_path, inventory = stack
    plain = without_pitr_setting(inventory)
    started = docker_client.containers.get(CONTAINER).attrs["State"]["StartedAt"]
    proc, report = role_run(tmp_path, plain, "database_plain.yml", "rollcall.ops.database")
    assert proc.returncode == 0, failures(report) or proc.stderr[-2000:]
    assert sql(docker_client, "SHOW archive_mode") == "on"
    assert docker_client.containers.get(CONTAINER).attrs["State"]["StartedAt"] == started, "no restart"
    assert said(report, "Say that point-in-time recovery stays on") == [
        "Point-in-time recovery stays on for %s: its database archives WAL to pgBackRest and rollcall_pitr is not set "
        "(put rollcall_pitr: true in the inventory; -e rollcall_pitr=false turns it off, docs/pitr.md)." % CONTAINER]
    proc, report = role_run(tmp_path, plain, "archive_plain.yml", "rollcall.ops.backup", tasks_from="archive_log")
    assert proc.returncode == 0, failures(report) or proc.stderr[-2000:]
    [why] = said(report, "Say why there is nothing to archive here")
    assert why.startswith("Nothing to do on localhost: PostgreSQL archives its WAL as it is written"), why

    # rollcall_pitr: false given to a backup while the database archives (only a deploy turns it off): the dump is
    # taken, no physical backup, and the run says so (before: without a word, and pgBackRest's retention never ran).
    data = yaml.safe_load(Path(plain).read_text())
    data["all"]["vars"].update(rollcall_pitr=False, rollcall_backup_uploads=False,
                               rollcall_backup_verify_level="checksum")
    off = Path(str(inventory) + ".backup-off.yml")
    off.write_text(yaml.safe_dump(data))
    proc, report = role_run(tmp_path, str(off), "backup_off.yml", "rollcall.ops.backup")
    assert proc.returncode == 0, failures(report) or proc.stderr[-2000:]
    [msg] = said(report, "Say that no physical backup was taken while the database archives")
    assert msg.startswith("rollcall_pitr is false, but %s still archives WAL to pgBackRest" % CONTAINER), msg
    assert said(report, "Take the physical backup for point-in-time recovery") == []
    assert sql(docker_client, "SHOW archive_mode") == "on", "a backup never turns archiving off"
    # Check mode plans a backup of a stack not made yet (dr_drill.yml --check, for its scratch stack): that question
    # has no container to ask and says nothing; it failed the whole check run before ("container ... does not exist").
    data["all"]["vars"].update(rollcall_project=PROJECT + "-none", rollcall_backup_dir=str(tmp_path / "b-none"))
    none = Path(str(inventory) + ".backup-none.yml")
    none.write_text(yaml.safe_dump(data))
    proc, report = playbook(str(none), str(tmp_path / "backup_off.yml"), "--check")
    assert proc.returncode == 0, failures(report) or proc.stderr[-2000:]
    assert said(report, "Say that no physical backup was taken while the database archives") == []

    # The container removed, the data volume kept (teardown.yml without teardown_volumes), then a deploy without
    # the setting: the volume's settings say it archives. Before, the cluster came back without pgBackRest's
    # configuration and repository mounted, its archive_command failed on every segment and pg_wal grew.
    docker_client.containers.get(CONTAINER).remove(force=True)
    proc, report = role_run(tmp_path, plain, "database_again.yml", "rollcall.ops.database")
    assert proc.returncode == 0, failures(report) or proc.stderr[-2000:]
    assert said(report, "Say that point-in-time recovery stays on"), "the volume's settings were read"
    mounts = [m["Destination"] for m in docker_client.containers.get(CONTAINER).attrs["Mounts"]]
    assert "/var/lib/pgbackrest" in mounts and "/etc/pgbackrest" in mounts, mounts
    moment = time.time() - 1
    sql(docker_client, "SELECT pg_current_xact_id()")  # something to archive
    sql(docker_client, "SELECT pg_switch_wal()")
    archived_after(docker_client, moment)


def test_the_repositorys_cipher_pass_never_changes(stack, docker_client):
    """pgBackRest cannot change a repository's cipher pass. An inventory that gives none derives one from
    rollcall_backup_key; after the key is rotated that is another pass, and before, the next deploy wrote it into the
    configuration: WAL stopped archiving and the repository could not be read. Now the pass the configuration holds
    is kept; one given explicitly that is not it is refused before anything changes."""
    tmp_path, inventory = stack
    conf = tmp_path / "state" / PROJECT / "pgbackrest" / "pgbackrest.conf"
    before = conf.read_text()
    data = yaml.safe_load(Path(inventory).read_text())
    data["all"]["vars"].pop("rollcall_pitr_cipher_pass")
    data["all"]["vars"]["rollcall_backup_key"] = "ef" * 32  # a rotated key: the pass derived from it differs
    derived = Path(str(inventory) + ".derived.yml")
    derived.write_text(yaml.safe_dump(data))
    proc, report = role_run(tmp_path, str(derived), "database_derived.yml", "rollcall.ops.database")
    assert proc.returncode == 0, failures(report) or proc.stderr[-2000:]
    assert conf.read_text() == before, "the configuration kept the repository's pass"
    moment = time.time() - 1
    sql(docker_client, "SELECT pg_current_xact_id()")
    sql(docker_client, "SELECT pg_switch_wal()")
    archived_after(docker_client, moment)

    data["all"]["vars"]["rollcall_pitr_cipher_pass"] = "another-cipher-pass-never-printed"
    other = Path(str(inventory) + ".other.yml")
    other.write_text(yaml.safe_dump(data))
    proc, report = role_run(tmp_path, str(other), "database_other.yml", "rollcall.ops.database")
    assert proc.returncode != 0
    [(_task, msg)] = failures(report)
    assert msg.startswith("rollcall_pitr_cipher_pass is not the pass the point-in-time repository of %s was made "
                          "with" % PROJECT) and "Nothing was changed" in msg, msg
    assert conf.read_text() == before
    assert "another-cipher-pass-never-printed" not in proc.stdout + proc.stderr


def database_with_a_row(docker_client, database, value):
    """A new database whose table kept holds ``value``; returns the time noted a moment after it was written."""
    sql(docker_client, "CREATE DATABASE %s" % database)
    sql(docker_client, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('%s')" % value, database=database)
    time.sleep(1.2)
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time()))


def restore_task(name, to_time, database, query=None):
    """A task of rollcall.ops.pitr action=restore into the scratch instance (``query`` run there when given)."""
    args = {"container": CONTAINER, "action": "restore", "to_time": to_time, "database": database}
    return {"name": name, "rollcall.ops.pitr": dict(args, query=query) if query else args}


def drop_scratch_task(name):
    return {"name": name, "rollcall.ops.pitr": {"container": CONTAINER, "action": "drop_scratch"}}


def test_restore_to_a_time_just_before_a_drop_database_brings_the_database_back(stack, docker_client):
    """The 3 a.m. case: someone ran DROP DATABASE on a quiet server, the restore goes to a moment before it. The
    first commit after that moment is the DROP's, and PostgreSQL writes the database's removal (and its invalid
    mark) to the WAL before that commit, so a recovery to the time replayed the removal: the restore failed with
    "cannot connect to invalid database" (found on a copy of the demo). It now goes to just before the DROP's first
    WAL record (pg_waldump on the archived segments) and the database comes back with its rows."""
    tmp_path, inventory = stack
    noted = database_with_a_row(docker_client, "it_dropped", "before the drop")
    time.sleep(1.2)
    sql(docker_client, "DROP DATABASE it_dropped")  # nothing else commits here: the DROP is the next commit
    time.sleep(1.2)
    after = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time()))
    proc, report = run_tasks(tmp_path, inventory, "restore_dropped.yml", [
        restore_task("Restore to before the drop", noted, "it_dropped", query="SELECT string_agg(v, ',') FROM kept"),
        drop_scratch_task("Drop the first scratch instance"),
        dict(restore_task("Restore to after the drop", after, "it_dropped"), failed_when=False),
        drop_scratch_task("Drop the scratch instance")])
    assert proc.returncode == 0, failures(report) or proc.stderr[-2000:]
    restored = results(report, "Restore to before the drop")
    assert restored["passed"] and restored["query_result"] == "before the drop", restored
    assert restored["stopped_before"].startswith("WAL position ") and "that dropped database it_dropped begins" in (
        restored["stopped_before"]), restored
    assert "(stopped before WAL position" in restored["message"], restored["message"]
    assert restored["recovered_to"] <= noted.replace("Z", ""), restored  # nothing after the target replayed
    late = results(report, "Restore to after the drop")
    assert late["msg"].startswith("database it_dropped does not exist in the cluster recovered to %s: it was "
                                  "dropped" % after), late  # before: psql's "database ... does not exist"
    assert "it_dropped" not in sql(docker_client, "SELECT string_agg(datname, ',') FROM pg_database")


def test_with_no_commit_in_the_segments_before_the_drop_the_restore_stops_before_its_invalid_mark(stack,
                                                                                                    docker_client):
    """The same case after a quiet spell: checkpoints and WAL switches, no transaction, between the last commit and
    the DROP, so the two archived segments read around the stop hold no transaction end. The restore took the DROP
    transaction's first record then, which comes after the invalid mark: the database came back invalid again. It
    now stops just before the mark (the last in-place update of pg_database)."""
    tmp_path, inventory = stack
    noted = database_with_a_row(docker_client, "it_quiet", "before the quiet drop")
    for _ in range(2):  # two segments without a commit: a checkpoint's records, then a switch
        sql(docker_client, "CHECKPOINT")
        sql(docker_client, "SELECT pg_switch_wal()")
    sql(docker_client, "CHECKPOINT")
    time.sleep(1.2)
    sql(docker_client, "DROP DATABASE it_quiet")
    sql(docker_client, "SELECT pg_switch_wal()")  # archive the DROP's segment
    proc, report = run_tasks(tmp_path, inventory, "restore_quiet.yml", [
        restore_task("Restore to before the drop", noted, "it_quiet", query="SELECT string_agg(v, ',') FROM kept"),
        drop_scratch_task("Drop the scratch instance")])
    assert proc.returncode == 0, failures(report) or proc.stderr[-2000:]
    restored = results(report, "Restore to before the drop")
    assert restored["passed"] and restored["query_result"] == "before the quiet drop", restored


def test_restore_to_a_time_brings_back_a_not_b_and_verify_finds_a_gap(stack, docker_client):
    tmp_path, inventory = stack
    started = time.time()
    conf = tmp_path / "state" / PROJECT / "pgbackrest" / "pgbackrest.conf"
    assert oct(conf.stat().st_mode & 0o777) == "0o600"
    inspect = docker_client.api.inspect_container(CONTAINER)
    assert "it-pitr-cipher-pass" not in json.dumps(inspect["Config"]) and "it-pitr-cipher-pass" not in json.dumps(
        sql(docker_client, "SHOW archive_command"))

    sql(docker_client, "CREATE TABLE it_pitr (v text); INSERT INTO it_pitr VALUES ('A')")
    time.sleep(1)
    noted = sql(docker_client, "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")
    time.sleep(1)
    sql(docker_client, "INSERT INTO it_pitr VALUES ('B')")
    switched = time.time()
    sql(docker_client, "SELECT pg_switch_wal()")
    archived_after(docker_client, switched)

    common = {"container": CONTAINER}
    proc, report = run_tasks(tmp_path, inventory, "restore.yml", [
        {"name": "Too early", "rollcall.ops.pitr": dict(common, action="restore", to_time="2001-01-01T00:00:00Z"),
         "check_mode": True, "register": "early", "failed_when": False},
        {"name": "Restore to the noted time", "register": "restored",
         "rollcall.ops.pitr": dict(common, action="restore", to_time=noted, database="sms",
                                   query="SELECT string_agg(v, ',' ORDER BY v) FROM it_pitr")},
        {"name": "Info", "rollcall.ops.pitr": dict(common, action="info")},
        {"name": "Backup info", "rollcall.ops.backup_info": {"directory": str(tmp_path / "b"),
                                                             "pitr_container": CONTAINER}},
    ])
    assert proc.returncode == 0, failures(report) or proc.stderr[-2000:]
    early = results(report, "Too early")
    assert "before the recoverable window" in early["msg"], early
    restored = results(report, "Restore to the noted time")
    assert restored["passed"] and restored["changed"], restored
    assert restored["query_result"] == "A", restored  # A is back, B is not
    assert restored["counts"]["public.it_pitr"] == 1
    info = results(report, "Info")
    assert info["window"]["latest"] >= switched - 1 and info["info"]["newest_backup"]["type"] == "full", info
    newest = results(report, "Backup info")
    assert newest["newest_recoverable_at"] == info["window"]["latest_at"] and newest["pitr"]["newest_backup"], newest
    # the live database is untouched
    assert sql(docker_client, "SELECT string_agg(v, ',' ORDER BY v) FROM it_pitr") == "A,B"
    scratch = docker_client.api.inspect_container(SCRATCH)
    assert scratch["HostConfig"]["NetworkMode"] == "none"
    assert all(m["RW"] is False for m in scratch["Mounts"] if m["Destination"] in ("/etc/pgbackrest",
                                                                                   "/var/lib/pgbackrest"))

    # A gap: two more segments archived, the first of them removed from the repository.
    for _ in range(2):
        sql(docker_client, "INSERT INTO it_pitr VALUES ('C'); SELECT pg_switch_wal()")
        archived_after(docker_client, time.time() - 0.2)
    segments = sorted(p for p in (tmp_path / "b" / "pitr" / PROJECT / "archive" / "main").rglob("0000*")
                      if ".backup" not in p.name and not p.name.endswith(".history"))
    victim = segments[-2]
    os.remove(victim)
    proc, report = run_tasks(tmp_path, inventory, "verify.yml", [
        {"name": "Verify", "rollcall.ops.pitr": dict(common, action="verify", fail_on_problem=False)},
        {"name": "Drop the scratch instance", "rollcall.ops.pitr": dict(common, action="drop_scratch")},
    ])
    assert proc.returncode == 0, failures(report) or proc.stderr[-2000:]
    verified = results(report, "Verify")
    assert not verified["passed"], verified
    assert "WAL gap" in verified["message"] and victim.name[:24] in verified["message"], verified["message"]
    assert results(report, "Drop the scratch instance")["changed"]
    print("pitr: restore and verify in %.1f s" % (time.time() - started))


def test_turning_it_off_and_on_again_says_so_and_starts_recovery_after_the_gap(stack, docker_client):
    """rollcall_pitr: false on a stack that archives: the settings are reset, the server restarts, and the run says
    so (before: only "changed"); a later run that does not set rollcall_pitr then keeps it off. Last in this file:
    the stack no longer archives afterwards."""
    tmp_path, inventory = stack
    plain = without_pitr_setting(inventory)
    off = Path(str(inventory) + ".off.yml")
    data = yaml.safe_load(Path(plain).read_text())
    data["all"]["vars"]["rollcall_pitr"] = False
    off.write_text(yaml.safe_dump(data))
    proc, report = role_run(tmp_path, str(off), "database_off.yml", "rollcall.ops.database")
    assert proc.returncode == 0, failures(report) or proc.stderr[-2000:]
    [msg] = said(report, "Say that point-in-time recovery was turned on or off")
    assert msg.startswith("Turned point-in-time recovery off for %s: WAL is no longer archived; the repository "
                          % CONTAINER) and msg.endswith("; the server restarted."), msg
    assert sql(docker_client, "SHOW archive_mode") == "off"
    proc, report = role_run(tmp_path, plain, "database_plain_off.yml", "rollcall.ops.database")
    assert proc.returncode == 0, failures(report) or proc.stderr[-2000:]
    assert said(report, "Say that point-in-time recovery stays on") == []
    assert said(report, "Say that point-in-time recovery was turned on or off") == []
    assert sql(docker_client, "SHOW archive_mode") == "off"

    # Segments written while it is off never reach the repository. Turned on again, the deploy takes a full backup
    # (before: none, as one existed, and every verify - so every backup.yml - failed on the gap until retention
    # removed the older backups); verify passes and notes the gap.
    for _ in range(2):
        sql(docker_client, "SELECT pg_current_xact_id()")
        sql(docker_client, "SELECT pg_switch_wal()")
    proc, report = role_run(tmp_path, inventory, "database_on_again.yml", "rollcall.ops.database")
    assert proc.returncode == 0, failures(report) or proc.stderr[-2000:]
    [msg] = said(report, "Say that point-in-time recovery was turned on or off")
    assert msg.startswith("Turned point-in-time recovery on for %s" % CONTAINER), msg
    assert said(report, "Take a full backup (recovery starts from one)"), "a full backup after the gap"
    proc, report = run_tasks(tmp_path, inventory, "verify_again.yml", [
        {"name": "Verify", "rollcall.ops.pitr": {"action": "verify", "container": CONTAINER}}])
    assert proc.returncode == 0, failures(report) or proc.stderr[-2000:]
    verified = results(report, "Verify")
    assert verified["passed"] and [n for n in verified["notes"] if n.startswith("WAL gap in archive")], verified


def test_a_scratch_instance_already_there_is_left_alone_and_explained(docker_client, require_image):
    """A restore to a time meeting a scratch instance of the same name: another restore to a time using it right
    now (two operators, a restore beside a DR drill), or one a stopped run left. Before, the refusal said only
    "a container named X already exists; remove it", which pulled it from under the other run when followed. It is
    left alone, its age said, and what removes it once no run uses it."""
    from ansible_collections.rollcall.ops.plugins.module_utils import docker as dockerlib
    from ansible_collections.rollcall.ops.plugins.module_utils.runner import RunnerError

    require_image(IMAGE)
    scratch = "rc-it-scratch-%d-db-pitr" % os.getpid()
    volume = scratch + "-data"
    try:
        dockerlib.run_scratch(scratch, IMAGE, volume, "/var/lib/postgresql/data", [],
                              labels={"rollcall.pitr.of": "rc-it-scratch-db"})
        first = docker_client.containers.get(scratch).attrs
        with pytest.raises(RunnerError) as refused:
            dockerlib.run_scratch(scratch, IMAGE, volume, "/var/lib/postgresql/data", [],
                                  labels={"rollcall.pitr.of": "rc-it-scratch-db"})
        message = str(refused.value)
        assert ("the scratch instance's container %s is already there, made " % scratch) in message, message
        assert ("s ago: another restore to a time of rc-it-scratch-db may be using it now (playbooks/restore.yml "
                "-e to_time, a DR drill): wait for it to end") in message, message
        assert "docker rm -f %s; docker volume rm %s" % (scratch, volume) in message
        again = docker_client.containers.get(scratch).attrs
        assert (again["Id"], again["State"]["Running"]) == (first["Id"], True), "the other run's scratch stays"
        docker_client.containers.get(scratch).remove(force=True)  # a volume left alone is named as such
        with pytest.raises(RunnerError, match="the scratch instance's volume %s is already there" % volume):
            dockerlib.run_scratch(scratch, IMAGE, volume, "/var/lib/postgresql/data", [])
        assert dockerlib.drop_scratch("rc-it-scratch-db", scratch)["changed"]
        with pytest.raises(docker.errors.NotFound):
            docker_client.volumes.get(volume)
    finally:
        remove(docker_client, scratch, volume)
