#!/usr/bin/env bash
# promtool and amtool for `make test` (tests/unit/test_monitoring_config.py), from Debian's own packages: the
# .debs are downloaded and unpacked into .cache/tools (nothing installed on the machine, no daemon started).
# Idempotent: does nothing when both tools are there.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.cache/tools
if [ -x "$dest/usr/bin/promtool" ] && [ -x "$dest/usr/bin/amtool" ]; then exit 0; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
if ! apt-get download prometheus prometheus-alertmanager >apt.log 2>&1; then
  # The package lists may be missing on a fresh machine.
  apt-get update -qq >>apt.log 2>&1 || true
  apt-get download prometheus prometheus-alertmanager >>apt.log 2>&1 || {
    cat apt.log >&2; echo "setup: could not download prometheus / prometheus-alertmanager from Debian" >&2; exit 1; }
fi
cd - >/dev/null
mkdir -p "$dest"
for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$dest"; done
echo "setup: promtool and amtool unpacked into $dest/usr/bin"
