#!/usr/bin/env bash
# Healthy = the server answers over TCP (never during first-start init, which runs with networking off): a real query
# with the root credentials, or its refusal of them. root@127.0.0.1 has the password this container was made with
# (MARIADB_ROOT_PASSWORD); after rotate_db_passwords.yml a container made again (PITR turned on, a patched image, a
# teardown that kept the volume) gets the new one while the data still hold the old, until roles/database sets it
# right after this test passes. Refusing that container as unhealthy stopped every such deploy for 120 s and then
# failed it. The password goes through the environment, not the command line.
said=$(MYSQL_PWD=$MARIADB_ROOT_PASSWORD mariadb --protocol=tcp -h 127.0.0.1 -u root -N -e 'SELECT 1' 2>&1) && exit 0
case $said in
  *"ERROR 1045 "*) exit 0 ;;  # Access denied: the server answered
esac
exit 1
