"""plugins/module_utils/db_logins.py: which of its two logins the app uses, and what a password rotation changes.
One test per branch of plan(); the driver errors that mean "refused" against those that mean "unreachable"."""

import pytest

from ansible_collections.rollcall.ops.plugins.module_utils import db_logins
from ansible_collections.rollcall.ops.plugins.module_utils.db_logins import LoginError, plan


def state(exists=True, enabled=True, opens=False):
    return {"exists": exists, "enabled": enabled, "opens": opens}


FRESH = {"sms": state(opens=True), "sms_alt": state(exists=False, enabled=False)}


def test_the_two_names():
    assert db_logins.login_names("sms") == ("sms", "sms_alt")


def test_a_deploy_uses_the_login_the_password_opens():
    got = plan(FRESH, "sms")
    assert got == {"use": "sms", "set_password": False, "retire": None, "rotated": False,
                   "summary": "the app uses sms"}


def test_after_a_rotation_the_second_login_is_used():
    got = plan({"sms": state(enabled=False), "sms_alt": state(opens=True)}, "sms")
    assert (got["use"], got["set_password"], got["retire"]) == ("sms_alt", False, None)


def test_a_deploy_says_when_both_may_log_in():
    got = plan({"sms": state(), "sms_alt": state(opens=True)}, "sms")
    assert got["use"] == "sms_alt" and got["retire"] is None
    assert "unfinished rotation" in got["summary"]


def test_a_password_opening_both_is_refused():
    with pytest.raises(LoginError, match="opens both"):
        plan({"sms": state(opens=True), "sms_alt": state(opens=True)}, "sms", rotate=True)


def test_a_deploy_refuses_a_password_that_opens_neither_and_names_the_rotation():
    with pytest.raises(LoginError, match="rotate_db_passwords.yml.*Nothing was changed"):
        plan({"sms": state(), "sms_alt": state(exists=False, enabled=False)}, "sms")


def test_a_rotation_with_the_password_in_use_changes_nothing():
    got = plan(FRESH, "sms", rotate=True)
    assert (got["use"], got["set_password"], got["retire"], got["rotated"]) == ("sms", False, None, False)
    assert got["summary"].startswith("nothing to rotate")


def test_a_first_rotation_makes_the_second_login():
    got = plan({"sms": state(), "sms_alt": state(exists=False, enabled=False)}, "sms", rotate=True)
    assert got == {"use": "sms_alt", "set_password": True, "retire": "sms", "rotated": True,
                   "summary": "sms_alt gets the new password and the app moves to it; sms, in use until then, is "
                                "made idle"}


def test_the_next_rotation_goes_back_to_the_first_login():
    got = plan({"sms": state(enabled=False), "sms_alt": state()}, "sms", rotate=True)
    assert (got["use"], got["set_password"], got["retire"]) == ("sms", True, "sms_alt")


def test_a_rotation_that_stopped_after_the_new_login_is_finished():
    # sms_alt has the new password already; sms (the app's until now) may still log in
    got = plan({"sms": state(), "sms_alt": state(opens=True)}, "sms", rotate=True)
    assert (got["use"], got["set_password"], got["retire"], got["rotated"]) == ("sms_alt", False, "sms", True)


def test_both_enabled_and_neither_opens_takes_the_live_login_from_the_app():
    both = {"sms": state(), "sms_alt": state()}
    got = plan(both, "sms", rotate=True, live="sms_alt")
    assert (got["use"], got["retire"]) == ("sms", "sms_alt")
    with pytest.raises(LoginError, match="stopped half-way"):
        plan(both, "sms", rotate=True)


def test_neither_enabled_gives_the_password_to_the_login_the_app_does_not_run_with():
    idle = {"sms": state(enabled=False), "sms_alt": state(enabled=False)}
    assert plan(idle, "sms", rotate=True, live="sms")["use"] == "sms_alt"
    got = plan(idle, "sms", rotate=True)
    assert (got["use"], got["set_password"], got["retire"]) == ("sms_alt", True, None)


class FakeMySQLError(Exception):
    pass


@pytest.mark.parametrize("engine, error, refused", [
    ("postgresql", Exception('FATAL:  password authentication failed for user "sms"'), True),
    ("postgresql", Exception('FATAL:  role "sms" is not permitted to log in'), True),
    ("postgresql", Exception("could not connect to server: Connection refused"), False),
    ("mariadb", FakeMySQLError(1045, "Access denied for user 'sms'@'10.0.0.1'"), True),
    ("mariadb", FakeMySQLError(4151, "Access denied, this account is locked"), True),
    ("mariadb", FakeMySQLError(2003, "Can't connect to MySQL server"), False),
])
def test_refusals_are_told_from_unreachable_servers(engine, error, refused):
    assert db_logins.refused(engine, error) is refused


def test_opens_passes_an_unreachable_server_up(monkeypatch):
    def connect(*args, **kwargs):
        raise FakeMySQLError(2003, "Can't connect")
    monkeypatch.setattr(db_logins, "connect", connect)
    with pytest.raises(FakeMySQLError):
        db_logins.opens("mariadb", "127.0.0.1", 3306, "sms", "x", "sms")


def test_opens_says_false_for_a_wrong_password(monkeypatch):
    def connect(*args, **kwargs):
        raise FakeMySQLError(1045, "Access denied")
    monkeypatch.setattr(db_logins, "connect", connect)
    assert db_logins.opens("mariadb", "127.0.0.1", 3306, "sms", "x", "sms") is False


class FakeCursor:
    def __init__(self, rows):
        self.rows, self.executed = rows, None

    def execute(self, sql, args):
        self.executed = (sql, args)

    def fetchall(self):
        return self.rows

    def close(self):
        pass


class FakeConnection:
    def __init__(self, rows):
        self.cursor_ = FakeCursor(rows)

    def cursor(self):
        return self.cursor_


def test_logins_state_reads_both_names_with_parameters():
    conn = FakeConnection([("sms", True)])
    got = db_logins.logins_state(conn, "postgresql", ("sms", "sms_alt"))
    assert got == {"sms": {"exists": True, "enabled": True}, "sms_alt": {"exists": False, "enabled": False}}
    assert conn.cursor_.executed[1] == ("sms", "sms_alt")
    conn = FakeConnection([("sms", 0), ("sms_alt", 1)])
    assert db_logins.logins_state(conn, "mariadb", ("sms", "sms_alt"))["sms"]["enabled"] is False
