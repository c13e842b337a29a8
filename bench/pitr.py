#!/usr/bin/env python3
"""Physical backup and restore with pgBackRest against the raw dump tools, measured in the same run (issue 14).

    .venv/bin/python bench/pitr.py      (BENCH_PG_MB, default 1024: the bench database's size; BENCH_RUNS, default 3)

A throw-away PostgreSQL made by roles/database with rollcall_pitr: true (archiving on, stanza, first full backup;
the repository in a temporary directory, encrypted as in production) gets the attendance table of bench/backup.py
(about BENCH_PG_MB MB, with a primary key and a secondary index). Then, alternating pair by pair:
  backup   raw:  docker exec DB pg_dump -Fc sms > file
           ours: rollcall.ops.pitr action=backup type=full (as a user runs it: ansible localhost -m; two processes,
                 lz4, the repository encrypted)
  restore  raw:  DROP/CREATE DATABASE x, then docker exec -i RAW pg_restore -d x < file (indexes rebuilt), into a
                 separate plain server of the same image (RAW: a fresh server, as after losing one; restoring into
                 the archived one would write a gigabyte of WAL that "ours" would then have to replay)
           ours: rollcall.ops.pitr action=restore to the newest point into a scratch instance: pgBackRest restore,
                 WAL replay, the server up, every table's rows counted (then drop_scratch, not timed)
Goals: backup <= 0.6x, restore <= 0.5x (a physical restore does not rebuild indexes). What restore.yml adds after
the physical restore (a dump of the scratch instance swapped into the live database; docs/pitr.md) is not in
"ours": the figure is what recovering a lost server to a point costs. Numbers belong in docs/performance.md.
"""

import contextlib
import os
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, ".collections"))
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from backup import paired, sh, wait_healthy  # noqa: E402 - bench/backup.py's helpers
from modules import run_module  # noqa: E402
from test_deploy import failures, playbook, write_inventory  # noqa: E402 - the integration tests' inventory

PROJECT = "bench-pitr"
DB = PROJECT + "-db"
SCRATCH = DB + "-pitr"
RAW = PROJECT + "-raw"


