#!/usr/bin/env bash
# Runs lint, the type check and the test suite. Embedded default unless DATABASE_URL / REDIS_URL are set.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
export DEV_MODE=1  # the suite uses development secrets
.venv/bin/ruff check --quiet .
.venv/bin/mypy  # [tool.mypy] in pyproject.toml; incremental cache in .mypy_cache (git-ignored)
exec .venv/bin/python -m pytest "$@"
