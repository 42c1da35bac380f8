#!/usr/bin/env bash
# The demo: installs and builds what it needs, then runs one pipeline of examples/ end to end (see examples/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
exec node dist/examples/demo/run-demo.js "$@"
