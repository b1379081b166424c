# Sourced by the test scripts: starts a private PostgreSQL cluster (initdb in a temporary
# directory, trust authentication, a free port on 127.0.0.1 only) and exports PGHOST, PGPORT
# and PGUSER for it. Stops it (by its own pg_ctl, never by name) and removes it on exit.
# Run as root, the server runs as the `postgres` user (it refuses to run as root).
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
pg_dir=$(mktemp -d /tmp/wiregate-pg.XXXXXX)
pg_as=()
if [ "$(id -u)" -eq 0 ]; then
  chown postgres "$pg_dir"
  pg_as=(runuser -u postgres --)
fi
"${pg_as[@]}" "$pg_bin/initdb" -D "$pg_dir/data" --auth=trust -U postgres -E UTF8 >/dev/null
PGPORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"${pg_as[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w \
  -o "-p $PGPORT -k $pg_dir -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
export PGHOST=127.0.0.1 PGPORT PGUSER=postgres PGDATABASE=wiregate
"$pg_bin/createdb" wiregate
stop_postgres() {
  "${pg_as[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$pg_dir"
}
trap stop_postgres EXIT
