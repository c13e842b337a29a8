# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The audit of data changes on MariaDB / MySQL (issue 12, item 2; seed 000 "trigger-based audit logging").

MariaDB cannot write a whole row as JSON (PostgreSQL's ``to_jsonb(NEW)``), so each audited table gets three
triggers (AFTER INSERT, UPDATE, DELETE) whose text names the table's columns: ``plan()`` generates them from the
columns the server reports and compares them with the triggers it has, so a release that adds, drops or renames
a column, or a restore of a backup from before the audit, gets its triggers (re-)created by the next run, and a
run with nothing to do changes nothing. The comparison is of the whole trigger definition (timing, event, table,
definer, body), not of a version comment: a restore re-creates triggers from mysqldump's text, where a comment in
the body would break mysqldump's ``/*!50003 ... */`` wrapping.

The rows go to ``<audit database>.data_changes``, a database of its own (the app's login has DML on every table
of the app's database and nothing on this one): when (``changed_at``, UTC), who (``db_user``, ``client_host``
from ``USER()``, the login that made the change; ``actor`` from the session variable ``@rollcall_actor``), what
(``table_name``, ``operation``, ``old_row`` and ``new_row`` as JSON objects of the row's columns; binary columns
in base64, geometry as WKT, BIT as a number).

The triggers run as the owner role (``DEFINER``): it needs INSERT on the audit database and nothing else there, and
a restore, which logs in as the owner, can re-create them from a dump. A trigger whose table lost a column since
it was made (a rollback's down migration, before the run that follows re-creates it) still lets the write through
and records who/when/table/operation with a ``note`` instead of the row images (a handler for error 1054); any other
failure to write the audit row fails the change (the audit is not skipped silently).

Identifiers are quoted with backticks (doubled inside), literals with single quotes (quotes doubled, backslashes
escaped: the server's default SQL mode).
"""

import hashlib

PREFIX = "rollcall_audit_"
AUDIT_TABLE = "data_changes"
MAX_NAME = 64
OPERATIONS = (("INSERT", "ins"), ("UPDATE", "upd"), ("DELETE", "del"))
BINARY = frozenset(("binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"))
GEOMETRY = frozenset(("geometry", "point", "linestring", "polygon", "multipoint", "multilinestring",
                      "multipolygon", "geometrycollection"))
LOST = ("the table's columns changed after this trigger was made: row not recorded; the next deploy, rollback or "
        "restore re-creates the trigger")


class AuditError(ValueError):
    pass


def quote_ident(name):
    if not isinstance(name, str) or not name:
        raise AuditError("an identifier must be a non-empty string, got %r" % (name,))
    return "`%s`" % name.replace("`", "``")


def quote_literal(value):
    return "'%s'" % str(value).replace("\\", "\\\\").replace("'", "''")


def trigger_name(table, suffix):
    """``rollcall_audit_<table>_<ins|upd|del>``; a name over MariaDB's 64 characters keeps the table's start and a
    hash of the whole table name (trigger names are unique per database, not per table)."""
    name = "%s%s_%s" % (PREFIX, table, suffix)
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(table.encode("utf-8")).hexdigest()[:8]
    keep = MAX_NAME - len(PREFIX) - len(suffix) - len(digest) - 2
    return "%s%s_%s_%s" % (PREFIX, table[:keep], digest, suffix)


def definer_sql(definer):
    """``'user@host'`` (information_schema's spelling) as ``DEFINER = `user`@`host```."""
    user, sep, host = definer.rpartition("@")
    if not sep or not user:
        raise AuditError("the definer must be user@host, got %r" % (definer,))
    return "%s@%s" % (quote_ident(user), quote_ident(host))


def column_value(row, column, data_type):
    ref = "%s.%s" % (row, quote_ident(column))
    data_type = (data_type or "").lower()
    if data_type in BINARY:
        return "TO_BASE64(%s)" % ref
    if data_type in GEOMETRY:
        return "ST_AsText(%s)" % ref
    if data_type == "bit":
        return "(%s + 0)" % ref
    return ref


def row_json(row, columns):
    """``JSON_OBJECT('col', NEW.`col`, ...)`` for ``columns`` [(name, data_type)]."""
    return "JSON_OBJECT(%s)" % ", ".join("%s, %s" % (quote_literal(name), column_value(row, name, data_type))
                                         for name, data_type in columns)


def _insert(audit_table, table, operation, old, new, note="NULL"):
    return ("INSERT INTO %s (`changed_at`, `db_user`, `client_host`, `actor`, `table_name`, `operation`, `old_row`, "
            "`new_row`, `note`) VALUES (UTC_TIMESTAMP(6), SUBSTRING_INDEX(USER(), '@', 1), "
            "SUBSTRING_INDEX(USER(), '@', -1), LEFT(NULLIF(@rollcall_actor, ''), 255), %s, %s, %s, %s, %s)"
            % (audit_table, quote_literal(table), quote_literal(operation), old, new, note))


def trigger_body(audit_database, table, operation, columns):
    """What follows ``FOR EACH ROW`` (information_schema's ACTION_STATEMENT): one line."""
    if operation not in dict(OPERATIONS):
        raise AuditError("operation must be INSERT, UPDATE or DELETE, got %r" % (operation,))
    if not columns:
        raise AuditError("table %s has no columns to audit" % table)
    audit_table = "%s.%s" % (quote_ident(audit_database), quote_ident(AUDIT_TABLE))
    old = "NULL" if operation == "INSERT" else row_json("OLD", columns)
    new = "NULL" if operation == "DELETE" else row_json("NEW", columns)
    return ("BEGIN DECLARE CONTINUE HANDLER FOR 1054 %s; %s; END"
            % (_insert(audit_table, table, operation, "NULL", "NULL", quote_literal(LOST)),
               _insert(audit_table, table, operation, old, new)))


def create_trigger(name, table, operation, definer, body):
    """Unqualified names, run with the app's database as the session's default: the statement is kept as written
    and a dump replays it, so a qualified name would put a restore's triggers back on the live tables instead of
    the scratch database being loaded."""
    return ("CREATE OR REPLACE DEFINER = %s TRIGGER %s AFTER %s ON %s FOR EACH ROW %s"
            % (definer_sql(definer), quote_ident(name), operation, quote_ident(table), body))


def audit_table_sql(audit_database):
    """The audit database and table (``IF NOT EXISTS``: an existing table and its rows are kept)."""
    return [
        "CREATE DATABASE IF NOT EXISTS %s CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
        % quote_ident(audit_database),
        "CREATE TABLE IF NOT EXISTS %s.%s (`id` BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, "
        "`changed_at` DATETIME(6) NOT NULL, `db_user` VARCHAR(128) NOT NULL, `client_host` VARCHAR(255) NOT NULL, "
        "`actor` VARCHAR(255) NULL, `table_name` VARCHAR(64) NOT NULL, `operation` VARCHAR(6) NOT NULL, "
        "`old_row` JSON NULL, `new_row` JSON NULL, `note` VARCHAR(255) NULL, "
        "KEY `data_changes_changed_at` (`changed_at`)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 "
        "COLLATE=utf8mb4_unicode_ci COMMENT='rollcall audit of data changes (roles/database tasks/audit.yml)'"
        % (quote_ident(audit_database), quote_ident(AUDIT_TABLE)),
    ]


def prune_sql(audit_database, count=False):
    """Rows older than ``%(days)s`` days (a named argument): deleted, or counted (check mode)."""
    where = "WHERE `changed_at` < UTC_TIMESTAMP(6) - INTERVAL %(days)s DAY"
    target = "%s.%s" % (quote_ident(audit_database), quote_ident(AUDIT_TABLE))
    return ("SELECT COUNT(*) AS n FROM %s %s" if count else "DELETE FROM %s %s") % (target, where)


def _lower(row):
    return {str(k).lower(): v for k, v in row.items()}


def plan(database, audit_database, definer, tables, columns, triggers, audit_table_exists, enabled=True):
    """What brings the audit of ``database`` to the wanted state; the statements run with ``database`` as the
    session's default database (create_trigger).

    ``columns``: rows (table_name, column_name, data_type[, ordinal_position]) of information_schema.columns of
    ``database``, any key case; ``triggers``: rows (trigger_name, event_object_table, event_manipulation,
    action_timing, action_statement, definer) of information_schema.triggers of ``database``. ``tables``: the
    tables to audit (those that do not exist are left out). ``enabled`` false: every audit trigger goes, the
    audit table and its rows stay.

    Returns {"statements": [...] in order, "create": [trigger names], "drop": [trigger names],
    "tables": [audited tables], "audit_table": whether the table is (or will be) there}.
    """
    for name in (database, audit_database):
        quote_ident(name)
    if database == audit_database:
        raise AuditError("the audit database must not be the app's database (%s): the app's login may change every "
                         "table there" % database)
    definer_sql(definer)
    by_table = {}
    for row in sorted((_lower(r) for r in columns or []),
                      key=lambda r: (r["table_name"], int(r.get("ordinal_position") or 0))):
        by_table.setdefault(row["table_name"], []).append((row["column_name"], row.get("data_type")))
    audited = [t for t in dict.fromkeys(tables or []) if t in by_table] if enabled else []
    wanted = {}
    for table in audited:
        for operation, suffix in OPERATIONS:
            wanted[trigger_name(table, suffix)] = (table, operation,
                                                   trigger_body(audit_database, table, operation, by_table[table]))
    have = {r["trigger_name"]: r for r in (_lower(t) for t in triggers or [])
            if str(r.get("trigger_name", "")).startswith(PREFIX)}
    statements = []
    if audited and not audit_table_exists:
        statements += audit_table_sql(audit_database)
    create = []
    for name, (table, operation, body) in wanted.items():
        found = have.get(name)
        if found is None or (found.get("event_object_table"), str(found.get("event_manipulation", "")).upper(),
                             str(found.get("action_timing", "")).upper(), found.get("action_statement"),
                             found.get("definer")) != (table, operation, "AFTER", body, definer):
            create.append(name)
            statements.append(create_trigger(name, table, operation, definer, body))
    drop = sorted(set(have) - set(wanted))
    statements += ["DROP TRIGGER IF EXISTS %s.%s" % (quote_ident(database), quote_ident(name)) for name in drop]
    return {"statements": statements, "create": create, "drop": drop, "tables": audited,
            "audit_table": bool(audit_table_exists or audited)}
