"""The engine a stack holds, and the refusal to change it (plugins/module_utils/stack.py), branch by branch."""

import pytest

from ansible_collections.rollcall.ops.plugins.module_utils import stack


@pytest.mark.parametrize("url, engine", [
    ("postgresql+psycopg2://sms:pw@db:5432/sms", "postgresql"),
    ("postgres://sms@db/sms", "postgresql"),
    ("mysql+pymysql://sms:pw@db:3306/sms?charset=utf8mb4", "mariadb"),
    ("sqlite:////data/db/sms.sqlite3", "sqlite"),
    ("", None),
    ("oracle://x", None),
])
def test_engine_of_url(url, engine):
    assert stack.engine_of_url(url) == engine


@pytest.mark.parametrize("image, engine", [
    ("rollcall/postgres:15", "postgresql"),
    ("postgres:16-alpine", "postgresql"),
    ("registry.example/school/rollcall/mariadb:10.11", "mariadb"),
    ("mysql:8", "mariadb"),
    ("rollcall/sms-app:1.0.0", None),
    (None, None),
])
def test_engine_of_image(image, engine):
    assert stack.engine_of_image(image) == engine


@pytest.mark.parametrize("names, engine", [
    (["PG_VERSION", "base", "global"], "postgresql"),
    (["aria_log_control", "ibdata1", "mysql", "sms"], "mariadb"),
    (["sms.sqlite3"], "sqlite"),
    ([], None),
    (["lost+found"], None),
])
def test_engine_of_files(names, engine):
    assert stack.engine_of_files(names) == engine


def test_a_new_stack_takes_any_engine():
    assert stack.engine_conflict("mariadb", []) is None


def test_the_same_engine_passes():
    evidence = [{"source": "container rc-db (image rollcall/postgres:15)", "engine": "postgresql"},
                {"source": "volume rc-dbdata (label rollcall.engine)", "engine": "postgresql"}]
    assert stack.engine_conflict("postgresql", evidence) is None


def test_another_engine_is_refused_with_what_was_found_and_the_way_out():
    evidence = [{"source": "container rc-db (image rollcall/postgres:15)", "engine": "postgresql"}]
    message = stack.engine_conflict("mariadb", evidence)
    assert "already runs postgresql (container rc-db (image rollcall/postgres:15): postgresql)" in message
    assert "rollcall_db_engine is mariadb" in message
    assert "Nothing was changed" in message and "Keep rollcall_db_engine=postgresql" in message
    assert "teardown.yml -e teardown_volumes=true -e confirm=yes" in message


def test_a_stack_with_two_engines_is_refused_even_for_one_of_them():
    evidence = [{"source": "container rc-db (image rollcall/mariadb:10.11)", "engine": "mariadb"},
                {"source": "volume rc-dbdata (its files)", "engine": "postgresql"}]
    message = stack.engine_conflict("mariadb", evidence)
    assert "more than one engine" in message and "Keep rollcall_db_engine=the engine it runs" in message


SERVED = [{"host": "app1", "version": "1.1.0", "deployed_at": "2026-12-01T10:00:00Z"}]


def test_a_new_stack_or_a_kept_volume_or_a_rebuild_asked_for_goes_on():
    assert stack.lost_data("postgresql", "sms-dbdata", False, [], "db1") is None  # new (or torn down on purpose)
    assert stack.lost_data("postgresql", "sms-dbdata", True, SERVED, "db1") is None
    assert stack.lost_data("postgresql", "sms-dbdata", False, SERVED, "db1", rebuild=True) is None


def test_a_stack_that_served_without_its_data_volume_is_refused_with_the_way_on():
    msg = stack.lost_data("mariadb", "sms-dbdata", False, SERVED, "db1", database="school")
    assert msg.startswith("Nothing was changed: the database volume sms-dbdata does not exist on db1, but this stack "
                          "has served: 1.1.0 is live on app1 (deployed 2026-12-01T10:00:00Z"), msg
    assert "empty mariadb database" in msg
    assert "playbooks/deploy.yml -e rollcall_db_rebuild=true, then playbooks/restore.yml -e confirm=school" in msg
    assert "teardown_volumes=true" in msg and "pitr_from_repo" not in msg


