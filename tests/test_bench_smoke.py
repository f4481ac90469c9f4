"""Each benchmark still runs: ``python -m bench.<name> --smoke`` (tiny sizes, loopback).

Benchmarks are not tests: nothing here asserts a timing, only that each one
finishes, that what it checks about its own run holds, and that its tables fit
its block of docs/benchmarks.md. Those on PostgreSQL and Redis skip without
them (fail with ``BETATEL_REQUIRE_SERVICES=1``).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bench.__main__ import BENCHMARKS, PAGE
from bench.harness import child_env
from bench.report import fill

from .support.real_services import require_services

ROOT = Path(__file__).resolve().parent.parent
NEEDS_SERVICES = {"server", "bulk", "load", "ledger", "delivery", "workers"}
Smoke = Callable[[str], dict[str, Any]]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> Smoke:
    """``smoke(name)``: the JSON of ``python -m bench.NAME --smoke``, run once per module."""
    results: dict[str, dict[str, Any]] = {}

    def run(name: str) -> dict[str, Any]:
        if name in NEEDS_SERVICES:
            require_services()
        if name not in results:
            out = tmp_path_factory.mktemp(name) / "result.json"
            done = subprocess.run(
                [sys.executable, "-m", f"bench.{name}", "--smoke", "--json", str(out)],
                cwd=ROOT,
                env=child_env(),
                capture_output=True,
                text=True,
                timeout=180,
            )
            assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
            results[name] = json.loads(out.read_text())
        return results[name]

    return run


@pytest.mark.parametrize("name", BENCHMARKS)
def test_benchmark_runs_and_fills_its_block_of_the_page(name: str, smoke: Smoke) -> None:
    tables = smoke(name)["tables"]
    assert re.search(r"^\| .+ \|\n\|(---\|)+\n\| ", tables, re.MULTILINE)
    assert tables.strip() in fill(PAGE.read_text(), name, tables)


def test_the_page_has_a_block_for_each_benchmark_and_no_other() -> None:
    blocks = re.findall(r"^<!-- table:(\w+) -->$", PAGE.read_text(), re.MULTILINE)
    assert sorted(blocks) == sorted([*BENCHMARKS, "machine"])


def test_filling_a_block_leaves_the_rest_of_the_page_alone() -> None:
    page = "intro\n<!-- table:a -->\nold\n<!-- /table:a -->\nprose\n"
    filled = fill(page, "a", "| new |")
    assert filled == page.replace("\nold\n", "\n\n| new |\n\n")
    with pytest.raises(KeyError):
        fill(page, "c", "| new |")


def test_client_benchmark_compared_every_client(smoke: Smoke) -> None:
    data = smoke("client")["data"]
    assert set(data["median_ms"]) == {
        "ours_backend",
        "ours_service",
        "vendor",
        "session_post",
        "floor",
    }
    assert data["requests"] > 0  # and the benchmark checked the count


def test_server_benchmark_got_only_expected_answers(smoke: Smoke) -> None:
    data = smoke("server")["data"]
    for scenarios in data["results"].values():
        assert all(m["bad"] == 0 and m["requests"] > 0 for ms in scenarios.values() for m in ms)
    assert data["probe_ms"]["audit_rows"] > 0
    assert data["probe_ms"]["sessions"] == 0


def test_bulk_benchmark_measured_both_paths_and_the_floor(smoke: Smoke) -> None:
    data = smoke("bulk")["data"]  # the benchmark fails unless every address was sent
    assert {run["path"] for run in data["runs"]} == {"command", "task"}
    assert all(run["peak_rss_kb"] > 0 for run in data["runs"])
    assert {floor["concurrency"] for floor in data["floors"]} == {
        run["concurrency"] for run in data["runs"]
    }


def test_profile_benchmark_wrote_a_profile(smoke: Smoke) -> None:
    data = smoke("profile_post")["data"]
    assert "resend_reset_email" in Path(data["profile"]).read_text()
    assert data["sessions_created"] == 0


def test_load_benchmark_kept_its_invariants(smoke: Smoke) -> None:
    assert smoke("load")["data"]["problems"] == []


def test_workers_benchmark_drained_with_each_worker_count_and_paced(smoke: Smoke) -> None:
    data = smoke("workers")["data"]  # the benchmark fails unless every address was sent once
    runs = data["runs"]
    assert {(run["workers"], len(run["peak_rss_kb"])) for run in runs} == {(1, 1), (2, 2)}
    assert all(rss > 0 for run in runs for rss in run["peak_rss_kb"])
    assert len({run["n"] for run in runs}) == 2  # memory is compared at two sizes
    paced = data["paced"]
    assert paced["rate"]
    assert paced["windows"]
    assert sum(paced["windows"]) < paced["n"]  # only the whole seconds are counted


def test_the_server_probe_writes_audit_rows_as_the_app_does() -> None:
    from bench.server import AUDIT_ASYNC_COMMIT
    from betatel_reset.models import ASYNC_COMMIT

    assert AUDIT_ASYNC_COMMIT == ASYNC_COMMIT
