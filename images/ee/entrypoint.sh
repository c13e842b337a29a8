#!/bin/sh
# Give an arbitrary uid (OpenShift, `docker run --user N`) a passwd entry with HOME=/runner, as the entrypoint
# of ansible-builder's images does: ssh and getpass need one. Then run the command (under dumb-init).
if ! whoami >/dev/null 2>&1 && [ -w /etc/passwd ]; then
  echo "runner:x:$(id -u):0:runner:/runner:/bin/bash" >>/etc/passwd
fi
exec "$@"
