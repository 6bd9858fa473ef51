"""Command line: ``python -m deploy start|status|restart|stop|render|loadtest|ctl|nginx|cluster``.

Settings come from the environment (``deploy/settings.py``: DT_PROCESSES,
DT_FIRST_PORT, DT_NGINX_PORT, DT_RUN_DIR, ...); the processes inherit this
environment (DATABASE_URL, REDIS_URL, secrets). Exit status 0 on success, 1 when
the stack did not reach the state asked for (``status``: when any part is unhealthy),
with one ``error:`` line per cause and no traceback.

    python -m deploy ctl status              # supervisorctl on the stack's rendered config
    python -m deploy ctl tail -f datingtoday:datingtoday-8001
    python -m deploy nginx -s reload         # nginx on the stack's config, never the system's
"""

from __future__ import annotations

import argparse
import json
import sys

from deploy import loadtest
from deploy.render import render_all
from deploy.settings import StackSettings, TimeoutConfigError
from deploy.stack import Stack, StackError

PASS_THROUGH = {"ctl": Stack.supervisorctl, "nginx": Stack.nginx_command}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    stack = Stack(StackSettings.from_env())
    try:
        if argv and argv[0] in PASS_THROUGH:  # everything after it is the tool's own arguments
            return PASS_THROUGH[argv[0]](stack, argv[1:])
        return _operate(stack, argv)
    except (StackError, TimeoutConfigError) as exc:
        for line in str(exc).splitlines():
            print(f"error: {line}", file=sys.stderr)
        return 1


def _operate(stack: Stack, argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deploy",
        description=__doc__.split("\n\n")[0],
        epilog="ctl ARGS: supervisorctl ARGS on the stack's config; nginx ARGS: nginx ARGS on it",
    )
    operations = ["start", "status", "restart", "stop", "render", "loadtest", "cluster", *PASS_THROUGH]
    parser.add_argument("operation", choices=operations)
    parser.add_argument(
        "cluster_operation", nargs="?", choices=["up", "status", "faults", "faults-here", "down"],
        help="cluster: simulated hosts in network namespaces (deploy/cluster.py)",
    )  # fmt: skip
    parser.add_argument("--short", action="store_true", help="cluster faults: the short CI version")
    parser.add_argument("--users", type=int, default=20, help="loadtest: simulated people")
    parser.add_argument("--spawn-rate", type=float, default=10, help="loadtest: people started per second")
    parser.add_argument("--run-time", default="60s", help="loadtest: how long (e.g. 30s, 5m)")
    parser.add_argument(
        "--warmup",
        type=float,
        default=None,
        help="loadtest: seconds not judged for p95 at the start (default: the spawn time + "
        f"{loadtest.WARMUP_MARGIN_SECS:.0f} s; DT_LOADTEST_WARMUP_SECS)",
    )
    args = parser.parse_args(argv)
    if args.operation == "cluster":
        from deploy import cluster

        return cluster.main(args.cluster_operation or "status", short=args.short)
    if args.operation == "start":
        stack.start()
        print(f"ready: {stack.base_url}")
    elif args.operation == "status":
        status = stack.status()
        print(json.dumps(status, indent=2))
        healthy = status["nginx_healthy"] and all(p["healthy"] for p in status["processes"])
        return 0 if healthy else 1
    elif args.operation == "restart":
        for note in stack.prepare_restart():
            print(note)
        for record in stack.rolling_restart():
            print(f"{record.name}: drained in {record.stop_secs:.1f}s, ready in {record.ready_secs:.1f}s")
    elif args.operation == "stop":
        stack.stop()
        print("stopped")
    elif args.operation == "loadtest":
        verdict = loadtest.run(
            args.users, args.spawn_rate, args.run_time, stack.settings, warmup_secs=args.warmup
        )
        print(verdict.report)
        return 0 if verdict.ok else 1
    else:
        for path in render_all(stack.settings):
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
