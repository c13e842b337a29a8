#!/usr/bin/python
# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: binlog
short_description: MariaDB point-in-time recovery - archive, verify and replay the binary log
version_added: "0.9.0"
description:
  - For a MariaDB stack deployed with C(rollcall_pitr=true) (roles/database starts the server with the binary log
    on, ROW format). Our dumps record the log position of their snapshot; this module archives the log next to
    them and replays it onto a dump to reach a point in time.
  - The decisions (what to archive, gaps, the base dump, the files a target needs, the window) are in
    C(plugins/module_utils/binlog.py); SQL goes through the MySQL adapter, files through C(docker exec) argv lists.
  - C(action=archive) closes the file being written (C(FLUSH BINARY LOGS)) and copies every closed file not
    archived yet into O(repo), compressed and encrypted with the backup key like a dump, each with a signed
    manifest (size, sha256, events, first and last event times, the next file). Never overwrites an archived file.
  - C(action=restore) never touches the live database. It archives up to now, picks the newest dump finished
    before O(to_time), starts a scratch instance (a new container from the live container's image, on a new
    volume, without network), loads the dump, replays the log from the dump's position to O(to_time) (to the
    second; only O(database)'s changes) and counts the rows. The scratch instance is left running for the next
    step; C(action=drop_scratch) removes it.
author:
  - Rollcall contributors (@rollcall)
