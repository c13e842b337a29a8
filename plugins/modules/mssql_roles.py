#!/usr/bin/python
# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: mssql_roles
short_description: Apply Rollcall's least-privilege role matrix to a SQL Server database
version_added: "0.4.0"
description:
  - Brings the database roles of one SQL Server database to Rollcall's role matrix (issue 12; seed 000's "least
    privilege access model by role", "no direct table access"). Service roles C(rollcall_owner) (migrations
    only; C(db_ddladmin) and data rights on the app schema), C(rollcall_app) (SELECT, INSERT, UPDATE, DELETE,
    EXECUTE on the app schema, no DDL), C(rollcall_report) (SELECT on the reporting schema), C(rollcall_backup)
    (C(db_backupoperator), SELECT on the app schema for the row counts), C(rollcall_monitor) (VIEW DATABASE
    STATE); seed 000's people roles C(ict_admin), C(leadership), C(teachers), C(admin_staff), each granted
    their own schema of views and procedures and DENIED the app schema. The table is in docs/roles.md.
  - Creates missing roles and schemas (owned by the app schema's owner, so views and procedures reach the app's
    tables through the ownership chain), adds missing memberships, grants and denies; removes what is beyond
    the matrix from its roles (REVOKE, ALTER ROLE ... DROP MEMBER); drops O(absent_roles) unless they own
    schemas, objects or roles (those are reported in RV(kept)). Every grant is to a role, on a schema or the
    database, never on a table.
  - All statements run in one transaction; when one fails, nothing is changed.
  - Reports, and does not change, what the matrix does not manage but seed 000 forbids (RV(findings)) and what
    only a server-level grant can give (RV(server_level)).
  - Supports check mode (the statements are listed, none is run) and diff mode (the roles' memberships and
    grants before and after).
author:
  - Rollcall contributors (@rollcall)
options:
  database:
    description:
      - The application's database.
    type: str
    required: true
  host:
    description:
      - The SQL Server host.
    type: str
    default: 127.0.0.1
  port:
    description:
      - The SQL Server port.
    type: int
    default: 1433
  user:
    description:
      - A login that may create roles and schemas and grant in O(database) (C(db_securityadmin) and
        C(db_ddladmin), or C(db_owner)); an administrator's login, used for this task only.
    type: str
    required: true
  password:
    description:
      - The password of O(user).
    type: str
    required: true
  schemas:
    description:
      - The names of the matrix's four schemas; they must differ.
    type: dict
    suboptions:
      app:
        description: The app's tables (the migrations create them there).
        type: str
        default: dbo
      reporting:
        description: Views for reports (C(rollcall_report), C(leadership)).
        type: str
        default: reporting
      teaching:
        description: Views and procedures for C(teachers).
        type: str
        default: teaching
      office:
        description: Views and procedures for C(admin_staff).
        type: str
        default: office
  members:
    description:
      - For each role of the matrix given here, the database users (or roles) that are exactly its members;
        missing ones are added, others dropped. Roles not given keep their members. Each user must already exist
        in the database (C(CREATE USER [name] FOR LOGIN [name])).
    type: dict
    default: {}
  absent_roles:
    description:
      - Roles outside the matrix to drop (their members are dropped first). A role that owns schemas, objects or
        roles is kept and reported in RV(kept).
    type: list
    elements: str
    default: []
requirements:
  - pymssql
notes:
  - No SQL Server runs on Rollcall's machines; the T-SQL is unit tested and the gated suite
    tests/integration/test_mssql_server.py applies it to a real server when ROLLCALL_MSSQL_HOST is set.
"""

EXAMPLES = r"""
- name: Least-privilege roles in the SMS database (see what would change first with --check --diff)
  rollcall.ops.mssql_roles:
    database: sms
    host: sql.school.example
    user: "{{ rollcall_mssql_admin_user }}"
    password: "{{ rollcall_mssql_admin_password }}"
    members:
      rollcall_app: [sms_app]
      rollcall_owner: [sms_migrate]
      rollcall_backup: [rollcall_backup]
      rollcall_monitor: [rollcall_monitor]
      teachers: ["SCHOOL\\Teachers"]
    absent_roles: [old_reporting]
"""

RETURN = r"""
statements:
  description: The T-SQL run (in check mode, that would run), in order.
  returned: always
  type: list
  elements: str
  sample: ["CREATE ROLE [teachers] AUTHORIZATION [dbo];", "GRANT SELECT, EXECUTE ON SCHEMA::[teaching] TO [teachers];"]
kept:
  description: Absent roles not dropped because they own something, with what to do.
  returned: always
  type: list
  elements: dict
findings:
  description: What seed 000 forbids and the matrix does not manage (users with direct grants, db_owner members).
  returned: always
  type: list
  elements: str
server_level:
  description: Server-level rights the roles' logins need, to be granted by an administrator (never run).
  returned: always
  type: list
  elements: str
roles:
  description: The roles of the matrix and whom each serves.
  returned: always
  type: list
  elements: dict
schemas:
  description: The schema names used (app, reporting, teaching, office).
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ..module_utils.engines import mssql, mssql_roles
from ..module_utils.engines.base import EngineError, Target


def main():
    module = AnsibleModule(
        argument_spec=dict(
            database=dict(type="str", required=True),
            host=dict(type="str", default="127.0.0.1"),
            port=dict(type="int", default=1433),
            user=dict(type="str", required=True),
            password=dict(type="str", required=True, no_log=True),
            schemas=dict(type="dict", options=dict(
                app=dict(type="str", default="dbo"),
                reporting=dict(type="str", default="reporting"),
                teaching=dict(type="str", default="teaching"),
                office=dict(type="str", default="office"),
            )),
            members=dict(type="dict", default={}),
            absent_roles=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if not mssql.HAS_PYMSSQL:
        module.fail_json(msg="mssql_roles needs the Python package pymssql where the module runs (pip install "
                             "pymssql)")
    target = Target("mssql", p["database"], host=p["host"], port=p["port"], user=p["user"], password=p["password"])
    try:
        desired = mssql_roles.desired_matrix(p["schemas"], p["members"], p["absent_roles"])
        result = mssql_roles.manage(mssql.MSSQL(None, target), desired, check_mode=module.check_mode)
    except EngineError as exc:
        module.fail_json(msg="SQL Server roles of database %s: %s" % (p["database"], exc))
    diff = result.pop("diff")
    if module._diff:
        result["diff"] = diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
