"""PostgreSQL backups and restores of unusual but legal databases, and interrupted backups (issue 9, items
15-19): restore into an absent database, database-level properties, materialized views, SIGTERM or a killed
container mid-dump. One server (rc-b-pg-*) for the whole module; each test works in its own database."""

import hashlib
import json
import os
import signal
import threading
import time
import uuid

import pytest
from conftest import wait_healthy
from modules import run_module
from test_backup_postgresql import PASSWORD, args, backup, psql

from ansible_collections.rollcall.ops.plugins.module_utils.docker import ContainerRunner
from ansible_collections.rollcall.ops.plugins.module_utils.engines.base import Target
from ansible_collections.rollcall.ops.plugins.module_utils.engines.postgresql import PostgreSQL


@pytest.fixture(scope="module")
def pg(docker_client, require_image):
    require_image("rollcall/postgres:15")
    container = docker_client.containers.run(
        "rollcall/postgres:15", detach=True, name="rc-b-pg-%s" % uuid.uuid4().hex[:8],
        environment={"POSTGRES_USER": "sms", "POSTGRES_PASSWORD": PASSWORD, "POSTGRES_DB": "sms"})
    try:
        wait_healthy(container)
        psql(container, "sms", "CREATE ROLE probe LOGIN; CREATE ROLE auditor NOLOGIN")
        yield container
    finally:
        container.remove(force=True, v=True)


@pytest.fixture
def directory(tmp_path):
    d = tmp_path / "backups"
    d.mkdir()
    return d


def databases(pg):
    return psql(pg, "postgres", "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database").strip()


# ------------------------------------------------------------------ items 15 and 17: database-level properties
PROPERTIES = """
SELECT json_build_object(
  'encoding', pg_encoding_to_char(encoding), 'collate', datcollate, 'ctype', datctype, 'limit', datconnlimit,
  'owner', pg_get_userbyid(datdba),
  'grants', (SELECT json_agg(g ORDER BY g) FROM (SELECT a.grantee::regrole || ':' || a.privilege_type || ':'
                                                     || a.is_grantable AS g FROM aclexplode(datacl) a) x),
  'probe_can_connect', has_database_privilege('probe', datname, 'CONNECT'),
  'comment', shobj_description(oid, 'pg_database'),
  'settings', (SELECT json_agg(coalesce(setrole::regrole::text, '-') || ' ' || array_to_string(setconfig, '|')
                               ORDER BY 1) FROM pg_db_role_setting WHERE setdatabase = d.oid))
  FROM pg_database d WHERE datname = 'legacy_db'
"""


def properties(pg):
    return json.loads(psql(pg, "postgres", PROPERTIES))


def make_legacy_db(pg):
    """A database as an old system might have it: SQL_ASCII / C, no CONNECT for PUBLIC, comment, settings."""
    for sql in ("DROP DATABASE IF EXISTS legacy_db",
                "CREATE DATABASE legacy_db TEMPLATE template0 ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C'"):
        psql(pg, "postgres", sql)
    psql(pg, "postgres", """
        REVOKE CONNECT ON DATABASE legacy_db FROM PUBLIC;
        GRANT CONNECT ON DATABASE legacy_db TO auditor WITH GRANT OPTION;
        ALTER DATABASE legacy_db WITH CONNECTION LIMIT 40;
        COMMENT ON DATABASE legacy_db IS 'grades since 1998 -- ''do not drop''';
        ALTER DATABASE legacy_db SET search_path = "Grades, old", public;
        ALTER DATABASE legacy_db SET work_mem = '8MB';
        ALTER DATABASE legacy_db SET rollcall.note = 'two words';
        ALTER ROLE auditor IN DATABASE legacy_db SET statement_timeout = '5s';
    """)
    psql(pg, "legacy_db", "CREATE TABLE grades (id int PRIMARY KEY, g text); "
                          "INSERT INTO grades SELECT g, 'A' FROM generate_series(1, 25) g")
    expected = properties(pg)
    assert expected["encoding"] == "SQL_ASCII" and expected["collate"] == "C" and not expected["probe_can_connect"]
    return expected


@pytest.fixture(scope="module")
def legacy(pg, tmp_path_factory):
    """legacy_db, its properties, and a backup of it (in a directory shared by the tests that use it)."""
    directory = tmp_path_factory.mktemp("legacy-backups")
    expected = make_legacy_db(pg)
    made = backup(pg, directory, database="legacy_db")
    return expected, directory, made


