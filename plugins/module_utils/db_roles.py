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


# ------------------------------------------------------------------------------------------------------------------
# Applying the matrix on PostgreSQL (module rollcall.ops.db_role_matrix), in one transaction of one admin session:
# a deploy used to spend some 18 module runs (community.postgresql's user, membership, owner, query and privs, one
# per loop item) on a matrix that is nearly always in place already.

# The role attributes the matrix sets, in the order they are written (PG_STATE_SQL reads the same ones).
FLAG_ORDER = ("SUPERUSER", "CREATEDB", "CREATEROLE", "REPLICATION", "BYPASSRLS", "LOGIN")

# What each login role may do on the server; the app's login only loses these (its LOGIN is app_login.yml's).
PG_FLAGS = {
    "owner": {"LOGIN": True, "CREATEDB": True, "SUPERUSER": False, "CREATEROLE": False, "REPLICATION": False,
              "BYPASSRLS": False},
    "report": {"LOGIN": True, "CREATEDB": False, "SUPERUSER": False, "CREATEROLE": False, "REPLICATION": False,
               "BYPASSRLS": False},
    "app": {"SUPERUSER": False, "CREATEDB": False, "CREATEROLE": False, "REPLICATION": False, "BYPASSRLS": False},
}
PG_FLAGS["backup"] = PG_FLAGS["monitor"] = PG_FLAGS["report"]

# Memberships (job -> roles it is granted): the owner may act as the app (it restores databases the app's login
# owned before the matrix), see whether every session of the live database is idle and end them (a restore's swap:
# pg_read_all_stats, pg_signal_backend); backup reads everything, monitor reads statistics. "app" stands for the
# app's login. Without pg_read_all_stats the state of another role's session (the Prometheus exporter's, as
# sms_monitor) reads as NULL, not idle, and the swap gave it its whole 5 s drain: every request waited 5 s.
PG_MEMBERSHIPS = {"owner": ["app", "pg_signal_backend", "pg_read_all_stats"], "backup": ["pg_read_all_data"],
                  "monitor": ["pg_monitor"]}

# Privileges in the schema: on what is there now (GRANT ... ON ALL ... IN SCHEMA) and on what the owner role's
# migrations create later (ALTER DEFAULT PRIVILEGES FOR ROLE owner).
PG_PRIVILEGES = [
    ("app", "TABLES", "SELECT, INSERT, UPDATE, DELETE"),
    ("app", "SEQUENCES", "USAGE, SELECT, UPDATE"),
    ("report", "TABLES", "SELECT"),
    ("report", "SEQUENCES", "SELECT"),
]

CREATED_ROLES = ("owner", "report", "backup", "monitor")


def role_comment(job):
    return "rollcall %s role (roles/database: the role matrix)" % job


def password_matches(stored, role, password):
    """Does the verifier PostgreSQL keeps (pg_authid.rolpassword) belong to ``password``? SCRAM-SHA-256 or md5."""
    if not stored or password is None:
        return False
    if stored.startswith("SCRAM-SHA-256$"):
        try:
            iterations_salt, keys = stored[len("SCRAM-SHA-256$"):].split("$", 1)
            iterations, salt = iterations_salt.split(":", 1)
            stored_key = keys.split(":", 1)[0]
            salted = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), base64.b64decode(salt), int(iterations))
        except (ValueError, TypeError):
            return False
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        return hmac.compare_digest(base64.b64encode(hashlib.sha256(client_key).digest()).decode("ascii"), stored_key)
    if stored.startswith("md5"):
        digest = "md5" + hashlib.md5((password + role).encode("utf-8")).hexdigest()  # noqa: S324 - PostgreSQL's md5
        return hmac.compare_digest(digest, stored)
    return False


def role_plan(job, name, current, password=None):
    """What to do to one role: [(kind, detail)] with kind create | flags | password | comment; [] when in place.

    current: None (no such role) or {"flags": {FLAG: bool}, "password": verifier or None, "comment": str or None}.
    password: the role's password (None: leave it; the app's is app_login.yml's).
    """
    wanted = PG_FLAGS[job]
    if current is None:
        return [("create", wanted)] + ([("comment", role_comment(job))] if job in CREATED_ROLES else [])
    steps = []
    flags = {flag: value for flag, value in wanted.items() if current["flags"].get(flag) != value}
    if flags:
        steps.append(("flags", flags))
    if password is not None and not password_matches(current.get("password"), name, password):
        steps.append(("password", None))
    if job in CREATED_ROLES and current.get("comment") != role_comment(job):
        steps.append(("comment", role_comment(job)))
    return steps


def flags_sql(flags):
    """'LOGIN NOSUPERUSER ...' for {FLAG: bool}, in a fixed order."""
    return " ".join(("" if flags[flag] else "NO") + flag for flag in FLAG_ORDER if flag in flags)


def describe(job, name, steps):
    """One line per step, for the module's changes (never a password)."""
    lines = []
    for kind, detail in steps:
        if kind == "create":
            lines.append("create role %s (%s)" % (name, flags_sql(detail)))
        elif kind == "flags":
            lines.append("set %s on role %s" % (flags_sql(detail), name))
        elif kind == "password":
            lines.append("set the password of role %s" % name)
        elif kind == "comment":
            lines.append("comment role %s" % name)
    return lines


