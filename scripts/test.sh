#!/usr/bin/env bash
# Runs lint and the test suite. Embedded default unless DATABASE_URL / REDIS_URL are set.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
export DEV_MODE=1  # the suite uses development secrets
.venv/bin/ruff check --quiet .
exec .venv/bin/python -m pytest "$@"
