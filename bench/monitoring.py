#!/usr/bin/env python3
"""Idle cost of the monitoring stack (issue 16): memory and CPU of each container of playbooks/monitoring.yml on
the demo, measured from the Docker engine's own counters over BENCH_MONITORING_SECONDS (default 60) while the SMS
idles. Needs the demo and its monitoring stack up (bench/run.sh starts both).
"""

import os
import sys
import time

import docker

PROJECT = os.environ.get("BENCH_PROJECT", "rollcall")
NAMES = ["prometheus", "alertmanager", "blackbox", "node-exporter", "db-exporter"]
SECONDS = int(os.environ.get("BENCH_MONITORING_SECONDS", "60"))


def cpu_ns(stats):
    return stats["cpu_stats"]["cpu_usage"]["total_usage"]


def memory(stats):
    mem = stats["memory_stats"]
    cache = mem.get("stats", {}).get("inactive_file", mem.get("stats", {}).get("cache", 0))
    return mem["usage"] - cache


def main():
    client = docker.from_env()
    containers = []
    for name in NAMES:
        try:
            containers.append(client.containers.get("%s-%s" % (PROJECT, name)))
        except docker.errors.NotFound:
            print("bench: %s-%s is not running: run playbooks/monitoring.yml first" % (PROJECT, name), file=sys.stderr)
            return 1
    first = {c.name: c.stats(stream=False) for c in containers}
    start = time.monotonic()
    time.sleep(SECONDS)
    elapsed = time.monotonic() - start
    total_cpu = total_mem = 0
    for c in containers:
        last = c.stats(stream=False)
        cpu = (cpu_ns(last) - cpu_ns(first[c.name])) / 1e9 / elapsed * 100
        mem = memory(last) / 2 ** 20
        total_cpu += cpu
        total_mem += mem
        print("%-28s cpu %5.2f %% of one core   memory %6.1f MiB" % (c.name, cpu, mem))
    print("%-28s cpu %5.2f %% of one core   memory %6.1f MiB   (over %d s, idle SMS)"
          % ("monitoring stack, total", total_cpu, total_mem, elapsed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
