"""The MariaDB audit of data changes (plugins/module_utils/audit.py): the triggers' text, and the plan that brings a
database's audit triggers to what its columns need (create, re-create after a column change, drop, nothing)."""

import pytest

from ansible_collections.rollcall.ops.plugins.filter.audit import mariadb_audit_plan, mariadb_audit_prune
from ansible_collections.rollcall.ops.plugins.module_utils.audit import (
    LOST,
    AuditError,
    audit_table_sql,
    plan,
    prune_sql,
    quote_ident,
    quote_literal,
    row_json,
    trigger_body,
    trigger_name,
)

COLUMNS = [{"TABLE_NAME": "students", "COLUMN_NAME": name, "DATA_TYPE": kind, "ORDINAL_POSITION": i}
           for i, (name, kind) in enumerate([("id", "int"), ("first_name", "varchar")], 1)]
COLUMNS += [{"table_name": "grades", "column_name": "id", "data_type": "int"},
            {"table_name": "other", "column_name": "x", "data_type": "int"}]


def existing(result, database="sms", audit="sms_audit", definer="sms_owner@%"):
    """information_schema.triggers rows as the server would answer after ``result``'s statements ran."""
    rows = []
    for table in result["tables"]:
        cols = [(c.get("COLUMN_NAME") or c.get("column_name"), c.get("DATA_TYPE") or c.get("data_type"))
                for c in COLUMNS if (c.get("TABLE_NAME") or c.get("table_name")) == table]
        for operation, suffix in (("INSERT", "ins"), ("UPDATE", "upd"), ("DELETE", "del")):
            rows.append({"TRIGGER_NAME": trigger_name(table, suffix), "EVENT_OBJECT_TABLE": table,
                         "EVENT_MANIPULATION": operation, "ACTION_TIMING": "AFTER", "DEFINER": definer,
                         "ACTION_STATEMENT": trigger_body(audit, table, operation, cols)})
    return rows


def test_quoting_doubles_backticks_and_quotes():
    assert quote_ident("odd `name`") == "`odd ``name```"
    assert quote_literal("it's a \\ path") == "'it''s a \\\\ path'"
    with pytest.raises(AuditError):
        quote_ident("")


def test_trigger_names_fit_in_64_characters_and_stay_distinct():
    assert trigger_name("students", "upd") == "rollcall_audit_students_upd"
    long_a, long_b = "t" * 60 + "a", "t" * 60 + "b"
    assert len(trigger_name(long_a, "ins")) == 64 and trigger_name(long_a, "ins") != trigger_name(long_b, "ins")
    assert trigger_name(long_a, "ins").startswith("rollcall_audit_")


def test_row_json_names_each_column_and_encodes_binary_geometry_and_bit():
    sql = row_json("NEW", [("id", "int"), ("b`q", "varchar"), ("photo", "LONGBLOB"), ("at", "point"),
                           ("flags", "bit")])
    assert sql == ("JSON_OBJECT('id', NEW.`id`, 'b`q', NEW.`b``q`, 'photo', TO_BASE64(NEW.`photo`), "
                   "'at', ST_AsText(NEW.`at`), 'flags', (NEW.`flags` + 0))")


def test_trigger_bodies_per_operation():
    cols = [("id", "int")]
    insert = trigger_body("sms_audit", "students", "INSERT", cols)
    assert insert.startswith("BEGIN DECLARE CONTINUE HANDLER FOR 1054 INSERT INTO `sms_audit`.`data_changes`")
    assert insert.endswith("'students', 'INSERT', NULL, JSON_OBJECT('id', NEW.`id`), NULL); END")
    assert "\n" not in insert and quote_literal(LOST) in insert
    assert "SUBSTRING_INDEX(USER(), '@', 1)" in insert and "@rollcall_actor" in insert
    assert trigger_body("sms_audit", "students", "UPDATE", cols).endswith(
        "'UPDATE', JSON_OBJECT('id', OLD.`id`), JSON_OBJECT('id', NEW.`id`), NULL); END")
    assert trigger_body("sms_audit", "students", "DELETE", cols).endswith(
        "'DELETE', JSON_OBJECT('id', OLD.`id`), NULL, NULL); END")
    with pytest.raises(AuditError):
        trigger_body("sms_audit", "students", "TRUNCATE", cols)


