"""The PostgreSQL adapter's decisions about database properties, materialized views and the swap (issue 9, items
15-17), with a fake runner that records the SQL psql is given and answers from a script."""

import json

import pytest

from ansible_collections.rollcall.ops.plugins.module_utils.engines import postgresql
from ansible_collections.rollcall.ops.plugins.module_utils.engines.base import EngineError, Target
from ansible_collections.rollcall.ops.plugins.module_utils.engines.postgresql import (
    PostgreSQL,
    database_properties,
    matview_problems,
    restore_properties_sql,
    split_quoted_list,
    split_setting,
)
from ansible_collections.rollcall.ops.plugins.module_utils.runner import Result

PROPERTIES = {
    "owner": "sms", "encoding": "SQL_ASCII", "collate": "C", "ctype": "C", "locale_provider": "libc",
    "icu_locale": None, "connection_limit": 40, "comment": "it's old",
    "acl": [["PUBLIC", "TEMPORARY", False], ["auditor", "CONNECT", True], ["sms", "CONNECT", False]],
    "settings": [[None, 'search_path="Grades, old", public'], [None, "work_mem=8MB"],
                 ["auditor", "statement_timeout=5s"]],
}


@pytest.mark.parametrize("value,elements", [
    ("public", ["public"]),
    ('"$user", public', ["$user", "public"]),
    ('"Grades, old", public', ["Grades, old", "public"]),
    ('"say ""hi""",x', ['say "hi"', "x"]),
    ('""', [""]),
    ("", []),
])
def test_split_quoted_list(value, elements):
    assert split_quoted_list(value) == elements


def test_split_setting_quotes_list_settings_element_by_element_only():
    assert split_setting('search_path="a b", public') == ("search_path", ["a b", "public"])
    assert split_setting("DateStyle=ISO, MDY") == ("DateStyle", ["ISO, MDY"])
    assert split_setting("rollcall.note=x=y") == ("rollcall.note", ["x=y"])


def test_restore_properties_sql_puts_every_value_in_a_psql_variable():
    sql, variables = restore_properties_sql(PROPERTIES)
    lines = sql.splitlines()
    assert lines[0] == 'ALTER DATABASE :"d" WITH CONNECTION LIMIT 40;'
    assert "it's old" not in sql and "it's old" in variables.values()
    assert 'REVOKE ALL ON DATABASE :"d" FROM PUBLIC;' in lines
    assert "GRANT TEMPORARY ON DATABASE :\"d\" TO PUBLIC;" in lines
    grant = [line for line in lines if "WITH GRANT OPTION" in line]
    assert len(grant) == 1 and variables[grant[0].split(':"')[2].split('"')[0]] == "auditor"
    search = [line for line in lines if line.startswith('ALTER DATABASE :"d" SET') and line.count(":'") == 2]
    assert len(search) == 1
    assert sorted(v for v in variables.values() if v in ("Grades, old", "public")) == ["Grades, old", "public"]
    assert any(line.startswith('ALTER ROLE :"') and 'IN DATABASE :"d" SET' in line for line in lines)


def test_default_properties_change_nothing():
    sql, variables = restore_properties_sql(dict(PROPERTIES, connection_limit=-1, comment=None, acl=None,
                                                 settings=[]))
    assert sql.strip() == "" and variables == {}


def test_an_unknown_privilege_is_refused():
    with pytest.raises(EngineError, match="unknown database privilege"):
        restore_properties_sql(dict(PROPERTIES, acl=[["x", "DROP EVERYTHING", False]]))


def test_database_properties_read_any_version_of_pg_database():
    document = {"row": {"datcollate": "C", "datctype": "C", "datconnlimit": -1, "datlocprovider": "i",
                        "daticulocale": "und"},
                "owner": "sms", "encoding": "UTF8", "acl": [["sms", "CONNECT", False], ["PUBLIC", "CONNECT", False]],
                "comment": None, "settings": []}
    found = database_properties(document)
    assert found["locale_provider"] == "icu" and found["icu_locale"] == "und"
    assert found["acl"] == [["PUBLIC", "CONNECT", False], ["sms", "CONNECT", False]]
    pg13 = database_properties({"row": {"datcollate": "en_US.UTF-8", "datctype": "en_US.UTF-8", "datconnlimit": 3},
                                "owner": "o", "encoding": "UTF8", "acl": None, "comment": "c", "settings": []})
    assert pg13["locale_provider"] == "libc" and pg13["icu_locale"] is None and pg13["acl"] is None
    assert pg13["connection_limit"] == 3


