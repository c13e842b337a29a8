#!/usr/bin/python
# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: pitr
short_description: PostgreSQL point-in-time recovery with pgBackRest (archiving, backups, verify, restore)
version_added: "0.9.0"
description:
  - Drives pgBackRest in the PostgreSQL container of a stack whose database runs with C(rollcall_pitr=true)
    (roles/database mounts the configuration at C(/etc/pgbackrest) and the repository at C(/var/lib/pgbackrest)).
  - The decisions (backup type, recoverable window, restore target, verify judgement) are in
    C(plugins/module_utils/pitr.py); every command runs with C(docker exec) as an argv list, as the C(postgres)
    user. The repository's cipher pass is only in the mounted configuration file.
  - C(action=restore) never touches the live data directory. It restores into a scratch instance (a new
    container from the live container's image, on a new volume, without network), starts it, waits until
    recovery reached the target and promoted, and checks it (replayed point, row counts of every table, an
    optional query). The scratch instance is left running for the next step; C(action=drop_scratch) removes it.
author:
  - Rollcall contributors (@rollcall)
options:
  action:
    description:
      - C(configure) sets archive_mode, archive_command, archive_timeout and wal_level with ALTER SYSTEM (or
        resets them with O(enabled=false)) and says whether the server must restart (RV(restart_needed)).
      - C(state) reads whether the server archives WAL to the repository (RV(archiving)) and changes nothing; a
        run that does not set C(rollcall_pitr) keeps what the stack runs (roles/database tasks/pitr_state.yml).
        When the container does not run (a teardown kept the data volume), O(volume)'s postgresql.auto.conf is
        read instead, by a one-off container of O(image) without network.
      - C(stanza) creates the stanza when it does not exist (idempotent).
      - C(check) runs C(pgbackrest check) (configuration, and one WAL segment archived now).
      - C(backup) takes a physical backup; C(info) reports backups and the recoverable window; C(verify) reads
        every file of the repository and looks for WAL gaps; C(restore) restores into a scratch instance;
        C(drop_scratch) removes the scratch instance and its volume.
    type: str
    required: true
    choices: [configure, state, stanza, check, backup, info, verify, restore, drop_scratch]
  container:
    description:
      - The live PostgreSQL container.
    type: str
    required: true
  docker_host:
    description:
      - The Docker engine (default the local socket).
    type: str
  stanza:
    description:
      - The pgBackRest stanza.
    type: str
    default: main
  volume:
    description:
      - C(state) only; the data volume to read when O(container) does not run. A volume that does not exist is
        never created (RV(archiving) false).
    type: str
  image:
    description:
      - C(state) only; the PostgreSQL image that reads O(volume) (it must be on the host).
    type: str
    default: rollcall/postgres:15
  enabled:
    description:
      - C(configure) only; false removes our archive settings (a restart turns archiving off).
    type: bool
    default: true
  restart:
    description:
      - C(configure) only; restart the container when archive_mode or wal_level must change (the server is
        unavailable for a few seconds), and wait until it accepts connections.
    type: bool
    default: false
  archive_timeout:
    description:
      - C(configure) only; seconds after which a WAL segment is archived even when not full (the RPO).
    type: int
    default: 60
  type:
    description:
      - C(backup) only. C(auto) picks C(full) when there is none or the newest is O(full_every_days) old, C(diff)
        when the newest full or diff is O(diff_every_hours) old, else C(incr).
    type: str
    default: auto
    choices: [auto, full, diff, incr]
  full_every_days:
    description:
      - C(backup) with O(type=auto) only.
    type: int
    default: 7
  diff_every_hours:
    description:
      - C(backup) with O(type=auto) only.
    type: int
    default: 24
  process_max:
    description:
      - C(backup) and C(restore); parallel processes for compression, decryption and transfer.
    type: int
    default: 2
  compress_type:
    description:
      - C(backup) only.
    type: str
    default: lz4
    choices: [none, gz, lz4, zst, bz2]
  compress_level:
    description:
      - C(backup) only; pgBackRest's default for the type when not set.
    type: int
  to_time:
    description:
      - C(restore) only; ISO 8601 with a time zone (C(2026-12-03T05:16:33Z)). Not set or C(latest) - the newest
        archived point. Refused when outside the recoverable window (RV(window)).
    type: str
  repo_key:
    description:
      - C(backup) and C(verify); the pgBackRest repository - C(1) the local one, C(2) the backup host's (a stack
        with C(rollcall_backup_offsite_host) and C(rollcall_pitr); roles/database mounts it at
        C(/var/lib/pgbackrest-offsite) with sshfs, and pgBackRest's C(archive-push) writes every WAL segment to
        both). Each repository has its own backups (the type is chosen from that repository's) and retention.
      - C(info) reads that repository's backups and window (C(1), the default - the local one, which a restore
        reads; C(2) the backup host's); RV(info) lists every repository's status in C(repos).
    type: int
    default: 1
    choices: [1, 2]
  repo:
    description:
      - C(restore) only; C(offsite) - restore from the live cluster's repository on the backup host (its
        repository 2) instead of the local one; the window is the live cluster's (its archiver pushes every segment
        to both), the backup host's repository is verified in the scratch instance and restored from there.
      - Else restore from this repository (a host directory or a volume) instead of the live
        container's own - the repository of a cluster that is gone (after a rebuild the new cluster archives to a
        new repository; the old stanza holds another system identifier). It is mounted read-only into the scratch
        instance with the live container's configuration (the same cipher pass), read (info), verified, and the
        target checked against its backups there. The time of its last archived WAL is not known, so a time after
        its newest backup is refused; O(to_time=latest) recovers to the end of its WAL.
    type: str
  scratch:
    description:
      - C(restore) and C(drop_scratch); the scratch container's name (default C(<container>-pitr)); its volume is
        C(<scratch>-data). Refused when it exists already.
    type: str
  database:
    description:
      - C(restore) only; the database whose tables are counted and where O(query) runs.
    type: str
    default: postgres
  query:
    description:
      - C(restore) only; a query run in the scratch instance, its output returned as RV(query_result).
    type: str
  keep_failed:
    description:
      - C(restore) only; keep a scratch instance whose restore failed, to look at it.
    type: bool
    default: false
  fail_on_problem:
    description:
      - C(check), C(verify) and C(restore); fail the task when the result did not pass (else report it).
    type: bool
    default: true
