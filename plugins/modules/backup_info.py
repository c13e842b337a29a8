#!/usr/bin/python
# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: backup_info
short_description: List backups with their manifests, age, size and last verification
version_added: "0.2.0"
description:
  - Lists the complete backups (those with a manifest) in O(directory), newest first, and answers "how old is the
    newest backup, and the newest verified one?".
author:
  - Rollcall contributors (@rollcall)
options:
  directory:
    description:
      - The backup directory on the managed host.
    type: path
    required: true
  engine:
    description:
      - Only backups of this engine (V(mariadb) is V(mysql), as manifests record it).
    type: str
  project:
    description:
      - Only backups of this stack (C(rollcall_project)) and backups that record no project (made before
        projects were recorded), for a backup directory several stacks share.
    type: str
  database:
    description:
      - Only backups of this database.
    type: str
  pitr_container:
    description:
      - The PostgreSQL container of a stack with point-in-time recovery (C(rollcall_pitr=true), M(rollcall.ops.pitr));
        then RV(pitr) and RV(newest_recoverable_at) say the newest point a restore can reach.
    type: str
  docker_host:
    description:
      - The Docker engine of O(pitr_container) (default the local socket).
    type: str
  binlog_repo:
    description:
      - The binary log repository of a MariaDB stack with point-in-time recovery (M(rollcall.ops.binlog)); with
        O(database), RV(pitr) and RV(newest_recoverable_at) say the newest point a restore can reach (read from
        the files only).
    type: path
notes:
  - Read-only; supports check mode.
"""

EXAMPLES = r"""
- name: How old is the newest verified backup?
  rollcall.ops.backup_info:
    directory: /var/backups/rollcall
    database: sms
  register: backups

- name: And the newest point in time a restore can reach (PITR on)
  rollcall.ops.backup_info:
    directory: /var/backups/rollcall
    pitr_container: sms-db
  register: backups_pitr

- name: The same for a MariaDB stack (its archived binary log)
  rollcall.ops.backup_info:
    directory: /var/backups/rollcall
    database: sms
    binlog_repo: /var/backups/rollcall/pitr/sms

- name: Complain when it is older than a day
  ansible.builtin.assert:
    that: backups.newest_verified_age_s is not none and backups.newest_verified_age_s < 86400
"""

RETURN = r"""
backups:
  description: Backups, newest first, each with name, engine, database, type, finished_at, age_s, size, file,
    encrypted, key_id (the key it was made with, null without a key; M(rollcall.ops.backup_keys) says whether a key
    ring reads it), schema_revision, app_version, project (the stack, null when not recorded), labels (e.g. a
    point-in-time restore's pitr_target and pitr_source), verified and verification (the latest result).
  returned: always
  type: list
  elements: dict
count:
  description: Number of backups listed.
  returned: always
  type: int
newest_age_s:
  description: Age in seconds of the newest backup, null when there is none.
  returned: always
  type: int
newest_verified_age_s:
  description: Age in seconds of the newest backup whose latest verification passed, null when there is none.
  returned: always
  type: int
newest_recoverable_at:
  description: With O(pitr_container), the newest point in time a restore can reach (ISO 8601 UTC; the last WAL
    segment archived), null without a physical backup.
  returned: when pitr_container or binlog_repo is set
  type: str
pitr:
  description: With O(pitr_container), the pgBackRest repository - stanza, status, backups (count), newest_backup,
    newest_backup_type, newest_backup_at, earliest_recoverable_at, newest_recoverable_at, rpo_s (seconds since the
    newest recoverable point), archiving_error (null while archiving works). With O(binlog_repo) - kind (binlog),
    files, bases (dumps with a log position), newest_file, earliest_recoverable_at, newest_recoverable_at, rpo_s.
  returned: when pitr_container or binlog_repo is set
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.rollcall.ops.plugins.module_utils import artifact, backup, binlog, pitr
from ansible_collections.rollcall.ops.plugins.module_utils.runner import RunnerError


def main():
    module = AnsibleModule(
        argument_spec=dict(directory=dict(type="path", required=True), engine=dict(type="str"),
                           database=dict(type="str"), project=dict(type="str"), pitr_container=dict(type="str"),
                           docker_host=dict(type="str"), binlog_repo=dict(type="path")),
        mutually_exclusive=[["pitr_container", "binlog_repo"]],
        required_by={"binlog_repo": "database"},
        supports_check_mode=True,
    )
    p = module.params
    items = backup.select(backup.describe(p["directory"]), p["engine"], p["database"], p["project"])
    verified = [i for i in items if i.get("verified")]
    extra = {}
    if p["pitr_container"]:
        try:
            extra["pitr"] = pitr.read_summary(p["pitr_container"], p["docker_host"])
        except (pitr.PITRError, RunnerError) as exc:
            module.fail_json(msg="point-in-time recovery: %s" % exc)
        extra["newest_recoverable_at"] = extra["pitr"]["newest_recoverable_at"]
    if p["binlog_repo"]:
        try:
            extra["pitr"] = binlog.read_summary(p["binlog_repo"], p["directory"], p["database"], project=p["project"])
        except (pitr.PITRError, artifact.ArtifactError) as exc:
            module.fail_json(msg="point-in-time recovery: %s" % exc)
        extra["newest_recoverable_at"] = extra["pitr"]["newest_recoverable_at"]
    module.exit_json(changed=False, backups=items, count=len(items),
                     newest_age_s=items[0]["age_s"] if items else None,
                     newest_verified_age_s=verified[0]["age_s"] if verified else None, **extra)


if __name__ == "__main__":
    main()
