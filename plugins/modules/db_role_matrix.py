#!/usr/bin/python
# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: db_role_matrix
short_description: Apply the database role matrix (owner, report, backup, monitor, the app's login) on PostgreSQL
version_added: "1.0.0"
description:
  - Makes the login roles of the matrix (C(plugins/module_utils/db_roles.py)) exist with their server flags,
    passwords and comments; grants their memberships (the owner may act as the app and end its sessions, backup
    reads all data, monitor reads statistics); makes the owner role own the database and what the app's login still
    owns; grants the app and the reports their privileges on the tables and sequences of O(schema), now and on what
    the owner's migrations create later (default privileges); and takes SUPERUSER and the rest from the app's login.
  - One admin session, one transaction - all of it or none of it - instead of a module run per step and role.
    What changed is what differs after the transaction (the way community.postgresql.postgresql_privs decides);
    passwords are compared with the verifier the server keeps (SCRAM-SHA-256 or md5), never read back in clear.
  - The app's own login keeps its password and LOGIN (C(roles/database/tasks/app_login.yml) decides those).
  - MariaDB's matrix is applied by community.mysql.mysql_user (C(roles/database/tasks/roles.yml)).
author:
  - Rollcall contributors (@rollcall)
extends_documentation_fragment:
  - rollcall.ops.admin_login
options:
  login_user:
    description: The server's admin (a superuser, C(postgres)).
    type: str
    default: postgres
  database:
    description: The app's database.
    type: str
    required: true
  app_user:
    description: The app's login (C(rollcall_db_user)); the other roles are named after it.
    type: str
    required: true
  role_passwords:
    description: The password of each created role (owner, report, backup, monitor), by role name.
    type: dict
    required: true
  schema:
    description: The schema whose tables and sequences the app and the reports get.
    type: str
    default: public
notes:
  - Supports check mode (the same transaction, rolled back) and diff mode (the matrix's state before and after,
    without passwords).
  - Needs psycopg2 on the host, like community.postgresql.
"""

EXAMPLES = r"""
- name: Apply the PostgreSQL role matrix
  rollcall.ops.db_role_matrix:
    login_port: 15432
    login_password: "{{ rollcall_db_root_password }}"
    database: sms
    app_user: sms
    role_passwords: "{{ database_role_passwords }}"
"""

RETURN = r"""
changes:
  description: What was changed (or would be, in check mode), a line each; empty when the matrix was in place.
  returned: success
  type: list
  elements: str
  sample: ["create role sms_report (NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS LOGIN)"]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.rollcall.ops.plugins.module_utils import db_logins, db_roles


def main():
    module = AnsibleModule(
        argument_spec=dict(
            login_host=dict(type="str", default="127.0.0.1"),
            login_port=dict(type="int", required=True),
            login_user=dict(type="str", default="postgres"),
            login_password=dict(type="str", required=True, no_log=True),
            database=dict(type="str", required=True),
            app_user=dict(type="str", required=True),
            role_passwords=dict(type="dict", required=True, no_log=True),
            schema=dict(type="str", default="public"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    names = db_roles.role_names(p["app_user"])
    missing = [names[job] for job in db_roles.CREATED_ROLES if not p["role_passwords"].get(names[job])]
    if missing:
        module.fail_json(msg="role_passwords has no password for %s; the database role derives them from "
                         "rollcall_db_root_password (or give rollcall_db_role_passwords)." % ", ".join(missing))
    where = "%s:%s" % (p["login_host"], p["login_port"])
    try:
        connection = db_logins.connect("postgresql", p["login_host"], p["login_port"], p["login_user"],
                                       p["login_password"], p["database"])
    except ImportError as exc:
        module.fail_json(msg="The PostgreSQL driver is missing on this host (%s); install psycopg2." % exc)
    except Exception as exc:
        reason = (where, p["login_user"], p["database"], str(exc).strip())
        module.fail_json(msg="Could not log in to PostgreSQL at %s as its admin %s to database %s: %s. Check that the "
                         "database runs and rollcall_db_root_password." % reason)
    try:
        changes, before, after = db_roles.apply_pg(connection, names, p["role_passwords"], p["schema"],
                                                   check_mode=module.check_mode)
    except Exception as exc:
        module.fail_json(msg="Applying the role matrix on PostgreSQL at %s (database %s) failed, nothing was changed "
                         "(one transaction): %s" % (where, p["database"], str(exc).strip()))
    finally:
        connection.close()
    result = dict(changed=bool(changes), changes=changes)
    if module._diff:
        result["diff"] = dict(before="\n".join(before) + "\n", after="\n".join(after) + "\n")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
