"""The database role matrix's names, derived passwords and the expected roles the audit compares against."""

import pytest

from ansible_collections.rollcall.ops.plugins.module_utils import db_roles
from ansible_collections.rollcall.ops.plugins.module_utils.db_roles import derived_password, expected_roles, role_names


def test_role_names_follow_the_app_login():
    assert role_names("sms") == {"app": "sms", "owner": "sms_owner", "report": "sms_report",
                                 "backup": "sms_backup", "monitor": "sms_monitor"}
    assert role_names("school")["owner"] == "school_owner"


def test_derived_passwords_are_stable_distinct_and_depend_on_the_admin_password():
    one = derived_password("admin-secret", "sms_owner")
    assert one == derived_password("admin-secret", "sms_owner") and len(one) == 43
    assert one != derived_password("admin-secret", "sms_backup")
    assert one != derived_password("other-secret", "sms_owner")
    assert "admin-secret" not in one


def test_an_empty_admin_password_is_refused():
    with pytest.raises(ValueError, match="rollcall_db_root_password"):
        derived_password("", "sms_owner")


def test_expected_roles_per_engine():
    pg = expected_roles("sms", "postgresql")
    assert {r["name"] for r in pg if r["superuser"]} == {"postgres"}
    assert {r["name"] for r in pg if not r["superuser"]} == set(role_names("sms").values()) | {"sms_alt"}
    assert {r["name"] for r in expected_roles("sms", "mariadb") if r["superuser"]} == {"root", "rollcall_admin"}
    assert expected_roles("sms", "sqlite") == []


# ---- applying the matrix on PostgreSQL (db_roles.apply_pg's decisions)
# Verifiers made by a PostgreSQL 15 server for the password "correct horse" and the role rc_vector.
SCRAM = ("SCRAM-SHA-256$4096:6diUKxrdiTPYmNj7CyXAnQ==$ziEDVDWnkBxySzoSFCOuvMQXxRHmoRT2l1MVJRiamjA=:"
         "Xa+ZQ1sDqHE0yt39/WAuj66ggIwkQ92K/FLEtu4XJ7I=")
MD5 = "md5ec0dfb77a609be7b9d862ea3506f09f3"


@pytest.mark.parametrize("stored, password, matches", [
    (SCRAM, "correct horse", True),
    (SCRAM, "correct horse ", False),
    (MD5, "correct horse", True),
    (MD5, "wrong", False),
    (None, "correct horse", False),
    ("", "correct horse", False),
    (SCRAM, None, False),
    ("SCRAM-SHA-256$garbage", "correct horse", False),
    ("plain-text-from-long-ago", "plain-text-from-long-ago", False),
])
def test_password_matches_the_servers_verifier(stored, password, matches):
    assert db_roles.password_matches(stored, "rc_vector", password) is matches


def test_md5_verifiers_are_salted_with_the_role_name():
    assert not db_roles.password_matches(MD5, "another_role", "correct horse")


def in_place(job, password=SCRAM):
    return {"flags": dict(db_roles.PG_FLAGS[job]), "password": password,
            "comment": db_roles.role_comment(job) if job in db_roles.CREATED_ROLES else None}


def test_a_missing_role_is_created_with_its_flags_and_comment():
    steps = db_roles.role_plan("report", "sms_report", None, "pw")
    assert steps == [("create", db_roles.PG_FLAGS["report"]), ("comment", db_roles.role_comment("report"))]
    assert db_roles.describe("report", "sms_report", steps)[0] == (
        "create role sms_report (NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS LOGIN)")


def test_a_role_in_place_needs_nothing():
    assert db_roles.role_plan("owner", "rc_vector", in_place("owner"), "correct horse") == []


def test_a_role_with_another_password_gets_the_matrix_one():
    steps = db_roles.role_plan("owner", "rc_vector", in_place("owner"), "the derived one")
    assert steps == [("password", None)]
    assert db_roles.describe("owner", "rc_vector", steps) == ["set the password of role rc_vector"]


def test_only_the_flags_that_differ_are_set():
    current = in_place("monitor")
    current["flags"].update(SUPERUSER=True, LOGIN=False)
    steps = db_roles.role_plan("monitor", "rc_vector", current, "correct horse")
    assert steps == [("flags", {"SUPERUSER": False, "LOGIN": True})]
    assert db_roles.describe("monitor", "rc_vector", steps) == ["set NOSUPERUSER LOGIN on role rc_vector"]


def test_a_changed_comment_is_put_back():
    current = dict(in_place("backup"), comment="someone's note")
    assert db_roles.role_plan("backup", "rc_vector", current, "correct horse") == [
        ("comment", db_roles.role_comment("backup"))]


def test_the_apps_login_only_loses_what_it_must_not_have():
    current = {"flags": {"SUPERUSER": True, "CREATEDB": True, "CREATEROLE": False, "REPLICATION": False,
                         "BYPASSRLS": False, "LOGIN": False}, "password": None, "comment": "the app's own"}
    # No password given (app_login.yml's), LOGIN and the comment left as they are.
    assert db_roles.role_plan("app", "sms", current) == [("flags", {"SUPERUSER": False, "CREATEDB": False})]
    assert db_roles.role_plan("app", "sms", in_place("app")) == []


def test_state_lines_never_carry_a_password():
    state = {"roles": {"sms_owner": in_place("owner")}, "memberships": ["sms_owner in sms"],
             "database_owner": "sms_owner", "app_owned": 0, "privileges": ["grades {sms=arwd/sms_owner}"],
             "default_privileges": ["r {sms=arwd/sms_owner}"]}
    names = db_roles.role_names("sms")
    lines = db_roles.state_lines(state, names)
    assert not any("SCRAM" in line for line in lines)
    assert "role sms_report: absent" in lines
    assert "role sms_owner: NOSUPERUSER CREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS LOGIN" in lines
    assert "membership: sms_owner in sms" in lines and "database owner: sms_owner" in lines
    assert "privileges: grades {sms=arwd/sms_owner}" in lines
