#!/usr/bin/env bash
# Healthy = the server answers a real query over TCP with the root credentials (never during first-start init,
# which runs with networking off). The password goes through the environment, not the command line.
MYSQL_PWD=$MARIADB_ROOT_PASSWORD exec mariadb --protocol=tcp -h 127.0.0.1 -u root -N -e 'SELECT 1' >/dev/null 2>&1
