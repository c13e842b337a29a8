#!/usr/bin/env bash
# Provide the base image every Rollcall image builds FROM: rollcall/base:bookworm.
# Pulls debian:bookworm-slim when a registry answers; otherwise builds it with debootstrap (minbase) and
# `docker import`. Idempotent: an existing base image is kept.
set -euo pipefail
BASE=${ROLLCALL_BASE_IMAGE:-rollcall/base:bookworm}
MIRROR=${ROLLCALL_DEBIAN_MIRROR:-http://deb.debian.org/debian}

if docker image inspect "$BASE" >/dev/null 2>&1; then
  echo "base: $BASE present"
  exit 0
fi

if timeout 20 docker pull -q debian:bookworm-slim >/dev/null 2>&1; then
  docker tag debian:bookworm-slim "$BASE"
  echo "base: pulled debian:bookworm-slim and tagged it $BASE"
  exit 0
fi

echo "base: no registry answers; building $BASE with debootstrap (minbase), about a minute"
if ! command -v debootstrap >/dev/null 2>&1; then
  echo "base: installing Debian's debootstrap"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi
root=$(mktemp -d /var/tmp/rollcall-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase bookworm "$root" "$MIRROR" >"$root.log" 2>&1 || {
  echo "base: debootstrap failed; last lines of $root.log:" >&2; tail -n 20 "$root.log" >&2; exit 1; }
rm -f "$root.log"
# Keep the image small and apt quiet, as the slim image does.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' >"$root/etc/apt/apt.conf.d/99rollcall"
tar -C "$root" -c . | docker import \
  --change 'ENV LANG=C.UTF-8' --change 'CMD ["bash"]' \
  --message "rollcall base: debootstrap minbase bookworm" - "$BASE" >/dev/null
echo "base: built $BASE"
