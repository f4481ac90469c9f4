"""The generated parts of docs/benchmarks.md: tables, and nothing else.

The page is written by hand. ``python -m bench`` replaces only what lies between
``<!-- table:NAME -->`` and ``<!-- /table:NAME -->`` with the tables that
benchmark NAME produced, and leaves every other line alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable


def table(header: str, rows: Iterable[str]) -> str:
    """A Markdown table; the header and each row are their cells joined by ``" | "``."""
    rule = "|" + "---|" * (header.count("|") + 1)
    return "\n".join([f"| {header} |", rule, *(f"| {row} |" for row in rows)]) + "\n"


def met(ok: bool | None) -> str:
    return {True: "yes", False: "**no**", None: "-"}[ok]


def fill(page: str, name: str, content: str) -> str:
    """``page`` with block ``name`` holding ``content``; KeyError if it has no such block."""
    start, end = f"<!-- table:{name} -->", f"<!-- /table:{name} -->"
    pattern = re.compile(f"^{re.escape(start)}$.*?^{re.escape(end)}$", re.DOTALL | re.MULTILINE)
    if not pattern.search(page):
        raise KeyError(f"no {start} … {end} block")
    return pattern.sub(lambda _: f"{start}\n\n{content.strip()}\n\n{end}", page, count=1)