def test_a_new_database_gets_the_audit_table_and_three_triggers_per_existing_table():
    result = plan("sms", "sms_audit", "sms_owner@%", ["students", "grades", "missing"], COLUMNS, [], False)
    assert result["tables"] == ["students", "grades"] and result["audit_table"] and result["drop"] == []
    assert result["create"] == ["rollcall_audit_students_ins", "rollcall_audit_students_upd",
                                "rollcall_audit_students_del", "rollcall_audit_grades_ins",
                                "rollcall_audit_grades_upd", "rollcall_audit_grades_del"]
    assert result["statements"][:2] == audit_table_sql("sms_audit")
    assert result["statements"][2].startswith(
        "CREATE OR REPLACE DEFINER = `sms_owner`@`%` TRIGGER `rollcall_audit_students_ins` AFTER INSERT ON "
        "`students` FOR EACH ROW BEGIN ")  # unqualified: a dump of it loads into a restore's scratch database
    assert "JSON_OBJECT('id', NEW.`id`, 'first_name', NEW.`first_name`)" in result["statements"][2]


def test_nothing_to_do_when_the_triggers_match():
    first = plan("sms", "sms_audit", "sms_owner@%", ["students", "grades"], COLUMNS, [], True)
    again = plan("sms", "sms_audit", "sms_owner@%", ["students", "grades"], COLUMNS, existing(first), True)
    assert again == {"statements": [], "create": [], "drop": [], "tables": ["students", "grades"],
                     "audit_table": True}


def test_a_column_change_a_foreign_definer_or_a_dropped_table_recreates_or_drops():
    first = plan("sms", "sms_audit", "sms_owner@%", ["students", "grades"], COLUMNS, [], True)
    rows = existing(first)
    added = COLUMNS + [{"table_name": "students", "column_name": "full_name", "data_type": "varchar",
                        "ordinal_position": 3}]
    result = plan("sms", "sms_audit", "sms_owner@%", ["students", "grades"], added, rows, True)
    assert result["create"] == ["rollcall_audit_students_ins", "rollcall_audit_students_upd",
                                "rollcall_audit_students_del"]
    assert all("'full_name', NEW.`full_name`" in s for s in result["statements"] if "_del`" not in s)
    rows[3]["DEFINER"] = "rollcall_admin@172.18.0.1"
    assert plan("sms", "sms_audit", "sms_owner@%", ["students", "grades"], COLUMNS, rows, True)["create"] == [
        "rollcall_audit_grades_ins"]
    gone = [c for c in COLUMNS if c.get("table_name") != "grades"]
    result = plan("sms", "sms_audit", "sms_owner@%", ["students", "grades"], gone, existing(first), True)
    assert result["create"] == [] and result["drop"] == ["rollcall_audit_grades_del", "rollcall_audit_grades_ins",
                                                         "rollcall_audit_grades_upd"]
    assert result["statements"][0] == "DROP TRIGGER IF EXISTS `sms`.`rollcall_audit_grades_del`"


def test_switched_off_drops_every_audit_trigger_and_leaves_others():
    first = plan("sms", "sms_audit", "sms_owner@%", ["students"], COLUMNS, [], True)
    rows = existing(first) + [{"trigger_name": "app_own", "event_object_table": "students"}]
    result = plan("sms", "sms_audit", "sms_owner@%", ["students"], COLUMNS, rows, True, enabled=False)
    assert result["tables"] == [] and len(result["drop"]) == 3 and "app_own" not in result["drop"]
    assert plan("sms", "sms_audit", "sms_owner@%", ["students"], COLUMNS, [], False, enabled=False)["statements"] == []


def test_the_audit_database_must_not_be_the_apps_and_the_definer_needs_a_host():
    with pytest.raises(AuditError, match="must not be the app's database"):
        plan("sms", "sms", "sms_owner@%", ["students"], COLUMNS, [], False)
    with pytest.raises(AuditError, match="user@host"):
        plan("sms", "sms_audit", "sms_owner", ["students"], COLUMNS, [], False)


def test_prune_and_the_filters():
    assert prune_sql("sms_audit") == ("DELETE FROM `sms_audit`.`data_changes` WHERE `changed_at` < "
                                      "UTC_TIMESTAMP(6) - INTERVAL %(days)s DAY")
    assert mariadb_audit_prune("sms_audit", count=True).startswith("SELECT COUNT(*) AS n FROM `sms_audit`")
    answer = [COLUMNS, [], [{"n": 1}]]
    result = mariadb_audit_plan(answer, "sms", "sms_audit", "sms_owner@%", ["students"])
    assert len(result["statements"]) == 3 and result["audit_table"]
    from ansible.errors import AnsibleFilterError
    with pytest.raises(AnsibleFilterError, match="mariadb_audit_plan"):
        mariadb_audit_plan(answer, "sms", "sms", "sms_owner@%", ["students"])