def test_matview_problems():
    assert matview_problems({"a.v": True, "a.w": False}, {"a.v": True, "a.w": False}) == []
    assert matview_problems({"a.v": True, "a.w": False}, {"a.v": False, "a.x": True}) == [
        "materialized view a.v was populated in the backup, not populated (WITH NO DATA) after the restore",
        "materialized view a.w is missing after the restore",
        "materialized view a.x was not in the backup"]


class FakeRunner:
    """Answers psql by the first matching fragment of its SQL; records every (SQL, variables)."""

    def __init__(self, answers):
        self.answers, self.calls = answers, []

    def run(self, argv, stdin=None, sink=None, env=None, user=None):
        sql = b"".join(stdin or []).decode()
        variables = dict(a.split("=", 1) for a, flag in zip(argv[1:], argv[:-1], strict=True) if flag == "-v")
        self.calls.append((sql, variables))
        for fragment, rows in self.answers:
            if fragment in sql:
                return Result(0, "".join("\t".join(r) + "\n" for r in rows).encode())
        return Result(0)

    def stop_running(self):
        pass


def engine(answers):
    return PostgreSQL(FakeRunner(answers), Target("postgresql", "sms", user="sms"))


LIVE = "AS live \\gset"  # the swap's psql input (swap_script) and nothing else contains this
SWAPPED = [["rollcall:swapping"], ["rollcall:swapped"], ["rollcall:done"]]


def test_swap_into_an_absent_database_renames_the_scratch_into_place():
    pg = engine([(LIVE, [["rollcall:renaming"], ["t"], ["rollcall:renamed"]])])
    assert pg.swap_in("sms__rc_scratch", "sms", keep_old=True) is None
    (script, variables), = pg.runner.calls
    renaming = script[script.index("\\else"):]
    assert 'ALTER DATABASE :"s" RENAME TO :"d"' in renaming and ':"old"' not in renaming
    assert variables["d"] == "sms" and variables["s"] == "sms__rc_scratch"


def test_swap_over_an_existing_database_keeps_the_old_one_when_asked():
    pg = engine([(LIVE, SWAPPED)])
    assert pg.swap_in("sms__rc_scratch", "sms", keep_old=True) == "sms__rc_old"
    (script, _), = pg.runner.calls
    assert 'ALTER DATABASE :"old" ALLOW_CONNECTIONS true;' in script, "a kept old database takes connections again"
    assert 'DROP DATABASE :"old"' not in script


def test_swap_over_an_existing_database_drops_the_old_one():
    pg = engine([(LIVE, SWAPPED)])
    assert pg.swap_in("sms__rc_scratch", "sms", keep_old=False) is None
    (script, _), = pg.runner.calls
    swapping = script[:script.index("\\else")]
    assert swapping.index("COMMIT;") < swapping.index("\\echo rollcall:swapped") < swapping.index(
        'DROP DATABASE :"old" WITH (FORCE);') < swapping.index("\\echo rollcall:done")


def test_the_swap_stops_new_connections_drains_the_live_sessions_then_renames_in_one_transaction():
    pg = engine([(LIVE, SWAPPED)])
    pg.swap_in("sms__rc_scratch", "sms", keep_old=True)
    (swap, variables), = pg.runner.calls
    order = [swap.index(part) for part in ("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'d') AS live",
                                           "\\if :live", 'DROP DATABASE IF EXISTS :"old"',
                                           'ALTER DATABASE :"d" ALLOW_CONNECTIONS false', "pg_stat_clear_snapshot",
                                           "state = 'idle'", "BEGIN;", 'RENAME TO :"old"',
                                           'ALTER DATABASE :"s" RENAME TO :"d"', "COMMIT;", "\\else", "\\endif")]
    assert order == sorted(order)
    assert variables == {"d": "sms", "s": "sms__rc_scratch", "old": "sms__rc_old", "ON_ERROR_STOP": "1",
                         "drain": str(postgresql.DRAIN_SECONDS)}


def test_the_swap_neither_waits_for_nor_signals_autovacuum_workers():
    """An autovacuum worker on the live database (after a bulk load, say) is not a user's work: waiting the drain
    for it cost every such restore 5 s. Ending it with pg_terminate_backend needs a superuser, which the restore's
    login is not ("must be a superuser to terminate superuser process"): the wait and the terminations leave it out,
    and the rename ends it (tests/integration/test_db_roles.py runs a restore while autovacuum works)."""
    ended = [line.strip() for line in postgresql.SWAP_SQL.splitlines() if line.strip().startswith("AND (state")]
    assert ended == ["AND (state = 'idle' OR clock_timestamp() > busy_until);"]
    sessions = [line for line in postgresql.SWAP_SQL.splitlines() if "pid <> pg_backend_pid()" in line]
    assert len(sessions) == 2 and all("backend_type <> 'autovacuum worker'" in line for line in sessions)
    assert "backend_type <> 'autovacuum worker'" in postgresql.RENAME_INTO_PLACE_SQL


