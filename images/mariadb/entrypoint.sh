#!/usr/bin/env bash
# The essentials of the official mariadb image's entrypoint.
#   MARIADB_ROOT_PASSWORD  root's password (root@localhost and root@'%'); required
#   MARIADB_DATABASE       database to create (utf8mb4), optional
#   MARIADB_USER, MARIADB_PASSWORD  user@'%' to create, with all privileges on MARIADB_DATABASE; optional, both
# First start (no /var/lib/mysql/mysql): install the system tables, start the server with networking off, set
# the passwords, create the database and user, shut it down.
# Every start: exec mariadbd in the foreground as mysql (PID 1), so `docker stop` is a fast clean shutdown.
# Any other command (bash, mariadb, ...) is run as given.
set -euo pipefail
DATADIR=/var/lib/mysql
INIT_SOCKET=/run/mysqld/init.sock

# `docker run IMAGE --max-connections=50` passes server options.
if [ "${1:0:1}" = - ]; then
  set -- mariadbd "$@"
fi
case "$1" in
  mariadbd | mysqld) ;;
  *) exec "$@" ;;
esac

if [ "$(id -u)" = 0 ]; then
  install -d -o mysql -g mysql -m 0750 "$DATADIR"
  install -d -o mysql -g mysql -m 0755 /run/mysqld
  export HOME=/var/lib/mysql
  exec setpriv --reuid=mysql --regid=mysql --init-groups "$0" "$@"
fi

fail() { echo "mariadb: $*" >&2; exit 1; }
sql_literal() { local v=${1//\\/\\\\}; printf "'%s'" "${v//\'/\\\'}"; }
sql_ident() { printf '`%s`' "${1//\`/\`\`}"; }

check_environment() {
  [ -n "${MARIADB_ROOT_PASSWORD:-}" ] || fail "MARIADB_ROOT_PASSWORD is not set; set it to the root password of the new server"
  if [ -n "${MARIADB_USER:-}" ] && [ -z "${MARIADB_PASSWORD:-}" ]; then
    fail "MARIADB_USER is set but MARIADB_PASSWORD is not; set both"
  fi
  if [ -n "${MARIADB_PASSWORD:-}" ] && [ -z "${MARIADB_USER:-}" ]; then
    fail "MARIADB_PASSWORD is set but MARIADB_USER is not; set both"
  fi
  if [ "${MARIADB_USER:-}" = root ]; then
    fail "MARIADB_USER must not be root; root is set up from MARIADB_ROOT_PASSWORD"
  fi
}

init_sql() {
  local root_pw user db
  root_pw=$(sql_literal "$MARIADB_ROOT_PASSWORD")
  # Only root@localhost (then root@'%' below) and the users asked for: no anonymous users, no root@<hostname>.
  echo "DELETE FROM mysql.global_priv WHERE User='' OR (User='root' AND Host<>'localhost');"
  echo "DELETE FROM mysql.proxies_priv WHERE NOT (User='root' AND Host='localhost');"
  echo "FLUSH PRIVILEGES;"
  echo "ALTER USER 'root'@'localhost' IDENTIFIED BY $root_pw;"
  echo "CREATE USER 'root'@'%' IDENTIFIED BY $root_pw;"
  echo "GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;"
  if [ -n "${MARIADB_DATABASE:-}" ]; then
    db=$(sql_ident "$MARIADB_DATABASE")
    echo "CREATE DATABASE IF NOT EXISTS $db CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;"
  fi
  if [ -n "${MARIADB_USER:-}" ]; then
    user="$(sql_literal "$MARIADB_USER")@'%'"
    echo "CREATE USER $user IDENTIFIED BY $(sql_literal "$MARIADB_PASSWORD");"
    if [ -n "${MARIADB_DATABASE:-}" ]; then
      echo "GRANT ALL ON $db.* TO $user;"
    fi
  fi
  echo "FLUSH PRIVILEGES;"
}

initialise() {
  local pid
  mariadb-install-db --datadir="$DATADIR" --auth-root-authentication-method=normal --cross-bootstrap \
    --skip-test-db >/dev/null
  mariadbd --skip-networking --socket="$INIT_SOCKET" --datadir="$DATADIR" &
  pid=$!
  for _ in $(seq 1 120); do
    # Root has no password yet; a running server answers the query.
    mariadb --socket="$INIT_SOCKET" -u root -e 'SELECT 1' >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || fail "the server stopped during first-start initialisation (see the log above)"
    sleep 0.5
  done
  init_sql | mariadb --socket="$INIT_SOCKET" -u root || fail "first-start SQL failed (see the log above)"
  MYSQL_PWD=$MARIADB_ROOT_PASSWORD mariadb-admin --socket="$INIT_SOCKET" -u root shutdown
  wait "$pid" || true
  echo "mariadb: initialised $DATADIR (database ${MARIADB_DATABASE:-none}, user ${MARIADB_USER:-none})"
}

if [ ! -d "$DATADIR/mysql" ]; then
  check_environment
  initialise
fi

exec "$@"
