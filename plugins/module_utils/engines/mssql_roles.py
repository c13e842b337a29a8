# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""SQL Server: the role matrix (issue 12, seed 000's "least privilege access model by role") as database roles.

The matrix is data (``MATRIX``): Rollcall's service roles (a schema owner for migrations only, the app's DML
role, read-only reporting, backup, monitoring) and seed 000's people roles (ICT admin, leadership, teachers,
admin staff). Every right is a schema-level (or database-level) grant to a *role*; nobody gets a table. People
reach data through views and stored procedures in their own schemas (``teaching``, ``office``, ``reporting``),
owned by the owner of the app schema, so SQL Server's ownership chain lets a view or procedure read the app's
tables while the people roles are DENIED the app schema itself ("no direct table access").

``STATE_SQL`` reads what the database holds (principals, role members, permissions, schemas), ``parse_state``
turns its rows into a state, and ``plan(desired, current)`` (pure) returns the ordered T-SQL that brings the
state to the matrix, the state it leads to, a before/after text for ``--diff``, the roles it would not drop
(they own objects) and findings it does not change (users with direct grants, db_owner members). ``plan`` of
the state it leads to is empty: that is what makes the module idempotent. ``apply`` runs the statements in one
transaction.

No SQL Server runs on our machines: tests/unit/test_mssql_roles.py checks every statement and parsed row;
tests/integration/test_mssql_server.py applies the matrix to a real server when ROLLCALL_MSSQL_HOST is set.
"""

import contextlib
import copy
import re

from .base import EngineError
from .mssql import _first_line, quote_name

DML = ("SELECT", "INSERT", "UPDATE", "DELETE")
SCHEMA_KEYS = ("app", "reporting", "teaching", "office")
DEFAULT_SCHEMAS = {"app": "dbo", "reporting": "reporting", "teaching": "teaching", "office": "office"}
FIXED_ROLES = ("db_owner", "db_securityadmin", "db_accessadmin", "db_backupoperator", "db_ddladmin",
               "db_datawriter", "db_datareader", "db_denydatawriter", "db_denydatareader", "public")
# Principals SQL Server keeps for itself: never findings.
SYSTEM_PRINCIPALS = ("dbo", "guest", "sys", "INFORMATION_SCHEMA", "public")

# The matrix. ``member_of``: fixed roles or roles of this matrix the role belongs to. ``grants``: (GRANT or DENY,
# "database" or a schema key of SCHEMA_KEYS, permissions). Schema keys are resolved by ``desired_matrix``.
MATRIX = (
    {"role": "rollcall_owner", "who": "migrations only (the migrate step's login); never the app",
     "member_of": ("db_ddladmin",),
     "grants": (("GRANT", "app", DML + ("EXECUTE", "REFERENCES")),)},
    {"role": "rollcall_app", "who": "the SMS app: the DML it needs on the app schema, no DDL",
     "member_of": (),
     "grants": (("GRANT", "app", DML + ("EXECUTE",)),)},
    {"role": "rollcall_report", "who": "read-only reporting: the views of the reporting schema",
     "member_of": (),
     "grants": (("GRANT", "reporting", ("SELECT",)),)},
    {"role": "rollcall_backup", "who": "backups: BACKUP DATABASE, and the row counts recorded after it",
     "member_of": ("db_backupoperator",),
     "grants": (("GRANT", "app", ("SELECT",)),)},
    {"role": "rollcall_monitor", "who": "health checks: the database's state, no data",
     "member_of": (),
     "grants": (("GRANT", "database", ("VIEW DATABASE STATE",)),)},
    {"role": "ict_admin", "who": "seed 000 ICT admin: backups, monitoring and the schema's definition, no pupil data",
     "member_of": ("db_backupoperator", "rollcall_monitor"),
     "grants": (("GRANT", "database", ("VIEW DEFINITION",)), ("DENY", "app", DML))},
    {"role": "leadership", "who": "seed 000 leadership: the reports (read-only)",
     "member_of": ("rollcall_report",),
     "grants": (("DENY", "app", DML),)},
    {"role": "teachers", "who": "seed 000 teachers: the views and procedures of the teaching schema",
     "member_of": (),
     "grants": (("GRANT", "teaching", ("SELECT", "EXECUTE")), ("DENY", "app", DML))},
    {"role": "admin_staff", "who": "seed 000 admin staff: the views and procedures of the office schema",
     "member_of": (),
     "grants": (("GRANT", "office", ("SELECT", "EXECUTE")), ("DENY", "app", DML))},
)

# What a database role cannot carry: server-level rights, granted to logins by hand (reported, never run).
SERVER_LEVEL = (
    "rollcall_monitor: the sessions and requests a health check reads need VIEW SERVER STATE, a server-level "
    "permission: GRANT VIEW SERVER STATE TO [<monitoring login>] in master",
    "rollcall_backup: the backup history in msdb needs a user in msdb with SELECT on dbo.backupset; RESTORE needs "
    "dbcreator: restores run as an administrator's login, not in daily use",
    "rollcall_owner: only the migrations' login is a member; the app's login is a member of rollcall_app",
)

PERMISSION = re.compile(r"[A-Z]+( [A-Z]+)*")
STATES = ("GRANT", "DENY", "GRANT_WITH_GRANT_OPTION")

# Everything the plan reads, in one result set: kind says which columns mean what.
STATE_SQL = """
SELECT CAST(N'principal' AS nvarchar(16)) AS kind, p.name AS principal, CAST(p.type AS nvarchar(2)) AS principal_type,
       CAST(p.is_fixed_role AS int) AS is_fixed_role,
       (SELECT COUNT(*) FROM sys.schemas s WHERE s.principal_id = p.principal_id)
       + (SELECT COUNT(*) FROM sys.objects o WHERE o.principal_id = p.principal_id)
       + (SELECT COUNT(*) FROM sys.database_principals q WHERE q.owning_principal_id = p.principal_id) AS owns,
       CAST(NULL AS sysname) AS name, CAST(NULL AS nvarchar(60)) AS state, CAST(NULL AS nvarchar(60)) AS class,
       CAST(NULL AS sysname) AS schema_name, CAST(NULL AS sysname) AS object_name, CAST(NULL AS sysname) AS column_name
  FROM sys.database_principals p
