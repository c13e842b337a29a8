"""The database role matrix's names, derived passwords and the expected roles the audit compares against."""

import pytest

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
