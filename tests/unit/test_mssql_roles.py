"""SQL Server's role matrix (issue 12) without a server: the T-SQL we generate, the rows we parse, the plan.

``FakeServer`` interprets the statement forms Rollcall writes (CREATE ROLE / SCHEMA, ALTER ROLE ... MEMBER, GRANT,
DENY, REVOKE, DROP ROLE) inside BEGIN / COMMIT / ROLLBACK, and answers STATE_SQL from what it holds, so the module
can be run twice against it. Whether real SQL Server accepts the T-SQL is tests/integration/test_mssql_server.py's
job (gated on ROLLCALL_MSSQL_HOST).
"""

import json
import re

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.rollcall.ops.plugins.module_utils.engines import mssql
from ansible_collections.rollcall.ops.plugins.module_utils.engines import mssql_roles as roles
from ansible_collections.rollcall.ops.plugins.module_utils.engines.base import EngineError, Target

PASSWORD = "roles-admin-password-never-shown"  # noqa: S105 - a test credential
DML = ["SELECT", "INSERT", "UPDATE", "DELETE"]

NEW_DATABASE = [
    "CREATE ROLE [rollcall_owner] AUTHORIZATION [dbo];",
    "CREATE ROLE [rollcall_app] AUTHORIZATION [dbo];",
    "CREATE ROLE [rollcall_report] AUTHORIZATION [dbo];",
    "CREATE ROLE [rollcall_backup] AUTHORIZATION [dbo];",
    "CREATE ROLE [rollcall_monitor] AUTHORIZATION [dbo];",
    "CREATE ROLE [ict_admin] AUTHORIZATION [dbo];",
    "CREATE ROLE [leadership] AUTHORIZATION [dbo];",
    "CREATE ROLE [teachers] AUTHORIZATION [dbo];",
    "CREATE ROLE [admin_staff] AUTHORIZATION [dbo];",
    "CREATE SCHEMA [reporting] AUTHORIZATION [dbo];",
    "CREATE SCHEMA [teaching] AUTHORIZATION [dbo];",
    "CREATE SCHEMA [office] AUTHORIZATION [dbo];",
    "ALTER ROLE [db_ddladmin] ADD MEMBER [rollcall_owner];",
    "ALTER ROLE [db_backupoperator] ADD MEMBER [rollcall_backup];",
    "ALTER ROLE [rollcall_monitor] ADD MEMBER [ict_admin];",
    "ALTER ROLE [db_backupoperator] ADD MEMBER [ict_admin];",
    "ALTER ROLE [rollcall_report] ADD MEMBER [leadership];",
    "ALTER ROLE [rollcall_app] ADD MEMBER [sms_app];",
    "ALTER ROLE [teachers] ADD MEMBER [a]]b];",
    "GRANT SELECT, INSERT, UPDATE, DELETE, EXECUTE, REFERENCES ON SCHEMA::[dbo] TO [rollcall_owner];",
    "GRANT SELECT, INSERT, UPDATE, DELETE, EXECUTE ON SCHEMA::[dbo] TO [rollcall_app];",
    "GRANT SELECT ON SCHEMA::[reporting] TO [rollcall_report];",
    "GRANT SELECT ON SCHEMA::[dbo] TO [rollcall_backup];",
    "GRANT VIEW DATABASE STATE TO [rollcall_monitor];",
    "GRANT VIEW DEFINITION TO [ict_admin];",
    "DENY SELECT, INSERT, UPDATE, DELETE ON SCHEMA::[dbo] TO [ict_admin];",
    "DENY SELECT, INSERT, UPDATE, DELETE ON SCHEMA::[dbo] TO [leadership];",
    "GRANT SELECT, EXECUTE ON SCHEMA::[teaching] TO [teachers];",
    "DENY SELECT, INSERT, UPDATE, DELETE ON SCHEMA::[dbo] TO [teachers];",
    "GRANT SELECT, EXECUTE ON SCHEMA::[office] TO [admin_staff];",
    "DENY SELECT, INSERT, UPDATE, DELETE ON SCHEMA::[dbo] TO [admin_staff];",
]


def principal(name, kind="S", owns=0, fixed=0):
    return {"kind": "principal", "principal": name, "principal_type": kind, "is_fixed_role": fixed, "owns": owns}


