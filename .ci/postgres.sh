#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests: PostgreSQL's own initdb and
# pg_ctl, a temporary directory, a free loopback port, trust
# authentication on 127.0.0.1 only. Installs Debian's postgresql package
# when initdb is missing (as root). When run as root the cluster runs as
# the postgres user.
#
#   eval "$(.ci/postgres.sh start)"   # exports FLAGWIRE_TEST_POSTGRES and FLAGWIRE_PG_DIR
#   ./test.sh
#   .ci/postgres.sh stop "$FLAGWIRE_PG_DIR"
#
# restart DIR starts a cluster of DIR again on its port after it stopped
# or crashed (the crash test kills it with kill -9).
#
# start prints the export lines on stdout (everything else goes to stderr).
set -euo pipefail

find_bin() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r) ; do
    [ -x "$d/initdb" ] && { echo "$d"; return 0; }
  done
  command -v initdb >/dev/null 2>&1 && { dirname "$(command -v initdb)"; return 0; }
  return 1
}

as_owner() { # run a command as the cluster's owner
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null && return 0
  local p
  for p in $(seq 25432 25532); do
    (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null || { echo "$p"; return 0; }
  done
  return 1
}

start() {
  local bin
  if ! bin=$(find_bin); then
    if [ "$(id -u)" = 0 ]; then
      echo "PostgreSQL is missing: apt-get install -y postgresql" >&2
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; } >&2
      bin=$(find_bin) || { echo "initdb not found after installing postgresql" >&2; exit 1; }
    else
      echo "PostgreSQL's initdb is missing: install the postgresql package (as root: apt-get install -y postgresql)" >&2
      exit 1
    fi
  fi
  local dir port
  dir=$(mktemp -d "${TMPDIR:-/tmp}/flagwire-pg.XXXXXX")
  chmod 755 "$dir"
  if [ "$(id -u)" = 0 ]; then chown postgres: "$dir"; fi
  port=$(free_port)
  as_owner "$bin/initdb" -D "$dir/data" -U flagwire --auth=trust -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 ||
    { cat "$dir/initdb.log" >&2; exit 1; }
  # Trust on loopback, except role flagwire_pw, whose password is checked
  # (the wrong-password test).
  as_owner sh -c "printf '%s\n' 'local all all trust' 'host all flagwire_pw 127.0.0.1/32 scram-sha-256' 'host all all 127.0.0.1/32 trust' > '$dir/data/pg_hba.conf'"
  echo "$port" > "$dir/port"
  launch "$bin" "$dir" "$port"
  echo "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (data in $dir)" >&2
  echo "export FLAGWIRE_TEST_POSTGRES='postgres://flagwire@127.0.0.1:$port/postgres?sslmode=disable'"
  echo "export FLAGWIRE_PG_DIR='$dir'"
  echo "export FLAGWIRE_PG_BIN='$bin'"
}

launch() { # bin dir port
  as_owner "$1/pg_ctl" -D "$2/data" -l "$2/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -c port=$3 -c unix_socket_directories=$2 -c max_connections=200 -c fsync=on" start >&2 ||
    { cat "$2/server.log" >&2; exit 1; }
}

restart() {
  local dir=${1:-} bin
  [ -n "$dir" ] && [ -f "$dir/port" ] || { echo "usage: $0 restart DIR" >&2; exit 1; }
  bin=$(find_bin)
  launch "$bin" "$dir" "$(cat "$dir/port")"
}

stop() {
  local dir=${1:-${FLAGWIRE_PG_DIR:-}} bin
  [ -n "$dir" ] && [ -d "$dir/data" ] || { echo "usage: $0 stop DIR (the FLAGWIRE_PG_DIR that start printed)" >&2; exit 1; }
  bin=$(find_bin)
  as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >&2 || true
  rm -rf "$dir"
}

case "${1:-}" in
  start) start ;;
  stop) shift; stop "$@" ;;
  restart) shift; restart "$@" ;;
  *) echo "usage: $0 start | stop DIR | restart DIR" >&2; exit 2 ;;
esac
