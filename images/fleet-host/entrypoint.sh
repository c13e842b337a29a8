#!/bin/sh
# Start a fleet host: host keys (new per container), sshd, then dockerd in the foreground-ish (its own
# /var/lib/docker volume). The authorized key arrives later (molecule/fleet/create.yml writes it with docker exec).
set -eu
ssh-keygen -A >/dev/null
mkdir -p /run/sshd /root/.ssh
chmod 0700 /root/.ssh
/usr/sbin/sshd -E /var/log/sshd.log
# iptables-legacy works in a container without nftables support in the kernel namespace.
update-alternatives --set iptables /usr/sbin/iptables-legacy >/dev/null 2>&1 || true
update-alternatives --set ip6tables /usr/sbin/ip6tables-legacy >/dev/null 2>&1 || true
exec dockerd --host=unix:///var/run/docker.sock --storage-driver=overlay2 --log-level=warn \
  >>/var/log/dockerd.log 2>&1