def permission(grantee, name, state="GRANT", cls="SCHEMA", schema=None, obj=None, column=None):
    return {"kind": "permission", "principal": grantee, "name": name, "state": state, "class": cls,
            "schema_name": schema, "object_name": obj, "column_name": column}


def new_database_rows():
    """A database the app's migrations created: dbo, the fixed roles, the app's users; no matrix yet."""
    rows = [principal("dbo", owns=6), principal("guest"), principal("public", "R"),
            principal("sms_app"), principal("a]b"), principal("alice"),
            {"kind": "schema", "principal": "dbo", "name": "dbo"},
            {"kind": "schema", "principal": "guest", "name": "guest"},
            {"kind": "member", "principal": "db_owner", "name": "dbo"},
            permission("sms_app", "CONNECT", cls="DATABASE"), permission("dbo", "CONNECT", cls="DATABASE")]
    rows += [principal(name, "R", fixed=1) for name in roles.FIXED_ROLES if name != "public"]
    return rows


def desired(**extra):
    members = extra.pop("members", {"rollcall_app": ["sms_app"], "teachers": ["a]b"]})
    return roles.desired_matrix(members=members, **extra)


def correct_state():
    """The state the matrix leads to from a new database: the plan's own prediction, checked in a test below."""
    return roles.plan(desired(), roles.parse_state(new_database_rows()))["state_after"]


# ------------------------------------------------------------------ statements
def test_every_statement_quotes_identifiers_with_brackets_doubled():
    assert roles.create_role_sql("a]b") == "CREATE ROLE [a]]b] AUTHORIZATION [dbo];"
    assert roles.create_schema_sql("re]port", "o]wn") == "CREATE SCHEMA [re]]port] AUTHORIZATION [o]]wn];"
    assert roles.member_sql("teach]ers", "x]y") == "ALTER ROLE [teach]]ers] ADD MEMBER [x]]y];"
    assert roles.member_sql("teachers", "SCHOOL\\Bob", add=False) == "ALTER ROLE [teachers] DROP MEMBER [SCHOOL\\Bob];"
    assert roles.drop_role_sql("old]role") == "DROP ROLE [old]]role];"
    assert roles.permission_sql("GRANT", ["VIEW DATABASE STATE"], ("DATABASE",), "mon]itor") == (
        "GRANT VIEW DATABASE STATE TO [mon]]itor];")
    assert roles.permission_sql("DENY", DML, ("SCHEMA", "d]bo"), "teachers", cascade=True) == (
        "DENY SELECT, INSERT, UPDATE, DELETE ON SCHEMA::[d]]bo] TO [teachers] CASCADE;")
    assert roles.permission_sql("REVOKE", ["SELECT"], ("OBJECT", "dbo", "stu]dents", "na]me"), "alice") == (
        "REVOKE SELECT ON OBJECT::[dbo].[stu]]dents] ([na]]me]) FROM [alice];")
    assert roles.permission_sql("REVOKE", ["UPDATE"], ("OBJECT", "dbo", "students", None), "alice") == (
        "REVOKE UPDATE ON OBJECT::[dbo].[students] FROM [alice];")
    assert roles.permission_sql("REVOKE GRANT OPTION FOR", ["SELECT"], ("SCHEMA", "dbo"), "rollcall_app",
                                cascade=True) == (
        "REVOKE GRANT OPTION FOR SELECT ON SCHEMA::[dbo] FROM [rollcall_app] CASCADE;")


def test_bad_names_and_permissions_never_reach_sql():
    with pytest.raises(EngineError, match="invalid SQL Server permission"):
        roles.permission_sql("GRANT", ["SELECT; DROP TABLE x"], ("DATABASE",), "r")
    with pytest.raises(EngineError, match="invalid SQL Server permission"):
        roles.permission_sql("GRANT", ["select"], ("DATABASE",), "r")
    with pytest.raises(EngineError, match="invalid SQL Server identifier"):
        roles.create_role_sql("x" * 129)
    with pytest.raises(EngineError, match="does not write statements for ON ASSEMBLY 65536"):
        roles.permission_sql("REVOKE", ["EXECUTE"], ("OTHER", "ASSEMBLY", "65536"), "r")