def test_sqlite_names_the_files_volume_and_pitr_names_the_recovery_to_the_last_write():
    assert "the SQLite file's volume sms-sqlite does not exist on app1" in stack.lost_data(
        "sqlite", "sms-sqlite", False, SERVED, "app1")
    msg = stack.lost_data("postgresql", "sms-dbdata", False, SERVED, "db1", pitr=True)
    assert "-e to_time=latest -e pitr_from_repo=" in msg and "a new rollcall_pitr_repo first" in msg


# ------------------------------------------------ the app's port (port_conflict; who holds it: test_ports.py)
def test_a_port_held_by_another_container_is_a_conflict_naming_it():
    said = stack.port_conflict("sms", "app1", "127.0.0.1", 8080, [("other-proxy", "127.0.0.1:8080")])
    assert said.startswith("Nothing was changed: the app's port 127.0.0.1:8080 on app1 is taken: container "
                           "other-proxy publishes 127.0.0.1:8080, not this stack's proxy (sms-proxy)")
    assert said.endswith("-e rollcall_app_port=PORT (in the inventory to keep it).")


def test_another_container_counts_even_beside_the_stacks_own():
    said = stack.port_conflict("sms", "app1", "0.0.0.0", 8080, [("sms-proxy", "127.0.0.1:8080"),
                                                               ("web", "0.0.0.0:8080")])
    assert "container web publishes 0.0.0.0:8080" in said


@pytest.mark.parametrize("name", ["sms-proxy", "sms-app"])  # the proxy, or the app from before the proxy
def test_the_stacks_own_container_on_its_port_is_a_redeploy(name):
    assert stack.port_conflict("sms", "app1", "127.0.0.1", 8080, [(name, "127.0.0.1:8080")], "in use") is None


def test_a_program_listening_is_a_conflict_and_a_free_port_is_none():
    said = stack.port_conflict("sms", "app1", "127.0.0.1", 8090, [], "Address already in use", "drill_app_port")
    assert "another program listens there (Address already in use)" in said
    assert said.endswith("-e drill_app_port=PORT.")
    assert stack.port_conflict("sms", "app1", "127.0.0.1", 8090, [], None) is None



def test_the_database_port_names_the_database_and_its_setting():
    said = stack.port_conflict("sms", "db1", "10.0.0.5", 5432, [], "Address already in use",
                               "rollcall_db_publish_port", "database", ("sms-postgres",))
    assert said.startswith("Nothing was changed: the database's port 10.0.0.5:5432 on db1 is taken: another program "
                           "listens there (Address already in use; a database server installed on the host?), not "
                           "this stack's database (sms-postgres).")
    assert "-e rollcall_db_publish_port=PORT (in the inventory to keep it)." in said
    assert stack.port_conflict("sms", "db1", "10.0.0.5", 5432, [("sms-postgres", "10.0.0.5:5432")], None,
                               "rollcall_db_publish_port", "database", ("sms-postgres",)) is None
    assert "container sms-proxy publishes" in stack.port_conflict(
        "sms", "db1", "10.0.0.5", 5432, [("sms-proxy", "0.0.0.0:5432")], None, "x", "database")


def test_an_uploads_volume_made_anew_for_a_stack_that_served_is_said_with_the_way_back():
    served = [{"host": "app1", "version": "1.1.0", "deployed_at": "2026-12-01T10:00:00Z"}]
    said = stack.lost_uploads("sms-uploads", False, served, "app1")
    assert said.startswith("The uploads volume sms-uploads did not exist on app1, although this stack has served "
                           "(1.1.0 live since 2026-12-01T10:00:00Z): it was made anew, empty")
    assert "playbooks/restore.yml -e confirm=sms brings both back" in said
    assert stack.lost_uploads("sms-uploads", True, served, "app1") is None  # it is there
    assert stack.lost_uploads("sms-uploads", False, [], "app1") is None  # a new stack: nothing was uploaded yet
