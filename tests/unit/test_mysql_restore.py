"""The MySQL adapter's restore decisions: database properties, the dump's ALTER DATABASE lines, swap into a
database that does not exist (and what a failure there leaves)."""

import pytest

from ansible_collections.rollcall.ops.plugins.module_utils.engines import mysql
from ansible_collections.rollcall.ops.plugins.module_utils.engines.base import EngineError, Target

DUMP = (b"-- MariaDB dump 10.19\nCREATE TABLE `t` (x int);\n/*!50003 DROP PROCEDURE IF EXISTS `p` */;\n"
        b"ALTER DATABASE `sms` CHARACTER SET latin1 COLLATE latin1_swedish_ci ;\nCREATE PROCEDURE p() SELECT 1\n;;\n"
        b"INSERT INTO `t` VALUES ('\nALTER DATABASE `smsx` CHARACTER SET x');\n"
        b"ALTER DATABASE `sms` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin ;\n-- Dump completed\n")


@pytest.mark.parametrize("size", [1, 2, 5, 17, 40, 1 << 20])
def test_the_dumps_alter_database_lines_change_the_database_being_loaded(size):
    chunks = [DUMP[i:i + size] for i in range(0, len(DUMP), size)]
    out = b"".join(mysql.retarget(iter(chunks), "sms", "sms__rc_scratch"))
    assert out == DUMP.replace(b"\nALTER DATABASE `sms` ", b"\nALTER DATABASE `sms__rc_scratch` ")
    assert out.count(b"ALTER DATABASE `sms__rc_scratch` CHARACTER SET") == 2
    assert b"ALTER DATABASE `smsx`" in out  # another name, left alone


def test_chunks_pass_through_uncopied_when_nothing_is_aimed_at_the_source():
    chunks = [b"INSERT INTO `t` VALUES (1);\n", b"-- Dump completed\n"]
    out = list(mysql.retarget(iter(chunks), "sms", "x"))
    assert len(out) == 2 and out[0] is chunks[0] and out[1] is chunks[1]


def test_properties_sql_quotes_the_name_and_comment_and_checks_charset_names():
    props = {"charset": "latin1", "collation": "latin1_german1_ci", "comment": "it's\\"}
    assert mysql.properties_sql("a`b", props, comments=True) == (
        "CREATE DATABASE `a``b` CHARACTER SET latin1 COLLATE latin1_german1_ci COMMENT 'it\\'s\\\\';")
    altered = mysql.properties_sql("d", {"charset": "utf8mb4", "collation": "utf8mb4_bin"}, comments=True,
                                   create=False)
    assert altered == "ALTER DATABASE `d` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin COMMENT '';"
    assert "COMMENT" not in mysql.properties_sql("d", props, comments=False)
    with pytest.raises(EngineError, match="not a character set"):
        mysql.properties_sql("d", {"charset": "latin1; DROP DATABASE x", "collation": "c"}, comments=False)


def test_the_fingerprint_changes_with_every_property():
    base = {"charset": "utf8mb4", "collation": "utf8mb4_unicode_ci"}
    prints = {mysql.properties_fingerprint(p) for p in (base, dict(base, collation="utf8mb4_bin"),
                                                         dict(base, charset="latin1"), dict(base, comment="x"))}
    assert len(prints) == 4
    assert mysql.properties_fingerprint(None) is None


class FakeMySQL(mysql.MySQL):
    """Answers the catalog from ``databases`` ({name: properties}); records every statement; ``fail_on``: a
    statement prefix that fails."""

    def __init__(self, databases, fail_on=None):
        super().__init__(None, Target("mysql", "sms"))
        self.databases, self.fail_on, self.statements = databases, fail_on, []
        self._schema_comment = True

    def properties(self, database):
        return self.databases.get(database)

    def _relations(self, database):
        return ["pupils"] if database in self.databases else []

    def objects(self, database):
        return []

    def sql(self, statements, database=None, what="query"):
        self.statements.append(statements)
        if self.fail_on and statements.startswith(self.fail_on):
            raise EngineError("injected: %s failed" % what)
        return []


LATIN = {"charset": "latin1", "collation": "latin1_swedish_ci", "comment": "c"}


def test_swap_into_an_absent_database_creates_it_with_the_restored_properties():
    engine = FakeMySQL({"sms__rc_scratch": LATIN})
    assert engine.swap_in("sms__rc_scratch", "sms", keep_old=True) is None
    assert engine.statements == [
        "CREATE DATABASE `sms` CHARACTER SET latin1 COLLATE latin1_swedish_ci COMMENT 'c';",
        "RENAME TABLE `sms__rc_scratch`.`pupils` TO `sms`.`pupils`;",
        "DROP DATABASE IF EXISTS `sms__rc_scratch`;"]


def test_a_failed_swap_into_an_absent_database_drops_what_it_made_and_the_scratch():
    engine = FakeMySQL({"sms__rc_scratch": LATIN}, fail_on="RENAME")
    with pytest.raises(EngineError, match="injected: moving tables"):
        engine.swap_in("sms__rc_scratch", "sms", keep_old=False)
    assert engine.statements[-2:] == ["DROP DATABASE IF EXISTS `sms`;", "DROP DATABASE IF EXISTS `sms__rc_scratch`;"]