def test_the_state_query_reads_the_catalog_views_the_parser_expects():
    sql = roles.STATE_SQL
    for view in ("sys.database_principals", "sys.database_role_members", "sys.database_permissions",
                 "sys.schemas", "sys.objects"):
        assert view in sql
    for kind in ("N'principal'", "N'member'", "N'permission'", "N'schema'"):
        assert kind in sql
    for column in ("AS kind", "AS principal", "AS principal_type", "AS is_fixed_role", "AS owns", "AS name",
                   "AS state", "AS class", "AS schema_name", "AS object_name", "AS column_name"):
        assert column in sql
    assert sql.count("UNION ALL") == 3
    assert "COL_NAME(dp.major_id, dp.minor_id)" in sql and "owning_principal_id" in sql


# ------------------------------------------------------------------ parsing
def test_parse_state_reads_every_kind_of_row():
    state = roles.parse_state([
        principal("teachers", "R ", owns=2), principal("alice", "U"),
        {"kind": "member", "principal": "teachers", "name": "alice"},
        {"kind": "schema", "principal": "teaching", "name": "dbo"},
        permission("teachers", "EXECUTE", schema="teaching"),
        permission("monitor", "VIEW DATABASE STATE", cls="DATABASE"),
        permission("alice", "SELECT", "GRANT_WITH_GRANT_OPTION", "OBJECT_OR_COLUMN", "dbo", "students", "name"),
        permission("alice", "DELETE", "DENY", "OBJECT_OR_COLUMN", "dbo", "students"),
        permission("alice", "EXECUTE", cls="ASSEMBLY", obj="65536"),
    ])
    assert state == {
        "principals": {"teachers": {"type": "R", "fixed": False, "owns": 2},
                       "alice": {"type": "U", "fixed": False, "owns": 0}},
        "members": {("teachers", "alice")},
        "schemas": {"teaching": "dbo"},
        "permissions": {("teachers", ("SCHEMA", "teaching"), "EXECUTE"): "GRANT",
                        ("monitor", ("DATABASE",), "VIEW DATABASE STATE"): "GRANT",
                        ("alice", ("OBJECT", "dbo", "students", "name"), "SELECT"): "GRANT_WITH_GRANT_OPTION",
                        ("alice", ("OBJECT", "dbo", "students", None), "DELETE"): "DENY",
                        ("alice", ("OTHER", "ASSEMBLY", "65536"), "EXECUTE"): "GRANT"}}


def test_parse_state_refuses_rows_it_does_not_understand():
    with pytest.raises(EngineError, match="kind 'login'"):
        roles.parse_state([{"kind": "login", "principal": "sa"}])
    with pytest.raises(EngineError, match="permission state 'REVOKE' of alice"):
        roles.parse_state([permission("alice", "SELECT", "REVOKE")])


# ------------------------------------------------------------------ the desired matrix
def test_desired_matrix_defaults_and_schema_names():
    matrix = roles.desired_matrix()
    assert matrix["schemas"] == {"app": "dbo", "reporting": "reporting", "teaching": "teaching", "office": "office"}
    assert [r["role"] for r in matrix["roles"]] == ["rollcall_owner", "rollcall_app", "rollcall_report",
                                                    "rollcall_backup", "rollcall_monitor", "ict_admin",
                                                    "leadership", "teachers", "admin_staff"]
    assert matrix["members"] == {} and matrix["absent"] == []
    other = roles.desired_matrix({"app": "sms", "teaching": None})
    teachers = [r for r in other["roles"] if r["role"] == "teachers"][0]
    assert teachers["grants"] == {(("SCHEMA", "teaching"), "SELECT"): "GRANT",
                                  (("SCHEMA", "teaching"), "EXECUTE"): "GRANT",
                                  (("SCHEMA", "sms"), "SELECT"): "DENY", (("SCHEMA", "sms"), "INSERT"): "DENY",
                                  (("SCHEMA", "sms"), "UPDATE"): "DENY", (("SCHEMA", "sms"), "DELETE"): "DENY"}


def test_no_role_of_the_matrix_is_db_owner_or_has_ddl_but_the_migrations_owner():
    for entry in roles.MATRIX:
        assert "db_owner" not in entry["member_of"]
        if entry["role"] != "rollcall_owner":
            assert "db_ddladmin" not in entry["member_of"]
            assert all("ALTER" not in p and "CONTROL" not in p for _, _, perms in entry["grants"] for p in perms)


