#!/usr/bin/env python3
"""The disaster-recovery drill's RTO on a 1 GB database (issue 14: goal <= 120 s on our 2-core machine).

    .venv/bin/python bench/dr.py     (BENCH_PG_MB, default 1024; BENCH_DR_MODES, default pitr,dump)

A throw-away live stack (project bench-dr, PostgreSQL with point-in-time recovery, app on 127.0.0.1:18390) gets the
attendance rows of bench/pitr.py in a table of its own (about BENCH_PG_MB MB) and a verified backup. Then
playbooks/dr_drill.yml runs on a scratch copy of it with -e drill_data=live (the scratch stack starts from that
backup, at the live size), once per mode: "pitr" recovers through pgBackRest (the lost cluster's repository, then
the dump of the scratch instance swapped in), "dump" restores the drill's verified dump (-e rollcall_pitr=false for
the drill). Printed per mode: the RTO (the drill's own measure: destruction to passing smoke tests), its parts from
the drill's timeline, the RPO, and against the raw floor measured in the same run: a manual recovery's restore
alone, pg_restore of a pg_dump -Fc of the same database into a fresh server (no rebuild, no checks). Numbers belong
in docs/performance.md and docs/dr.md.
"""

import glob
import json
import os
import subprocess
import sys
import tempfile
import time

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import pitr as pitr_bench  # noqa: E402 - bench/pitr.py: psql, the bench table
from backup import sh, wait_healthy  # noqa: E402 - bench/backup.py's helpers

BIN = os.path.dirname(sys.executable)
PROJECT = "bench-dr"
PORT = 18390
DB = PROJECT + "-db"
RAW = PROJECT + "-raw"
GOAL_S = 120


def playbook(inventory, name, *extra, timeout=3600):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), PATH=BIN + os.pathsep + os.environ["PATH"])
    start = time.monotonic()
    proc = subprocess.run([os.path.join(BIN, "ansible-playbook"), "-i", inventory,
                           os.path.join(ROOT, "playbooks", name), *extra], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise SystemExit("bench: %s failed:\n%s" % (name, proc.stdout[-4000:]))
    return time.monotonic() - start


def psql(sql, database="sms", container=DB):
    return pitr_bench.psql(sql, database, container)


def raw_floor(work):
    """pg_dump -Fc of the live database, then pg_restore into a fresh plain server: the restore step alone."""
    dump = os.path.join(work, "raw.dump")
    with open(dump, "wb") as out:
        sh(["docker", "exec", "-u", "postgres", DB, "pg_dump", "-Fc", "sms"], stdout=out)
    subprocess.run(["docker", "rm", "-fv", RAW], capture_output=True, check=False)
    sh(["docker", "run", "-d", "--name", RAW, "--network", "none", "--shm-size", "256m", "-e",
        "POSTGRES_PASSWORD=bench-raw-never-used", "rollcall/postgres:15"], stdout=subprocess.DEVNULL)
    try:
        wait_healthy(RAW)
        psql("CREATE DATABASE bench_restore", "postgres", RAW)
        start = time.monotonic()
        with open(dump, "rb") as source:
            sh(["docker", "exec", "-i", "-u", "postgres", RAW, "pg_restore", "--no-owner", "--no-privileges", "-d",
                "bench_restore"], stdin=source)
        return time.monotonic() - start
    finally:
        subprocess.run(["docker", "rm", "-fv", RAW], capture_output=True, check=False)
        os.remove(dump)


def main():
    size_mb = int(os.environ.get("BENCH_PG_MB", "1024"))
    modes = [m for m in os.environ.get("BENCH_DR_MODES", "pitr,dump").split(",") if m]
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as work:
        inventory = os.path.join(work, "hosts.yml")
        values = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                  "rollcall_project": PROJECT, "rollcall_app_port": PORT, "rollcall_db_engine": "postgresql",
                  "rollcall_secret_key": "bench-secret-key-0123456789abcdef-0123456789abcdef",
                  "rollcall_db_password": "bench-db-password", "rollcall_seed_students": 20,
                  "rollcall_backup_key": "ab" * 32, "rollcall_pitr": True,
                  "rollcall_rate_limit_per_minute": 10 ** 7, "rollcall_state_dir": os.path.join(work, "state"),
                  "rollcall_backup_dir": os.path.join(work, "backups"), "rollcall_backup_verify_level": "checksum",
                  "rollcall_monitoring": False, "rollcall_environment": "test"}
        with open(inventory, "w") as handle:
            yaml.safe_dump({"all": {"children": {"app": {"hosts": {"localhost": None}},
                                                 "db": {"hosts": {"localhost": None}}}, "vars": values}}, handle)
        try:
            print("dr: deploying the live stack %s (PITR on)..." % PROJECT, flush=True)
            playbook(inventory, "deploy.yml")
            rows = size_mb * 1024 * 1024 // 200
            print("dr: generating about %d MB (%d attendance rows)..." % (size_mb, rows), flush=True)
            psql(pitr_bench.attendance_sql(rows, "bench_attendance"))  # the app has its own attendance table
            # owned as the app's tables are (the database's owner role): a restore runs as that role
            psql("DO $$BEGIN EXECUTE format('ALTER TABLE bench_attendance OWNER TO %I', (SELECT "
                 "pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database())); END$$")
            print("dr: database size %s" % psql("SELECT pg_size_pretty(pg_database_size('sms'))"), flush=True)
            seconds = playbook(inventory, "backup.yml")
            print("dr: the live stack's verified backup in %.1f s" % seconds, flush=True)
            floor = raw_floor(work)
            print("dr: raw floor (pg_restore -d of a pg_dump -Fc into a fresh server): %.1f s" % floor, flush=True)
            for mode in modes:
                extra = ["-e", "drill_data=live", "-e", "drill_write_after_backup=5"]
                if mode == "dump":
                    extra += ["-e", "rollcall_pitr=false"]
                before = set(glob.glob(os.path.join(work, "**", "dr-drill-*.json"), recursive=True))
                wall = playbook(inventory, "dr_drill.yml", *extra)
                found = sorted(set(glob.glob(os.path.join(work, "**", "dr-drill-*.json"), recursive=True)) - before)
                if not found:
                    raise SystemExit("bench: the drill wrote no JSON report under %s" % work)
                with open(found[-1]) as handle:
                    report = json.load(handle)
                rto, rpo = report.get("rto_s"), report.get("rpo_s")
                print("dr: %-4s drill %.0f s in all; RTO %.1f s (goal <= %d: %s), %.1fx the raw floor; RPO %s s; "
                      "source %s; status %s" % (mode, wall, rto, GOAL_S, "met" if rto <= GOAL_S else "MISSED",
                                                rto / floor if floor else 0, rpo, report.get("source"),
                                                report.get("status")), flush=True)
                marks = [(e.get("step"), float(e["t_s"])) for e in report.get("timeline") or []]
                disaster = next((at for step, at in marks if "DISASTER" in str(step)), None)
                if disaster is not None:
                    print("      from the disaster: %s" % "; ".join(
                        "%s +%.1f s" % (step, at - disaster) for step, at in marks if at >= disaster), flush=True)
        finally:
            subprocess.run(["docker", "rm", "-fv", RAW], capture_output=True, check=False)
            playbook(inventory, "teardown.yml", "-e", "teardown_volumes=true", "-e", "confirm=yes")


if __name__ == "__main__":
    main()
