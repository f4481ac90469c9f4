"""``python -m bench`` (``make bench``): run every benchmark, write docs/benchmarks.md.

    python -m bench                         # all, default sizes (about 7 minutes)
    python -m bench --only client,profile   # some of them; the others are left out
    python -m bench --output /tmp/b.md

Each benchmark runs in its own process with its defaults (``python -m
bench.<name> --json …``), one after another, so none competes with another
for the two cores; a benchmark that fails is reported as such and the others
still run. ``bench/admin_bulk.py`` (the admin action's benchmark) is run too,
when present, and its output included as it prints it.
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.harness import PYTHON, ROOT, child_env, machine
from bench.report import render

BENCHMARKS = {
    "client": ("bench.client", 600),
    "server": ("bench.server", 900),
    "bulk": ("bench.bulk", 1800),
    "profile": ("bench.profile_post", 600),
    "load": ("bench.load", 600),
}
ADMIN_BULK = ("bench.admin_bulk", 900)


def run_benchmark(module: str, timeout: float, tmp: Path) -> dict[str, Any]:
    """Run ``python -m module --json PATH``; its result, or what went wrong."""
    out = tmp / f"{module}.json"
    started = time.monotonic()
    print(f"== {module}", flush=True)
    try:
        done = subprocess.run(
            [PYTHON, "-m", module, "--json", str(out)],
            cwd=ROOT,
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"benchmark": module, "error": f"timed out after {timeout:.0f} s"}
    print(done.stdout, end="", flush=True)
    elapsed = time.monotonic() - started
    if not out.exists():
        return {
            "benchmark": module,
            "error": f"exit status {done.returncode}: {done.stderr.strip()[-1500:]}",
        }
    result: dict[str, Any] = json.loads(out.read_text())
    result["seconds"] = elapsed
    if done.returncode != 0:
        result.setdefault("notes", []).append(f"exit status {done.returncode}")
    return result


def run_admin_bulk(timeout: float) -> dict[str, Any] | None:
    """The admin action's benchmark, owned by its own module; None if absent."""
    module, _ = ADMIN_BULK
    if not (ROOT / "bench" / "admin_bulk.py").exists():
        return None
    print(f"== {module}", flush=True)
    try:
        done = subprocess.run(
            [PYTHON, "-m", module],
            cwd=ROOT,
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"command": f"python -m {module}", "error": f"timed out after {timeout:.0f} s"}
    print(done.stdout, end="", flush=True)
    return {
        "command": f"python -m {module}",
        "output": done.stdout.strip(),
        "error": "" if done.returncode == 0 else done.stderr.strip()[-1500:],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help=f"comma-separated, of {', '.join(BENCHMARKS)}, admin_bulk")
    parser.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"))
    parser.add_argument(
        "--results-dir",
        help="keep each benchmark's JSON here (default: a temporary directory)",
    )
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="run nothing: render --output from the JSON kept in --results-dir",
    )
    args = parser.parse_args(argv)
    if args.render_only:
        if not args.results_dir:
            parser.error("--render-only needs --results-dir")
        rerender(Path(args.results_dir), Path(args.output))
        return
    chosen = args.only.split(",") if args.only else [*BENCHMARKS, "admin_bulk"]
    unknown = set(chosen) - {*BENCHMARKS, "admin_bulk"}
    if unknown:
        parser.error(f"unknown benchmarks: {', '.join(sorted(unknown))}")

    started = time.monotonic()
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="betatel-bench-") as tmp:
        keep = Path(args.results_dir) if args.results_dir else Path(tmp)
        keep.mkdir(parents=True, exist_ok=True)
        for name, (module, timeout) in BENCHMARKS.items():
            if name in chosen:
                results[name] = run_benchmark(module, timeout, keep)
        admin_bulk = run_admin_bulk(ADMIN_BULK[1]) if "admin_bulk" in chosen else None
        run = {
            "results": results,
            "admin_bulk": admin_bulk,
            "machine": machine(),
            "command": "python -m bench" + (f" --only {args.only}" if args.only else ""),
            "when": datetime.datetime.now(datetime.UTC).isoformat(),
            "seconds": time.monotonic() - started,
        }
        (keep / "run.json").write_text(json.dumps(run, indent=2) + "\n")
        rerender(keep, Path(args.output))


def rerender(results_dir: Path, output: Path) -> None:
    run = json.loads((results_dir / "run.json").read_text())
    text = render(
        run["results"],
        admin_bulk=run["admin_bulk"],
        machine=run["machine"],
        command=run["command"],
        when=datetime.datetime.fromisoformat(run["when"]),
        seconds=run["seconds"],
    )
    output.write_text(text)
    print(f"wrote {output}")


if __name__ == "__main__":
    main(sys.argv[1:])