@pytest.mark.parametrize("kwargs, message", [
    ({"schemas": {"audit": "x"}}, "unknown schema 'audit'"),
    ({"schemas": {"teaching": "DBO"}}, "must be four different schemas"),
    ({"schemas": {"office": "x" * 129}}, "invalid SQL Server identifier"),
    ({"members": {"sysadmin": ["bob"]}}, "not a role of the matrix"),
    ({"members": {"teachers": "bob"}}, "must be a list"),
    ({"members": {"teachers": ["teachers"]}}, "cannot be a member of itself"),
    ({"absent_roles": ["teachers"]}, "role of the matrix"),
    ({"absent_roles": ["db_owner"]}, "SQL Server keeps"),
    ({"absent_roles": ["old"], "members": {"teachers": ["old"]}}, "absent and also given as a member"),
])
def test_bad_input_is_refused_with_the_reason(kwargs, message):
    with pytest.raises(EngineError, match=message):
        roles.desired_matrix(**kwargs)


# ------------------------------------------------------------------ the plan
def test_a_new_database_gets_the_whole_matrix_and_a_second_plan_is_empty():
    result = roles.plan(desired(), roles.parse_state(new_database_rows()))
    assert result["statements"] == NEW_DATABASE
    assert result["kept"] == [] and result["findings"] == []
    assert roles.plan(desired(), result["state_after"])["statements"] == []
    after = result["diff"]["after"].splitlines()
    assert "role [teachers]: GRANT SELECT ON SCHEMA::[teaching]" in after
    assert "role [teachers]: DENY SELECT ON SCHEMA::[dbo]" in after
    assert "role [teachers]: has member [a]]b]" in after
    assert "role [rollcall_monitor]: GRANT VIEW DATABASE STATE ON DATABASE" in after
    assert "schema [office] (office): owner [dbo]" in after
    assert result["diff"]["before"].splitlines() == ["schema [dbo] (app): owner [dbo]",
                                                     "schema [office] (office): absent",
                                                     "schema [reporting] (reporting): absent",
                                                     "schema [teaching] (teaching): absent"]


def test_an_already_correct_database_gets_no_statements_and_an_equal_diff():
    result = roles.plan(desired(), correct_state())
    assert result["statements"] == []
    assert result["diff"]["before"] == result["diff"]["after"]


def test_new_schemas_belong_to_the_owner_of_the_app_schema_for_the_ownership_chain():
    rows = new_database_rows() + [principal("sms_owner"), {"kind": "schema", "principal": "sms", "name": "sms_owner"}]
    result = roles.plan(desired(schemas={"app": "sms"}), roles.parse_state(rows))
    assert "CREATE SCHEMA [teaching] AUTHORIZATION [sms_owner];" in result["statements"]
    assert "GRANT SELECT, INSERT, UPDATE, DELETE, EXECUTE ON SCHEMA::[sms] TO [rollcall_app];" in result["statements"]
    assert not any("CREATE SCHEMA [sms]" in sql for sql in result["statements"])


def test_rights_beyond_the_matrix_are_revoked():
    state = correct_state()
    state["permissions"][("rollcall_app", ("SCHEMA", "dbo"), "ALTER")] = "GRANT"
    state["permissions"][("rollcall_app", ("DATABASE",), "CREATE TABLE")] = "GRANT"
    state["permissions"][("rollcall_report", ("OBJECT", "dbo", "students", None), "SELECT")] = \
        "GRANT_WITH_GRANT_OPTION"
    state["permissions"][("teachers", ("SCHEMA", "office"), "SELECT")] = "DENY"
    result = roles.plan(desired(), state)
    assert result["statements"] == [
        "REVOKE CREATE TABLE FROM [rollcall_app];",
        "REVOKE ALTER ON SCHEMA::[dbo] FROM [rollcall_app];",
        "REVOKE SELECT ON OBJECT::[dbo].[students] FROM [rollcall_report] CASCADE;",
        "REVOKE SELECT ON SCHEMA::[office] FROM [teachers];",
    ]
    assert "role [rollcall_app]: GRANT ALTER ON SCHEMA::[dbo]" in result["diff"]["before"].splitlines()
    assert "ALTER" not in result["diff"]["after"]
    assert roles.plan(desired(), result["state_after"])["statements"] == []


