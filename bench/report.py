"""``bench/results.md``: a header, then one block per case, each replaced on its own.

A case's block sits between ``<!-- bench:NAME:begin -->`` and
``<!-- bench:NAME:end -->``. Running some cases replaces only their blocks;
other cases' blocks and any text outside blocks (notes written by hand) stay
as they are. New blocks go at the end, in the order they were run. The header
block (``bench:header``) records machine, revision and date of the last run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

TITLE = "# Benchmark results"


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- bench:{name}:begin -->", f"<!-- bench:{name}:end -->"


def replace_block(text: str, name: str, body: str) -> str:
    """``text`` with block ``name`` set to ``body`` (appended when absent)."""
    begin, end = _markers(name)
    block = f"{begin}\n{body.strip()}\n{end}"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        return pattern.sub(lambda _: block, text, count=1)
    base = text.rstrip("\n")
    return f"{base}\n\n{block}\n" if base else f"{block}\n"


def read_block(text: str, name: str) -> str | None:
    begin, end = _markers(name)
    match = re.search(re.escape(begin) + r"\n(.*?)\n" + re.escape(end), text, re.DOTALL)
    return match.group(1) if match else None


def update_results(text: str, header: str, sections: Mapping[str, str]) -> str:
    """The new results file: title kept, header replaced, each case's block replaced."""
    if not text.strip():
        text = f"{TITLE}\n"
    text = replace_block(text, "header", header)
    for name, section in sections.items():
        text = replace_block(text, name, section)
    return text
