#!/bin/sh
# Start a fleet host: host keys (new per container), sshd, then dockerd in the background with its own
# /var/lib/docker volume. The container lives on when dockerd dies (molecule/fleet kills it on purpose: "an app
# host's engine dies mid-deploy"); tini, PID 1, reaps. The authorized key arrives later (molecule/fleet/create.yml).
set -eu
ssh-keygen -A >/dev/null
mkdir -p /run/sshd /root/.ssh
chmod 0700 /root/.ssh
/usr/sbin/sshd -E /var/log/sshd.log
# iptables-legacy: the inner dockerd's rules live in this container's network namespace only.
update-alternatives --set iptables /usr/sbin/iptables-legacy >/dev/null 2>&1 || true
update-alternatives --set ip6tables /usr/sbin/ip6tables-legacy >/dev/null 2>&1 || true
# A restarted host keeps its filesystem: the last engine's pid file and runtime state would stop dockerd
# ("pid file found"); nothing of that engine runs in a container that has just started.
rm -rf /var/run/docker.pid /var/run/docker.sock /var/run/docker
dockerd --host=unix:///var/run/docker.sock --storage-driver=overlay2 --log-level=warn >>/var/log/dockerd.log 2>&1 &
exec sleep infinity