def test_a_grant_in_the_wrong_state_is_corrected_in_place():
    state = correct_state()
    state["permissions"][("rollcall_app", ("SCHEMA", "dbo"), "SELECT")] = "GRANT_WITH_GRANT_OPTION"
    state["permissions"][("teachers", ("SCHEMA", "dbo"), "DELETE")] = "GRANT_WITH_GRANT_OPTION"
    state["permissions"][("teachers", ("SCHEMA", "teaching"), "EXECUTE")] = "DENY"
    del state["permissions"][("leadership", ("SCHEMA", "dbo"), "UPDATE")]
    result = roles.plan(desired(), state)
    assert result["statements"] == [
        "REVOKE GRANT OPTION FOR SELECT ON SCHEMA::[dbo] FROM [rollcall_app] CASCADE;",
        "DENY UPDATE ON SCHEMA::[dbo] TO [leadership];",
        "GRANT EXECUTE ON SCHEMA::[teaching] TO [teachers];",
        "DENY DELETE ON SCHEMA::[dbo] TO [teachers] CASCADE;",
    ]
    assert roles.plan(desired(), result["state_after"])["statements"] == []


def test_memberships_missing_and_beyond_the_matrix():
    state = correct_state()
    state["members"].discard(("teachers", "a]b"))  # a given member missing
    state["members"].discard(("db_ddladmin", "rollcall_owner"))  # a matrix membership missing
    state["members"].add(("rollcall_app", "alice"))  # not a given member of a role whose members are given
    state["members"].add(("db_owner", "rollcall_app"))  # a matrix role in a role beyond the matrix
    state["members"].add(("admin_staff", "alice"))  # admin_staff's members are not given: kept
    result = roles.plan(desired(), state)
    assert result["statements"] == [
        "ALTER ROLE [db_ddladmin] ADD MEMBER [rollcall_owner];",
        "ALTER ROLE [teachers] ADD MEMBER [a]]b];",
        "ALTER ROLE [db_owner] DROP MEMBER [rollcall_app];",
        "ALTER ROLE [rollcall_app] DROP MEMBER [alice];",
    ]
    assert result["findings"] == []  # the db_owner membership of a matrix role is fixed, not reported
    assert roles.plan(desired(), result["state_after"])["statements"] == []


def test_a_missing_user_or_a_user_named_like_a_role_is_a_clear_error():
    with pytest.raises(EngineError, match=r"bob is not in the database: create each user first \(CREATE USER"):
        roles.plan(desired(members={"teachers": ["bob"]}), roles.parse_state(new_database_rows()))
    rows = new_database_rows() + [principal("leadership", "U")]
    with pytest.raises(EngineError, match="leadership exists in the database as a Windows user, not a role"):
        roles.plan(desired(), roles.parse_state(rows))
    rows = new_database_rows() + [principal("old_app")]
    with pytest.raises(EngineError, match="old_app exists as a SQL user, not a role"):
        roles.plan(desired(absent_roles=["old_app"]), roles.parse_state(rows))


def test_an_absent_role_is_dropped_after_its_members_but_never_when_it_owns_objects():
    state = correct_state()
    state["principals"]["old_reports"] = {"type": "R", "fixed": False, "owns": 0}
    state["principals"]["legacy_owner"] = {"type": "R", "fixed": False, "owns": 3}
    state["members"] |= {("old_reports", "alice"), ("rollcall_report", "old_reports"),
                         ("legacy_owner", "alice")}
    state["permissions"][("old_reports", ("SCHEMA", "dbo"), "SELECT")] = "GRANT"
    result = roles.plan(desired(absent_roles=["old_reports", "legacy_owner", "never_there"]), state)
    assert result["statements"] == [
        "ALTER ROLE [old_reports] DROP MEMBER [alice];",
        "ALTER ROLE [rollcall_report] DROP MEMBER [old_reports];",
        "DROP ROLE [old_reports];",
    ]
    assert result["kept"] == [{"role": "legacy_owner", "owns": 3,
                               "reason": "legacy_owner owns 3 schema(s), object(s) or role(s) and is kept: transfer "
                                         "them (ALTER AUTHORIZATION ON SCHEMA::[schema] TO [dbo]) and run again"}]
    assert "role [old_reports]" in result["diff"]["before"] and "old_reports" not in result["diff"]["after"]
    assert "role [legacy_owner]: has member [alice]" in result["diff"]["after"]
    again = roles.plan(desired(absent_roles=["old_reports", "legacy_owner"]), result["state_after"])
    assert again["statements"] == [] and again["kept"][0]["role"] == "legacy_owner"


