#!/usr/bin/env bash
# First start: initdb, create the user and database from POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB.
# Every start: exec postgres in the foreground as the postgres user, so `docker stop` is a fast clean shutdown.
set -euo pipefail
POSTGRES_USER=${POSTGRES_USER:-postgres}
POSTGRES_DB=${POSTGRES_DB:-$POSTGRES_USER}

if [ "$(id -u)" = 0 ]; then
  install -d -o postgres -g postgres -m 0700 "$PGDATA"
  install -d -o postgres -g postgres -m 2775 /var/run/postgresql
  exec gosu postgres "$0" "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "${POSTGRES_HOST_AUTH_METHOD:-}" != trust ]; then
    echo "postgres: POSTGRES_PASSWORD is not set; set it (or POSTGRES_HOST_AUTH_METHOD=trust for throw-away tests)" >&2
    exit 1
  fi
  pwfile=$(mktemp)
  printf '%s\n' "${POSTGRES_PASSWORD:-unused}" >"$pwfile"
  initdb -D "$PGDATA" -U postgres --pwfile="$pwfile" -E UTF8 --locale=C.UTF-8 --auth-local=peer \
    --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  {
    echo "listen_addresses = '*'"
    echo "shared_buffers = 128MB"
    echo "max_connections = 100"
    echo "password_encryption = scram-sha-256"
    echo "unix_socket_directories = '/var/run/postgresql'"
  } >>"$PGDATA/postgresql.conf"
  method=scram-sha-256
  [ "${POSTGRES_HOST_AUTH_METHOD:-}" = trust ] && method=trust
  {
    echo "local all all peer"
    echo "local all all scram-sha-256"
    echo "host all all 127.0.0.1/32 $method"
    echo "host all all ::1/128 $method"
    echo "host all all all $method"
  } >"$PGDATA/pg_hba.conf"
  pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
  psql=(psql -v ON_ERROR_STOP=1 -q -X --username postgres --dbname postgres)
  # psql quotes the values (:"ident", :'literal'); variables are interpolated only in SQL read from stdin.
  if [ "$POSTGRES_USER" != postgres ]; then
    echo "CREATE ROLE :\"u\" LOGIN SUPERUSER PASSWORD :'p';" | "${psql[@]}" --set=u="$POSTGRES_USER" \
      --set=p="${POSTGRES_PASSWORD:-}" >/dev/null
  else
    echo "ALTER ROLE postgres PASSWORD :'p';" | "${psql[@]}" --set=p="${POSTGRES_PASSWORD:-}" >/dev/null
  fi
  if [ "$POSTGRES_DB" != postgres ]; then
    echo 'CREATE DATABASE :"d" OWNER :"u";' | "${psql[@]}" --set=d="$POSTGRES_DB" --set=u="$POSTGRES_USER" >/dev/null
  fi
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  echo "postgres: initialised $PGDATA (user $POSTGRES_USER, database $POSTGRES_DB)"
fi

exec "$@"
