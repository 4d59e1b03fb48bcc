#!/usr/bin/env bash
# Prints the README's benchmark tables (flagwire vs LaunchDarkly vs OpenFeature).
# Long settings: ./table.sh -benchtime=2s -count=5
set -euo pipefail
cd "$(dirname "$0")"
exec go run ./cmd/table "$@"