def test_findings_are_reported_and_not_changed():
    state = correct_state()
    state["members"] |= {("db_owner", "alice"), ("db_owner", "dbo")}
    state["permissions"][("alice", ("OBJECT", "dbo", "students", None), "SELECT")] = "GRANT"
    state["permissions"][("alice", ("DATABASE",), "CONNECT")] = "GRANT"
    state["permissions"][("rollcall_app", ("OTHER", "ASSEMBLY", "65536"), "EXECUTE")] = "GRANT"
    state["schemas"]["reporting"] = "alice"
    result = roles.plan(desired(), state)
    assert result["statements"] == []
    assert result["findings"] == [
        "schema [reporting] is owned by [alice], the app schema [dbo] by [dbo]: the ownership chain is broken, so "
        "its views and procedures cannot reach the app's tables for roles denied them; ALTER AUTHORIZATION ON "
        "SCHEMA::[reporting] TO [dbo]",
        "rollcall_app has GRANT EXECUTE ON ASSEMBLY 65536, beyond the matrix; Rollcall does not revoke rights on "
        "that kind of securable: REVOKE it by hand",
        "alice is a member of db_owner: nothing should be db_owner in daily use (migrations use rollcall_owner); "
        "ALTER ROLE [db_owner] DROP MEMBER [alice] once nothing needs it",
        "user alice has GRANT SELECT ON OBJECT::[dbo].[students] directly: seed 000 asks for access by role only; "
        "grant it to a role of the matrix and REVOKE it from the user",
    ]


# ------------------------------------------------------------------ a fake server
class FakeError(Exception):
    pass


def unquote(name):
    assert name.startswith("[") and name.endswith("]"), name
    return name[1:-1].replace("]]", "]")


NAME = r"\[(?:[^\]]|\]\])*\]"


