#!/usr/bin/env python3
"""Deploy and rollback under a bounded loopback load: failed requests and wall time (issue 5).

    .venv/bin/python bench/release.py        (BENCH_RATE requests/s, default 50; BENCH_MIN_REQUESTS, 1000)

A throw-away stack (project rc-bench-rel, PostgreSQL, proxy on 127.0.0.1:18299) gets 1.0.0; then, each under its
own load of GET /api/v1/students at a fixed rate (at least BENCH_MIN_REQUESTS requests, stopping by itself):
  deploy   1.0.0 -> 1.1.0 (migration, verified backup first)     goal: 0 failed, <= 45 s
  rollback 1.1.0 -> 1.0.0 (downgrade)                           goal: 0 failed, <= 15 s
Times are the ansible-playbook wall time, Ansible's own start-up included, and for the rollback also the time
until the last answer from the release left behind (traffic moved for good). Prints the figures; they belong in
docs/performance.md. The stack is removed at the end.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from loadgen import Load  # noqa: E402

BIN = os.path.dirname(sys.executable)
PORT = 18299
RATE = int(os.environ.get("BENCH_RATE", "50"))
MINIMUM = int(os.environ.get("BENCH_MIN_REQUESTS", "1000"))


def playbook(inventory, name, *extra, started=None):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), PATH=BIN + os.pathsep + os.environ["PATH"])
    start = time.monotonic()
    if started is not None:
        started.append(start)
    proc = subprocess.run([os.path.join(BIN, "ansible-playbook"), "-i", inventory,
                           os.path.join(ROOT, "playbooks", name), *extra], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600, check=False)
    if proc.returncode != 0:
        raise SystemExit("bench: %s failed:\n%s" % (name, proc.stdout[-3000:]))
    if os.environ.get("BENCH_PROFILE"):  # ANSIBLE_CALLBACKS_ENABLED=ansible.posix.profile_tasks: the slowest tasks
        print("\n".join(proc.stdout.splitlines()[-14:]))
    return time.monotonic() - start


def under_load(label, inventory, name, target, *extra):
    load = Load("http://127.0.0.1:%d/api/v1/students?per_page=5" % PORT, rate=RATE, total=10 ** 7,
                max_seconds=600).start()
    time.sleep(1)
    started = []
    seconds = playbook(inventory, name, *extra, started=started)
    while load.sent < MINIMUM:  # keep the count honest on a fast run: at least MINIMUM requests in all
        time.sleep(0.2)
    load.stop()
    time.sleep(0.5)
    # From the playbook's start to the last answer given by another release than the target: when traffic had
    # moved for good (the rest of the run stops the old container and records the release).
    others = [t for v, t in load.last_seen.items() if v != target]
    switched = (max(others) - started[0]) if others else 0.0
    print("  %-9s %6.1f s (traffic on %s after %.1f s)   requests %5d   failed %d   answered by %s" % (
        label, seconds, target, switched, load.sent, len(load.failed), json.dumps(load.versions, sort_keys=True)),
        flush=True)
    if load.failed:
        print("            first failures: %s" % load.failed[:5], flush=True)
    return seconds, switched, load


def main():
    with tempfile.TemporaryDirectory() as work:
        inventory = os.path.join(work, "hosts.yml")
        values = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                  "rollcall_project": "rc-bench-rel", "rollcall_app_port": PORT, "rollcall_db_engine": "postgresql",
                  "rollcall_secret_key": "bench-secret-key-0123456789abcdef-0123456789abcdef",
                  "rollcall_db_password": "bench-db-password", "rollcall_seed_students": 50,
                  "rollcall_rate_limit_per_minute": 10 ** 7, "rollcall_state_dir": os.path.join(work, "state"),
                  "rollcall_backup_dir": os.path.join(work, "backups"), "rollcall_backup_verify_level": "native",
                  "rollcall_environment": "test"}
        with open(inventory, "w") as handle:
            yaml.safe_dump({"all": {"children": {"app": {"hosts": {"localhost": None}},
                                                 "db": {"hosts": {"localhost": None}}}, "vars": values}}, handle)
        try:
            print("release: deploying 1.0.0 (no load)...", flush=True)
            playbook(inventory, "deploy.yml")
            deploy, _, deploy_load = under_load("deploy", inventory, "deploy.yml", "1.1.0", "-e",
                                                "rollcall_app_version=1.1.0")
            rollback, switched, rollback_load = under_load("rollback", inventory, "rollback.yml", "1.0.0")
            print("release: deploy %.1f s (goal <= 45), %d of %d requests failed (goal 0); rollback %.1f s, traffic "
                  "back on 1.0.0 after %.1f s (goal <= 15), %d of %d failed (goal 0)"
                  % (deploy, len(deploy_load.failed), deploy_load.sent, rollback, switched,
                     len(rollback_load.failed), rollback_load.sent), flush=True)
        finally:
            playbook(inventory, "teardown.yml", "-e", "teardown_volumes=true", "-e", "confirm=yes")


if __name__ == "__main__":
    main()
