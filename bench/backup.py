#!/usr/bin/env python3
"""Backup and restore speed and memory against the raw tools, measured in the same run.

    .venv/bin/python bench/backup.py            (sizes: BENCH_PG_MB, default 1024; BENCH_MARIADB_MB, default 500;
                                                 BENCH_ENGINES, BENCH_RUNS, BENCH_PARTS=backup,restore)

For each engine a throw-away database container is filled with generated SMS-shaped data, then timed:
  raw     what the runbook does by hand: docker exec DB pg_dump -Fc > file   (mysqldump ... | gzip > file)
  ours    rollcall's backup flow (module_utils.backup.take_backup), streaming through the docker SDK,
          plain and with AES-256-GCM encryption; its peak memory (max RSS of the process doing it)
  restore raw: docker exec -i DB pg_restore -d X < file (into a fresh database); ours: the db_restore module as
          a user runs it (ansible localhost -m rollcall.ops.db_restore, safety_backup false), every check included:
          signature and sizes, one checked read into the scratch database, counts, integrity, grants, swap
          (MariaDB: raw gunzip -c file | docker exec -i DB mariadb X, ours the same module on a gzip backup)
Raw and ours alternate, pair by pair; each ratio is the median of the per-pair ratios. Peak memory is taken
at a quarter of the size and at the full size (flat means the same).
Prints each ratio; numbers belong in docs/performance.md.
"""

import os
import subprocess
import sys
import tempfile
import time
import uuid

import docker

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, ".collections"))
sys.path.insert(0, os.path.join(ROOT, "tests"))

from modules import run_module  # noqa: E402

from ansible_collections.rollcall.ops.plugins.module_utils import backup  # noqa: E402
from ansible_collections.rollcall.ops.plugins.module_utils.docker import wait_health_test  # noqa: E402
from ansible_collections.rollcall.ops.plugins.module_utils.engines.base import Target  # noqa: E402

PASSWORD = "bench-password"
# Which measurements to take, for every engine (BENCH_PARTS=restore re-measures only the restore ratios;
# BENCH_PG_PARTS is its older name).
PARTS = os.environ.get("BENCH_PARTS", os.environ.get("BENCH_PG_PARTS", "backup,restore")).split(",")
KEY = bytes(range(32))


def sh(argv, **kwargs):
    return subprocess.run(argv, check=True, **kwargs)


def wait_healthy(name, timeout=120):
    """Until the container's own health test passes, run here (the images probe every 30 s, so Docker's first
    verdict comes 30 s after a start: waiting for it would time half a minute of nothing)."""
    found = wait_health_test(docker.from_env().api, name, timeout)
    if not found["passed"]:
        raise SystemExit("bench: %s did not become healthy: %s" % (name, found["reason"]))


