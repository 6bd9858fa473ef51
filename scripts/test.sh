#!/usr/bin/env bash
# Runs lint and the test suite. Embedded default unless DATABASE_URL / REDIS_URL are set.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
.venv/bin/ruff check --quiet .
exec .venv/bin/python -m pytest "$@"