def test_swap_in_restore_keeps_database_properties(pg, legacy):
    expected, directory, made = legacy
    psql(pg, "postgres", "GRANT CONNECT ON DATABASE legacy_db TO PUBLIC; COMMENT ON DATABASE legacy_db IS 'changed'; "
                         "ALTER DATABASE legacy_db RESET ALL; ALTER DATABASE legacy_db WITH CONNECTION LIMIT -1")
    assert properties(pg) != expected
    rc, result, _ = run_module("db_restore", args(pg, directory, database="legacy_db", name=made["name"],
                                                  safety_backup=False))
    assert rc == 0, result.get("msg")
    assert properties(pg) == expected
    assert "__rc_" not in databases(pg)


def test_restore_into_an_absent_database_recreates_it_with_its_properties(pg, legacy):
    expected, directory, made = legacy
    psql(pg, "postgres", "DROP DATABASE legacy_db")
    rc, result, _ = run_module("db_restore", args(pg, directory, database="legacy_db", name=made["name"]))
    assert rc == 0, result.get("msg")
    assert result["safety_backup"] is None and result["old_kept_as"] is None
    assert result["safety_backup_why"] == "the database legacy_db did not exist: nothing to keep"
    assert properties(pg) == expected
    assert psql(pg, "legacy_db", "SELECT count(*) FROM grades").strip() == "25"
    assert "__rc_" not in databases(pg)


def test_owners_and_grants_fingerprint_covers_database_properties(pg, legacy):
    engine = PostgreSQL(ContainerRunner(pg.name), Target("postgresql", "legacy_db", user="sms", password=PASSWORD,
                                                         container=pg.name))
    before = engine.privileges("legacy_db")
    for change, undo in (("GRANT CONNECT ON DATABASE legacy_db TO PUBLIC",
                          "REVOKE CONNECT ON DATABASE legacy_db FROM PUBLIC"),
                         ("COMMENT ON DATABASE legacy_db IS 'x'",
                          "COMMENT ON DATABASE legacy_db IS 'grades since 1998 -- ''do not drop'''"),
                         ("ALTER DATABASE legacy_db SET work_mem = '9MB'",
                          "ALTER DATABASE legacy_db SET work_mem = '8MB'")):
        psql(pg, "postgres", change)
        assert engine.privileges("legacy_db") != before, change
        psql(pg, "postgres", undo)
    assert engine.privileges("legacy_db") == before


# ------------------------------------------------------------------ item 16: materialized views
def test_stale_and_unpopulated_materialized_views_back_up_verify_and_restore(pg, directory):
    psql(pg, "postgres", "CREATE DATABASE mv_db")
    psql(pg, "mv_db", """
        CREATE TABLE base (id int);
        INSERT INTO base SELECT generate_series(1, 10);
        CREATE MATERIALIZED VIEW fresh_then_stale AS SELECT id FROM base;
        INSERT INTO base SELECT generate_series(11, 15);
        CREATE MATERIALIZED VIEW never_filled AS SELECT id FROM base WITH NO DATA;
        CREATE VIEW plain AS SELECT id FROM base;
    """)
    made = backup(pg, directory, database="mv_db")
    manifest = made["manifest"]
    assert manifest["row_counts"] == {"public.base": 15}
    assert manifest["postgresql"]["matviews"] == {"public.fresh_then_stale": True, "public.never_filled": False}
    rc, verified, _ = run_module("backup_verify", args(pg, directory, database="mv_db", name=made["name"],
                                                       level="restore"))
    assert rc == 0 and verified["status"] == "passed", verified
    psql(pg, "mv_db", "DELETE FROM base")
    rc, result, _ = run_module("db_restore", args(pg, directory, database="mv_db", name=made["name"],
                                                  safety_backup=False))
    assert rc == 0, result.get("msg")
    assert psql(pg, "mv_db", "SELECT count(*) FROM base").strip() == "15"
    populated = psql(pg, "mv_db", "SELECT string_agg(relname || '=' || relispopulated, ',' ORDER BY relname) "
                                  "FROM pg_class WHERE relkind = 'm'").strip()
    assert populated == "fresh_then_stale=true,never_filled=false"


