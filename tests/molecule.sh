#!/usr/bin/env bash
# Run the given Molecule scenarios (default: all) in parallel; each logs to .cache/molecule/<scenario>.log.
# Exits non-zero when any scenario fails, printing the tail of its log.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scenarios=("$@")
if [ ${#scenarios[@]} -eq 0 ]; then
  mapfile -t scenarios < <(find molecule -mindepth 2 -maxdepth 2 -name molecule.yml -printf '%h\n' | xargs -n1 basename | sort)
fi
[ ${#scenarios[@]} -gt 0 ] || { echo "molecule: no scenarios found" >&2; exit 1; }
mkdir -p .cache/molecule
# What a killed earlier run of these scenarios left (stacks keep running health checks and hold ports; fleet's
# hosts are its platforms, made again by its create step): only the given scenarios' names, so a scenario run by
# hand next to this one is left alone.
declare -A prefix=([default]='rc-default' [backup]='rc-backup-(pg|maria|sqlite)' [fleet]='rc-f' [patching]='rc-patch')
names=()
for s in "${scenarios[@]}"; do [ -n "${prefix[$s]:-}" ] && names+=("${prefix[$s]}"); done
if [ ${#names[@]} -gt 0 ]; then
  leftover="^($(IFS='|'; echo "${names[*]}"))-"
  docker ps -a --format '{{.Names}}' | grep -E "$leftover" | xargs -r docker rm -fv >/dev/null
  docker volume ls -q | grep -E "$leftover" | xargs -r docker volume rm -f >/dev/null
  docker network ls --format '{{.Name}}' | grep -E "$leftover" | xargs -r docker network rm >/dev/null
fi
declare -A pids
for s in "${scenarios[@]}"; do
  echo "molecule: starting scenario $s (log: .cache/molecule/$s.log)"
  ( start=$(date +%s); molecule test -s "$s" >".cache/molecule/$s.log" 2>&1; rc=$?
    echo "molecule: scenario $s finished rc=$rc in $(( $(date +%s) - start )) s"; exit $rc ) &
  pids[$s]=$!
done
failed=()
for s in "${scenarios[@]}"; do
  wait "${pids[$s]}" || failed+=("$s")
done
for s in "${failed[@]}"; do
  echo "---- molecule scenario $s FAILED; the failed tasks in .cache/molecule/$s.log:" >&2
  # The tail alone shows only Molecule's recap; the task that failed is far above it (CI keeps only the output).
  grep -n -B 3 -A 25 -E '(fatal|failed): \[|FAILED! =>|ERROR! ' ".cache/molecule/$s.log" | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-600 | tail -n 150 >&2
  echo "---- last lines of .cache/molecule/$s.log:" >&2
  tail -n 40 ".cache/molecule/$s.log" >&2
done
[ ${#failed[@]} -eq 0 ] && echo "molecule: ${#scenarios[@]} passed, 0 failed" || { echo "molecule: $(( ${#scenarios[@]} - ${#failed[@]} )) passed, ${#failed[@]} failed"; exit 1; }