# The state the matrix is about, read before and after applying it (in the same transaction): what changed is what
# differs, the way community.postgresql.postgresql_privs decides. Passwords are not in it (role_plan decides those).
PG_STATE_SQL = """
SELECT json_build_object(
  'roles', (SELECT json_object_agg(r.rolname, json_build_object(
              'flags', json_build_object('SUPERUSER', r.rolsuper, 'CREATEDB', r.rolcreatedb,
                                         'CREATEROLE', r.rolcreaterole, 'REPLICATION', r.rolreplication,
                                         'BYPASSRLS', r.rolbypassrls, 'LOGIN', r.rolcanlogin),
              'password', r.rolpassword,
              'comment', shobj_description(r.oid, 'pg_authid')))
            FROM pg_authid r WHERE r.rolname::text = ANY(%(names)s::text[])),
  'memberships', (SELECT coalesce(json_agg(DISTINCT m.rolname || ' in ' || g.rolname), '[]')
                  FROM pg_auth_members am JOIN pg_roles g ON g.oid = am.roleid JOIN pg_roles m ON m.oid = am.member
                  WHERE m.rolname::text = ANY(%(names)s::text[])),
  'database_owner', (SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()),
  'app_owned', (SELECT count(*) FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
                JOIN pg_roles o ON o.oid = c.relowner
                WHERE s.nspname NOT IN ('pg_catalog', 'information_schema') AND o.rolname = %(app)s),
  'privileges', (SELECT coalesce(json_agg(c.relname || ' ' || coalesce(c.relacl::text, '') ORDER BY c.relname),
                                 '[]')
                 FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
                 WHERE s.nspname = %(schema)s AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')),
  'default_privileges', (SELECT coalesce(json_agg(d.defaclobjtype::text || ' ' || d.defaclacl::text ORDER BY 1), '[]')
                         FROM pg_default_acl d JOIN pg_roles o ON o.oid = d.defaclrole
                         JOIN pg_namespace s ON s.oid = d.defaclnamespace
                         WHERE o.rolname = %(owner)s AND s.nspname = %(schema)s))
"""


def state_lines(state, names):
    """The state as sorted lines without passwords, for --diff."""
    lines = []
    for name in sorted(names.values()):
        role = (state.get("roles") or {}).get(name)
        if role is None:
            lines.append("role %s: absent" % name)
        else:
            lines.append("role %s: %s" % (name, flags_sql(role["flags"])))
    lines += ["membership: %s" % item for item in state.get("memberships") or []]
    lines.append("database owner: %s" % state.get("database_owner"))
    lines.append("objects the app's login owns: %s" % state.get("app_owned"))
    lines += ["privileges: %s" % item for item in state.get("privileges") or []]
    lines += ["default privileges: %s" % item for item in state.get("default_privileges") or []]
    return lines


def apply_pg(connection, names, passwords, schema="public", check_mode=False):
    """Apply the matrix through an admin connection to the app's database, in one transaction (rolled back in
    check mode). names: role_names(); passwords: {role name: password} for the created roles.
    Returns (changes, before_lines, after_lines)."""
    from psycopg2 import sql

    ident = sql.Identifier

    def read(cursor):
        cursor.execute(PG_STATE_SQL, {"names": list(names.values()), "app": names["app"], "owner": names["owner"],
                                      "schema": schema})
        return cursor.fetchone()[0]

    changes = []
    connection.autocommit = False
    cursor = connection.cursor()
    try:
        before = read(cursor)
        roles = before.get("roles") or {}
        for job in CREATED_ROLES + ("app",):
            name = names[job]
            steps = role_plan(job, name, roles.get(name), passwords.get(name) if job != "app" else None)
            changes += describe(job, name, steps)
            for kind, detail in steps:
                if kind == "create" and name in passwords:
                    cursor.execute(sql.SQL("CREATE ROLE {} " + flags_sql(detail) + " PASSWORD %s").format(ident(name)),
                                   (passwords[name],))
                elif kind == "create":  # the app's login, made by the container: only absent on a hand-made server
                    cursor.execute(sql.SQL("CREATE ROLE {} " + flags_sql(detail)).format(ident(name)))
                elif kind == "flags":
                    cursor.execute(sql.SQL("ALTER ROLE {} " + flags_sql(detail)).format(ident(name)))
                elif kind == "password":
                    cursor.execute(sql.SQL("ALTER ROLE {} PASSWORD %s").format(ident(name)), (passwords[name],))
                elif kind == "comment":
                    cursor.execute(sql.SQL("COMMENT ON ROLE {} IS %s").format(ident(name)), (detail,))
        for job, groups in PG_MEMBERSHIPS.items():
            for group in groups:
                cursor.execute(sql.SQL("GRANT {} TO {}").format(ident(names.get(group, group)), ident(names[job])))
        cursor.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
            ident(connection.get_dsn_parameters()["dbname"]), ident(names["owner"])))
        owned = int(before.get("app_owned") or 0)
        if owned:
            changes.append("give the %d objects the app's login owns to %s" % (owned, names["owner"]))
        # Not even tried in check mode: REASSIGN locks every table it gives away, check mode must not hold the app up.
        if owned and not check_mode:
            cursor.execute(sql.SQL("REASSIGN OWNED BY {} TO {}").format(ident(names["app"]), ident(names["owner"])))
        for job, kind, privileges in PG_PRIVILEGES:
            cursor.execute(sql.SQL("GRANT " + privileges + " ON ALL " + kind + " IN SCHEMA {} TO {}").format(
                ident(schema), ident(names[job])))
            cursor.execute(sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} GRANT " + privileges + " ON "
                                   + kind + " TO {}").format(ident(names["owner"]), ident(schema), ident(names[job])))
        after = read(cursor)
    except Exception:
        connection.rollback()
        raise
    finally:
        cursor.close()
    before_lines, after_lines = state_lines(before, names), state_lines(after, names)
    # Roles are described by their steps above; the rest by what the transaction changed.
    changes += sorted(line for line in set(after_lines) - set(before_lines)
                      if not line.startswith(("role ", "objects the app's login owns")))
    if check_mode:
        connection.rollback()
    else:
        connection.commit()
    return changes, before_lines, after_lines