notes:
  - Supports check mode; C(restore) in check mode validates the target and reports RV(plan).
  - C(changed) is true for C(configure) that altered a setting, C(stanza) that created one, C(backup), C(restore)
    and C(drop_scratch) that removed something; never for C(state), C(check), C(info), C(verify).
"""

EXAMPLES = r"""
- name: Archive WAL (the role restarts the server when restart_needed)
  rollcall.ops.pitr:
    action: configure
    container: sms-db
  register: pitr_settings

- name: Is point-in-time recovery on for this stack? (reads only)
  rollcall.ops.pitr:
    action: state
    container: sms-db
  register: pitr_state

- name: Create the stanza (once)
  rollcall.ops.pitr:
    action: stanza
    container: sms-db

- name: Nightly physical backup, type by age
  rollcall.ops.pitr:
    action: backup
    container: sms-db
    process_max: 2
    compress_type: lz4

- name: The same backup to the backup host's repository (a stack with rollcall_backup_offsite_host)
  rollcall.ops.pitr:
    action: backup
    container: sms-db
    repo_key: 2

- name: Restore the newest point from the backup host's repository (the local one is lost)
  rollcall.ops.pitr:
    action: restore
    container: sms-db
    repo: offsite
    database: sms

- name: Restore to a time into a scratch instance and count
  rollcall.ops.pitr:
    action: restore
    container: sms-db
    to_time: "2026-12-03T05:16:33Z"
    database: sms
    query: SELECT count(*) FROM students
  register: pitr_restore
"""

RETURN = r"""
archiving:
  description: C(state); the server's settings (postgresql.auto.conf) archive WAL to the stanza's repository.
  returned: action is state
  type: bool
read_from:
  description: C(state); C(server) (the running container) or C(volume) (O(volume), the container not running).
  returned: action is state
  type: str
restart_needed:
  description: C(configure); the server must still restart for archive_mode / wal_level.
  returned: action is configure
  type: bool
restarted:
  description: C(configure); the container was restarted (O(restart=true)).
  returned: action is configure
  type: bool
settings:
  description: C(configure); what was (or would be) set and reset.
  returned: action is configure
  type: dict
