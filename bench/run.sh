#!/usr/bin/env bash
# make bench: targets measured, never asserted in tests. Prints figures and ratios against the raw tools run in
# the same invocation; copy them into docs/performance.md when they change.
#   BENCH_RUNS (default 3), BENCH_PG_MB (1024), BENCH_MARIADB_MB (500), BENCH_DIR (where dumps go; default /tmp),
#   BENCH_FLEET_SIZES (1,2,4,8), BENCH_FLEET_PARTS (scale,rollback), BENCH_DR_MODES (pitr,dump)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${BENCH_RUNS:-3}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
time_it() {  # time_it LABEL CMD...: run CMD $runs times, print min/median/max wall milliseconds
  local label=$1; shift
  local t=()
  for _ in $(seq 1 "$runs"); do
    local s; s=$(date +%s%N)
    "$@" >/dev/null 2>&1 || { echo "bench: '$label' failed" >&2; return 1; }
    t+=("$(( ($(date +%s%N) - s) / 1000000 ))")
  done
  printf '%-44s median %6d ms  min %6d ms  max %6d ms  (%d runs)\n' "$label" \
    "$(printf '%s\n' "${t[@]}" | median)" "$(printf '%s\n' "${t[@]}" | sort -n | head -1)" \
    "$(printf '%s\n' "${t[@]}" | sort -n | tail -1)" "$runs"
}

echo "== setup and deploy re-runs"
make -s demo >/dev/null   # the stack must be up before re-deploys are measured
time_it "make setup (already set up; goal < 30 s)" make -s setup
time_it "deploy.yml re-run (changed=0)" .venv/bin/ansible-playbook -i inventories/local playbooks/deploy.yml

echo "== daily health check of the demo host (issue 6; goal <= 5 s)"
.venv/bin/ansible-playbook -i inventories/local playbooks/backup.yml >/dev/null  # a fresh, verified backup
time_it "health.yml, one host (goal <= 5 s)" .venv/bin/ansible-playbook -i inventories/local playbooks/health.yml

echo "== backup and restore against the raw tools (issue 4)"
.venv/bin/python bench/backup.py

echo "== physical backup and restore with pgBackRest against pg_dump / pg_restore (issue 14)"
.venv/bin/python bench/pitr.py

echo "== the DR drill's RTO on the 1 GB database, PITR and dump (issue 14; goal <= 120 s)"
.venv/bin/python bench/dr.py

echo "== deploy and rollback under load (issue 5)"
.venv/bin/python bench/release.py

echo "== fleet scale (1, 2, 4, 8 app hosts) and rollback in seconds on two app hosts under load (issue 11)"
.venv/bin/python bench/fleet.py

echo "== maintenance wall time on the bench database and the app's p95 against a baseline (issue 15)"
.venv/bin/python bench/maintenance.py

echo "== the monitoring stack at idle (issue 16)"
.venv/bin/ansible-playbook -i inventories/local playbooks/monitoring.yml >/dev/null
.venv/bin/python bench/monitoring.py