UNION ALL
SELECT N'member', r.name, NULL, NULL, NULL, m.name, NULL, NULL, NULL, NULL, NULL
  FROM sys.database_role_members rm
  JOIN sys.database_principals r ON r.principal_id = rm.role_principal_id
  JOIN sys.database_principals m ON m.principal_id = rm.member_principal_id
UNION ALL
SELECT N'permission', g.name, NULL, NULL, NULL, dp.permission_name, dp.state_desc, dp.class_desc,
       CASE dp.class WHEN 3 THEN SCHEMA_NAME(dp.major_id) WHEN 1 THEN OBJECT_SCHEMA_NAME(dp.major_id) END,
       CASE WHEN dp.class = 1 THEN OBJECT_NAME(dp.major_id)
            WHEN dp.class NOT IN (0, 3) THEN CAST(dp.major_id AS nvarchar(20)) END,
       CASE WHEN dp.class = 1 AND dp.minor_id > 0 THEN COL_NAME(dp.major_id, dp.minor_id) END
  FROM sys.database_permissions dp
  JOIN sys.database_principals g ON g.principal_id = dp.grantee_principal_id
UNION ALL
SELECT N'schema', s.name, NULL, NULL, NULL, USER_NAME(s.principal_id), NULL, NULL, NULL, NULL, NULL
  FROM sys.schemas s;
