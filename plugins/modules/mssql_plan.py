#!/usr/bin/python
# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: mssql_plan
short_description: Say what a backup, verification, restore or health run will do to a SQL Server database
version_added: "0.9.0"
description:
  - Writes out, without connecting to SQL Server, the steps and the exact T-SQL that the backup, verify, restore
    or health flow will carry out for O(database), from the same settings the database modules get
    (C(module_defaults) of C(group/rollcall.ops.database)). The roles show it first, so C(--check) prints the
    plan for SQL Server on a machine that cannot reach one.
  - For O(action=backup) it decides the backup type. O(type=differential) needs a full backup to build on in
    O(directory) (the newest full, non-copy-only one); when there is none, this run takes a full backup instead
    and says so.
  - Fails, naming the inventory variable, when a setting SQL Server needs is missing (O(server_directory), the
    login). Never changes anything; always RV(ignore:changed=false).
author:
  - Rollcall contributors (@rollcall)
extends_documentation_fragment:
  - rollcall.ops.database
  - rollcall.ops.backup.target
  - rollcall.ops.backup.artifact
options:
  action:
    description:
      - Which flow to plan.
    type: str
    choices: [backup, verify, restore, health]
    required: true
  type:
    description:
      - The backup type asked for (O(action=backup)).
    type: str
    choices: [full, differential]
    default: full
  verify_level:
    description:
      - The verification level of O(action=backup) and O(action=verify).
    type: str
    choices: [checksum, native, restore]
    default: restore
  name:
    description:
      - The backup to verify or restore; default the newest one.
    type: str
  compression:
    description:
      - The artifact's compression (on the managed host; SQL Server is never asked to compress).
    type: str
    choices: [none, gzip]
    default: none
  keep:
    description:
      - Retention as the backup role applies it (V(last), V(daily), V(weekly), V(monthly)), for the plan's text.
    type: dict
    default: {}
  allow_unsigned:
    description:
      - Accepted (the database modules share their defaults); not used by the plan.
    type: bool
    default: false
notes:
  - Supports check mode (it never changes anything).
"""

EXAMPLES = r"""
- name: Plan tonight's SQL Server backup
  rollcall.ops.mssql_plan:
    action: backup
    type: differential
    engine: mssql
    host: sql01.school.example
    database: sms
    user: rollcall
    password: "{{ rollcall_mssql_password }}"
    server_directory: D:\Backup\Rollcall
    local_directory: /mnt/sql01-backup
    directory: /var/backups/rollcall
  register: plan

- name: Show it
  ansible.builtin.debug:
    msg: "{{ plan.plan }}"
"""

RETURN = r"""
plan:
  description: The steps, in order, with the T-SQL (C(<id>) stands for the unique part of a temporary file name).
  returned: success
  type: list
  elements: str
type:
  description: The backup type this run takes (O(action=backup)).
  returned: when O(action=backup)
  type: str
  sample: differential
parent:
  description: The full backup a differential builds on (O(action=backup)), else null.
  returned: when O(action=backup)
  type: str
reason:
  description: Why this backup type (O(action=backup)).
  returned: when O(action=backup)
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.rollcall.ops.plugins.module_utils import backup, mssql_plan
from ansible_collections.rollcall.ops.plugins.module_utils.params import (
    ARTIFACT_ARGS,
    KEY_EXCLUSIVE,
    READ_ARGS,
    TARGET_ARGS,
    spec,
)


def main():
    module = AnsibleModule(
        argument_spec=spec(TARGET_ARGS, ARTIFACT_ARGS, READ_ARGS,
                           action=dict(type="str", required=True, choices=list(mssql_plan.ACTIONS)),
                           type=dict(type="str", default="full", choices=list(mssql_plan.TYPES)),
                           verify_level=dict(type="str", default="restore", choices=list(mssql_plan.LEVELS)),
                           name=dict(type="str"),
                           compression=dict(type="str", default="none", choices=["none", "gzip"]),
                           keep=dict(type="dict", default={})),
        mutually_exclusive=KEY_EXCLUSIVE,
        supports_check_mode=True,
    )
    p = module.params
    if p["engine"] != "mssql":
        module.fail_json(msg="mssql_plan is for engine mssql, not %s" % p["engine"])
    settings = {key: p[key] for key in ("host", "port", "user", "password", "database", "server_directory",
                                        "local_directory", "directory")}
    parent = None
    if p["action"] == "backup" and p["type"] == "differential" and p["database"]:
        try:
            parent = backup.chain_parent(p["directory"], "mssql", p["database"])["name"]
        except backup.ERRORS + (OSError,):
            parent = None  # no full backup to build on (or no directory yet): the plan takes a full one
    try:
        steps, facts = mssql_plan.plan(p["action"], settings, type=p["type"], parent=parent,
                                       verify_level=p["verify_level"], name=p["name"], keep=p["keep"],
                                       compression=p["compression"],
                                       encrypted=bool(p["encryption_key"] or p["encryption_key_file"]))
    except mssql_plan.PlanError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, plan=steps, **facts)


if __name__ == "__main__":
    main()