def test_the_swap_is_one_psql_call_whichever_way_it_goes():
    """Whether the live database exists, the swap or the rename, and the old database's drop: one psql session
    (each psql is a process started in the database's container, about 0.05 s)."""
    for keep_old, answer in ((False, SWAPPED), (True, SWAPPED), (False, [["rollcall:renamed"]])):
        pg = engine([(LIVE, answer)])
        pg.swap_in("sms__rc_scratch", "sms", keep_old=keep_old)
        assert len(pg.runner.calls) == 1 and pg.runner.calls[0][0] == postgresql.swap_script(keep_old)


def test_the_side_database_is_dropped_and_created_in_one_psql_call():
    pg = engine([])
    pg.prepare_for({"postgresql": {"database": dict(PROPERTIES, acl=None, comment=None, settings=[],
                                                    connection_limit=-1), "matviews": {}}})
    pg.recreate_database("sms__rc_scratch", like="sms")
    (sql, variables), = pg.runner.calls
    assert sql.startswith('DROP DATABASE IF EXISTS :"d" WITH (FORCE);\nCREATE DATABASE :"d" OWNER :"o"')
    assert variables["d"] == "sms__rc_scratch" and variables["enc"] == "SQL_ASCII"
    pg.runner.calls.clear()
    pg._put_back_properties("sms__rc_scratch")
    assert pg.runner.calls == [], "no properties beyond CREATE DATABASE's: no psql call"


class FailingSwap(FakeRunner):
    """The swap's psql session fails after printing ``marks``."""

    def __init__(self, answers, marks, error="ERROR:  sessions of sms did not end within 15 s\n"):
        super().__init__(answers)
        self.marks, self.error = marks, error

    def run(self, argv, stdin=None, sink=None, env=None, user=None):
        result = super().run(argv, stdin, sink, env, user)
        if LIVE in self.calls[-1][0]:
            return Result(3, "".join(m + "\n" for m in self.marks).encode(), self.error)
        return result


def test_a_failed_swap_lets_connections_into_the_live_database_again():
    pg = PostgreSQL(FailingSwap([], ["rollcall:swapping"]), Target("postgresql", "sms", user="s"))
    with pytest.raises(EngineError, match="swapping in the restored database failed: .*did not end within 15 s"):
        pg.swap_in("sms__rc_scratch", "sms", keep_old=False)
    sql, variables = pg.runner.calls[-1]
    assert sql == 'ALTER DATABASE :"d" ALLOW_CONNECTIONS true;' and variables["d"] == "sms"


def test_a_failed_rename_into_an_absent_database_says_so_and_touches_nothing_else():
    pg = PostgreSQL(FailingSwap([], ["rollcall:renaming"], "ERROR:  database \"sms\" already exists\n"),
                    Target("postgresql", "sms", user="s"))
    with pytest.raises(EngineError, match="renaming the restored database failed: .*already exists"):
        pg.swap_in("sms__rc_scratch", "sms", keep_old=False)
    assert len(pg.runner.calls) == 1


def test_when_only_the_old_databases_drop_fails_the_swap_stands_and_the_old_one_is_reported_kept():
    """After COMMIT the restored database is live: failing the restore then would tell the user it was not restored
    (and leave the uploads out). The old database is still there, so it is reported as kept; the next swap drops it."""
    pg = PostgreSQL(FailingSwap([], ["rollcall:swapping", "rollcall:swapped"], "FATAL:  terminating connection\n"),
                    Target("postgresql", "sms", user="s"))
    assert pg.swap_in("sms__rc_scratch", "sms", keep_old=False) == "sms__rc_old"
    assert len(pg.runner.calls) == 1, "no ALLOW_CONNECTIONS on the (now live) restored database"


def database_json(properties):
    row = {"datcollate": properties["collate"], "datctype": properties["ctype"], "datlocprovider": "c",
           "datconnlimit": properties["connection_limit"]}
    return [[json.dumps({"row": row, "owner": properties["owner"], "encoding": properties["encoding"],
                         "acl": properties["acl"], "comment": properties["comment"],
                         "settings": properties["settings"]})]]


