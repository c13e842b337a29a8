"""plugins/module_utils/incident.py: what incident.yml -e restart=true restarts, a test per branch."""

from ansible_collections.rollcall.ops.plugins.module_utils.incident import not_restartable, restart_plan

PRESENT = ["sms-app", "sms-proxy", "sms-db"]


def check(kind, name, status="critical"):
    return {"kind": kind, "name": name, "status": status}


def plan(checks, present=PRESENT, done=()):
    return restart_plan(checks, present, "sms-db", "sms-app", done)


def test_a_healthy_stack_restarts_nothing():
    assert plan([check("container", "sms-app", "ok"), check("http", "health", "warning")]) == []


def test_the_database_down_restarts_the_database_not_the_app_whose_requests_fail_because_of_it():
    checks = [check("container", "sms-db"), check("http", "health"), check("http", "students"),
              check("database", "database postgresql sms")]
    assert plan(checks) == ["sms-db"]


def test_a_failing_database_check_alone_restarts_the_database():
    assert plan([check("database", "database postgresql sms"), check("http", "health")]) == ["sms-db"]


def test_failing_requests_with_the_database_fine_restart_the_app():
    assert plan([check("http", "health"), check("database", "database postgresql sms", "ok")]) == ["sms-app"]


def test_the_second_round_restarts_the_app_only_if_it_still_fails_once_the_database_is_back():
    assert plan([check("http", "health")], done=["sms-db"]) == ["sms-app"]
    assert plan([], done=["sms-db"]) == []


def test_a_database_still_down_after_its_restart_is_not_restarted_again_nor_is_the_app():
    checks = [check("container", "sms-db"), check("http", "health")]
    assert plan(checks, done=["sms-db"]) == []


def test_every_critical_container_the_database_first_each_once():
    checks = [check("container", "sms-proxy"), check("container", "sms-app"), check("container", "sms-db"),
              check("http", "health")]
    assert plan(checks) == ["sms-db", "sms-proxy", "sms-app"]
    assert plan(checks, done=["sms-db", "sms-proxy"]) == ["sms-app"]


def test_only_containers_that_exist():
    checks = [check("container", "sms-db"), check("container", "gone"), check("http", "health")]
    assert plan(checks, present=["sms-app"]) == []
    assert plan([check("http", "health")], present=[]) == []


def test_a_fleets_app_host_waits_for_the_database_restarted_on_the_db_host():
    """An app host has no database check: its requests fail because the db host's database is down."""
    http_only = [check("http", "health"), check("http", "students")]
    assert restart_plan(http_only, ["sms-app", "sms-proxy"], "sms-db", "sms-app", db_down_elsewhere=True) == []
    # its own container down is restarted at once all the same
    assert restart_plan(http_only + [check("container", "sms-app")], ["sms-app"], "sms-db", "sms-app",
                        db_down_elsewhere=True) == ["sms-app"]


def test_a_failing_container_that_does_not_exist_is_named_as_not_restartable():
    """`docker rm -f sms-app` by hand: restart=true restarted nothing and said nothing (rc 0, still critical)."""
    checks = [check("container", "sms-app"), check("container", "sms-proxy"), check("http", "health"),
              check("container", "sms-app")]
    assert plan(checks, present=["sms-proxy", "sms-db"]) == ["sms-proxy"]
    assert not_restartable(checks, ["sms-proxy", "sms-db"]) == ["sms-app"]


def test_what_exists_or_is_not_failing_is_not_named():
    assert not_restartable([check("container", "sms-app"), check("container", "sms-db", "ok"),
                            check("http", "health")], PRESENT) == []
    assert not_restartable([check("container", "sms-db", "warning"), check("database", "gone")], []) == []
