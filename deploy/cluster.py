"""``python -m deploy cluster up|status|smoke|down``: the topology past one host, simulated on one machine.

Each host is a Linux network namespace with its own address in the private
``10.213.0.0/24``, joined by veth pairs to a bridge that itself lives in a
namespace of its own (``dtc-switch``): the machine's own interfaces, routes and
iptables rules are never touched, and nothing is reachable from outside.

| host | address | runs |
|---|---|---|
| ``edge`` | .10 | nginx, its upstream spanning both app hosts (``DT_APP_HOSTS``) |
| ``app1``, ``app2`` | .21, .22 | ``python -m deploy start`` (Tornado processes), HAProxy to the DB nodes |
| ``redis1..3`` | .31-.33 | a Redis (primary on redis1, replicas) and a Sentinel each |
| ``db1..3`` | .41-.43 | MariaDB Galera nodes |
| ``client`` | .50 | the load and the checks |

Invariants: ``up`` either returns with every part answering or tears down what
it started and raises; ``down`` ends every process in the namespaces (by the
pids the namespaces hold) and deletes them, and is safe to run at any time;
the state (addresses, pids, run directory) is in ``<run dir>/cluster.json``.
Only the topology settings differ from one host: the app code is the same.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time

from deploy.cluster_hosts import ClusterHosts
from deploy.cluster_topology import (
    BRIDGE,
    HOSTS,
    PREFIX,
    SWITCH,
    ClusterError,
    address,
    in_ns,
    namespace,
    run,
)
from deploy.settings import REPO_DIR


class Cluster(ClusterHosts):
    """The namespaces and their network, brought up and torn down as one."""

    # -- network ------------------------------------------------------------------
    def build_network(self) -> None:
        run("ip", "netns", "add", SWITCH)
        run("ip", "-n", SWITCH, "link", "add", BRIDGE, "type", "bridge")
        run("ip", "-n", SWITCH, "link", "set", BRIDGE, "up")
        for host in HOSTS:
            ns, veth = namespace(host), f"v-{host}"
            run("ip", "netns", "add", ns)
            run("ip", "-n", SWITCH, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
            run("ip", "-n", SWITCH, "link", "set", veth, "master", BRIDGE, "up")
            run("ip", "-n", ns, "addr", "add", f"{address(host)}/24", "dev", "eth0")
            run("ip", "-n", ns, "link", "set", "eth0", "up")
            run("ip", "-n", ns, "link", "set", "lo", "up")

    # -- operations ---------------------------------------------------------------
    def up(self) -> None:
        if self.exists():
            raise ClusterError(f"namespaces {PREFIX}-* exist: run 'python -m deploy cluster down' first")
        self.settings.run_dir.mkdir(parents=True, exist_ok=True)
        for stale in [*HOSTS, "logs"]:  # a previous run's data (Galera state, stack files) is never reused
            shutil.rmtree(self.settings.run_dir / stale, ignore_errors=True)
        try:
            self.build_network()
            self.start_redis()
            self.start_galera()
            self.start_app_hosts()
            self.start_edge()
        except BaseException:
            self.down()
            raise
        self.save_state()

    def save_state(self) -> None:
        state = {
            "run_dir": str(self.settings.run_dir),
            "base_url": self.settings.base_url,
            "hosts": {host: address(host) for host in HOSTS},
        }
        (self.settings.run_dir / "cluster.json").write_text(json.dumps(state, indent=2))

    @staticmethod
    def exists() -> bool:
        listed = run("ip", "netns", "list", check=False).stdout
        return any(line.split()[0].startswith(f"{PREFIX}-") for line in listed.splitlines() if line.strip())

    def down(self) -> None:
        """End every process in the cluster's namespaces (by pid), then delete the namespaces."""
        listed = run("ip", "netns", "list", check=False).stdout
        names = [line.split()[0] for line in listed.splitlines() if line.strip().startswith(f"{PREFIX}-")]
        for sig in (signal.SIGTERM, signal.SIGKILL):
            pids = []
            for ns in names:
                pids += [int(p) for p in run("ip", "netns", "pids", ns, check=False).stdout.split()]
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            if pids and sig == signal.SIGTERM:
                deadline = time.monotonic() + 15
                while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
                    time.sleep(0.2)
        for ns in names:
            run("ip", "netns", "del", ns, check=False)
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.wait()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def main(operation: str, short: bool = False) -> int:
    """``up``, ``status``, ``faults`` (re-entered in the client namespace), ``down``."""
    cluster = Cluster()
    try:
        if operation == "up":
            cluster.up()
            print(f"ready: {cluster.settings.base_url} (from namespace {namespace('client')})")
        elif operation == "down":
            cluster.down()
            print("down")
        elif operation == "status":
            state = {"redis_primary": cluster.redis_primary(), "edge": cluster.health_from_client()}
            print(json.dumps(state))
        elif operation == "faults":
            command = in_ns("client", cluster.settings.python, "-m", "deploy", "cluster", "faults-here")
            return subprocess.run([*command, *(["--short"] if short else [])], cwd=REPO_DIR).returncode
        elif operation == "faults-here":
            from deploy.cluster_faults import FaultRun

            ok, report = FaultRun(cluster, short).run()
            print(report)
            report_file = cluster.settings.run_dir / ("faults-short.md" if short else "faults.md")
            report_file.write_text(report + "\n")
            return 0 if ok else 1
    except ClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