def test_swap_over_a_live_database_sets_the_restored_properties_and_undoes_them_on_failure():
    live = {"charset": "utf8mb4", "collation": "utf8mb4_bin"}
    engine = FakeMySQL({"sms__rc_scratch": LATIN, "sms": live})
    engine.swap_in("sms__rc_scratch", "sms", keep_old=False)
    assert "ALTER DATABASE `sms` CHARACTER SET latin1 COLLATE latin1_swedish_ci COMMENT 'c';" in engine.statements
    engine = FakeMySQL({"sms__rc_scratch": LATIN, "sms": live}, fail_on="DELIMITER")  # re-creating objects
    engine.objects = lambda database: [{"kind": "VIEW", "name": "v", "sql_mode": None, "create": "CREATE VIEW v"}]
    with pytest.raises(EngineError, match="injected"):
        engine.swap_in("sms__rc_scratch", "sms", keep_old=False)
    alters = [s for s in engine.statements if s.startswith("ALTER DATABASE `sms` ")]
    assert alters == ["ALTER DATABASE `sms` CHARACTER SET latin1 COLLATE latin1_swedish_ci COMMENT 'c';",
                      "ALTER DATABASE `sms` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin COMMENT '';"]


def test_create_database_takes_the_backups_properties_first():
    engine = FakeMySQL({"sms": {"charset": "utf8mb4", "collation": "utf8mb4_bin"}})
    engine.prepare_for({"database": "sms", "mysql": {"database": LATIN}})
    engine.create_database("sms__rc_scratch", like="sms")
    engine.prepare_for({"database": "sms"})  # an older backup: like the live database, else the app's defaults
    engine.create_database("a", like="sms")
    engine.create_database("b")
    assert engine.statements == [
        "CREATE DATABASE `sms__rc_scratch` CHARACTER SET latin1 COLLATE latin1_swedish_ci COMMENT 'c';",
        "CREATE DATABASE `a` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin COMMENT '';",
        "CREATE DATABASE `b` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci COMMENT '';"]


class _Answers(mysql.MySQL):
    """The adapter with canned answers to its SQL (what a server would say), recording what it was asked."""

    def __init__(self, tables, checked=()):
        super().__init__(None, Target("mysql", "sms"))
        self.tables, self.checked, self.asked = tables, list(checked), []

    def sql(self, statements, database=None, what="query"):
        self.asked.append(statements)
        return self.tables if statements.startswith("SELECT") else self.checked


def test_the_load_check_reads_no_table_again_and_finds_a_table_that_does_not_open():
    fine = _Answers([["students", "BASE TABLE", "InnoDB", ""], ["roster", "VIEW", "", "VIEW"]],
                    checked=[["sms.roster", "check", "status", "OK"]])
    assert fine.load_check("sms") == ("passed", "1 tables open, 1 views resolve")
    assert fine.asked[1] == "CHECK TABLE `sms`.`roster`;", "only views are checked, no base table is read again"
    broken = _Answers([["students", "BASE TABLE", "", "Table 'sms.students' doesn't exist in engine"]])
    assert broken.load_check("sms") == ("failed", "students: Table 'sms.students' doesn't exist in engine")
    view = _Answers([["roster", "VIEW", "", "VIEW"]], checked=[["sms.roster", "check", "Error", "references gone"]])
    assert view.load_check("sms") == ("failed", "sms.roster: references gone")


# ------------------------------------------------------------------------ root inside the database's container
class _Runner:
    """Records the environment each run is given; ``own``: the container's MARIADB_ROOT_PASSWORD (None: no
    container, or a lookup that fails)."""

    def __init__(self, own="made-with", fails=False):
        self.own, self.fails, self.envs = own, fails, []

    def env_value(self, *names):
        assert names == ("MARIADB_ROOT_PASSWORD", "MYSQL_ROOT_PASSWORD")
        if self.fails:
            raise RuntimeError("the engine went away")
        return self.own

    def run(self, argv, stdin=None, sink=None, env=None, user=None):
        self.envs.append(env)
        return type("R", (), {"rc": 0, "text": "1\n", "stderr": b""})()


@pytest.mark.parametrize("user, password, runner, expected", [
    # root@127.0.0.1 keeps the password the container was made with; the inventory's admin password, which a
    # rotation changes, is rollcall_admin's: before, the security audit and the binary log's archiving (given the
    # inventory's) failed with "Access denied for user 'root'@'127.0.0.1'" after rotate_db_passwords.yml. Given no
    # password, root in a container uses the container's own.
    ("root", None, _Runner(), {"MYSQL_PWD": "made-with"}),
    (None, "", _Runner(), {"MYSQL_PWD": "made-with"}),
    ("root", "given", _Runner(), {"MYSQL_PWD": "given"}),  # a password given is used as it is (a wrong one fails)
    ("sms_backup", None, _Runner(), {}),  # other accounts: never the container's root password
    ("root", None, _Runner(own=None), {}),  # a container made without one
    ("root", None, _Runner(fails=True), {}),
    ("root", None, type("Local", (_Runner,), {"env_value": None})(), {}),  # not in a container
])
def test_root_in_the_container_given_no_password_uses_the_containers_own(user, password, runner, expected):
    engine = mysql.MySQL(runner, Target("mysql", "sms", user=user, password=password, container="x-db"))
    engine.sql("SELECT 1;")
    engine.sql("SELECT 2;")
    assert runner.envs == [expected, expected]