"""


# ------------------------------------------------------------------ the desired state
def desired_matrix(schemas=None, members=None, absent_roles=()):
    """The matrix with its schema names, the exact members of the roles whose members are given, the roles to drop.

    ``schemas`` maps the keys of SCHEMA_KEYS to schema names (defaults: DEFAULT_SCHEMAS); ``members`` maps a role
    of the matrix to the database users (or roles) that are exactly its members; roles not in ``members`` keep
    the members they have. ``absent_roles``: roles (not of the matrix) to drop when they own nothing.
    """
    names = dict(DEFAULT_SCHEMAS)
    for key, value in (schemas or {}).items():
        if key not in SCHEMA_KEYS:
            raise EngineError("unknown schema %r: the matrix has the schemas %s" % (key, ", ".join(SCHEMA_KEYS)))
        if value is not None:
            names[key] = value
    for value in names.values():
        quote_name(value)
    if len({value.lower() for value in names.values()}) != len(names):
        raise EngineError("the schemas %s must be four different schemas (people are denied the app schema and "
                          "granted their own)" % ", ".join("%s=%s" % item for item in sorted(names.items())))
    role_names = [entry["role"] for entry in MATRIX]
    exact = {}
    for role, people in (members or {}).items():
        if role not in role_names:
            raise EngineError("members are given for %r, which is not a role of the matrix (%s)"
                              % (role, ", ".join(role_names)))
        if isinstance(people, str) or not isinstance(people, (list, tuple)):
            raise EngineError("the members of %s must be a list of database user names" % role)
        for person in people:
            quote_name(person)
            if person == role:
                raise EngineError("role %s cannot be a member of itself" % role)
        exact[role] = sorted(set(people))
    absent = []
    for role in absent_roles or ():
        quote_name(role)
        if role in role_names:
            raise EngineError("%s is a role of the matrix; it cannot also be absent" % role)
        if role in FIXED_ROLES or role in SYSTEM_PRINCIPALS:
            raise EngineError("%s is a role SQL Server keeps; it cannot be dropped" % role)
        if any(role in people for people in exact.values()):
            raise EngineError("%s is absent and also given as a member; choose one" % role)
        absent.append(role)
    roles = []
    for entry in MATRIX:
        grants = {}
        for state, where, permissions in entry["grants"]:
            securable = ("DATABASE",) if where == "database" else ("SCHEMA", names[where])
            for permission in permissions:
                grants[(securable, permission)] = state
        roles.append({"role": entry["role"], "member_of": list(entry["member_of"]), "grants": grants})
    return {"schemas": names, "roles": roles, "members": exact, "absent": absent}


# ------------------------------------------------------------------ the current state
def parse_state(rows):
    """The rows of STATE_SQL as {principals, members, permissions, schemas}."""
    state = {"principals": {}, "members": set(), "permissions": {}, "schemas": {}}
    for row in rows:
        kind = row.get("kind")
        if kind == "principal":
            state["principals"][row["principal"]] = {"type": (row.get("principal_type") or "").strip(),
                                                     "fixed": bool(row.get("is_fixed_role")),
                                                     "owns": int(row.get("owns") or 0)}
        elif kind == "member":
            state["members"].add((row["principal"], row["name"]))
        elif kind == "permission":
            if row.get("state") not in STATES:
                raise EngineError("unexpected permission state %r of %s" % (row.get("state"), row["principal"]))
            key = (row["principal"], securable_of(row), row["name"])
            state["permissions"][key] = row["state"]
        elif kind == "schema":
            state["schemas"][row["principal"]] = row["name"]
        else:
            raise EngineError("unexpected row from the role query: kind %r" % (kind,))
    return state


def securable_of(row):
    kind = row.get("class")
    if kind == "DATABASE":
        return ("DATABASE",)
    if kind == "SCHEMA":
        return ("SCHEMA", row["schema_name"])
    if kind == "OBJECT_OR_COLUMN":
        return ("OBJECT", row["schema_name"], row["object_name"], row.get("column_name"))
    return ("OTHER", kind, row.get("object_name"))


def securable_sql(securable):
    """The ON clause of a GRANT / DENY / REVOKE (None for a securable Rollcall does not write statements for)."""
    if securable[0] == "DATABASE":
        return ""
    if securable[0] == "SCHEMA":
        return " ON SCHEMA::%s" % quote_name(securable[1])
    if securable[0] == "OBJECT":
        text = " ON OBJECT::%s.%s" % (quote_name(securable[1]), quote_name(securable[2]))
        return text + (" (%s)" % quote_name(securable[3]) if securable[3] else "")
    return None


def securable_text(securable):
    """``ON ...`` as people read it: ON DATABASE, ON SCHEMA::[x], ON OBJECT::[s].[t] ([c]), ON <class> <id>."""
    if securable[0] == "OTHER":
        return "ON %s %s" % (securable[1], securable[2])
    return securable_sql(securable).strip() or "ON DATABASE"


def check_permission(permission):
    if not isinstance(permission, str) or not PERMISSION.fullmatch(permission):
        raise EngineError("invalid SQL Server permission name %r" % (permission,))
    return permission


# ------------------------------------------------------------------ the statements
def create_role_sql(role, owner="dbo"):
    return "CREATE ROLE %s AUTHORIZATION %s;" % (quote_name(role), quote_name(owner))


def create_schema_sql(schema, owner):
    return "CREATE SCHEMA %s AUTHORIZATION %s;" % (quote_name(schema), quote_name(owner))


def member_sql(role, member, add=True):
    return "ALTER ROLE %s %s MEMBER %s;" % (quote_name(role), "ADD" if add else "DROP", quote_name(member))


def drop_role_sql(role):
    return "DROP ROLE %s;" % quote_name(role)


def permission_sql(verb, permissions, securable, principal, cascade=False):
    """GRANT / DENY / REVOKE / REVOKE GRANT OPTION FOR of ``permissions`` on ``securable``."""
    names = ", ".join(check_permission(p) for p in permissions)
    on = securable_sql(securable)
    if on is None:
        raise EngineError("Rollcall does not write statements for %s" % securable_text(securable))
    to = "FROM" if verb.startswith("REVOKE") else "TO"
    return "%s %s%s %s %s%s;" % (verb, names, on, to, quote_name(principal), " CASCADE" if cascade else "")


# ------------------------------------------------------------------ the plan
def plan(desired, current):
    """What brings ``current`` (parse_state) to ``desired`` (desired_matrix); pure.

    Returns {statements, state_after, diff: {before, after}, kept, findings}: CREATE ROLE, CREATE SCHEMA,
    ALTER ROLE ... ADD MEMBER, GRANT / DENY, then the least-privilege removals (REVOKE of rights beyond the
    matrix, DROP MEMBER of memberships beyond it), then the absent roles (DROP ROLE, unless the role owns
    schemas, objects or roles: then it is kept and said so).
    """
    principals = current["principals"]
    roles = desired["roles"]
    names = [entry["role"] for entry in roles]
    problems = ["%s exists in the database as a %s, not a role" % (name, _kind(principals[name]["type"]))
                for name in names if name in principals and principals[name]["type"] != "R"]
    wanted = set()
    for entry in roles:
        wanted.update((parent, entry["role"]) for parent in entry["member_of"])
    for role, people in desired["members"].items():
        wanted.update((role, person) for person in people)
    missing = sorted({member for _role, member in wanted if member not in principals and member not in names})
    if missing:
        problems.append("%s %s not in the database: create each user first (CREATE USER [name] FOR LOGIN "
                        "[name]) and run again" % (", ".join(missing), "is" if len(missing) == 1 else "are"))
    problems += ["%s exists as a %s, not a role; it cannot be dropped as one" % (name, _kind(principals[name]["type"]))
                 for name in desired["absent"] if name in principals and principals[name]["type"] != "R"]
    if problems:
        raise EngineError("; ".join(problems))

    ops = []  # (statement, change of the state)
    for name in names:
        if name not in principals:
            ops.append((create_role_sql(name), ("role", name, True)))
    app = desired["schemas"]["app"]
    owner = current["schemas"].get(app) or "dbo"
    findings = []
    for key in SCHEMA_KEYS:
        schema = desired["schemas"][key]
        if schema not in current["schemas"]:
            ops.append((create_schema_sql(schema, owner), ("schema", schema, owner)))
        elif key != "app" and current["schemas"][schema] != owner:
            findings.append("schema %s is owned by %s, the app schema %s by %s: the ownership chain is broken, so "
                            "its views and procedures cannot reach the app's tables for roles denied them; "
                            "ALTER AUTHORIZATION ON SCHEMA::%s TO %s"
                            % (quote_name(schema), quote_name(current["schemas"][schema]), quote_name(app),
                               quote_name(owner), quote_name(schema), quote_name(owner)))
    for role, member in _ordered(wanted, names):
        if (role, member) not in current["members"]:
            ops.append((member_sql(role, member), ("member", role, member, True)))

    grants = []  # (verb, securable, principal, cascade, permission, new state)
    desired_grants = {}
    for entry in roles:
        for (securable, permission), state in entry["grants"].items():
            desired_grants[(entry["role"], securable, permission)] = state
            now = current["permissions"].get((entry["role"], securable, permission))
            if now == state:
                continue
            if state == "GRANT" and now == "GRANT_WITH_GRANT_OPTION":
                grants.append(("REVOKE GRANT OPTION FOR", securable, entry["role"], True, permission, "GRANT"))
            else:
                grants.append((state, securable, entry["role"], now == "GRANT_WITH_GRANT_OPTION", permission, state))
    for (grantee, securable, permission), state in sorted(current["permissions"].items(), key=_permission_key):
        if grantee not in names or (grantee, securable, permission) in desired_grants:
            continue
        if securable[0] == "OTHER":
            findings.append("%s has %s %s %s, beyond the matrix; Rollcall does not revoke rights on that kind "
                            "of securable: REVOKE it by hand" % (grantee, state, permission, securable_text(securable)))
            continue
        grants.append(("REVOKE", securable, grantee, state == "GRANT_WITH_GRANT_OPTION", permission, None))
    ops += _grouped(grants)

    exact = desired["members"]
    for role, member in sorted(current["members"]):
        if (role, member) in wanted or role in desired["absent"] or member in desired["absent"]:
            continue
        if member in names or role in exact:
            ops.append((member_sql(role, member, add=False), ("member", role, member, False)))

    kept = []
    for name in desired["absent"]:
        if name not in principals:
            continue
        owns = principals[name]["owns"]
        if owns:
            kept.append({"role": name, "owns": owns,
                         "reason": "%s owns %d schema(s), object(s) or role(s) and is kept: transfer them "
                                   "(ALTER AUTHORIZATION ON SCHEMA::[schema] TO [dbo]) and run again" % (name, owns)})
            continue
        for role, member in sorted(current["members"]):
            if name in (role, member):
                ops.append((member_sql(role, member, add=False), ("member", role, member, False)))
        ops.append((drop_role_sql(name), ("role", name, False)))

    findings += _findings(current, names)
    after = _apply(current, [change for _sql, change in ops])
    shown = names + list(desired["absent"])
    return {"statements": [sql for sql, _change in ops], "state_after": after, "kept": kept, "findings": findings,
            "diff": {"before": describe(current, shown, desired["schemas"]),
                     "after": describe(after, shown, desired["schemas"])}}


def _kind(code):
    return {"S": "SQL user", "U": "Windows user", "G": "Windows group", "E": "external user",
            "X": "external group", "A": "application role", "C": "certificate user",
            "K": "asymmetric key user"}.get(code, "principal of type %s" % code)


def _ordered(pairs, names):
    """Memberships in matrix order (role of the member first), then by name."""
    rank = {name: index for index, name in enumerate(names)}
    return sorted(pairs, key=lambda pair: (rank.get(pair[1], len(names)), rank.get(pair[0], len(names)), pair))


def _permission_key(item):
    (grantee, securable, permission), _state = item
    return (grantee, tuple("" if part is None else str(part) for part in securable), permission)


def _grouped(grants):
    """One statement per (verb, securable, principal, cascade), permissions in the order they came."""
    groups = {}
    for verb, securable, principal, cascade, permission, state in grants:
        groups.setdefault((verb, securable, principal, cascade), []).append((permission, state))
    ops = []
    for (verb, securable, principal, cascade), items in groups.items():
        sql = permission_sql(verb, [p for p, _state in items], securable, principal, cascade)
        ops.append((sql, ("permissions", principal, securable, items)))
    return ops


def _findings(state, names):
    """What the matrix does not manage but seed 000 forbids: db_owner in daily use, rights given to users."""
    found = []
    for role, member in sorted(state["members"]):
        if role == "db_owner" and member not in SYSTEM_PRINCIPALS and member not in names:
            found.append("%s is a member of db_owner: nothing should be db_owner in daily use (migrations use "
                         "rollcall_owner); ALTER ROLE [db_owner] DROP MEMBER %s once nothing needs it"
                         % (member, quote_name(member)))
    for (grantee, securable, permission), grant in sorted(state["permissions"].items(), key=_permission_key):
        kind = state["principals"].get(grantee, {}).get("type", "R")
        if kind in ("R", "A") or grantee in SYSTEM_PRINCIPALS or grantee in names:
            continue
        if securable == ("DATABASE",) and permission == "CONNECT":
            continue
        found.append("user %s has %s %s %s directly: seed 000 asks for access by role only; grant it to a role "
                     "of the matrix and REVOKE it from the user" % (grantee, grant, permission,
                                                                    securable_text(securable)))
    return found


def _apply(state, changes):
    """The state after ``changes`` (what the statements do, as plan() sees it)."""
    after = copy.deepcopy(state)
    for change in changes:
        if change[0] == "role":
            _kind, name, create = change
            if create:
                after["principals"][name] = {"type": "R", "fixed": False, "owns": 0}
            else:
                after["principals"].pop(name, None)
                after["members"] = {pair for pair in after["members"] if name not in pair}
                after["permissions"] = {k: v for k, v in after["permissions"].items() if k[0] != name}
        elif change[0] == "schema":
            _kind, schema, owner = change
            after["schemas"][schema] = owner
            if owner in after["principals"]:
                after["principals"][owner]["owns"] += 1
        elif change[0] == "member":
            _kind, role, member, add = change
            (after["members"].add if add else after["members"].discard)((role, member))
        elif change[0] == "permissions":
            _kind, principal, securable, items = change
            for permission, state_now in items:
                if state_now is None:
                    after["permissions"].pop((principal, securable, permission), None)
                else:
                    after["permissions"][(principal, securable, permission)] = state_now
    return after


def describe(state, roles, schemas):
    """A line per fact about ``roles`` and the matrix's schemas, sorted: the text ``--diff`` compares."""
    lines = []
    for key in SCHEMA_KEYS:
        schema = schemas[key]
        owner = state["schemas"].get(schema)
        lines.append("schema %s (%s): %s" % (quote_name(schema), key,
                                             "owner %s" % quote_name(owner) if owner else "absent"))
    for role in roles:
        if role not in state["principals"]:
            continue
        lines.append("role %s" % quote_name(role))
        for parent, member in sorted(state["members"]):
            if member == role:
                lines.append("role %s: member of %s" % (quote_name(role), quote_name(parent)))
            if parent == role:
                lines.append("role %s: has member %s" % (quote_name(role), quote_name(member)))
        for (grantee, securable, permission), grant in sorted(state["permissions"].items(), key=_permission_key):
            if grantee == role:
                lines.append("role %s: %s %s %s" % (quote_name(role), grant, permission, securable_text(securable)))
    return "\n".join(sorted(lines)) + "\n"


