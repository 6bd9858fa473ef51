"""Command line: ``python -m deploy start|status|restart|stop|render|loadtest``.

Settings come from the environment (``deploy/settings.py``: DT_PROCESSES,
DT_FIRST_PORT, DT_NGINX_PORT, DT_RUN_DIR, ...); the processes inherit this
environment (DATABASE_URL, REDIS_URL, secrets). Exit status 0 on success, 1 when
the stack did not reach the state asked for (``status``: when any part is unhealthy).
"""

from __future__ import annotations

import argparse
import json
import sys

from deploy import loadtest
from deploy.render import render_all
from deploy.settings import StackSettings, TimeoutConfigError
from deploy.stack import Stack, StackError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy", description=__doc__.splitlines()[0])
    parser.add_argument(
        "operation", choices=["start", "status", "restart", "stop", "render", "loadtest", "cluster"]
    )
    parser.add_argument(
        "cluster_operation", nargs="?", choices=["up", "status", "faults", "faults-here", "down"],
        help="cluster: simulated hosts in network namespaces (deploy/cluster.py)",
    )  # fmt: skip
    parser.add_argument("--short", action="store_true", help="cluster faults: the short CI version")
    parser.add_argument("--users", type=int, default=20, help="loadtest: simulated people")
    parser.add_argument("--spawn-rate", type=float, default=10, help="loadtest: people started per second")
    parser.add_argument("--run-time", default="60s", help="loadtest: how long (e.g. 30s, 5m)")
    args = parser.parse_args(argv)
    if args.operation == "cluster":
        from deploy import cluster

        return cluster.main(args.cluster_operation or "status", short=args.short)
    stack = Stack(StackSettings.from_env())
    try:
        if args.operation == "start":
            stack.start()
            print(f"ready: {stack.base_url}")
        elif args.operation == "status":
            status = stack.status()
            print(json.dumps(status, indent=2))
            healthy = status["nginx_healthy"] and all(p["healthy"] for p in status["processes"])
            return 0 if healthy else 1
        elif args.operation == "restart":
            for record in stack.rolling_restart():
                print(f"{record.name}: drained in {record.stop_secs:.1f}s, ready in {record.ready_secs:.1f}s")
        elif args.operation == "stop":
            stack.stop()
            print("stopped")
        elif args.operation == "loadtest":
            verdict = loadtest.run(args.users, args.spawn_rate, args.run_time, stack.settings)
            print(verdict.report)
            return 0 if verdict.ok else 1
        else:
            for path in render_all(stack.settings):
                print(path)
    except (StackError, TimeoutConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
