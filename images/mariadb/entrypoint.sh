#!/usr/bin/env bash
# First start: install the system tables, set the root password, create MARIADB_DATABASE and MARIADB_USER.
# Every start: exec mariadbd in the foreground as mysql, so `docker stop` is a fast clean shutdown.
set -euo pipefail
DATADIR=/var/lib/mysql

if [ "$(id -u)" = 0 ]; then
  install -d -o mysql -g mysql -m 0750 "$DATADIR"
  install -d -o mysql -g mysql -m 0755 /run/mysqld
  exec gosu mysql "$0" "$@"
fi

sql_literal() { local v=${1//\\/\\\\}; printf "'%s'" "${v//\'/\\\'}"; }
sql_ident() { printf '`%s`' "${1//\`/\`\`}"; }

if [ ! -d "$DATADIR/mysql" ]; then
  if [ -z "${MARIADB_ROOT_PASSWORD:-}" ]; then
    echo "mariadb: MARIADB_ROOT_PASSWORD is not set; set it to the root password of the new server" >&2
    exit 1
  fi
  mariadb-install-db --user=mysql --datadir="$DATADIR" --auth-root-authentication-method=normal \
    --skip-test-db >/dev/null
  mariadbd --skip-networking --socket=/run/mysqld/init.sock --datadir="$DATADIR" &
  pid=$!
  for _ in $(seq 1 60); do
    mariadb-admin --socket=/run/mysqld/init.sock -u root ping >/dev/null 2>&1 && break
    sleep 0.5
  done
  {
    echo "DELETE FROM mysql.global_priv WHERE User='' OR (User='root' AND Host<>'localhost');"
    echo "FLUSH PRIVILEGES;"
    echo "ALTER USER 'root'@'localhost' IDENTIFIED BY $(sql_literal "$MARIADB_ROOT_PASSWORD");"
    echo "CREATE USER 'root'@'%' IDENTIFIED BY $(sql_literal "$MARIADB_ROOT_PASSWORD");"
    echo "GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;"
    if [ -n "${MARIADB_DATABASE:-}" ]; then
      echo "CREATE DATABASE IF NOT EXISTS $(sql_ident "$MARIADB_DATABASE") CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;"
    fi
    if [ -n "${MARIADB_USER:-}" ]; then
      echo "CREATE USER $(sql_literal "$MARIADB_USER")@'%' IDENTIFIED BY $(sql_literal "${MARIADB_PASSWORD:-}");"
      [ -n "${MARIADB_DATABASE:-}" ] && echo "GRANT ALL ON $(sql_ident "$MARIADB_DATABASE").* TO $(sql_literal "$MARIADB_USER")@'%';"
    fi
    echo "FLUSH PRIVILEGES;"
  } | mariadb --socket=/run/mysqld/init.sock -u root
  MYSQL_PWD=$MARIADB_ROOT_PASSWORD mariadb-admin --socket=/run/mysqld/init.sock -u root shutdown
  wait "$pid" || true
  echo "mariadb: initialised $DATADIR (database ${MARIADB_DATABASE:-none}, user ${MARIADB_USER:-none})"
fi

exec "$@"
