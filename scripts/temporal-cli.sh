#!/usr/bin/env bash
# Prints the path of the Temporal CLI, building it from the Go module proxy into .tools/ the first time.
# TEMPORAL_CLI_PATH, or a `temporal` already on PATH, is used as is.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TOOLS="$ROOT/.tools/bin"
VERSIONS=(v1.5.1 v1.4.1 v1.3.0) # newest first: later tags cannot be installed with `go install`

if [[ -n "${TEMPORAL_CLI_PATH:-}" ]]; then echo "$TEMPORAL_CLI_PATH"; exit 0; fi
if command -v temporal >/dev/null 2>&1; then command -v temporal; exit 0; fi
if [[ -x "$TOOLS/temporal" ]]; then echo "$TOOLS/temporal"; exit 0; fi
if ! command -v go >/dev/null 2>&1; then
  echo "dbchange: the Temporal CLI is not installed and Go is not available to build it; install Go or set TEMPORAL_CLI_PATH" >&2
  exit 1
fi
mkdir -p "$TOOLS"
for version in "${VERSIONS[@]}"; do
  echo "dbchange: building the Temporal CLI $version into .tools/bin (once, a few minutes)" >&2
  if GOBIN="$TOOLS" GOFLAGS=-mod=mod go install "github.com/temporalio/cli/cmd/temporal@$version" >&2; then
    echo "$TOOLS/temporal"; exit 0
  fi
  echo "dbchange: go install of temporal $version failed; trying an older release" >&2
done
echo "dbchange: could not build the Temporal CLI with go install (${VERSIONS[*]}); set TEMPORAL_CLI_PATH to an existing binary" >&2
exit 1