def paired(label_raw, raw_fn, label_ours, ours_fn, runs, untimed=None):
    """Alternate raw and ours ``runs`` times; medians of each and the median of the per-pair ratios.
    ``untimed``: run after each pair, outside the timings (removing what ours made).

    Pairing cancels most of the drift of a shared machine (a slow minute slows both sides of a pair)."""
    raw_times, our_times, ratios = [], [], []
    for _ in range(runs):
        start = time.monotonic()
        raw_fn()
        middle = time.monotonic()
        ours_fn()
        end = time.monotonic()
        if untimed:
            untimed()
        raw_times.append(middle - start)
        our_times.append(end - middle)
        ratios.append((end - middle) / (middle - start))
    for label, times in ((label_raw, raw_times), (label_ours, our_times)):
        times = sorted(times)
        print("  %-34s median %7.2f s  (min %.2f, max %.2f, %d runs)" % (label, times[(len(times) - 1) // 2],
                                                                         times[0], times[-1], runs), flush=True)
    ratios.sort()
    median = ratios[(len(ratios) - 1) // 2] if len(ratios) % 2 else sum(ratios[len(ratios) // 2 - 1:
                                                                             len(ratios) // 2 + 1]) / 2
    print("  %-34s pair ratios %s -> median %.2f" % ("", " ".join("%.2f" % r for r in ratios), median), flush=True)
    return median


def module_restore(target, directory, name):
    """db_restore end to end, as a user runs it (Ansible's start-up included), without the safety backup."""
    def run():
        rc, result, _ = run_module("db_restore", dict(target, directory=directory, name=name, safety_backup=False),
                                   timeout=3600)
        if rc != 0:
            raise SystemExit("bench: db_restore failed: %s" % result.get("msg"))
    return run


def child_peak_rss_mb(code):
    """Run ``code`` in a fresh Python and return its peak RSS in MB (the module runs as its own process too)."""
    script = ("import resource, sys; sys.path.insert(0, %r)\n%s\n"
              "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)") % (os.path.join(ROOT, ".collections"),
                                                                              code)
    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True).stdout
    return int(out.strip().splitlines()[-1]) / 1024.0


def bench_postgres(size_mb, runs):
    name = "bench-pg-%s" % uuid.uuid4().hex[:6]
    sh(["docker", "run", "-d", "--name", name, "-e", "POSTGRES_USER=sms", "-e", "POSTGRES_PASSWORD=" + PASSWORD,
        "-e", "POSTGRES_DB=sms", "rollcall/postgres:15"], stdout=subprocess.DEVNULL)
    try:
        wait_healthy(name)
        rows = size_mb * 1024 * 1024 // 200
        print("postgresql: generating about %d MB (%d attendance rows), a quarter first..." % (size_mb, rows),
              flush=True)
        sh(["docker", "exec", "-e", "PGPASSWORD=" + PASSWORD, name, "psql", "-h", "127.0.0.1", "-U", "sms", "-d",
            "sms", "-qc", "CREATE TABLE attendance (id bigserial PRIMARY KEY, student_id int, course_id int, "
            "day date, status text, note text);"])

        def fill(first, last):
            sql = ("INSERT INTO attendance (student_id, course_id, day, status, note) SELECT g %% 5000, g %% 40, "
                   "DATE '2026-09-01' + (g %% 180), (ARRAY['present','absent','late'])[1 + g %% 3], md5(g::text) "
                   "|| md5((g * 31)::text) || md5((g * 17)::text) FROM generate_series(%d, %d) g; ANALYZE;"
                   % (first, last))
            sh(["docker", "exec", "-e", "PGPASSWORD=" + PASSWORD, name, "psql", "-h", "127.0.0.1", "-U", "sms",
                "-d", "sms", "-qc", sql])

        def peak_rss():
            return child_peak_rss_mb(
                "from ansible_collections.rollcall.ops.plugins.module_utils import backup\n"
                "from ansible_collections.rollcall.ops.plugins.module_utils.engines.base import Target\n"
                "import shutil, tempfile\n"
                "e = backup.open_engine(Target('postgresql', 'sms', user='sms', password=%r, container=%r))\n"
                "d = tempfile.mkdtemp(dir=%r)\n"
                "backup.take_backup(e, d, key=bytes(32))\n"
                "shutil.rmtree(d)" % (PASSWORD, name, os.environ.get("BENCH_DIR") or tempfile.gettempdir()))

        fill(1, rows // 4)
        rss_quarter = peak_rss()
        fill(rows // 4 + 1, rows)
        size = subprocess.run(["docker", "exec", "-e", "PGPASSWORD=" + PASSWORD, name, "psql", "-h", "127.0.0.1",
                               "-U", "sms", "-d", "sms", "-qAtc", "SELECT pg_size_pretty(pg_database_size('sms'))"],
                              capture_output=True, text=True).stdout.strip()
        print("postgresql: database size %s" % size, flush=True)
        target = Target("postgresql", "sms", user="sms", password=PASSWORD, container=name)
        engine = backup.open_engine(target)
        with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as work:
            raw_file = os.path.join(work, "raw.dump")

            def raw_dump():
                with open(raw_file, "wb") as out:
                    sh(["docker", "exec", "-e", "PGPASSWORD=" + PASSWORD, name, "pg_dump", "-Fc", "-h", "127.0.0.1",
                        "-U", "sms", "-d", "sms"], stdout=out)

            def ours(key=None):
                def run():
                    directory = tempfile.mkdtemp(dir=work)
                    backup.take_backup(engine, directory, key=key)
                return run

            plain = enc = float("nan")
            if "backup" in PARTS:
                plain = paired("raw docker exec pg_dump -Fc > file", raw_dump, "rollcall backup", ours(), runs)
                enc = paired("raw docker exec pg_dump -Fc > file", raw_dump, "rollcall backup, encrypted",
                             ours(KEY), runs)
            else:
                raw_dump()  # the file the restores read

            def raw_restore():
                sh(["docker", "exec", "-e", "PGPASSWORD=" + PASSWORD, name, "psql", "-h", "127.0.0.1", "-U", "sms",
                    "-d", "postgres", "-qc", "DROP DATABASE IF EXISTS raw_restore",
                    "-c", "CREATE DATABASE raw_restore"])
                with open(raw_file, "rb") as src:
                    sh(["docker", "exec", "-i", "-e", "PGPASSWORD=" + PASSWORD, name, "pg_restore", "-h", "127.0.0.1",
                        "-U", "sms", "-d", "raw_restore"], stdin=src)

            restore = float("nan")
            if "restore" in PARTS:
                ours_dir = tempfile.mkdtemp(dir=work)
                made = backup.take_backup(engine, ours_dir)
                target = {"engine": "postgresql", "container": name, "database": "sms", "user": "sms",
                          "password": PASSWORD}
                restore = paired("raw docker exec -i pg_restore < file", raw_restore, "db_restore module, end to end",
                                 module_restore(target, ours_dir, made["name"]), max(runs, 5))
            rss = peak_rss()
        print("postgresql: backup/raw %.2f (goal <= 1.10); encrypted/raw %.2f (goal <= 1.20); db_restore/raw %.2f "
              "(goal <= 1.15); peak memory %.0f MB at %s, %.0f MB at a quarter of it (goal <= 150, flat)"
              % (plain, enc, restore, rss, size, rss_quarter), flush=True)
    finally:
        subprocess.run(["docker", "rm", "-fv", name], stdout=subprocess.DEVNULL, check=False)


def bench_mariadb(size_mb, runs):
    name = "bench-maria-%s" % uuid.uuid4().hex[:6]
    sh(["docker", "run", "-d", "--name", name, "-e", "MARIADB_ROOT_PASSWORD=" + PASSWORD, "-e",
        "MARIADB_DATABASE=sms", "rollcall/mariadb:10.11"], stdout=subprocess.DEVNULL)
    try:
        wait_healthy(name)
        rows = size_mb * 1024 * 1024 // 200
        print("mariadb: generating about %d MB (%d attendance rows)..." % (size_mb, rows), flush=True)
        sql = ("CREATE TABLE attendance (id BIGINT AUTO_INCREMENT PRIMARY KEY, student_id INT, day DATE, "
               "status VARCHAR(10), note TEXT); INSERT INTO attendance (student_id, day, status, note) "
               "SELECT seq %% 5000, DATE '2026-09-01' + INTERVAL (seq %% 180) DAY, ELT(1 + seq %% 3, 'present', "
               "'absent', 'late'), CONCAT(MD5(seq), MD5(seq * 31), MD5(seq * 17)) FROM seq_1_to_%d;" % rows)
        sh(["docker", "exec", "-e", "MYSQL_PWD=" + PASSWORD, name, "mariadb", "--protocol=TCP", "-h", "127.0.0.1",
            "-u", "root", "sms", "-e", sql])
        target = Target("mysql", "sms", user="root", password=PASSWORD, container=name)
        engine = backup.open_engine(target)
        with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as work:
            def raw_dump():
                with open(os.path.join(work, "raw.sql.gz"), "wb") as out:
                    dump = subprocess.Popen(["docker", "exec", "-e", "MYSQL_PWD=" + PASSWORD, name, "mysqldump",
                                             "--single-transaction", "--routines", "--triggers", "--events",
                                             "--hex-blob", "--protocol=TCP", "-h", "127.0.0.1", "-u", "root", "sms"],
                                            stdout=subprocess.PIPE)
                    sh(["gzip", "-6"], stdin=dump.stdout, stdout=out)
                    dump.stdout.close()
                    if dump.wait() != 0:
                        raise SystemExit("bench: raw mysqldump failed")

            def ours():
                backup.take_backup(engine, tempfile.mkdtemp(dir=work), compression="gzip")

            ratio = paired("raw mysqldump | gzip > file", raw_dump, "rollcall backup, gzip", ours, runs) \
                if "backup" in PARTS else float("nan")

            def raw_restore():
                sh(["docker", "exec", "-e", "MYSQL_PWD=" + PASSWORD, name, "mariadb", "--protocol=TCP", "-h",
                    "127.0.0.1", "-u", "root", "-e", "DROP DATABASE IF EXISTS raw_restore; CREATE DATABASE "
                    "raw_restore"])
                unzip = subprocess.Popen(["gunzip", "-c", os.path.join(work, "raw.sql.gz")], stdout=subprocess.PIPE)
                sh(["docker", "exec", "-i", "-e", "MYSQL_PWD=" + PASSWORD, name, "mariadb", "--protocol=TCP", "-h",
                    "127.0.0.1", "-u", "root", "raw_restore"], stdin=unzip.stdout)
                unzip.stdout.close()
                unzip.wait()

            if not os.path.exists(os.path.join(work, "raw.sql.gz")):
                raw_dump()  # the raw restore's input, when the backup pairs were not measured
            ours_dir = tempfile.mkdtemp(dir=work)
            made = backup.take_backup(engine, ours_dir, compression="gzip")
            target = {"engine": "mysql", "container": name, "database": "sms", "user": "root", "password": PASSWORD}
            restore = paired("raw gunzip -c file | mariadb", raw_restore, "db_restore module, end to end",
                             module_restore(target, ours_dir, made["name"]), runs)
        print("mariadb: backup/raw %.2f (goal <= 1.10); db_restore/raw %.2f (goal <= 1.15)" % (ratio, restore),
              flush=True)
    finally:
        subprocess.run(["docker", "rm", "-fv", name], stdout=subprocess.DEVNULL, check=False)


if __name__ == "__main__":
    runs = int(os.environ.get("BENCH_RUNS", "3"))
    engines = os.environ.get("BENCH_ENGINES", "postgresql,mariadb").split(",")
    if "postgresql" in engines:
        bench_postgres(int(os.environ.get("BENCH_PG_MB", "1024")), runs)
    if "mariadb" in engines:
        bench_mariadb(int(os.environ.get("BENCH_MARIADB_MB", "500")), runs)
