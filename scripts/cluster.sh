#!/usr/bin/env bash
# The simulated multi-host topology under faults (deploy/cluster.py, docs/operations.md "Past one host"):
# network namespaces + veth on a private bridge, edge nginx, two app hosts, Redis with Sentinel, Galera
# behind HAProxy. `scripts/cluster.sh` runs the short version (CI: Redis primary SIGKILL and loss of one
# database node, a few minutes); `scripts/cluster.sh --full` all five faults, report in the run directory.
# Installs the Debian packages it needs as root. Always tears the namespaces down, also on failure/Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
missing=()
for tool in redis-sentinel:redis-sentinel haproxy:haproxy rsync:rsync iptables:iptables curl:curl \
            tc:iproute2 ip:iproute2 nginx:nginx-light mariadbd:mariadb-server redis-server:redis-server; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${tool%%:*}" ] || missing+=("${tool#*:}")
done
[ -e /usr/lib/galera/libgalera_smm.so ] || missing+=(galera-4)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing ${missing[*]} (Debian packages)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq </dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
fi
export DT_CLUSTER_DIR="${DT_CLUSTER_DIR:-$(mktemp -d /tmp/dt-cluster-XXXXXX)}"
short="--short"
[ "${1:-}" = "--full" ] && short=""
trap '.venv/bin/python -m deploy cluster down >/dev/null 2>&1 || true' EXIT INT TERM
.venv/bin/python -m deploy cluster down >/dev/null 2>&1 || true
.venv/bin/python -m deploy cluster up
.venv/bin/python -m deploy cluster faults $short
