# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jinja filters over plugins/module_utils/db_roles.py: the database role matrix's names and passwords."""

from ansible.errors import AnsibleFilterError

from ansible_collections.rollcall.ops.plugins.module_utils.db_roles import derived_password, expected_roles, role_names


def db_role_names(app_user):
    return role_names(app_user)


def db_expected_roles(app_user, engine):
    return expected_roles(app_user, engine)


def db_role_password(role, admin_password, given=None):
    """``given[role]`` when set, else the password derived from the admin password."""
    if given and given.get(role):
        return given[role]
    try:
        return derived_password(admin_password, role)
    except ValueError as exc:
        raise AnsibleFilterError(str(exc)) from None


class FilterModule:
    def filters(self):
        return {"db_role_names": db_role_names, "db_role_password": db_role_password,
                "db_expected_roles": db_expected_roles}
