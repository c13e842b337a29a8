#!/usr/bin/python
# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: db_login_plan
short_description: Decide which of its two database logins the app uses, and what a password rotation changes
version_added: "0.3.0"
description:
  - The app has two logins with the same rights, used in turn (O(app_user) and O(app_user)C(_alt)), so that its
    database password rotates without a failed request (C(plugins/module_utils/db_logins.py); docs/secrets.md).
  - Asks the server, as its admin, which of the two exist and may log in, and tries O(app_password) (the
    inventory's) on each that may. The login it opens is the app's.
  - Then decides (RV(use), RV(set_password), RV(retire)). Without O(rotate), a password that opens neither login
    is refused - it is either a typing error or a rotation, which C(playbooks/rotate_db_passwords.yml) carries out.
  - Changes nothing itself; the database role applies the decision with community.postgresql / community.mysql.
author:
  - Rollcall contributors (@rollcall)
extends_documentation_fragment:
  - rollcall.ops.admin_login
options:
  engine:
    description: The database engine.
    type: str
    required: true
    choices: [postgresql, mariadb]
  login_user:
    description: The server's admin (PostgreSQL C(postgres), MariaDB C(rollcall_admin)).
    type: str
    required: true
  database:
    description: The app's database (PostgreSQL logins are tried against it).
    type: str
    required: true
  app_user:
    description: The app's first login (C(rollcall_db_user)); the second is its name with C(_alt).
    type: str
    required: true
  app_password:
    description: The app's password as the inventory has it (C(rollcall_db_password)).
    type: str
    required: true
  rotate:
    description: A rotation is asked for - a password that opens neither login goes to the idle one.
    type: bool
    default: false
  live:
    description:
      - The login the running app uses (label C(rollcall.db-login) of the app container), when known. Only
        needed when a rotation stopped half-way and both logins may log in.
    type: str
notes:
  - Supports check mode (it only reads).
  - Needs psycopg2 (PostgreSQL) or PyMySQL (MariaDB) on the host, like community.postgresql / community.mysql.
"""

EXAMPLES = r"""
- name: Find the app's login
  rollcall.ops.db_login_plan:
    engine: postgresql
    login_port: 15432
    login_user: postgres
    login_password: "{{ rollcall_db_root_password }}"
    database: sms
    app_user: sms
    app_password: "{{ rollcall_db_password }}"
  register: app_login

- name: Say which login the app uses
  ansible.builtin.debug:
    msg: "{{ app_login.summary }}"
"""

RETURN = r"""
use:
  description: The login the app is to use.
  returned: success
  type: str
  sample: sms_alt
set_password:
  description: Whether RV(use) gets O(app_password) and may log in (a rotation), before the app moves to it.
  returned: success
  type: bool
retire:
  description: The login to make idle once the app no longer uses it (a rotation), or null.
  returned: success
  type: str
rotated:
  description: Whether the app's login changes (a rotation, or the end of one that stopped half-way).
  returned: success
  type: bool
logins:
  description: What the server said about each login (exists, enabled, opens).
  returned: success
  type: dict
summary:
  description: One line saying what happens.
  returned: success
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.rollcall.ops.plugins.module_utils import db_logins


def main():
    module = AnsibleModule(
        argument_spec=dict(
            engine=dict(type="str", required=True, choices=["postgresql", "mariadb"]),
            login_host=dict(type="str", default="127.0.0.1"),
            login_port=dict(type="int", required=True),
            login_user=dict(type="str", required=True),
            login_password=dict(type="str", required=True, no_log=True),
            database=dict(type="str", required=True),
            app_user=dict(type="str", required=True),
            app_password=dict(type="str", required=True, no_log=True),
            rotate=dict(type="bool", default=False),
            live=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    names = db_logins.login_names(p["app_user"])
    where = "%s:%s" % (p["login_host"], p["login_port"])
    try:
        admin = db_logins.connect(p["engine"], p["login_host"], p["login_port"], p["login_user"],
                                  p["login_password"], p["database"])
    except ImportError as exc:
        module.fail_json(msg="The %s driver is missing on this host (%s); install %s."
                         % (p["engine"], exc, "psycopg2" if p["engine"] == "postgresql" else "PyMySQL"))
    except Exception as exc:
        module.fail_json(msg="Could not log in to %s at %s as its admin %s: %s. Check that the database runs and "
                         "rollcall_db_root_password." % (p["engine"], where, p["login_user"], exc))
    try:
        logins = db_logins.logins_state(admin, p["engine"], names)
    except Exception as exc:
        module.fail_json(msg="Could not read the app's logins on %s: %s" % (where, exc))
    finally:
        admin.close()
    for name in names:
        state = logins[name]
        state["opens"] = False
        if state["exists"] and state["enabled"]:
            try:
                state["opens"] = db_logins.opens(p["engine"], p["login_host"], p["login_port"], name,
                                                 p["app_password"], p["database"])
            except Exception as exc:
                module.fail_json(msg="Could not try the app's login %s on %s: %s" % (name, where, exc))
    try:
        decision = db_logins.plan(logins, p["app_user"], rotate=p["rotate"], live=p["live"])
    except db_logins.LoginError as exc:
        module.fail_json(msg=str(exc), logins=logins)
    module.exit_json(changed=False, logins=logins, **decision)


if __name__ == "__main__":
    main()
