#!/usr/bin/env bash
# The integration suite (tests/integration, marker "integration"): the whole stack from the repo's
# configs (deploy/) under faults, on its own MariaDB, Redis and free ports; Redis Sentinel and
# Galera failovers on their own groups of servers. Needs nginx, mariadbd, redis-server,
# redis-sentinel, galera-4, haproxy and rsync; installs the missing ones (Debian packages) as root.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  echo "nginx missing; installing nginx-light"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq </dev/null
  apt-get install -y -qq nginx-light </dev/null || apt-get install -y -qq nginx </dev/null
fi
missing=()
command -v redis-sentinel >/dev/null 2>&1 || missing+=(redis-sentinel)
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
command -v rsync >/dev/null 2>&1 || missing+=(rsync)
[ -e /usr/lib/galera/libgalera_smm.so ] || missing+=(galera-4)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing ${missing[*]} (Debian packages) for the failover tests"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq </dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
fi
exec .venv/bin/python -m pytest -m integration tests/integration "$@"
