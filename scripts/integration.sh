#!/usr/bin/env bash
# The integration suite (tests/integration, marker "integration"): the whole stack from the repo's
# configs (deploy/) under faults, on its own MariaDB, Redis and free ports. Needs nginx, mariadbd
# and redis-server; installs nginx (Debian package) when it is missing and this runs as root.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  echo "nginx missing; installing nginx-light"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq </dev/null
  apt-get install -y -qq nginx-light </dev/null || apt-get install -y -qq nginx </dev/null
fi
exec .venv/bin/python -m pytest -m integration tests/integration "$@"
