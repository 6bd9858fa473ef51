"""``python -m bench [--quick] [case ...]``: run benchmark cases, write ``bench/results.md``.

Every case (all of :data:`CASES` when none is named) runs in turn; each returns a
Markdown section that replaces that case's block in ``bench/results.md`` (other
blocks and hand-written notes stay). ``--quick`` is the CI smoke: tiny runs,
written to the git-ignored ``bench/_quick/`` so committed figures stay. A case
that fails is reported and makes the exit status non-zero; the rest still run.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
from datetime import UTC, datetime

from bench import common, report

# name -> module under bench/ with run(quick: bool) -> str
CASES: dict[str, str] = {
    "crud": "bench.crud",
    "chat_send": "bench.chat_send",
    "realtime": "bench.realtime",
    "nearby": "bench.nearby",
    "stack": "bench.stack",
    "events": "bench.events",
}


def header(quick: bool) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    mode = "quick smoke (not figures)" if quick else "full run"
    return (
        f"Last run: {when}, {mode}, revision `{common.git_revision()}`.\n"
        f"Machine: {common.machine_info()}; load average at start {common.load_average()}.\n"
        f"Versions: {common.versions()}.\n"
        "Re-run: `python -m bench [case ...]` (see README); each case's block is replaced on its own."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CI smoke: tiny and short")
    parser.add_argument("cases", nargs="*", metavar="case", help=f"default: all ({', '.join(CASES)})")
    args = parser.parse_args(argv)
    common.ensure_bench_secrets()
    unknown = [name for name in args.cases if name not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; known: {', '.join(CASES)}")
    if args.quick:
        common.use_quick_output()
    results_path = common.QUICK_DIR / "results.md" if args.quick else common.RESULTS_PATH
    results_path.parent.mkdir(parents=True, exist_ok=True)
    head = header(args.quick)
    failed: list[str] = []
    for name in args.cases or list(CASES):
        started = time.monotonic()
        print(f"== bench {name}{' (quick)' if args.quick else ''}", flush=True)
        try:
            section = importlib.import_module(CASES[name]).run(args.quick)
        except Exception:
            traceback.print_exc()
            failed.append(name)
            continue
        old = results_path.read_text() if results_path.exists() else ""
        results_path.write_text(report.update_results(old, head, {name: section}))
        print(f"   {name}: done in {time.monotonic() - started:.0f}s -> {results_path}", flush=True)
    if failed:
        print(f"bench: FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