# ------------------------------------------------------------------ item 21: row counts from the load's statistics
def test_row_counts_after_a_restore_come_from_the_load_only_where_they_prove_the_backups_figure(pg, directory):
    """db_restore takes a table's rows from the statistics pg_restore's load left where they show exactly the
    backup's figure, and counts every other table; a wrong figure, a table changed since or an empty one is
    counted, so a real difference is still found."""
    psql(pg, "postgres", "CREATE DATABASE counted_db")
    psql(pg, "counted_db", """
        CREATE TABLE big (id int PRIMARY KEY, note text);
        INSERT INTO big SELECT g, 'row ' || g FROM generate_series(1, 3000) g;
        CREATE TABLE small (id int);
        INSERT INTO small SELECT generate_series(1, 7);
        CREATE TABLE empty (id int);
        CREATE TABLE "Odd ""name"" é" (v text);
        INSERT INTO "Odd ""name"" é" VALUES ('a'), ('b');
    """)
    made = backup(pg, directory, database="counted_db")
    expected = made["manifest"]["row_counts"]
    assert expected == {"public.big": 3000, "public.small": 7, "public.empty": 0, 'public.Odd "name" é': 2}
    rc, result, _ = run_module("db_restore", args(pg, directory, database="counted_db", name=made["name"],
                                                  safety_backup=False))
    assert rc == 0, result.get("msg")
    detail = result["verification"]["steps"][-1]["detail"]
    assert "row counts equal the manifest (" in detail and "tables' rows as the load's statistics" in detail, detail
    engine = PostgreSQL(ContainerRunner(pg.name), Target("postgresql", "counted_db", user="sms", password=PASSWORD,
                                                         host="127.0.0.1"))
    # the statistics of the load are reported by now (pg_restore's session ended before db_restore returned)
    for _ in range(50):
        counts, found = engine.loaded_row_counts("counted_db", expected)
        if found.startswith("3 of 4"):
            break
        time.sleep(0.1)
    assert counts == expected and found == "3 of 4 tables' rows as the load's statistics recorded them, 1 counted"
    # a figure the statistics do not show is counted: the real number comes back, and differs
    wrong = dict(expected, **{"public.big": 2999})
    counts, found = engine.loaded_row_counts("counted_db", wrong)
    assert counts["public.big"] == 3000 and found.endswith(", 2 counted"), (counts, found)
    # a table changed after the load (a row deleted, another inserted: the count is the same) is counted
    psql(pg, "counted_db", "DELETE FROM small WHERE id = 1; INSERT INTO small VALUES (8)")
    for _ in range(50):  # until this session's statistics are reported (at most a second after its commit)
        counts, found = engine.loaded_row_counts("counted_db", expected)
        if found.endswith(", 2 counted"):
            break
        time.sleep(0.1)
    assert counts == expected and found.endswith(", 2 counted"), found
    # rows deleted since: counted, and the difference found
    psql(pg, "counted_db", "DELETE FROM big WHERE id > 2990")
    counts, found = engine.loaded_row_counts("counted_db", expected)
    assert counts["public.big"] == 2990, counts


# ------------------------------------------------------------------ a tool that stops reading its input at once
def test_a_restore_whose_archive_pg_restore_refuses_at_once_fails_and_does_not_hang(pg, directory):
    """pg_restore refuses an archive by its header (here 8 MiB that are not an archive, checksummed in the
    manifest as a plain backup without a key is) and exits without reading the rest. The container runner used to
    wait forever for room to write the rest: the engine no longer reads the exec's connection once the command
    ended. Now the restore fails at once, saying why, and leaves no scratch database."""
    psql(pg, "postgres", "DROP DATABASE IF EXISTS refused_db")
    psql(pg, "postgres", "CREATE DATABASE refused_db")
    psql(pg, "refused_db", "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 10)")
    made = backup(pg, directory, database="refused_db")
    manifest_path = directory / (made["name"] + ".manifest.json")
    manifest = json.loads(manifest_path.read_text())
    garbage = b"not an archive, " * (512 * 1024)
    (directory / manifest["data"]["file"]).write_bytes(garbage)
    manifest["data"].update(sha256=hashlib.sha256(garbage).hexdigest(), size=len(garbage), dump_size=len(garbage))
    manifest_path.write_text(json.dumps(manifest))
    before = databases(pg)
    started = time.monotonic()
    rc, result, _ = run_module("db_restore", args(pg, directory, database="refused_db", name=made["name"],
                                                  safety_backup=False), timeout=120)
    assert rc != 0 and time.monotonic() - started < 60, result
    assert "pg_restore" in result["msg"] and "valid archive" in result["msg"], result["msg"]
    assert databases(pg) == before  # no scratch database left, the live one still there
    assert psql(pg, "refused_db", "SELECT count(*) FROM t").strip() == "10"


