"""What a benchmark reports: its tables, printed, and with ``--json`` written with
its raw data for ``python -m bench``, which puts them in docs/benchmarks.md."""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def arguments(doc: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: check that it runs")
    parser.add_argument("--json", metavar="PATH", help="write the tables and data as JSON")
    return parser


def finish(json_path: str | None, tables: str, data: Any) -> None:
    """Print the tables; with ``--json``, write them and the raw data for ``python -m bench``."""
    print(f"\n{tables}", flush=True)
    if json_path:
        Path(json_path).write_text(json.dumps({"tables": tables, "data": data}, indent=2) + "\n")


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
