# A throwaway Postgres 15 cluster in a temporary folder on a free loopback port, stopped and
# removed when the calling script exits. Sets PG_URL.

pg_bindir() {
  for d in /usr/lib/postgresql/15/bin "$(pg_config --bindir 2>/dev/null || true)"; do
    [ -x "$d/initdb" ] && { echo "$d"; return; }
  done
  echo "no Postgres 15 server binaries (initdb) found" >&2
  return 1
}

start_throwaway_postgres() {
  local bin port dir run_as=()
  bin=$(pg_bindir)
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  dir=$(mktemp -d /tmp/vigil-pg.XXXXXX)
  if [ "$(id -u)" = 0 ]; then
    # The server refuses to run as root: run it as the postgres system user.
    chown postgres:postgres "$dir"
    run_as=(runuser -u postgres --)
  fi
  # TCP connections authenticate with SCRAM-SHA-256, the superuser included, so a wrong
  # database password is refused as on a real server (tests/team.rs relies on it). The local
  # socket, in this private folder, stays trusted for pg_ctl.
  local password
  password=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
  printf '%s\n' "$password" >"$dir/pwfile"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir/pwfile"
  "${run_as[@]}" "$bin/initdb" -D "$dir/data" -U postgres --auth-local=trust \
    --auth-host=scram-sha-256 --pwfile="$dir/pwfile" --no-sync >/dev/null
  rm -f "$dir/pwfile"
  "${run_as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null
  PG_DIR=$dir
  PG_BIN=$bin
  PG_RUN_AS=("${run_as[@]}")
  trap stop_throwaway_postgres EXIT
  PG_URL="postgres://postgres:$password@127.0.0.1:$port/postgres"
}

stop_throwaway_postgres() {
  if [ -n "${PG_DIR:-}" ] && [ -d "$PG_DIR/data" ]; then
    "${PG_RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$PG_DIR"
  fi
}