# ------------------------------------------------------------------ items 18 and 19: interrupted backups
def processes(container, word):
    """Command lines of the processes in ``container`` that mention ``word`` (the image has no ps)."""
    script = 'for p in /proc/[0-9]*; do tr "\\0" " " < "$p/cmdline" 2>/dev/null; echo; done'
    lines = container.exec_run(["sh", "-c", script]).output.decode().splitlines()
    return [line for line in lines if word in line and "/proc/" not in line]


def descendants(pid):
    """Pids of the processes under ``pid`` (this test's own ansible run, nobody else's)."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as handle:
                    ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


@pytest.fixture
def blocked_dump(pg, directory):
    """Starts db_backup of a database whose table another session holds locked, so pg_dump waits (holding its
    snapshot) until the test interrupts it. Yields (the module's thread result dict, wait_until_blocked)."""
    psql(pg, "postgres", "DROP DATABASE IF EXISTS slow_db")
    psql(pg, "postgres", "CREATE DATABASE slow_db")
    psql(pg, "slow_db", "CREATE TABLE locked (id int); INSERT INTO locked VALUES (1)")
    pg.exec_run(["psql", "-X", "-h", "127.0.0.1", "-U", "sms", "-d", "slow_db", "-c",
                 "BEGIN; LOCK TABLE locked IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(120)"],
                environment={"PGPASSWORD": PASSWORD}, detach=True)
    outcome = {}

    def call():
        outcome["result"] = run_module("db_backup", args(pg, directory, database="slow_db"), timeout=180)

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while "dumping" not in outcome:
        assert time.monotonic() < deadline, "pg_dump never started waiting for the lock"
        waiting = psql(pg, "postgres", "SELECT count(*) FROM pg_stat_activity WHERE datname = 'slow_db' "
                                       "AND wait_event_type = 'Lock' AND query LIKE 'LOCK TABLE%'").strip()
        if waiting != "0" and processes(pg, "pg_dump"):
            outcome["dumping"] = True
        else:
            time.sleep(0.3)
    yield outcome, thread
    thread.join(180)
    pg.reload()
    if pg.status == "running":
        psql(pg, "postgres", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(120)%'"
                             " AND pid <> pg_backend_pid()")


def test_sigterm_mid_dump_stops_pg_dump_and_its_session(pg, directory, blocked_dump):
    outcome, thread = blocked_dump
    # The module's Python process: ansible starts it through /bin/sh -c; pipelined (ansible.cfg), the interpreter
    # alone, reading the module on stdin; otherwise the interpreter and .../AnsiballZ_db_backup.py. (The controller
    # and its workers are python too, with ansible's arguments.)
    module = [p for p in descendants(os.getpid())
              if "python" in cmdline(p).split(" ")[0]
              and ("AnsiballZ_db_backup" in cmdline(p) or len(cmdline(p).split()) == 1)]
    assert module, "the db_backup module process was not found"
    os.kill(module[0], signal.SIGTERM)
    thread.join(30)
    assert processes(pg, "pg_dump") == [], "pg_dump still runs 30 s after the module got SIGTERM"
    assert "result" in outcome, "db_backup did not end within 30 s of SIGTERM"
    rc, result, _ = outcome["result"]
    assert rc != 0 and "interrupted by SIGTERM" in result["msg"], result
    sessions = psql(pg, "postgres", "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'rollcall%' "
                                    "AND datname = 'slow_db'").strip()
    assert sessions == "0", "the snapshot session is still there"
    assert os.listdir(directory) == []


def test_container_killed_mid_dump_says_so(pg, directory, blocked_dump):
    outcome, thread = blocked_dump
    pg.kill()
    thread.join(60)
    rc, result, _ = outcome["result"]
    assert rc != 0
    assert "the container stopped" in result["msg"] and "no error message" not in result["msg"], result["msg"]
    assert os.listdir(directory) == []
    pg.start()
    wait_healthy(pg)
