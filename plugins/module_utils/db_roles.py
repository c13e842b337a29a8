# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The database role matrix (issue 12): which login roles a stack has, what each may do, and their passwords.

One login role per job, named after the app's login (``rollcall_db_user``, default ``sms``):

=========  ===================  ============================================================================
job        name                 may
=========  ===================  ============================================================================
app        ``sms``              read and write rows (SELECT, INSERT, UPDATE, DELETE; sequences); no DDL
owner      ``sms_owner``        own the schema: migrations, restores (create, rename, drop its databases)
report     ``sms_report``       read rows
backup     ``sms_backup``       read everything a dump needs (PostgreSQL ``pg_read_all_data``); write nothing
monitor    ``sms_monitor``      server statistics (PostgreSQL ``pg_monitor``; MariaDB PROCESS, REPLICA MONITOR)
=========  ===================  ============================================================================

The server's admin (PostgreSQL ``postgres``, MariaDB ``rollcall_admin`` from the db host only) is used by the
database role alone, to apply this matrix; nothing else logs in as it.

Passwords: the app's is ``rollcall_db_password``; the others are derived from the admin password
(``rollcall_db_root_password``) and the role's name (HMAC-SHA256), unless given in ``rollcall_db_role_passwords``.
The app never sees the admin password, so it cannot derive the others. Rotating the admin password rotates them.
"""

import base64
import hashlib
import hmac

JOBS = ("app", "owner", "report", "backup", "monitor")


def role_names(app_user):
    """{job: role name} for an app login name."""
    return {job: app_user if job == "app" else "%s_%s" % (app_user, job) for job in JOBS}


def derived_password(admin_password, role):
    """A 43-character password for ``role``, derived from the admin password; stable while it is."""
    if not admin_password:
        raise ValueError("the admin password (rollcall_db_root_password) is empty: role passwords derive from it")
    digest = hmac.new(admin_password.encode("utf-8"), ("rollcall-db-role:%s" % role).encode("utf-8"),
                      hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


ADMINS = {"postgresql": ["postgres"], "mariadb": ["root", "rollcall_admin"], "mysql": ["root", "rollcall_admin"]}


def expected_roles(app_user, engine):
    """The matrix as the security audit compares it: [{name, superuser, login}], the admins superuser."""
    if engine not in ADMINS:
        return []
    roles = [{"name": name, "superuser": False, "login": True} for name in role_names(app_user).values()]
    # The app's second login, used in turn with the first (db_logins.py); only one of them may log in at a time.
    roles.append({"name": app_user + "_alt", "superuser": False, "login": True})
    return roles + [{"name": name, "superuser": True, "login": True} for name in ADMINS[engine]]
