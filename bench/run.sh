#!/usr/bin/env bash
# make bench: timings that are targets, measured (never asserted in tests). Prints figures; records nothing
# by itself (copy the figures into docs/performance.md when they change).
# Today: the idempotent re-run costs of setup and of the demo deploy. Backup/restore and deploy/rollback
# benchmarks (issues 4 and 5) will join here, each printing its ratio against the raw tools of the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${BENCH_RUNS:-3}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
time_it() {  # time_it LABEL CMD...: run CMD $runs times, print min/median/max wall seconds
  local label=$1; shift
  local t=()
  for _ in $(seq 1 "$runs"); do
    local s; s=$(date +%s.%N)
    "$@" >/dev/null 2>&1 || { echo "bench: '$label' failed" >&2; return 1; }
    t+=("$(echo "$(date +%s.%N) - $s" | bc)")
  done
  printf '%-40s min %6.2f s  median %6.2f s  max %6.2f s  (%d runs)\n' "$label" \
    "$(printf '%s\n' "${t[@]}" | sort -n | head -1)" "$(printf '%s\n' "${t[@]}" | median)" \
    "$(printf '%s\n' "${t[@]}" | sort -n | tail -1)" "$runs"
}

command -v bc >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bc >/dev/null; }
make -s demo >/dev/null   # the stack must be up before re-deploys are measured
time_it "make setup (already set up; goal < 30 s)" make -s setup
time_it "deploy.yml re-run (changed=0)" .venv/bin/ansible-playbook -i inventories/local playbooks/deploy.yml
