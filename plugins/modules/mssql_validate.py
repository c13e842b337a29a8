#!/usr/bin/python
# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: mssql_validate
short_description: Validate a SQL Server database after a restore - row counts, constraints, permissions
version_added: "0.9.0"
description:
  - O(action=permissions) reads the grants and role memberships of O(database) (before a restore, to compare).
  - O(action=validate) checks the restored, live O(database) the way the seed's post-restore validation does;
    it fails with every problem found when
    its row counts differ from O(row_counts) (the backup's manifest, as C(rollcall.ops.db_restore) returns them);
    when C(DBCC CHECKCONSTRAINTS WITH ALL_CONSTRAINTS) finds rows that violate a constraint, or a foreign key or
    check constraint is disabled or not trusted;
    when a database user has no login on this server (an orphaned user cannot log in; the message says how to
    map it). Grants that differ from O(before) are reported, not failed (a restore of an older backup brings
    that backup's grants back).
  - Only reads; always RV(ignore:changed=false); runs in check mode too.
author:
  - Rollcall contributors (@rollcall)
extends_documentation_fragment:
  - rollcall.ops.database
  - rollcall.ops.backup.target
  - rollcall.ops.backup.artifact
options:
  action:
    description:
      - V(permissions) or V(validate).
    type: str
    choices: [permissions, validate]
    default: validate
  row_counts:
    description:
      - The expected row count per C(schema.table) (O(action=validate)).
    type: dict
    default: {}
  before:
    description:
      - The RV(permissions) read before the restore (O(action=validate)); without it, grants are not compared.
    type: list
    elements: str
  allow_unsigned:
    description:
      - Accepted (the database modules share their defaults); not used.
    type: bool
    default: false
requirements:
  - pymssql on the managed host
notes:
  - Supports check mode.
"""

EXAMPLES = r"""
- name: Note the grants before the restore
  rollcall.ops.mssql_validate:
    action: permissions
    engine: mssql
    host: sql01.school.example
    database: sms
    user: rollcall
    password: "{{ rollcall_mssql_password }}"
    directory: /var/backups/rollcall
  register: before

- name: Validate the restored database
  rollcall.ops.mssql_validate:
    engine: mssql
    host: sql01.school.example
    database: sms
    user: rollcall
    password: "{{ rollcall_mssql_password }}"
    directory: /var/backups/rollcall
    row_counts: "{{ restored.row_counts }}"
    before: "{{ before.permissions }}"
"""

RETURN = r"""
permissions:
  description: Every grant and role membership of the database, as sorted lines.
  returned: success
  type: list
  elements: str
  sample: ["GRANT SELECT ON SCHEMA::[teaching] TO [rc_teachers]", "MEMBER [sms] OF [db_owner]"]
problems:
  description: What failed the validation (O(action=validate)).
  returned: when O(action=validate)
  type: list
  elements: str
notes:
  description: What the validation found that is no failure (grants compared with O(before)).
  returned: when O(action=validate)
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.rollcall.ops.plugins.module_utils import backup
from ansible_collections.rollcall.ops.plugins.module_utils.engines import mssql
from ansible_collections.rollcall.ops.plugins.module_utils.params import (
    ARTIFACT_ARGS,
    KEY_EXCLUSIVE,
    READ_ARGS,
    TARGET_ARGS,
    spec,
)
from ansible_collections.rollcall.ops.plugins.module_utils.runner import LocalRunner


def main():
    module = AnsibleModule(
        argument_spec=spec(TARGET_ARGS, ARTIFACT_ARGS, READ_ARGS,
                           action=dict(type="str", default="validate", choices=["permissions", "validate"]),
                           row_counts=dict(type="dict", default={}),
                           before=dict(type="list", elements="str")),
        mutually_exclusive=KEY_EXCLUSIVE,
        supports_check_mode=True,
    )
    p = module.params
    if p["engine"] != "mssql":
        module.fail_json(msg="mssql_validate is for engine mssql, not %s" % p["engine"])
    try:
        target = backup.target_from_params(p)
        if not mssql.HAS_PYMSSQL:
            raise mssql.EngineError("engine mssql needs the Python package pymssql where the module runs")
        engine = mssql.MSSQL(LocalRunner(), target)
        if p["action"] == "permissions":
            module.exit_json(changed=False, permissions=engine.permission_lines(target.database))
        expected = {table: int(count) for table, count in p["row_counts"].items()}
        problems, notes, after = engine.validate_restored(target.database, expected, p["before"])
    except backup.ERRORS as exc:
        module.fail_json(msg="could not validate %s: %s" % (p["database"], exc))
    if problems:
        module.fail_json(msg="the restored database %s fails validation: %s" % (target.database, "; ".join(problems)),
                         problems=problems, notes=notes, permissions=after)
    module.exit_json(changed=False, problems=[], notes=notes, permissions=after)


if __name__ == "__main__":
    main()
