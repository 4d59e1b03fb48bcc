#!/usr/bin/env bash
# The test suite: `go test -race ./...` in every Go module of the repository
# (the SDK at the root; the integrations openfeature/ and otel/ and the CLI
# cmd/flagwire/, which are modules of their own so that the SDK's module
# graph stays small).
# bench/ is left to .ci/run (it needs a build tag and runs benchmarks).
# Extra arguments go to every `go test`: ./test.sh -count=1 -run TestX
set -euo pipefail
cd "$(dirname "$0")"
status=0
for mod in $(git ls-files 'go.mod' '*/go.mod' 2>/dev/null || find . -name go.mod -not -path './bench/*'); do
  dir=$(dirname "$mod")
  [ "$dir" = bench ] && continue
  echo "== go test -race ./... in ${dir}"
  (cd "$dir" && go test -race "$@" ./...) || status=1
done
exit $status
