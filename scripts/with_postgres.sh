#!/usr/bin/env bash
# Run a command against a throw-away PostgreSQL server (Debian's packages) on loopback:
#   scripts/with_postgres.sh .venv/bin/python -m pytest backend/tests/api -q
# Installs the `postgresql` package first when it is missing and we are root; starts a private cluster
# in a temporary folder on a free port; exports DATABASE_URL for the command; stops and deletes it after.
set -euo pipefail
find_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
PGBIN="$(find_bin)"
if [ -z "$PGBIN" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) || true
    PGBIN="$(find_bin)"
fi
if [ -z "$PGBIN" ]; then
    echo "with_postgres: no PostgreSQL server binaries (apt-get install postgresql)" >&2
    exit 3
fi
DIR="$(mktemp -d /tmp/sigver-pg.XXXXXX)"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
AS=()
if [ "$(id -u)" = 0 ]; then  # the server refuses to run as root
    chown postgres "$DIR"
    AS=(runuser -u postgres --)
fi
cleanup() { "${AS[@]}" "$PGBIN/pg_ctl" -D "$DIR/data" -m fast stop >/dev/null 2>&1 || true; rm -rf "$DIR"; }
trap cleanup EXIT
"${AS[@]}" "$PGBIN/initdb" -D "$DIR/data" -U sigver --auth=trust -E UTF8 >/dev/null
"${AS[@]}" "$PGBIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w \
    -o "-h 127.0.0.1 -p $PORT -k $DIR -c fsync=off -c max_connections=100" start >/dev/null
"${AS[@]}" "$PGBIN/createdb" -h 127.0.0.1 -p "$PORT" -U sigver sigver
export DATABASE_URL="postgres://sigver@127.0.0.1:$PORT/sigver"
echo "with_postgres: PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PORT" >&2
"$@"