class FakeServer:
    """What the module sees of SQL Server through pymssql: STATE_SQL answered, our statement forms carried out."""

    def __init__(self, rows):
        self.state = roles.parse_state(rows)
        self.pending = None  # the transaction's copy of the state
        self.batches = []  # every batch, in order, on any connection
        self.connections = 0
        self.fail = None  # a statement pattern the server refuses

    def rows(self):
        s = self.state
        rows = [principal(n, p["type"], p["owns"], int(p["fixed"])) for n, p in s["principals"].items()]
        rows += [{"kind": "member", "principal": r, "name": m} for r, m in s["members"]]
        rows += [{"kind": "schema", "principal": n, "name": o} for n, o in s["schemas"].items()]
        for (grantee, sec, perm), state in s["permissions"].items():
            kind = {"DATABASE": "DATABASE", "SCHEMA": "SCHEMA", "OBJECT": "OBJECT_OR_COLUMN"}[sec[0]]
            rows.append(permission(grantee, perm, state, kind, *(sec[1:] if sec[0] != "SCHEMA" else (sec[1],))))
        return rows

    def run(self, sql):
        self.batches.append(sql)
        if sql == roles.STATE_SQL:
            return self.rows()
        if self.fail and re.search(self.fail, sql):
            raise FakeError(15151, b"Cannot find the user 'x', because it does not exist or you do not have "
                                   b"permission.DB-Lib error message 20018, severity 16:\n")
        if sql == "SET XACT_ABORT ON; BEGIN TRANSACTION;":
            self.pending = {k: (dict(v) if isinstance(v, dict) else set(v)) for k, v in self.state.items()}
            self.pending["principals"] = {k: dict(v) for k, v in self.state["principals"].items()}
            return None
        if sql == "COMMIT TRANSACTION;":
            self.state, self.pending = self.pending, None
            return None
        if sql == "IF @@TRANCOUNT > 0 ROLLBACK TRANSACTION;":
            self.pending = None
            return None
        assert self.pending is not None, "a change outside the transaction: %s" % sql
        s = self.pending
        m = re.fullmatch(r"CREATE ROLE (%s) AUTHORIZATION \[dbo\];" % NAME, sql)
        if m:
            s["principals"][unquote(m[1])] = {"type": "R", "fixed": False, "owns": 0}
            return None
        m = re.fullmatch(r"CREATE SCHEMA (%s) AUTHORIZATION (%s);" % (NAME, NAME), sql)
        if m:
            s["schemas"][unquote(m[1])] = unquote(m[2])
            return None
        m = re.fullmatch(r"ALTER ROLE (%s) (ADD|DROP) MEMBER (%s);" % (NAME, NAME), sql)
        if m:
            pair = (unquote(m[1]), unquote(m[3]))
            assert pair[1] in s["principals"], "no such member %s" % pair[1]
            (s["members"].add if m[2] == "ADD" else s["members"].discard)(pair)
            return None
        m = re.fullmatch(r"DROP ROLE (%s);" % NAME, sql)
        if m:
            name = unquote(m[1])
            assert not any(r == name for r, _ in s["members"]), "the role has members"
            del s["principals"][name]
            return None
        m = re.fullmatch(r"(GRANT|DENY|REVOKE GRANT OPTION FOR|REVOKE) ([A-Z ,]+?)(?: ON (SCHEMA|OBJECT)::(%s)"
                         r"(?:\.(%s))?)? (?:TO|FROM) (%s)( CASCADE)?;" % (NAME, NAME, NAME), sql)
        assert m, "T-SQL the fake server does not know: %s" % sql
        verb, perms, kind, first, second, grantee = m[1], m[2].split(", "), m[3], m[4], m[5], unquote(m[6])
        sec = (("DATABASE",) if not kind else ("SCHEMA", unquote(first)) if kind == "SCHEMA"
               else ("OBJECT", unquote(first), unquote(second), None))
        for perm in perms:
            key = (grantee, sec, perm)
            if s["permissions"].get(key) == "GRANT_WITH_GRANT_OPTION" and verb in ("DENY", "REVOKE") and not m[7]:
                raise FakeError(4611, b"To revoke or deny grantable privileges, specify the CASCADE option.")
            if verb == "REVOKE":
                s["permissions"].pop(key, None)
            elif verb == "REVOKE GRANT OPTION FOR":
                s["permissions"][key] = "GRANT"
            else:
                s["permissions"][key] = verb
        return None

    def module(self):
        server = self

        class Cursor:
            def __init__(self, as_dict):
                self.rows, self.description, self.as_dict = None, None, as_dict

            def execute(self, sql, params=None):
                assert params is None
                self.rows = server.run(sql)
                self.description = [("x",)] if self.rows is not None else None

            def fetchall(self):
                return list(self.rows)

            def nextset(self):
                return None

        class Connection:
            def cursor(self, as_dict=False):
                return Cursor(as_dict)

            def close(self):
                pass

        class Module:
            Error = FakeError

            @staticmethod
            def connect(server=None, port=None, user=None, password=None, database=None, login_timeout=None,
                        autocommit=None):
                if password != PASSWORD:
                    raise FakeError(18456, b"Login failed for user 'admin'.\nDB-Lib error message 20018")
                assert database == "sms"
                self.connections += 1
                return Connection()

        return Module


@pytest.fixture
def server(monkeypatch):
    fake = FakeServer(new_database_rows())
    monkeypatch.setattr(mssql, "pymssql", fake.module())
    monkeypatch.setattr(mssql, "HAS_PYMSSQL", True)
    return fake


def engine(password=PASSWORD):
    return mssql.MSSQL(None, Target("mssql", "sms", host="sql.example", user="admin", password=password))


def changes(server):
    return [sql for sql in server.batches if sql != roles.STATE_SQL]


def test_check_mode_lists_the_statements_and_runs_none(server):
    result = roles.manage(engine(), desired(), check_mode=True)
    assert result["changed"] is True and result["statements"] == NEW_DATABASE
    assert server.batches == [roles.STATE_SQL]
    assert result["server_level"] == list(roles.SERVER_LEVEL)