options:
  action:
    description:
      - C(archive), C(info) (the archived files and the recoverable window), C(verify) (every archived file read
        back - signature, checksum, each event's CRC32 - and the chain checked for gaps), C(mirror) (copy the
        archived files O(mirror_repo) lacks there - the backup host's repository - as they are, then verify that
        repository), C(prune) (retention - delete the archived files before the log file of the oldest dump in
        O(backup_dir) a replay can start from, once older than O(keep_days)), C(restore), C(drop_scratch).
    type: str
    required: true
    choices: [archive, info, verify, mirror, prune, restore, drop_scratch]
  container:
    description:
      - The live MariaDB container.
    type: str
    required: true
  docker_host:
    description:
      - The Docker engine (default the local socket).
    type: str
  repo:
    description:
      - The repository, a directory on the managed host (created 0700 when missing).
      - Required except for C(drop_scratch).
    type: path
  mirror_repo:
    description:
      - C(mirror) only; the other repository (the backup host's, mounted on this host with sshfs by roles/database,
        C(rollcall_pitr_offsite_repo)). Created 0700 when missing. Files are copied through a temp file and a
        rename, data file first and its manifest last, never over an existing file; a file under the same name
        with other contents is refused.
    type: path
  backup_dir:
    description:
      - C(info), C(prune) and C(restore); the directory of the dumps (the bases a replay starts from). For C(prune)
        on the backup host, its own directory of off-host copies (its retention keeps dumps longer).
    type: path
  database:
    description:
      - C(info), C(prune) and C(restore); the database recovered (its dumps, its changes in the log).
    type: str
  project:
    description:
      - C(info), C(prune) and C(restore); the stack (C(rollcall_project)). In a backup directory several stacks
        share, another stack's dump of a database with the same name is never a base to replay this log onto.
        Not set - every dump of O(database) counts (dumps that record no project always do).
    type: str
  login_user:
    description:
      - The server's administrator (C(FLUSH BINARY LOGS) needs RELOAD, C(SHOW BINARY LOGS) BINLOG MONITOR). The
        scratch instance's C(root) gets O(login_password) (it has no network).
    type: str
    default: root
  login_password:
    description:
      - Its password. Left out for C(root) - the password the live container was made with (its environment) is
        used, which is the one C(root@127.0.0.1) keeps after C(rotate_db_passwords.yml); the scratch instance's
        C(root) gets the same.
    type: str
  encryption_key:
    description:
      - The backup key (64 hex characters or base64 of 32 bytes) - archived files are encrypted and their
        manifests signed with it, and the dumps are read with it.
    type: str
  encryption_key_file:
    description:
      - A file holding the key.
    type: path
  encryption_keys:
    description:
      - The key ring - earlier backup keys (C(rollcall_backup_old_keys)). Each archived file and dump is read with
        the key its manifest names, so the files archived before a C(rotate_backup_key.yml) stay readable; new
        files are written with O(encryption_key).
    type: list
    elements: str
  encryption_key_files:
    description:
      - The key ring as files, one key each (C(rollcall_backup_old_key_files)).
    type: list
    elements: path
  flush:
    description:
      - C(archive) only; close the file being written first, so the archive reaches now.
    type: bool
    default: true
  flush_idle:
    description:
      - C(archive) only, with I(flush); false closes the file being written only when it holds changes (events
        beyond the header a new file starts with), so a run every few minutes (C(playbooks/archive_log.yml)) adds
        no file while nothing is written.
    type: bool
    default: true
  archive_first:
    description:
      - C(restore) only; archive the live log up to now first (then a target up to now is reachable). False for
        the repository of a lost server, or right after an C(archive) task.
    type: bool
    default: true
  to_time:
    description:
      - C(restore) only; ISO 8601 with a time zone (C(2026-12-03T05:16:33Z)). Not set or C(latest) - the newest
        archived point. Refused outside the recoverable window (RV(window)). Resolution one second - events of the
        target's own second are not replayed.
    type: str
  scratch:
    description:
      - C(restore) and C(drop_scratch); the scratch container's name (default C(<container>-pitr)); its volume is
        C(<scratch>-data). Refused when it exists already.
    type: str
  query:
    description:
      - C(restore) only; a query run in the scratch instance, its output returned as RV(query_result).
    type: str
  keep_days:
    description:
      - C(prune) only; archived files whose last event is more recent than this many days are kept whatever the
        dumps (the seeds keep 7 days; like the server's own C(expire_logs_days)). 0 lets the dumps alone decide.
    type: float
    default: 7
  keep_failed:
    description:
      - C(restore) only; keep a scratch instance whose restore failed, to look at it.
    type: bool
    default: false
  fail_on_problem:
    description:
      - C(verify), C(mirror) and C(restore); fail the task when the result did not pass (else report it).
    type: bool
    default: true
  key_lost:
    description:
      - C(archive) refuses, before anything is copied, when the newest archived file was written with a key that is
        neither O(encryption_key) nor in the key ring (a deleted or regenerated key, a wrong vault or credential).
        V(true) goes on with the key given, for an old key that is lost for good.
    type: bool
    default: false
notes:
  - Supports check mode - C(archive) reports what it would copy (no flush), C(restore) validates the target and
    reports RV(plan).
  - C(changed) is true for C(archive) that flushed or copied, C(restore), and C(drop_scratch) that removed
    something; never for C(info) or C(verify).
"""

EXAMPLES = r"""
- name: Archive the binary log (after the nightly dump)
  rollcall.ops.binlog:
    action: archive
    container: sms-db
    repo: /var/backups/rollcall/pitr/sms
    login_password: "{{ vault_db_root_password }}"
    encryption_key: "{{ vault_backup_key }}"

- name: Restore to a time into a scratch instance and count
  rollcall.ops.binlog:
    action: restore
    container: sms-db
    repo: /var/backups/rollcall/pitr/sms
    backup_dir: /var/backups/rollcall/sms
    database: sms
    to_time: "2026-12-03T05:16:33Z"
    login_password: "{{ vault_db_root_password }}"
    encryption_key: "{{ vault_backup_key }}"
    query: SELECT count(*) FROM students
  register: pitr_restore

- name: Retention - the archived files before the oldest dump's log file, once older than 7 days
  rollcall.ops.binlog:
    action: prune
    container: sms-db
    repo: /var/backups/rollcall/pitr/sms
    backup_dir: /var/backups/rollcall
    database: sms
    keep_days: 7
"""

RETURN = r"""
copied:
  description: C(archive) and C(mirror); the files copied into the repository (or O(mirror_repo)) now.
  returned: action is archive or mirror
  type: list
  elements: str
archived:
  description: C(archive); the closed files that were archived already.
  returned: action is archive
  type: list
  elements: str
recopied:
  description: C(archive); archived files whose data file was missing (a manifest alone), archived again from the
    server, which still had them.
  returned: action is archive
  type: list
  elements: str
flushed:
  description: C(archive); whether the file being written was closed (false with O(flush_idle=false) when it held no
    change, and in check mode).
  returned: action is archive
  type: bool
deleted:
  description: C(prune); the archived files deleted (empty in check mode).
  returned: action is prune
  type: list
  elements: str
delete:
  description: C(prune); the archived files retention deletes (check mode - would delete).
  returned: action is prune
  type: list
  elements: str
kept:
  description: C(prune); the archived files kept.
  returned: action is prune
  type: list
  elements: str
present:
  description: C(mirror); the files O(mirror_repo) had already.
  returned: action is mirror
  type: list
  elements: str
copy:
  description: C(archive) and C(mirror); the files to copy (check mode - what would be copied).
  returned: action is archive or mirror
  type: list
  elements: str
files:
  description: C(info) and C(verify) - the number of archived files; C(archive) - the copied files (name, size,
    stored, last_at).
  returned: action is archive, info or verify
  type: raw
bases:
  description: C(info); the dumps a replay can start from (with a log position), oldest first.
  returned: action is info
  type: list
  elements: str
window:
  description: The recoverable window, null without a dump to start from - earliest_at (the end of the oldest
    usable dump), latest_at (the last event archived), latest_why, rpo_s, newest_file.
  returned: action is info or restore
  type: dict
key_ids:
  description: C(info); the archived files by the key id that reads them (C(none) without a key), in log order.
    Files archived before a key rotation keep their old key until retention removes them.
  returned: action is info
  type: dict
newest_recoverable_at:
  description: C(info); the window's latest_at.
  returned: action is info
  type: str
passed:
  description: C(verify), C(mirror) (the mirror read back), C(restore); whether it passed.
  returned: action is verify, mirror or restore
  type: bool
problems:
  description: C(verify), C(mirror), C(restore); what did not pass, each a sentence (gaps name the missing files).
  returned: action is verify, mirror or restore
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
  description: C(restore); the target (ISO 8601 UTC), null for the newest point.
  returned: action is restore
  type: str
base:
  description: C(restore); the dump replayed onto.
  returned: action is restore
  type: str
binlogs:
  description: C(restore); the archived files replayed.
  returned: action is restore
  type: list
  elements: str
recovered_to:
  description: C(restore); the time of the last event replayed (null when none after the dump).
  returned: action is restore and not check mode
  type: str
counts:
  description: C(restore); rows of every table of O(database) in the scratch instance.
  returned: action is restore and not check mode
  type: dict
query_result:
  description: C(restore); the output of O(query) (rows tab-separated).
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
duration_s:
  description: C(restore); seconds from creating the scratch instance to the checks' end.
  returned: action is restore and not check mode
  type: float
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.rollcall.ops.plugins.module_utils import artifact, binlog, keyring
from ansible_collections.rollcall.ops.plugins.module_utils.engines.base import EngineError
from ansible_collections.rollcall.ops.plugins.module_utils.pitr import PITRError
from ansible_collections.rollcall.ops.plugins.module_utils.runner import RunnerError

ACTIONS = ["archive", "info", "verify", "mirror", "prune", "restore", "drop_scratch"]


def need(p, *names):
    missing = [n for n in names if not p[n]]
    if missing:
        raise PITRError("action=%s needs %s" % (p["action"], ", ".join(missing)))


def run(module):
    p = module.params
    check_mode = module.check_mode
    scratch = p["scratch"] or "%s-pitr" % p["container"]
    scratch_volume = "%s-data" % scratch
    if p["action"] == "drop_scratch":
        from ansible_collections.rollcall.ops.plugins.module_utils import docker as dockerlib

        return dockerlib.drop_scratch(p["container"], scratch, p["docker_host"], check_mode)
    need(p, "repo")
    key = keyring.ring_from_params(p)  # the current key writes; each file is read with the key it names
    tool = binlog.BinlogPITR(p["container"], p["repo"], key, p["login_user"], p["login_password"], p["docker_host"],
                             project=p["project"])
    action = p["action"]
    if action == "archive":
        result = tool.archive(flush=p["flush"], check_mode=check_mode, flush_idle=p["flush_idle"],
                              key_lost=p["key_lost"])
        if check_mode:
            return dict(changed=bool(result["copy"] or result["recopy"]) or result["would_flush"],
                        copy=result["copy"] + result["recopy"], copied=[], archived=result["archived"], flushed=False,
                        message="would %scopy %s" % (
                            ("close %s and " % result["active"]) if result["would_flush"] else "",
                            ", ".join(result["copy"] + result["recopy"]) or "nothing else"))
        idle = "" if result["flushed"] or not p["flush"] else (
            " (%s holds no change since it was opened: left open)" % result["active"])
        again = ("; archived again (its data file was missing): %s" % ", ".join(result["recopied"])
                 if result.get("recopied") else "")
        return dict(changed=bool(result["copied"]) or result["flushed"], copy=result["copy"],
                    copied=result["copied"], archived=result["archived"], files=result.get("files", []),
                    recopied=result.get("recopied", []), flushed=result["flushed"], message="archived %s%s%s" % (
                        ", ".join(result["copied"]) or "nothing new", idle, again))
    if action == "verify":
        result = tool.verify()
        return dict(changed=False, failed=p["fail_on_problem"] and not result["passed"], **result)
    if action == "mirror":
        need(p, "mirror_repo")
        copied = binlog.mirror(p["repo"], p["mirror_repo"], check_mode=check_mode)
        if check_mode:
            return dict(changed=bool(copied["copy"]), copy=copied["copy"], copied=[], present=copied["present"],
                        message="would copy %s to %s" % (", ".join(copied["copy"]) or "nothing", p["mirror_repo"]))
        checked = binlog.BinlogPITR(p["container"], p["mirror_repo"], key).verify()
        return dict(changed=bool(copied["copied"]), copy=copied["copy"], copied=copied["copied"],
                    present=copied["present"], failed=p["fail_on_problem"] and not checked["passed"],
                    passed=checked["passed"], problems=checked["problems"],
                    message="copied %s to %s; there: %s" % (
                        ", ".join(copied["copied"]) or "nothing new", p["mirror_repo"], checked["message"]))
    need(p, "backup_dir", "database")
    if action == "prune":
        pruned = tool.prune(p["backup_dir"], p["database"], p["keep_days"], check_mode=check_mode)
        gone = pruned["delete"] if check_mode else pruned["deleted"]
        return dict(changed=bool(gone), deleted=pruned["deleted"], delete=pruned["delete"], kept=pruned["keep"],
                    message="%s %s (%s); kept %d" % (
                        "would delete" if check_mode else "deleted", ", ".join(gone) or "nothing",
                        pruned["why"], len(pruned["keep"])))
    if action == "info":
        archived, bases, win = tool.status(p["backup_dir"], p["database"])
        return dict(changed=False, files=len(archived), bases=[b["name"] for b in bases], window=win,
                    key_ids=binlog.files_by_key(archived),
                    newest_recoverable_at=win["latest_at"] if win else None,
                    message="nothing to recover from yet (no dump with its log archived)" if win is None else
                    "recoverable from %s to %s (RPO now %d s)" % (win["earliest_at"], win["latest_at"], win["rpo_s"]))
    result = tool.restore(p["to_time"], p["backup_dir"], p["database"], scratch, scratch_volume, query=p["query"],
                          keep_failed=p["keep_failed"], check_mode=check_mode, archive_first=p["archive_first"])
    to = result["target"] or "the newest point"
    if check_mode:
        return dict(changed=False, message="would restore to %s into %s" % (to, scratch), **result)
    result["message"] = ("restored %s and the binary log to %s in %s; last event replayed %s" % (
        result["base"], to, scratch, result["recovered_to"]) if result["passed"] else "; ".join(result["problems"]))
    return dict(changed=True, failed=p["fail_on_problem"] and not result["passed"], **result)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            action=dict(type="str", required=True, choices=ACTIONS),
            container=dict(type="str", required=True),
            docker_host=dict(type="str"),
            repo=dict(type="path"),
            mirror_repo=dict(type="path"),
            backup_dir=dict(type="path"),
            database=dict(type="str"),
            project=dict(type="str"),
            login_user=dict(type="str", default="root"),
            login_password=dict(type="str", no_log=True),
            encryption_key=dict(type="str", no_log=True),
            encryption_key_file=dict(type="path"),
            encryption_keys=dict(type="list", elements="str", no_log=True),
            encryption_key_files=dict(type="list", elements="path", no_log=False),  # paths, not keys
            flush=dict(type="bool", default=True),
            flush_idle=dict(type="bool", default=True),
            archive_first=dict(type="bool", default=True),
            to_time=dict(type="str"),
            scratch=dict(type="str"),
            query=dict(type="str"),
            keep_failed=dict(type="bool", default=False),
            keep_days=dict(type="float", default=7),
            fail_on_problem=dict(type="bool", default=True),
            key_lost=dict(type="bool", default=False),
        ),
        mutually_exclusive=[["encryption_key", "encryption_key_file"]],
        supports_check_mode=True,
    )
    try:
        result = run(module)
    except (PITRError, RunnerError, EngineError, artifact.ArtifactError) as exc:
        module.fail_json(msg=str(exc))
    if result.get("failed"):
        result.pop("failed")
        module.fail_json(msg=result.get("message") or "failed", **result)
    result.pop("failed", None)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
