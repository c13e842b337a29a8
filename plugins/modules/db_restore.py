#!/usr/bin/python
# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: db_restore
short_description: Restore a backup into a database safely - verify, safety backup, side database, swap
version_added: "0.2.0"
description:
  - Cheap checks first, before any data is read - the manifest, its signature (when a key is given), the engine,
    every stored file's size against the manifest, the key, and for a differential its chain.
  - Then the artifact is read once - decrypted, decompressed and its sha256 computed on the way - straight into a
    side database (C(<database>__rc_scratch)); the uploads of the set into a staging directory next to the live
    ones. A checksum or authentication failure, found at the latest at the end of the stream, aborts the restore
    as a refusal that says how to pick an older backup.
  - Checks every table's row count against the manifest, the engine's integrity check, and owners and grants.
  - Only when the stream's checksum matched, the restore succeeded and every check passed - takes a safety
    backup of the target database (unless O(safety_backup=false)), then swaps the side database in (PostgreSQL
    rename in one transaction; SQLite file swap; SQL Server C(SINGLE_USER), two renames, the old name put back
    if the second fails). Whatever fails, the side database is dropped and the target is left as it was.
  - A successful restore is recorded as a passed V(restore)-level verification of the backup.
  - SQL Server - a differential backup is restored on top of its parent full backup; every file is moved to
    the server's default data and log directories; the safety backup is a C(COPY_ONLY) full backup, so the
    differential chain of the regular backups is not affected.
  - The application can keep serving - PostgreSQL - the live database stops taking new connections, idle
    sessions end at once and busy ones get a few seconds to finish before both renames; the SMS app waits through
    that moment instead of failing requests. MariaDB - one atomic C(RENAME TABLE). SQLite - the file is replaced,
    so the app must reopen it (the restore playbook restarts it).
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
      - The backup to restore (from O(directory)). Omit to restore the newest backup of O(database) that is not
        the safety backup of an earlier restore (restoring that one undoes the restore; give its name to do so).
      - To restore an older backup, give its name (the restore playbook takes it as
        C(-e restore_backup_name=NAME)); M(rollcall.ops.backup_info) lists the backups.
    type: str
  app_version:
    description:
      - The application release serving the database now, recorded as C(app_version) in the manifest of the
        safety backup (the restore playbook passes the live release's version).
    type: str
  safety_backup:
    description:
      - Back up the target database before replacing it.
    type: bool
    default: true
  keep_old:
    description:
      - Keep the replaced database under the name C(<database>__rc_old) instead of dropping it.
    type: bool
    default: false
  before_swap:
    description:
      - A command to run on the restored side database after every check passed and before the safety backup and
        the swap, while the live database keeps serving; when it fails nothing is swapped and the side database is
        dropped. The restore playbook migrates the restored data forward to the schema the live release runs on
        with it, so the app never sees an older schema.
    type: dict
    suboptions:
      container:
        description: The running container to run it in (on the Docker engine of O(docker_host)).
        type: str
        required: true
      argv:
        description: The command, as a list; C({database}) in an argument is replaced by the side database's name.
        type: list
        elements: str
        required: true
  uploads_container:
    description:
      - When the backup set holds uploads, restore them into this container instead of the one recorded in the
        manifest. They are extracted next to the live files first, then replace them; the safety backup holds
        the replaced ones.
    type: str
notes:
  - Supports check mode (verifies the artifact and reports what would happen).
"""

EXAMPLES = r"""
- name: Restore the newest backup of the SMS database
  rollcall.ops.db_restore:
    directory: /var/backups/rollcall
    engine: postgresql
    container: rollcall-db
    database: sms
    user: sms
    password: "{{ rollcall_db_password }}"
    encryption_key_file: /etc/rollcall/backup.key
"""

RETURN = r"""
restored:
  description: The backup restored.
  returned: always
  type: str
safety_backup:
  description: Name of the safety backup taken first, or null.
  returned: success
  type: str
safety_backup_why:
  description: Why no safety backup was taken (the database did not exist, or O(safety_backup=false)); empty if one was.
  returned: success
  type: str
old_kept_as:
  description: Name the replaced database was kept under (O(keep_old=true)), else null.
  returned: success
  type: str
app_must_reopen:
  description:
    - Whether the app must open the database again to see the restored data - SQLite, only when the file had to be
      replaced (no live file, a live file that is no database, page sizes that differ in WAL mode, another journal
      mode asked for). Otherwise the restored data went into the live file through the online backup API and the
      app's connections read it at their next transaction. False for the other engines.
  returned: success
  type: bool
files_restored:
  description: The uploads directory restored from the backup set, or null when the set has none.
  returned: success
  type: str
before_swap:
  description: The last output line of the O(before_swap) command (parsed when it is JSON), when one ran.
  returned: when O(before_swap) was given
  type: raw
row_counts:
  description: Row counts of the restored database (equal to the manifest's).
  returned: success
  type: dict
data_warnings:
  description:
    - What the restored backup says that the operator should know although it restored whole - the uploads archive
      held fewer files than the uploads table has rows (those downloads answer 404). Each is also an Ansible
      warning.
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
    module = AnsibleModule(
        argument_spec=spec(TARGET_ARGS, ARTIFACT_ARGS,
                           name=dict(type="str"),
                           safety_backup=dict(type="bool", default=True),
                           keep_old=dict(type="bool", default=False),
                           uploads_container=dict(type="str"),
                           app_version=dict(type="str"),
                           before_swap=dict(type="dict", options=dict(
                               container=dict(type="str", required=True),
                               argv=dict(type="list", elements="str", required=True))),
                           **READ_ARGS),
        mutually_exclusive=KEY_EXCLUSIVE,
        supports_check_mode=True,
    )
    p = module.params
    try:
        key = keyring.ring_from_params(p)  # the backup's own key, picked by its key id
        target = backup.target_from_params(p)
        name = p["name"] or backup.newest_name(p["directory"], p["engine"], target.database, for_restore=True,
                                               project=p["project"])
        engine = backup.open_engine(target)
        if module.check_mode:
            check = backup.verify_backup(p["directory"], name, "native", key=key, engine=engine, record=False,
                                         allow_unsigned=p["allow_unsigned"])
            if check["status"] != "passed":
                module.fail_json(msg="would refuse to restore %s: %s; %s" % (
                    name, check["steps"][-1]["detail"], backup.older_backup_hint(p["directory"], name, p["engine"],
                                                                                 target.database)))
            for warning in check.get("data_warnings", []):
                module.warn("backup %s: %s" % (name, warning))
            module.exit_json(changed=True, restored=name, msg="would restore %s into %s" % (name, target.database),
                             **({"data_warnings": check["data_warnings"]} if check.get("data_warnings") else {}))
        report = backup.restore_backup(engine, p["directory"], name, key=key, safety_backup=p["safety_backup"],
                                       keep_old=p["keep_old"], safety_key=key.current, app_version=p["app_version"],
                                       allow_unsigned=p["allow_unsigned"], project=p["project"],
                                       files={"container": p["uploads_container"]} if p["uploads_container"] else None,
                                       before_swap=backup.command_before_swap(
                                           p["before_swap"]["container"], p["before_swap"]["argv"], p["docker_host"])
                                       if p["before_swap"] else None)
    except backup.FilesNotInPlace as exc:  # after the swap: the database is the restored one
        module.fail_json(msg="restore incomplete: %s" % exc)
    except backup.ERRORS + (backup.Interrupted,) as exc:
        module.fail_json(msg="restore failed, the target database was not replaced: %s" % exc)
    for warning in report.get("data_warnings", []):
        module.warn("backup %s: %s" % (report["restored"], warning))
    module.exit_json(changed=True, **report)


if __name__ == "__main__":
    main()