def test_apply_runs_everything_in_one_transaction_and_a_second_run_changes_nothing(server):
    result = roles.manage(engine(), desired())
    assert result["changed"] is True
    assert changes(server) == ["SET XACT_ABORT ON; BEGIN TRANSACTION;"] + NEW_DATABASE + ["COMMIT TRANSACTION;"]
    server.batches.clear()
    again = roles.manage(engine(), desired())
    assert again["changed"] is False and again["statements"] == [] and server.batches == [roles.STATE_SQL]


def test_a_refused_statement_rolls_everything_back_and_says_which(server):
    server.fail = r"ADD MEMBER \[sms_app\]"
    with pytest.raises(EngineError) as caught:
        roles.manage(engine(), desired())
    message = str(caught.value)
    assert message.startswith("SQL Server refused ALTER ROLE [rollcall_app] ADD MEMBER [sms_app]; (Cannot find the "
                              "user 'x', because it does not exist or you do not have permission.)")
    assert "rolled back, nothing was changed" in message
    assert changes(server)[-1] == "IF @@TRANCOUNT > 0 ROLLBACK TRANSACTION;"
    assert "rollcall_app" not in server.state["principals"]  # the CREATE ROLE before it was rolled back


def test_apply_closes_the_connection_and_names_a_failed_commit():
    seen = []

    class Cursor:
        def execute(self, sql):
            seen.append(sql)
            if sql == "COMMIT TRANSACTION;":
                raise FakeError(3902, b"The COMMIT TRANSACTION request has no corresponding BEGIN TRANSACTION.")

    class Connection:
        closed = False

        def cursor(self):
            return Cursor()

        def close(self):
            Connection.closed = True

    with pytest.raises(EngineError, match=r"refused COMMIT TRANSACTION; \(The COMMIT TRANSACTION request"):
        roles.apply(Connection(), ["DROP ROLE [x];"])
    assert seen == ["SET XACT_ABORT ON; BEGIN TRANSACTION;", "DROP ROLE [x];", "COMMIT TRANSACTION;",
                    "IF @@TRANCOUNT > 0 ROLLBACK TRANSACTION;"]
    assert Connection.closed


# ------------------------------------------------------------------ the module
def run_module(capsys, args):
    from ansible_collections.rollcall.ops.plugins.modules import mssql_roles as module

    with patch_module_args(args), pytest.raises(SystemExit) as caught:
        module.main()
    return caught.value.code, json.loads(capsys.readouterr().out)


def module_args(**extra):
    return dict({"database": "sms", "host": "sql.example", "user": "admin", "password": PASSWORD,
                 "members": {"rollcall_app": ["sms_app"], "teachers": ["a]b"]}}, **extra)


def test_module_check_mode_with_diff_changes_nothing_then_applies_once(server, capsys):
    rc, result = run_module(capsys, module_args(_ansible_check_mode=True, _ansible_diff=True))
    assert rc == 0 and result["changed"] is True and result["statements"] == NEW_DATABASE
    assert "role [teachers]: GRANT SELECT ON SCHEMA::[teaching]" in result["diff"]["after"]
    assert "teachers" not in result["diff"]["before"]
    assert changes(server) == []
    rc, result = run_module(capsys, module_args())
    assert rc == 0 and result["changed"] is True and "diff" not in result
    assert "rollcall_app" in server.state["principals"]
    rc, result = run_module(capsys, module_args(_ansible_diff=True))
    assert rc == 0 and result["changed"] is False and result["statements"] == []
    assert result["diff"]["before"] == result["diff"]["after"]
    assert PASSWORD not in json.dumps(result)


def test_module_failures_say_what_and_never_the_password(server, capsys):
    rc, result = run_module(capsys, module_args(password="wrong-" + PASSWORD))
    assert rc == 1 and result["failed"] is True
    assert result["msg"] == ("SQL Server roles of database sms: SQL Server at sql.example:1433: cannot connect: "
                             "Login failed for user 'admin'.")
    rc, result = run_module(capsys, module_args(members={"teachers": ["bob"]}))
    assert rc == 1 and "bob is not in the database: create each user first" in result["msg"]
    rc, result = run_module(capsys, module_args(schemas={"app": "dbo", "office": "dbo"}))
    assert rc == 1 and "must be four different schemas" in result["msg"]
    rc, result = run_module(capsys, module_args(schemas={"audit": "x"}))
    assert rc == 1 and "audit" in result["msg"]
    assert PASSWORD not in capsys.readouterr().out
