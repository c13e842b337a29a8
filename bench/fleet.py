#!/usr/bin/env python3
"""Fleet-scale figures and the seconds-fast rollback (issue 11, items 5 and 6).

    .venv/bin/python bench/fleet.py                     (BENCH_FLEET_SIZES, default 1,2,4,8; BENCH_RUNS, default 3;
                                                         BENCH_FLEET_PARTS=scale,rollback; BENCH_RATE, default 50;
                                                         BENCH_MIN_REQUESTS, default 1000)

Light hosts: every app host of the inventory is its own stack on this machine's engine (project rc-g-fleet-appK,
its own proxy on 127.0.0.1:1875K, the local connection), all sharing one PostgreSQL on the db host rc-g-fleet-db
through one network, as app hosts and a db host of a real inventory do. Ansible's forks come from ansible.cfg.

scale     for 1, 2, 4 and 8 app hosts: the wall time of health.yml, of a deploy that changes nothing (re-run) and
          of a release deploy (1.0.0 -> 1.1.0 on every host: verified backup and migration once, then every host
          started, gated and switched); ratio to one host (goal: 8 hosts <= 2x one host).
rollback  two app hosts behind one load balancer (nginx on 127.0.0.1:18760 in front of both proxies) under a
          steady load of GET /api/v1/students (at least BENCH_MIN_REQUESTS requests, stopping by itself): deploy
          1.1.0, then rollback.yml; wall time, when traffic was back on 1.0.0 for good (the last answer of 1.1.0
          after the rollback started), failed requests (goal: back within 3 s, play within 10 s, 0 failed).
Times are ansible-playbook wall times, Ansible's start-up included. Everything is removed at the end.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
sys.path.insert(0, os.path.join(ROOT, ".collections"))
from loadgen import Load  # noqa: E402

from ansible_collections.rollcall.ops.plugins.module_utils import docker as dockerlib  # noqa: E402

BIN = os.path.dirname(sys.executable)
PREFIX = "rc-g-fleet"
BASE_PORT = 18750  # app host K: BASE_PORT + K; the load balancer: LB_PORT
LB_PORT = 18760
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
SIZES = [int(n) for n in os.environ.get("BENCH_FLEET_SIZES", "1,2,4,8").split(",")]
PARTS = os.environ.get("BENCH_FLEET_PARTS", "scale,rollback").split(",")
RATE = int(os.environ.get("BENCH_RATE", "50"))
MINIMUM = int(os.environ.get("BENCH_MIN_REQUESTS", "1000"))


def write_inventory(work, size):
    """size app hosts (each its own project and proxy port) and one db host, all local, one shared network."""
    apps = {"%s-app%d" % (PREFIX, k): {"rollcall_project": "%s-app%d" % (PREFIX, k), "rollcall_app_port": BASE_PORT + k}
            for k in range(1, size + 1)}
    values = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
              "rollcall_network": PREFIX + "-net", "rollcall_db_container": PREFIX + "-db-db",
              "rollcall_db_engine": "postgresql", "rollcall_environment": "test",
              "rollcall_secret_key": "bench-fleet-secret-key-0123456789abcdef-0123456789",
              "rollcall_db_password": "bench-fleet-db-password", "rollcall_seed_students": 0,
              "rollcall_rate_limit_per_minute": 10 ** 7,
              # a state directory per size: remove_all() removes the volumes, and a release history that says the
              # stack served would rightly stop the next size's first deploy (its data volume is gone)
              "rollcall_state_dir": os.path.join(work, "state-%d" % size),
              "rollcall_backup_dir": os.path.join(work, "backups"), "rollcall_backup_verify_level": "native",
              "rollcall_backup_uploads": False, "rollcall_report_dir": os.path.join(work, "reports"),
              "rollcall_incident_dir": os.path.join(work, "incidents"),
              # the bench times health.yml; it does not judge latency (8 light hosts on two cores answer slowly,
              # which health.yml rightly calls critical and exits non-zero on)
              "rollcall_health_thresholds": {"latency_p95_ms": [60000, 120000]}}
    path = os.path.join(work, "fleet-%d.yml" % size)
    with open(path, "w") as handle:
        yaml.safe_dump({"all": {"children": {"app": {"hosts": apps},
                                             "db": {"hosts": {PREFIX + "-db": {"rollcall_project": PREFIX + "-db"}}}},
                                "vars": values}}, handle)
    return path


def playbook(inventory, name, *extra, started=None):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), PATH=BIN + os.pathsep + os.environ["PATH"])
    start = time.monotonic()
    if started is not None:
        started.append(start)
    proc = subprocess.run([os.path.join(BIN, "ansible-playbook"), "-i", inventory,
                           os.path.join(ROOT, "playbooks", name), *extra], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=900, check=False)
    if proc.returncode != 0:
        raise SystemExit("bench: %s failed:\n%s\n%s" % (name, proc.stdout[-4000:], proc.stderr[-2000:]))
    if os.environ.get("BENCH_PROFILE"):  # ANSIBLE_CALLBACKS_ENABLED=ansible.posix.profile_tasks: the slowest tasks
        print("\n".join(proc.stdout.splitlines()[-int(os.environ.get("BENCH_PROFILE_LINES", "24")):]))
    return time.monotonic() - start


def remove_all():
    """Every container, volume and network of the bench (names start with rc-g-fleet)."""
    def names(kind):
        argv = ["docker", kind, "ls", "-q", "--filter", "name=" + PREFIX]
        if kind == "container":
            argv.insert(3, "-a")
        return subprocess.run(argv, capture_output=True, text=True, check=False).stdout.split()

    for kind in ("container", "volume"):
        found = names(kind)
        if found:
            # containers with their anonymous volumes (an image's VOLUME), which no name filter finds afterwards
            flag = {"container": ["-f", "-v"], "volume": ["-f"]}[kind]
            subprocess.run(["docker", kind, "rm", *flag, *found], capture_output=True, check=False)
    # the network through the one place that knows the engine's "active endpoints" (a removed container's endpoint
    # released late: retried; never released, an engine bug: kept, and said)
    api = dockerlib.client()
    try:
        for network in api.networks.list(names=[PREFIX + "-net"]):
            kept = dockerlib.remove_network(network)
            if kept:
                print("bench: " + kept, flush=True)
    finally:
        api.close()


def load_line():
    with open("/proc/loadavg") as handle:
        return "load average %s" % " ".join(handle.read().split()[:3])


def scale(work):
    rows = []
    for size in SIZES:
        remove_all()
        inventory = write_inventory(work, size)
        playbook(inventory, "deploy.yml")  # 1.0.0 everywhere, not timed
        playbook(inventory, "backup.yml")  # health.yml is critical without a verified backup; not timed
        health = [playbook(inventory, "health.yml") for _ in range(RUNS)]
        rerun = [playbook(inventory, "deploy.yml") for _ in range(RUNS)]
        release = []
        for _ in range(RUNS):
            release.append(playbook(inventory, "deploy.yml", "-e", "rollcall_app_version=1.1.0"))
            playbook(inventory, "rollback.yml", "-e", "to=1.0.0")  # back to 1.0.0 for the next run, not timed
        row = {"hosts": size, "health": statistics.median(health), "rerun": statistics.median(rerun),
               "release": statistics.median(release), "all": {"health": health, "rerun": rerun, "release": release}}
        rows.append(row)
        print("  %d app host(s): health %5.1f s  deploy re-run %5.1f s  deploy 1.1.0 %5.1f s   (%s)" % (
            size, row["health"], row["rerun"], row["release"], load_line()), flush=True)
    one = rows[0]
    print("fleet scale (medians of %d runs; forks from ansible.cfg):" % RUNS)
    print("  %-10s %-16s %-20s %-20s" % ("app hosts", "health.yml", "deploy (re-run)", "deploy 1.0.0->1.1.0"))
    for row in rows:
        print("  %-10d %5.1f s  %4.2fx   %5.1f s  %4.2fx       %5.1f s  %4.2fx" % (
            row["hosts"], row["health"], row["health"] / one["health"], row["rerun"], row["rerun"] / one["rerun"],
            row["release"], row["release"] / one["release"]))
    print("  goal: %d hosts <= 2x one host" % rows[-1]["hosts"])
    print("  raw: %s" % json.dumps([{k: [round(x, 1) for x in v] for k, v in r["all"].items()} for r in rows]))
    remove_all()


LB_CONF = """worker_processes 1;
pid /run/nginx.pid;
error_log stderr warn;
events { worker_connections 1024; }
http {
    access_log off;
    upstream fleet { %s }
    server {
        listen 8080;
        location / {
            proxy_pass http://fleet;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_next_upstream error timeout http_502 http_503;
        }
    }
}
"""


def load_balancer(work, size):
    """nginx (the proxy image) on 127.0.0.1:LB_PORT, round robin over the app hosts' proxies on the shared network."""
    conf = os.path.join(work, "lb.conf")
    with open(conf, "w") as handle:
        handle.write(LB_CONF % " ".join("server %s-app%d-proxy:8080;" % (PREFIX, k) for k in range(1, size + 1)))
    os.chmod(conf, 0o644)
    subprocess.run(["docker", "rm", "-f", "-v", PREFIX + "-lb"], capture_output=True, check=False)
    subprocess.run(["docker", "run", "-d", "--name", PREFIX + "-lb", "--network", PREFIX + "-net",
                    "-p", "127.0.0.1:%d:8080" % LB_PORT, "-v", conf + ":/etc/nginx/nginx.conf:ro",
                    "rollcall/proxy:1"], capture_output=True, check=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        probe = subprocess.run(["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:%d/health" % LB_PORT],
                               capture_output=True, check=False)
        if probe.returncode == 0:
            return
        time.sleep(0.5)
    raise SystemExit("bench: the load balancer does not answer")


def under_load(label, inventory, name, target, *extra):
    load = Load("http://127.0.0.1:%d/api/v1/students?per_page=5" % LB_PORT, rate=RATE, total=10 ** 7,
                max_seconds=600).start()
    time.sleep(1)
    started = []
    seconds = playbook(inventory, name, *extra, started=started)
    while load.sent < MINIMUM:  # at least MINIMUM requests in all
        time.sleep(0.2)
    load.stop()
    time.sleep(0.5)
    others = [t for v, t in load.last_seen.items() if v != target]
    moved = (max(others) - started[0]) if others else 0.0
    print("  %-9s %5.1f s (traffic on %s after %4.1f s)  requests %5d  failed %d  answered by %s  (%s)" % (
        label, seconds, target, moved, load.sent, len(load.failed), json.dumps(load.versions, sort_keys=True),
        load_line()), flush=True)
    if load.failed:
        print("            first failures: %s" % load.failed[:5], flush=True)
    return seconds, moved, load


def rollback(work):
    remove_all()
    inventory = write_inventory(work, 2)
    playbook(inventory, "deploy.yml")
    load_balancer(work, 2)
    results = []
    for _ in range(RUNS):
        under_load("deploy", inventory, "deploy.yml", "1.1.0", "-e", "rollcall_app_version=1.1.0")
        results.append(under_load("rollback", inventory, "rollback.yml", "1.0.0"))
    print("rollback on two app hosts behind one load balancer, %d req/s:" % RATE)
    print("  play %s s (goal <= 10), traffic back on 1.0.0 after %s s (goal <= 3), failed %s of %s requests (goal 0)"
          % (" / ".join("%.1f" % r[0] for r in results), " / ".join("%.1f" % r[1] for r in results),
             " / ".join(str(len(r[2].failed)) for r in results), " / ".join(str(r[2].sent) for r in results)))
    remove_all()


def main():
    print("fleet: %s, %s" % (load_line(), "forks from ansible.cfg"), flush=True)
    with tempfile.TemporaryDirectory() as work:
        try:
            if "scale" in PARTS:
                scale(work)
            if "rollback" in PARTS:
                rollback(work)
        finally:
            remove_all()


if __name__ == "__main__":
    main()
