#!/bin/sh
# rollcall-proxy-start — the proxy container's command. When ROLLCALL_UPSTREAM (HOST:PORT) is set and
# /etc/nginx/rollcall/upstream.conf still holds the image's default upstream, it is written there first, so a proxy
# recreated on a new image (patching's proxy refresh) serves the live app from its very first request. Once
# rollcall-switch has written the file, a later restart of the same container keeps what the switch wrote (never
# the stale upstream of the environment). Then nginx runs in the foreground as PID 1.
set -eu
conf=/etc/nginx/rollcall/upstream.conf
default='set $rollcall_upstream "127.0.0.1:9";'
target=${ROLLCALL_UPSTREAM:-}
if [ -n "$target" ] && grep -qxF "$default" "$conf"; then
  case "$target" in
    *[!A-Za-z0-9_.:-]*) echo "rollcall-proxy-start: invalid ROLLCALL_UPSTREAM '$target' (want HOST:PORT)" >&2; exit 2 ;;
  esac
  printf '# Written by rollcall-proxy-start at %s\nset $rollcall_upstream "%s";\n' \
    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$target" >"$conf.next"
  mv "$conf.next" "$conf"
fi
exec nginx -g 'daemon off;'
