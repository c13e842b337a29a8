#!/usr/bin/env bash
# The essentials of the official postgres image's entrypoint.
#   POSTGRES_USER      superuser to create (default postgres)
#   POSTGRES_PASSWORD  its password; required unless POSTGRES_HOST_AUTH_METHOD=trust
#   POSTGRES_DB        database to create, owned by POSTGRES_USER (default: POSTGRES_USER)
#   POSTGRES_HOST_AUTH_METHOD  trust: no passwords at all (throw-away tests only)
# First start (no $PGDATA/PG_VERSION): initdb (UTF8, C.UTF-8, scram-sha-256), create the user and database.
# Every start: exec postgres in the foreground as the postgres user (PID 1), so `docker stop` is a fast clean
# shutdown. Any other command (bash, psql, ...) is run as given.
set -euo pipefail
export POSTGRES_USER=${POSTGRES_USER:-postgres}
export POSTGRES_DB=${POSTGRES_DB:-$POSTGRES_USER}
POSTGRES_PASSWORD=${POSTGRES_PASSWORD:-}
AUTH=scram-sha-256
[ "${POSTGRES_HOST_AUTH_METHOD:-}" = trust ] && AUTH=trust

# `docker run IMAGE -c work_mem=8MB` passes server options.
if [ "${1:0:1}" = - ]; then
  set -- postgres "$@"
fi
if [ "$1" != postgres ]; then
  exec "$@"
fi

if [ "$(id -u)" = 0 ]; then
  install -d -o postgres -g postgres -m 0700 "$PGDATA"
  install -d -o postgres -g postgres -m 2775 /var/run/postgresql
  export HOME=/var/lib/postgresql
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

psql_as_postgres() {
  # psql quotes the values (:"ident", :'literal'); variables are interpolated only in SQL read from stdin.
  psql -v ON_ERROR_STOP=1 -q -X --username postgres --dbname postgres "$@" >/dev/null
}

initialise() {
  local initdb=(initdb -D "$PGDATA" -U postgres -E UTF8 --locale=C.UTF-8)
  if [ "$AUTH" = trust ]; then
    "${initdb[@]}" --auth-local=trust --auth-host=trust >/dev/null
  else
    # The password reaches initdb through a pipe, never a file or the command line.
    "${initdb[@]}" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") --auth-local=peer --auth-host=scram-sha-256 >/dev/null
  fi
  cat >>"$PGDATA/postgresql.conf" <<CONF

# rollcall: a container on a small machine
listen_addresses = '*'
unix_socket_directories = '/var/run/postgresql'
password_encryption = scram-sha-256
max_connections = 100
shared_buffers = 128MB
work_mem = 4MB
maintenance_work_mem = 64MB
max_wal_size = 512MB
CONF
  if [ "$AUTH" = trust ]; then
    printf '%s\n' "local all all trust" "host all all all trust" >"$PGDATA/pg_hba.conf"
  else
    # The postgres OS user may use the socket as the postgres role (`docker exec -u postgres ... psql`);
    # everything else logs in with a password.
    printf '%s\n' "local all postgres peer" "local all all scram-sha-256" "host all all all scram-sha-256" \
      >"$PGDATA/pg_hba.conf"
  fi

  pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
  if [ "$POSTGRES_USER" != postgres ]; then
    echo 'CREATE ROLE :"u" LOGIN SUPERUSER;' | psql_as_postgres --set=u="$POSTGRES_USER"
  fi
  if [ -n "$POSTGRES_PASSWORD" ]; then
    echo "ALTER ROLE :\"u\" PASSWORD :'p';" | psql_as_postgres --set=u="$POSTGRES_USER" --set=p="$POSTGRES_PASSWORD"
  fi
  if [ "$POSTGRES_DB" != postgres ]; then
    echo 'CREATE DATABASE :"d" OWNER :"u";' | psql_as_postgres --set=d="$POSTGRES_DB" --set=u="$POSTGRES_USER"
  fi
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  echo "postgres: initialised $PGDATA (user $POSTGRES_USER, database $POSTGRES_DB, auth $AUTH)"
}

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "$POSTGRES_PASSWORD" ] && [ "$AUTH" != trust ]; then
    echo "postgres: POSTGRES_PASSWORD is not set; set it (or POSTGRES_HOST_AUTH_METHOD=trust for throw-away tests)" >&2
    exit 1
  fi
  initialise
fi

exec "$@"