info:
  description: C(info), C(backup), C(restore); the stanza's status, backups oldest first (label, type, started_at,
    finished_at, size, repo_size, archive_start, archive_stop, repo), archive_min, archive_max, newest_backup,
    repos (each repository's key, status_code and status).
  returned: when read
  type: dict
window:
  description: The recoverable window, null without a backup. earliest_at (the end of the oldest backup),
    latest_at (the newest point the repository can recover to) and latest_why, rpo_s (now minus latest),
    archiving_failing and archiving_error.
  returned: action is info or restore
  type: dict
newest_recoverable_at:
  description: C(info); the window's latest_at (null without a backup).
  returned: action is info
  type: str
backup:
  description: C(backup); the new backup (label, type, finished_at, sizes), null in check mode.
  returned: action is backup
  type: dict
repo_key:
  description: C(backup); the repository it went to (O(repo_key)).
  returned: action is backup
  type: int
repos:
  description: C(backup); the keys of the repositories pgBackRest's configuration has (C([1]), or C([1, 2]) with
    the backup host's).
  returned: action is backup
  type: list
  elements: int
backup_type:
  description: C(backup); the type taken (or that would be) and RV(why).
  returned: action is backup
  type: str
why:
  description: C(backup); why that type.
  returned: action is backup
  type: str
passed:
  description: C(check), C(verify), C(restore); whether it passed.
  returned: action is check, verify or restore
  type: bool
problems:
  description: C(verify), C(restore); what did not pass, each a sentence (WAL gaps name the missing segments).
  returned: action is verify or restore
  type: list
  elements: str
notes:
  description: C(verify); what limits recovery without failing it - a WAL gap before the newest backup (archiving
    was off for a while, and a full backup was taken since), each a sentence.
  returned: action is verify
  type: list
  elements: str
message:
  description: The result in one sentence.
  returned: always
  type: str
plan:
  description: C(restore); the steps.
  returned: action is restore
  type: list
  elements: str
target:
  description: C(restore); the recovery target (ISO 8601 UTC), null for the newest point.
  returned: action is restore
  type: str
recovered_to:
  description: C(restore); the commit time of the last transaction replayed (null when none after the backup).
  returned: action is restore and not check mode
  type: str
stopped_before:
  description:
    - C(restore) to a time; set when the recovery to the time came back without O(database) because the first
      commit after the time was the DROP DATABASE that removed it (PostgreSQL writes the removal before the commit),
      and the restore then went to just after the last transaction that ended before it (found with pg_waldump).
  returned: action is restore, when it happened
  type: str
counts:
  description: C(restore); rows of every table of O(database) in the scratch instance.
  returned: action is restore and not check mode
  type: dict
query_result:
  description: C(restore); the output of O(query) (psql unaligned, tuples only).
  returned: action is restore with a query
  type: str
scratch:
  description: C(restore); the scratch container (left running when the restore passed).
  returned: action is restore
  type: str
scratch_volume:
  description: C(restore); its volume.
  returned: action is restore
  type: str
source:
  description: C(restore); C(live) (the live container's repository), C(offsite) (the live cluster's repository
    on the backup host) or C(repository) (O(repo), another one).
  returned: action is restore
  type: str
repo:
  description: C(restore); the repository restored from when it is not the live one (O(repo), or the host path of
    the backup host's repository), else null.
  returned: action is restore
  type: str
timings:
  description: C(restore); seconds per step - scratch_container, pgbackrest_restore (repository info and verify
    too with O(repo)), start_and_recovery (the server up, WAL replayed, promoted), counts.
  returned: action is restore and not check mode
  type: dict
duration_s:
  description: C(restore); seconds from creating the scratch instance to the checks' end.
  returned: action is restore and not check mode
  type: float
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.rollcall.ops.plugins.module_utils import pitr
from ansible_collections.rollcall.ops.plugins.module_utils.runner import RunnerError

ACTIONS = ["configure", "state", "stanza", "check", "backup", "info", "verify", "restore", "drop_scratch"]


def run(module):
    p = module.params
    check_mode = module.check_mode
    scratch = p["scratch"] or "%s-pitr" % p["container"]
    scratch_volume = "%s-data" % scratch
    if p["action"] == "drop_scratch":
        from ansible_collections.rollcall.ops.plugins.module_utils import docker as dockerlib

        return dockerlib.drop_scratch(p["container"], scratch, p["docker_host"], check_mode)

    action = p["action"]
    if action == "state":
        try:
            on, read_from = pitr.PITR(p["container"], p["docker_host"], p["stanza"]).archives(), "server"
        except RunnerError:  # the container does not exist or does not run
            if not p["volume"]:
                raise
            on, read_from = pitr.volume_archives(p["volume"], p["image"], p["docker_host"], p["stanza"]), "volume"
        where = p["container"] if read_from == "server" else "the cluster in volume %s" % p["volume"]
        return dict(changed=False, archiving=on, read_from=read_from, message="%s %s WAL to pgBackRest (stanza %s)"
                    % (where, "archives" if on else "does not archive", p["stanza"]))
    tool = pitr.PITR(p["container"], p["docker_host"], p["stanza"])
    if action == "configure":
        plan = tool.configure(p["enabled"], p["archive_timeout"], check_mode)
        restarted = bool(plan["restart"] and p["restart"] and not check_mode)
        if restarted:
            tool.restart()
        changed = bool(plan["set"] or plan["reset"]) or restarted
        return dict(changed=changed, restart_needed=plan["restart"] and not restarted, restarted=restarted,
                    settings=plan, message="settings %s%s" % (
                        "changed" if changed else "as wanted", "; restarted" if restarted else
                        ("; a restart is needed" if plan["restart"] else "")))
    if action == "stanza":
        created = tool.stanza_create(check_mode)
        return dict(changed=created, message="stanza %s %s" % (p["stanza"], "created" if created else "exists"))
    if action == "check":
        result = tool.check()
        return dict(changed=False, failed=p["fail_on_problem"] and not result["passed"], **result)
    if action == "info":
        info, win = tool.status(repo_key=p["repo_key"])
        newest = win["latest_at"] if win else None
        return dict(changed=False, info=info, window=win, newest_recoverable_at=newest,
                    message="no backup yet" if win is None else "recoverable from %s to %s (RPO now %d s)" % (
                        win["earliest_at"], win["latest_at"], win["rpo_s"]))
    if action == "backup":
        result = tool.backup(p["type"], p["process_max"], p["compress_type"], p["compress_level"],
                             now=time.time(), full_every_s=p["full_every_days"] * 86400,
                             diff_every_s=p["diff_every_hours"] * 3600, check_mode=check_mode,
                             repo_key=p["repo_key"])
        where = " in the backup host's repository" if p["repo_key"] == 2 else ""
        return dict(changed=not check_mode, backup=result["backup"], backup_type=result["type"], why=result["why"],
                    repo_key=p["repo_key"], repos=result["repos"],
                    message="%s backup %s%s (%s)" % (result["type"], "would be taken" if check_mode else
                                                     result["backup"]["label"], where, result["why"]))
    if action == "verify":
        result = tool.verify(p["repo_key"])
        return dict(changed=False, failed=p["fail_on_problem"] and not result["passed"], **result)
    # restore
    result = tool.restore(p["to_time"], scratch, scratch_volume, query=p["query"], database=p["database"],
                          keep_failed=p["keep_failed"], check_mode=check_mode, repo=p["repo"],
                          process_max=p["process_max"])
    if check_mode:
        to = result["target"] or "the newest point"
        return dict(changed=False, message="would restore to %s into %s" % (to, scratch), **result)
    to = result["target"] or "the newest point"
    result["message"] = ("restored to %s in %s; recovered to %s%s" % (
        to, scratch, result["recovered_to"], " (stopped before %s)" % result["stopped_before"]
        if result.get("stopped_before") else "") if result["passed"] else "; ".join(result["problems"]))
    return dict(changed=True, failed=p["fail_on_problem"] and not result["passed"], **result)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            action=dict(type="str", required=True, choices=ACTIONS),
            container=dict(type="str", required=True),
            docker_host=dict(type="str"),
            stanza=dict(type="str", default="main"),
            volume=dict(type="str"),
            image=dict(type="str", default="rollcall/postgres:15"),
            enabled=dict(type="bool", default=True),
            archive_timeout=dict(type="int", default=60),
            restart=dict(type="bool", default=False),
            type=dict(type="str", default="auto", choices=["auto", "full", "diff", "incr"]),
            full_every_days=dict(type="int", default=7),
            diff_every_hours=dict(type="int", default=24),
            process_max=dict(type="int", default=2),
            compress_type=dict(type="str", default="lz4", choices=["none", "gz", "lz4", "zst", "bz2"]),
            compress_level=dict(type="int"),
            to_time=dict(type="str"),
            repo=dict(type="str"),
            repo_key=dict(type="int", default=1, choices=[1, 2]),
            scratch=dict(type="str"),
            database=dict(type="str", default="postgres"),
            query=dict(type="str"),
            keep_failed=dict(type="bool", default=False),
            fail_on_problem=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    try:
        result = run(module)
    except (pitr.PITRError, RunnerError) as exc:
        module.fail_json(msg=str(exc))
    if result.get("failed"):
        result.pop("failed")
        module.fail_json(msg=result.get("message") or "failed", **result)
    result.pop("failed", None)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
