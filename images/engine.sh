#!/usr/bin/env bash
# Make sure a Docker engine answers. Uses a reachable one if there is one; otherwise installs Debian's
# docker.io (when missing) and starts dockerd in the background (no systemd on our machines).
# Prints one line saying what it did. Idempotent.
set -euo pipefail
LOG=${ROLLCALL_DOCKERD_LOG:-/var/log/rollcall-dockerd.log}

answers() { timeout 5 docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

if command -v docker >/dev/null 2>&1 && answers; then
  echo "engine: using the running Docker engine $(docker version --format '{{.Server.Version}}')"
  exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then
    echo "engine: no Docker engine answers and dockerd is not installed; run 'make setup' as root or install docker.io" >&2
    exit 1
  fi
  echo "engine: installing Debian's docker.io"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq docker.io >/dev/null
fi

if ! pgrep -x dockerd >/dev/null 2>&1; then
  echo "engine: starting dockerd in the background (log: $LOG)"
  nohup dockerd >"$LOG" 2>&1 </dev/null &
fi

for _ in $(seq 1 60); do
  if answers; then
    echo "engine: dockerd started, Docker engine $(docker version --format '{{.Server.Version}}') answers"
    exit 0
  fi
  sleep 1
done
echo "engine: dockerd did not answer within 60 s; see $LOG" >&2
tail -n 20 "$LOG" >&2 || true
exit 1
