"""``python -m bench [--quick] [case ...]``: run benchmark cases, write ``bench/results.md``.

Each case (``CASES``) returns a Markdown section, stamped with the machine, the
revision and the load average before and after it. ``results.md`` keeps one
block per case between ``<!-- case:NAME -->`` markers, so running one case
replaces only its own block. With ``--quick`` (what ``.ci/run`` uses) every case
runs a tiny smoke and prints its section, so CI never overwrites measured figures.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
import time

from bench.common import RESULTS_PATH, git_revision, load_average, machine_info

# Case name -> module under bench/ with ``run(quick: bool) -> str``.
CASES: dict[str, str] = {"nearby": "nearby"}
HEADER = "# Benchmark results\n\nWritten by `python -m bench` (see README); one block per case.\n"
BLOCK_RE = re.compile(r"<!-- case:(\w+) -->\n(.*?)<!-- /case -->\n", re.S)


def read_blocks() -> dict[str, str]:
    if not RESULTS_PATH.exists():
        return {}
    return {m.group(1): m.group(2) for m in BLOCK_RE.finditer(RESULTS_PATH.read_text())}


def write_blocks(blocks: dict[str, str]) -> None:
    ordered = [name for name in CASES if name in blocks] + [name for name in blocks if name not in CASES]
    body = "".join(f"<!-- case:{name} -->\n{blocks[name]}<!-- /case -->\n\n" for name in ordered)
    RESULTS_PATH.write_text(HEADER + "\n" + body)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CI smoke: tiny runs, results not written")
    parser.add_argument("cases", nargs="*", help=f"cases to run (default: all of {', '.join(CASES)})")
    args = parser.parse_args(argv)
    names = args.cases or list(CASES)
    unknown = [name for name in names if name not in CASES]
    if unknown:
        parser.error(f"unknown case(s): {', '.join(unknown)}")
    blocks = read_blocks()
    for name in names:
        before = load_average()
        started = time.monotonic()
        section = importlib.import_module(f"bench.{CASES[name]}").run(args.quick)
        block = (
            f"{section.rstrip()}\n\n_Machine: {machine_info()}. Revision {git_revision()}, "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Load average before {before}, "
            f"after {load_average()}; the case took {time.monotonic() - started:.0f} s._\n"
        )
        if args.quick:
            print(block)
        else:
            blocks[name] = block
            write_blocks(blocks)
            print(f"{name}: written to {RESULTS_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