def test_a_restore_creates_the_database_as_the_backup_recorded_and_puts_the_rest_back_after_pg_restore():
    pg = engine([])
    pg.prepare_for({"archive_format": "custom", "postgresql": {"database": PROPERTIES, "matviews": {}}})
    pg.create_database("sms__rc_scratch", like=None)
    create_sql, create_vars = pg.runner.calls[-1]
    assert "ENCODING :'enc' LC_COLLATE :'collate' LC_CTYPE :'ctype'" in create_sql
    assert (create_vars["enc"], create_vars["collate"], create_vars["o"]) == ("SQL_ASCII", "C", "sms")
    pg.restore([b"PGDMP"], "sms__rc_scratch")
    last_sql, last_vars = pg.runner.calls[-1]
    assert "COMMENT ON DATABASE" in last_sql and last_vars["d"] == "sms__rc_scratch"


def test_an_older_backup_takes_the_properties_of_the_live_database_and_its_fingerprint_rule():
    live = dict(PROPERTIES, encoding="LATIN1")
    pg = engine([("json_build_object", database_json(live)), ("relkind IN ('r', 'p') OR", [["public.t", "3"]]),
                 ("relkind IN ('r', 'p')", [["public.t", "4"]]), ("UNION ALL", [["public.t:r:sms:"]])])
    pg.prepare_for({"archive_format": "custom"})
    pg.create_database("sms__rc_scratch", like="sms")
    assert pg.runner.calls[-1][1]["enc"] == "LATIN1"
    # The scratch database of an older backup: matviews counted, no database line in the fingerprint.
    assert pg.row_counts("sms__rc_scratch") == {"public.t": 3}
    assert pg.row_counts("sms") == {"public.t": 4}
    assert pg.privileges("sms__rc_scratch") != pg.privileges("sms")


def test_without_a_backup_or_a_live_database_the_database_is_plain_utf8():
    pg = engine([])
    pg.create_database("fresh", like=None)
    sql, variables = pg.runner.calls[-1]
    assert "ENCODING 'UTF8'" in sql and variables["o"] == "sms"


def test_the_legacy_row_count_rule_only_adds_populated_matviews():
    assert postgresql.LEGACY_ROW_COUNTS_SQL != postgresql.ROW_COUNTS_SQL
    assert "c.relkind = 'm' AND c.relispopulated" in postgresql.LEGACY_ROW_COUNTS_SQL
    assert "'m'" not in postgresql.ROW_COUNTS_SQL


def test_grants_are_compared_whatever_order_the_server_stores_them_in():
    """REASSIGN OWNED keeps an ACL's old order, pg_restore writes its own: the fingerprint sorts the entries (in
    SQL), and a backup fingerprinted in the stored order (before) is still accepted through earlier_privileges()."""
    pg = engine([("json_build_object", []), ("ORDER BY a::text", [["public.t:r:o:{a=r/o,b=r/o}"]]),
                 ("UNION ALL", [["public.t:r:o:{b=r/o,a=r/o}"]])])
    now = pg.privileges("sms")
    calls = [sql for sql, _ in pg.runner.calls if "UNION ALL" in sql]
    assert "string_agg(a::text, ',' ORDER BY a::text)" in calls[-1] and "unnest(c.relacl)" in calls[-1]
    earlier = pg.earlier_privileges("sms")
    assert earlier and earlier[0] != now
    assert "ORDER BY a::text" not in [sql for sql, _ in pg.runner.calls if "UNION ALL" in sql][-1]


# ------------------------------------------------------------------ pg_restore's errors, explained
def test_an_object_owned_by_a_role_the_restore_may_not_give_to_is_named_with_the_fix():
    from ansible_collections.rollcall.ops.plugins.module_utils.engines.postgresql import _error_line
    stderr = ('pg_restore: error: could not execute query: ERROR:  must be member of role "postgres"\n'
              "Command was: ALTER TABLE public.t_arch OWNER TO postgres;\n")
    said = _error_line(stderr, "sms_owner")
    assert said == ('must be member of role "postgres"; the backup has table public.t_arch owned by postgres, and '
                    "the restore's login sms_owner may not give objects to that role: give it to the database's "
                    "owner role (as a superuser: ALTER TABLE public.t_arch OWNER TO sms_owner;) or drop it, then "
                    "back up again (docs/roles.md)")
    view = stderr.replace("ALTER TABLE public.t_arch", "ALTER MATERIALIZED VIEW public.mv")
    assert "the backup has materialized view public.mv owned by postgres" in _error_line(view, "sms_owner")
    assert _error_line('psql: error: ERROR:  must be member of role "x"\n') == 'must be member of role "x"'