def psql(sql, database="sms", container=DB):
    proc = subprocess.run(["docker", "exec", "-u", "postgres", container, "psql", "-X", "-v", "ON_ERROR_STOP=1", "-d",
                           database, "-qAtc", sql], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit("bench: psql failed: %s" % proc.stderr.strip()[-500:])
    return proc.stdout.strip()


def attendance_sql(rows, table="attendance"):
    """The bench table (about 200 bytes a row, a primary key and a secondary index), filled, analysed and
    checkpointed; bench/dr.py uses it too."""
    n = int(rows)
    return (f"CREATE TABLE {table} (id bigserial PRIMARY KEY, student_id int, course_id int, day date, "
            f"status text, note text); INSERT INTO {table} (student_id, course_id, day, status, note) "
            "SELECT g % 5000, g % 40, DATE '2026-09-01' + (g % 180), (ARRAY['present','absent','late'])[1 + g % 3], "
            f"md5(g::text) || md5((g * 31)::text) || md5((g * 17)::text) FROM generate_series(1, {n}) g; "
            f"CREATE INDEX {table}_student ON {table} (student_id, day); ANALYZE; CHECKPOINT;")


def module(args, timeout=3600):
    rc, result, _ = run_module("pitr", dict(args, container=DB), timeout=timeout)
    if rc != 0:
        raise SystemExit("bench: pitr %s failed: %s" % (args["action"], result.get("msg") or result.get("message")))
    return result


def remove_stack():
    for argv in (["docker", "rm", "-fv", SCRATCH, DB, RAW], ["docker", "volume", "rm", "-f", SCRATCH + "-data",
                                                        PROJECT + "-dbdata"], ["docker", "network", "rm",
                                                                               PROJECT + "-net"]):
        subprocess.run(argv, capture_output=True, check=False)


def main():
    size_mb = int(os.environ.get("BENCH_PG_MB", "1024"))
    runs = int(os.environ.get("BENCH_RUNS", "3"))
    remove_stack()
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as work:
        try:
            inventory = write_inventory(
                pathlib.Path(work), rollcall_project=PROJECT, rollcall_environment="test",
                rollcall_pitr=True, rollcall_pitr_cipher_pass="bench-pitr-cipher-pass-0123456789",  # noqa: S106 - throw-away
                rollcall_state_dir=os.path.join(work, "state"), rollcall_backup_dir=os.path.join(work, "backups"))
            tasks = os.path.join(work, "database.yml")
            with open(tasks, "w") as handle:
                handle.write("- hosts: db\n  gather_facts: false\n  tasks:\n    - ansible.builtin.include_role:\n"
                             "        name: rollcall.ops.database\n")
            started = time.monotonic()
            proc, report = playbook(inventory, tasks)
            if proc.returncode != 0:
                raise SystemExit("bench: the PITR database did not come up: %s" % (failures(report),))
            print("pitr: database with archiving and its first full backup in %.1f s" % (time.monotonic() - started),
                  flush=True)
            rows = size_mb * 1024 * 1024 // 200
            print("pitr: generating about %d MB (%d attendance rows)..." % (size_mb, rows), flush=True)
            psql(attendance_sql(rows))
            print("pitr: database size %s" % psql("SELECT pg_size_pretty(pg_database_size('sms'))"), flush=True)
            dump = os.path.join(work, "raw.dump")

            def raw_backup():
                with open(dump, "wb") as out:
                    sh(["docker", "exec", "-u", "postgres", DB, "pg_dump", "-Fc", "sms"], stdout=out)

            def our_backup():
                module({"action": "backup", "type": "full"})

            backup_ratio = paired("raw pg_dump -Fc", raw_backup, "pitr full backup (pgBackRest)", our_backup, runs)

            sh(["docker", "run", "-d", "--name", RAW, "--network", "none", "--shm-size", "256m", "-e",
                "POSTGRES_PASSWORD=bench-raw-never-used", "rollcall/postgres:15"], stdout=subprocess.DEVNULL)
            wait_healthy(RAW)  # the image's health check: past its first-start initialisation

            def raw_restore():
                psql("DROP DATABASE IF EXISTS bench_restore", "postgres", RAW)
                psql("CREATE DATABASE bench_restore", "postgres", RAW)
                with open(dump, "rb") as source:
                    # the plain server has none of the stack's roles: objects owned by postgres, no grants
                    sh(["docker", "exec", "-i", "-u", "postgres", RAW, "pg_restore", "--no-owner", "--no-privileges",
                        "-d", "bench_restore"],
                       stdin=source)

            def our_restore():
                result = module({"action": "restore", "scratch": SCRATCH, "database": "sms"})
                if not result.get("passed", True):
                    raise SystemExit("bench: the physical restore failed: %s" % result.get("problems"))
                print("    pitr restore's steps (s): %s" % ", ".join("%s %.1f" % kv for kv in
                                                            (result.get("timings") or {}).items()), flush=True)

            def drop_scratch():
                module({"action": "drop_scratch", "scratch": SCRATCH})

            # the dump is newer than the last full backup's WAL: archive it so "the newest point" includes it
            psql("SELECT pg_switch_wal()", "postgres")
            restore_ratio = paired("raw pg_restore (fresh database)", raw_restore,
                                   "pitr restore to the newest point", our_restore, runs, untimed=drop_scratch)
            print("pitr: backup ratio %.2f (goal <= 0.6), restore ratio %.2f (goal <= 0.5)"
                  % (backup_ratio, restore_ratio), flush=True)
        finally:
            with contextlib.suppress(Exception):
                subprocess.run(["docker", "run", "--rm", "-v", work + ":/w", "rollcall/postgres:15", "rm", "-rf",
                                "/w/backups"], capture_output=True, check=False)  # the repository is postgres-owned
            remove_stack()


if __name__ == "__main__":
    main()
