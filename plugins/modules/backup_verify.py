#!/usr/bin/python
# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: backup_verify
short_description: Verify a backup artifact at a chosen level and record the result next to it
version_added: "0.2.0"
description:
  - V(checksum) reads the whole artifact, checks its sha256 against the manifest, authenticates and decrypts
    every chunk and decompresses the whole stream.
  - V(native) adds the engine's own check (PostgreSQL C(pg_restore) reading the whole archive; SQLite
    C(PRAGMA integrity_check) and foreign keys; SQL Server C(RESTORE VERIFYONLY WITH CHECKSUM) on a copy written
    into O(local_directory), its header compared with the manifest, and for a differential the chain to its
    parent full backup).
  - A SQL Server differential is checked together with its parent full backup (checksum of both, chain of LSNs)
    and restored on top of it (full WITH NORECOVERY, then the differential WITH RECOVERY).
  - V(restore) adds a restore into a scratch database, compares every table's row count with the manifest, runs
    the engine's integrity check, and drops the scratch database.
  - A step that could not run is reported as failed, never as passed. The result is recorded in
    C(<name>.verify.json) next to the backup, so M(rollcall.ops.backup_info) can tell the age of the newest
    verified backup. Recording a result is bookkeeping; the task reports RV(ignore:changed=false).
author:
  - Rollcall contributors (@rollcall)
extends_documentation_fragment:
  - rollcall.ops.database
  - rollcall.ops.backup.target
  - rollcall.ops.backup.artifact
  - rollcall.ops.backup.read
options:
  name:
    description:
      - The backup to verify. Omit to verify the newest backup of O(database) in O(directory).
    type: str
  level:
    description:
      - How deep to verify; each level includes the ones before it.
    type: str
    choices: [checksum, native, restore]
    default: checksum
  engine:
    required: false
  fail_on_error:
    description:
      - Fail the task when verification fails. With V(false) the result says RV(status=failed).
    type: bool
    default: true
notes:
  - Supports check mode. In check mode nothing is recorded and O(level=restore) stops at V(native), because a
    restore-level check creates and drops a scratch database; the result says RV(level=native).
"""

EXAMPLES = r"""
- name: Verify the newest backup by restoring it into a scratch database
  rollcall.ops.backup_verify:
    directory: /var/backups/rollcall
    engine: postgresql
    container: rollcall-db
    database: sms
    user: sms
    password: "{{ rollcall_db_password }}"
    encryption_key_file: /etc/rollcall/backup.key
    level: restore

- name: Verify the newest SQL Server backup (a differential is restored on top of its full backup)
  rollcall.ops.backup_verify:
    directory: /var/backups/rollcall
    engine: mssql
    host: sql01.example.org
    database: sms
    user: rollcall_backup
    password: "{{ rollcall_mssql_password }}"
    server_directory: /var/opt/mssql/backup
    local_directory: /mnt/sql01-backup
    level: restore
"""

RETURN = r"""
name:
  description: The backup verified.
  returned: always
  type: str
status:
  description:
    - V(passed), V(failed) (the backup was found at fault), or V(error) (the server could not be reached or logged
      into, e.g. a password changed while it ran - the backup is not marked failed and can be verified again).
  returned: always
  type: str
level:
  description: The level actually run.
  returned: always
  type: str
steps:
  description: Each level run, with its status and detail.
  returned: always
  type: list
  elements: dict
data_warnings:
  description:
    - What a whole backup still says the operator should know, also shown as Ansible warnings; today, uploads
      missing from the archive that the database has rows for (the files were gone from the live directory when
      the backup was made).
  returned: when there is any
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.rollcall.ops.plugins.module_utils import backup, keyring
from ansible_collections.rollcall.ops.plugins.module_utils.params import (
    ARTIFACT_ARGS,
    KEY_EXCLUSIVE,
    READ_ARGS,
    TARGET_ARGS,
    spec,
)


def main():
    target_args = dict(TARGET_ARGS, engine=dict(TARGET_ARGS["engine"], required=False))
    module = AnsibleModule(
        argument_spec=spec(target_args, ARTIFACT_ARGS,
                           name=dict(type="str"),
                           level=dict(type="str", default="checksum", choices=list(backup.LEVELS)),
                           fail_on_error=dict(type="bool", default=True),
                           **READ_ARGS),
        mutually_exclusive=KEY_EXCLUSIVE,
        supports_check_mode=True,
    )
    p = module.params
    try:
        key = keyring.ring_from_params(p)  # the backup's own key, picked by its key id
        missing = p["name"] and backup.no_such_backup(p["directory"], p["name"], p["engine"], p["database"],
                                                      p["project"])
        if missing:
            module.fail_json(msg=missing, status="failed", name=p["name"])
        name = p["name"] or backup.newest_name(p["directory"], p["engine"], p["database"], project=p["project"])
        engine = None
        level = "native" if module.check_mode and p["level"] == "restore" else p["level"]
        if level != "checksum":
            if not p["engine"]:
                raise backup.ArtifactError("level %s runs the engine's tools: give engine and how to reach it"
                                           % level)
            engine = backup.open_engine(backup.target_from_params(p))
        result = backup.verify_backup(p["directory"], name, level, key=key, engine=engine,
                                      record=not module.check_mode, allow_unsigned=p["allow_unsigned"])
    except backup.ERRORS + (backup.Interrupted,) as exc:
        module.fail_json(msg="verification could not run: %s" % exc, status="failed")
    if result["status"] == "error" and p["fail_on_error"]:
        cause = result["steps"][-1].get("cause")
        fix = ("once the inventory gives the key it was made with again (rollcall_backup_key, or in the key ring "
               "rollcall_backup_old_keys)" if cause == "key" else
               "once the inventory's passwords open the server again (were they changed while this ran? "
               "playbooks/rotate_db_passwords.yml)")
        module.fail_json(msg="backup %s could not be verified at level %s: %s. This is %s (it is kept and not marked "
                             "failed): %s, run playbooks/verify_backup.yml -e backup_name=%s"
                         % (name, level, result["steps"][-1]["detail"], backup.BLAMELESS[cause or "server"], fix,
                            name), changed=False, **result)
    if result["status"] != "passed" and p["fail_on_error"]:
        module.fail_json(msg="backup %s failed %s verification: %s; %s" % (
            name, level, result["steps"][-1]["detail"],
            backup.older_backup_hint(p["directory"], name, p["engine"], p["database"])),
            changed=False, **result)
    for warning in result.get("data_warnings", []):
        module.warn("backup %s: %s" % (name, warning))
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