# ------------------------------------------------------------------ running it
def apply(connection, statements):
    """Run ``statements`` in one transaction on ``connection`` (a pymssql connection); all or nothing."""
    cursor = connection.cursor()
    done = 0
    try:
        cursor.execute("SET XACT_ABORT ON; BEGIN TRANSACTION;")
        for sql in statements:
            cursor.execute(sql)
            done += 1
        cursor.execute("COMMIT TRANSACTION;")
    except Exception as exc:  # noqa: BLE001 - pymssql's errors and the connection's; all mean "rolled back"
        with contextlib.suppress(Exception):
            cursor.execute("IF @@TRANCOUNT > 0 ROLLBACK TRANSACTION;")
        failed = statements[done] if done < len(statements) else "COMMIT TRANSACTION;"
        raise EngineError("SQL Server refused %s (%s); the transaction was rolled back, nothing was changed: fix "
                          "the cause and run again" % (failed, _first_line(exc))) from None
    finally:
        with contextlib.suppress(Exception):
            connection.close()


def manage(engine, desired, check_mode=False):
    """Read the state of ``engine.target.database``, plan, and (unless check mode) apply; the module's result."""
    database = engine.target.database
    current = parse_state(engine.query(STATE_SQL, database))
    result = plan(desired, current)
    if result["statements"] and not check_mode:
        apply(engine.connect(database), result["statements"])
    return {"changed": bool(result["statements"]), "statements": result["statements"], "kept": result["kept"],
            "findings": result["findings"], "server_level": list(SERVER_LEVEL), "diff": result["diff"],
            "roles": [{"role": entry["role"], "who": entry["who"]} for entry in MATRIX],
            "schemas": desired["schemas"]}
