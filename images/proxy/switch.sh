#!/bin/sh
# rollcall-switch HOST:PORT — send all traffic to HOST:PORT (an app container's network alias), gracefully.
# Writes the new upstream next to the old one, checks the whole configuration with `nginx -t` (which also
# resolves HOST), swaps it in with a rename and reloads: new workers take new connections, old workers finish
# the requests they hold. A bad upstream never replaces a good one. Prints the upstream now in use.
set -eu
target=${1:-}
case "$target" in
  *[!A-Za-z0-9_.:-]*|"") echo "rollcall-switch: invalid upstream '$target' (want HOST:PORT)" >&2; exit 2 ;;
esac
conf=/etc/nginx/rollcall/upstream.conf
line="set \$rollcall_upstream \"$target\";"
if grep -qxF "$line" "$conf"; then
  echo "unchanged $target"
  exit 0
fi
if ! getent hosts "${target%:*}" >/dev/null; then
  echo "rollcall-switch: ${target%:*} does not resolve on the proxy's network" >&2
  exit 1
fi
cp -p "$conf" "$conf.prev"
printf '# Written by rollcall-switch at %s\n%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$line" >"$conf.next"
mv "$conf.next" "$conf"
if ! err=$(nginx -t -q 2>&1); then
  mv "$conf.prev" "$conf"
  echo "rollcall-switch: nginx refused upstream $target: $(echo "$err" | grep -v '^$' | tail -n 1)" >&2
  exit 1
fi
nginx -s reload
echo "switched $target"
