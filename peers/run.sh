#!/usr/bin/env bash
# Builds flagd, the GO Feature Flag relay proxy, flagwire and the peers
# harness into a cache directory outside the repository, installs the JS
# OFREP provider there, then runs the harness on loopback (see README.md).
#
#   peers/run.sh                      build what is missing, run every check and the table
#   peers/run.sh --build-only         only build
#   peers/run.sh -parts sdk,providers -subjects 500   harness flags pass through
#
# Environment:
#   FLAGWIRE_PEERS_CACHE  cache directory (default: $XDG_CACHE_HOME/flagwire-peers or ~/.cache/flagwire-peers)
#   FLAGD_SRC             a checkout of open-feature/flagd (default: cloned into the cache)
#   GOFF_SRC              a checkout of thomaspoignant/go-feature-flag (default: cloned into the cache)
#   OFO_SRC               optional: a checkout of open-feature/open-feature-operator, whose api/ module
#                         flagd then builds against (for a module proxy that does not serve it)
#   FLAGWIRE_PEERS_REBUILD=1  rebuild the peers even if their binaries are current
#   FLAGWIRE_PEERS_NETNS=0    do not run in a private network namespace (flagd binds every interface)
set -euo pipefail

# Every server is built as its project releases it: static, without cgo
# (flagd's and GO Feature Flag's release builds set CGO_ENABLED=0, and so
# does Flagwire's documented install), so no libc is mapped in any of them.
export CGO_ENABLED=0
# A binary's .rev file names its commit and this build flavour: a binary
# built otherwise is rebuilt once.
flavour="(CGO_ENABLED=0)"

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
cache=${FLAGWIRE_PEERS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/flagwire-peers}
bin=$cache/bin
mkdir -p "$bin" "$cache/src" "$cache/build" "$cache/logs"

build_only=0
if [ "${1:-}" = --build-only ]; then build_only=1; shift; fi

# source NAME ENV_VALUE GIT_URL: the checkout to build from.
source_dir() {
  local name=$1 given=$2 url=$3 dir
  if [ -n "$given" ]; then
    [ -d "$given" ] || { echo "$name: $given is not a directory" >&2; return 1; }
    (cd "$given" && pwd)
    return
  fi
  dir=$cache/src/$name
  if [ ! -d "$dir" ]; then
    echo "== cloning $url into $dir" >&2
    git clone --quiet --depth 1 "$url" "$dir" >&2
  fi
  echo "$dir"
}

# revision DIR: the checkout's commit (or "unversioned") and the build flavour.
revision() { echo "$(git -C "$1" rev-parse HEAD 2>/dev/null || echo unversioned) $flavour"; }

# current NAME REV: whether bin/NAME was built from REV.
current() {
  [ "${FLAGWIRE_PEERS_REBUILD:-0}" != 1 ] && [ -x "$bin/$1" ] && [ -f "$bin/$1.rev" ] && [ "$(cat "$bin/$1.rev")" = "$2" ]
}

# report_failure NAME LOG: a peer that does not build is reported with its
# error; the checks run without it.
report_failure() {
  echo "!! $1 did not build; the checks run without it. The error (end of $2):" >&2
  grep -v '^go: downloading' "$2" | tail -20 >&2
  rm -f "$bin/$1" "$bin/$1.rev"
}

build_flagd() {
  local src rev log=$cache/logs/flagd-build.log mod=$cache/build/flagd.mod
  src=$(source_dir flagd "${FLAGD_SRC:-}" https://github.com/open-feature/flagd) || return 0
  rev=$(revision "$src")
  if current flagd "$rev"; then echo "== flagd: current ($rev)"; return; fi
  echo "== building flagd ($rev) from $src/flagd"
  # Its flagd/ module is built against the checkout's own core/ module
  # (replace directives in a copy of its go.mod: the checkout is not
  # modified).
  cp "$src/flagd/go.mod" "$mod"
  cp "$src/flagd/go.sum" "${mod%.mod}.sum"
  local edits=(-replace "github.com/open-feature/flagd/core=$src/core")
  if [ -n "${OFO_SRC:-}" ]; then
    edits+=(-replace "github.com/open-feature/open-feature-operator/api=$(cd "$OFO_SRC" && pwd)/api")
  fi
  if (cd "$src/flagd" && go mod edit -modfile="$mod" "${edits[@]}" && go build -modfile="$mod" -o "$bin/flagd" .) >"$log" 2>&1; then
    echo "$rev" >"$bin/flagd.rev"
  else
    report_failure flagd "$log"
  fi
}

build_relay() {
  local src rev log=$cache/logs/relayproxy-build.log
  src=$(source_dir go-feature-flag "${GOFF_SRC:-}" https://github.com/thomaspoignant/go-feature-flag) || return 0
  rev=$(revision "$src")
  if current relayproxy "$rev"; then echo "== relay proxy: current ($rev)"; return; fi
  echo "== building the GO Feature Flag relay proxy ($rev) from $src/cmd/relayproxy"
  if (cd "$src" && go build -o "$bin/relayproxy" ./cmd/relayproxy) >"$log" 2>&1; then
    echo "$rev" >"$bin/relayproxy.rev"
  else
    report_failure relayproxy "$log"
  fi
}

build_flagd
build_relay
echo "== building flagwire and the harness from this repository"
(cd "$root/cmd/flagwire" && go build -o "$bin/flagwire" .)
(cd "$here" && go build -o "$bin/peers-harness" .)

js=""
if command -v node >/dev/null && command -v npm >/dev/null; then
  mkdir -p "$cache/js"
  if ! cmp -s "$here/js/package-lock.json" "$cache/js/package-lock.json" || [ ! -d "$cache/js/node_modules" ]; then
    echo "== installing the JS OFREP provider (npm ci)"
    cp "$here/js/package.json" "$here/js/package-lock.json" "$cache/js/"
    (cd "$cache/js" && npm ci --no-audit --no-fund --loglevel=error)
  fi
  cp "$here/js/check.mjs" "$cache/js/"
  js=$cache/js
else
  echo "!! node or npm not found: the JS provider check is skipped" >&2
fi

[ "$build_only" = 1 ] && exit 0

echo "flagwire built from $(git -C "$root" describe --always --dirty 2>/dev/null || echo 'an unversioned tree')"
harness=("$bin/peers-harness" -bin "$bin" -flags "$here/flags" -js "$js" "$@")
cd "$here"
# flagd listens on every interface: in a network namespace of its own the
# only interface is loopback. Everything runs inside it; nothing leaves
# 127.0.0.1. A PostgreSQL database for -pg is outside that namespace, so
# -pg runs without one.
netns=${FLAGWIRE_PEERS_NETNS:-1}
for a in "$@"; do
  case $a in -pg|-pg=*|--pg|--pg=*) netns=0 ;; esac
done
if [ "$netns" = 1 ] && command -v unshare >/dev/null && command -v ip >/dev/null &&
  unshare -rn true 2>/dev/null; then
  exec unshare -rn sh -c 'ip link set lo up && exec "$@"' sh "${harness[@]}"
fi
echo "!! running without a private network namespace: flagd listens on every interface while the checks run" >&2
exec "${harness[@]}"
