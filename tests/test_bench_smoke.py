"""Each benchmark still runs: ``python -m bench.<name> --smoke`` (tiny N, loopback).

Benchmarks are not tests: nothing here asserts a timing, only that each one
finishes and hands ``bench`` a well-formed result it can turn into
docs/benchmarks.md.
"""

from __future__ import annotations

import datetime
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.harness import child_env, machine
from bench.report import render

ROOT = Path(__file__).resolve().parent.parent
SMOKES = {
    "client": "bench.client",
    "server": "bench.server",
    "bulk": "bench.bulk",
    "profile": "bench.profile_post",
}


def run_smoke(module: str, tmp_path: Path) -> dict[str, Any]:
    out = tmp_path / f"{module}.json"
    argv = [sys.executable, "-m", module, "--smoke", "--json", str(out)]
    if module == "bench.profile_post":
        argv += ["--output", str(tmp_path / "profile.txt")]
    done = subprocess.run(
        argv, cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def assert_well_formed(result: dict[str, Any]) -> None:
    assert result["command"].startswith("python -m bench.")
    assert result["rows"]
    for row in result["rows"]:
        assert row["benchmark"]
        assert row["n"]
        assert row["ours"]
        assert row["target"]
        assert row["met"] in (True, False, None)
        if row["ratio"] is not None:
            assert math.isfinite(row["ratio"])
            assert row["ratio"] > 0
            assert row["ratio_label"]


@pytest.fixture(scope="module")
def smoke_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    tmp_path = tmp_path_factory.mktemp("bench")
    return {name: run_smoke(module, tmp_path) for name, module in SMOKES.items()}


@pytest.mark.parametrize("name", SMOKES)
def test_benchmark_runs_and_reports(name: str, smoke_results: dict[str, dict[str, Any]]) -> None:
    assert_well_formed(smoke_results[name])


def test_client_benchmark_sent_every_request(smoke_results: dict[str, dict[str, Any]]) -> None:
    upstream = smoke_results["client"]["details"][0]["upstream"]
    assert upstream["requests"] == upstream["expected_requests"]


def test_server_benchmark_got_only_expected_answers(
    smoke_results: dict[str, dict[str, Any]],
) -> None:
    data = smoke_results["server"]["details"][0]
    for config in data["results"].values():
        assert all(m["bad"] == 0 and m["requests"] > 0 for m in config["summary"].values())
    assert data["rows_in_database"]["audit_rows"] > 0
    assert data["rows_in_database"]["sessions"] == 0


def test_bulk_benchmark_sent_every_address(smoke_results: dict[str, dict[str, Any]]) -> None:
    for run in smoke_results["bulk"]["details"][0]["runs"]:
        assert run["outcomes"] == {"sent": run["n"]}
        assert run["requests_upstream"] == run["n"]
        assert run["peak_rss_kb"] > 0


def test_profile_benchmark_wrote_a_profile(smoke_results: dict[str, dict[str, Any]]) -> None:
    notes = " ".join(smoke_results["profile"]["notes"])
    path = Path(notes.rsplit(" ", 1)[-1])
    assert "resend_reset_email" in path.read_text()


def test_results_render_as_the_benchmarks_page(
    smoke_results: dict[str, dict[str, Any]],
) -> None:
    page = render(
        smoke_results,
        admin_bulk={"command": "python -m bench.admin_bulk", "output": "ok", "error": ""},
        machine=machine(),
        command="python -m bench",
        when=datetime.datetime.now(datetime.UTC),
        seconds=1.0,
    )
    rows = sum(len(result["rows"]) for result in smoke_results.values())
    table = [line for line in page.splitlines() if line.startswith("| ")]
    assert len(table) >= rows + 1
    assert "## Results" in page


def test_the_server_probe_writes_audit_rows_as_the_app_does() -> None:
    from bench.server import AUDIT_ASYNC_COMMIT
    from betatel_reset.models import ASYNC_COMMIT

    assert AUDIT_ASYNC_COMMIT == ASYNC_COMMIT
