"""What every benchmark needs: statistics, free ports, child processes it owns,
a scratch database, and the JSON result each benchmark hands to ``bench``.

Every child process started here is stopped by its own PID in a ``finally``;
everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    import requests

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
PYTHON = sys.executable


# Statistics ---------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (``pct`` in 0-100) of ``values``."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


# Results ------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the results table in ``docs/benchmarks.md``."""

    benchmark: str
    n: str
    ours: str
    alternative: str
    ratio: float | None
    ratio_label: str
    target: str
    met: bool | None


@dataclass
class Result:
    """What a benchmark module writes with ``--json`` and ``bench`` renders."""

    benchmark: str
    command: str
    params: dict[str, Any]
    rows: list[Row] = field(default_factory=list)
    details: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def write(self, path: str | None) -> None:
        if path:
            Path(path).write_text(json.dumps(self.as_dict(), indent=2) + "\n")

    def print_rows(self) -> None:
        for row in self.rows:
            ratio = "" if row.ratio is None else f"{row.ratio:.2f} ({row.ratio_label})"
            met = {True: "yes", False: "NO", None: "-"}[row.met]
            print(f"{row.benchmark} [N={row.n}]")
            print(f"    ours:        {row.ours}")
            print(f"    alternative: {row.alternative}")
            print(f"    ratio:       {ratio}")
            print(f"    target:      {row.target} -> met: {met}")
        for note in self.notes:
            print(f"note: {note}")


def command_line(module: str, argv: Sequence[str]) -> str:
    return " ".join(["python", "-m", module, *argv])


def machine() -> dict[str, Any]:
    import django
    import requests

    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "django": django.get_version(),
        "requests": requests.__version__,
        "platform": platform.platform(terse=True),
        "cpu": _cpu_model(),
    }


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


# Processes and ports --------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def child_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    env.update(extra)
    return env


def stop_process(proc: subprocess.Popen[Any], *, timeout: float = 10.0) -> None:
    """SIGTERM the process we started (by its PID), then SIGKILL if it lingers."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout)


def wait_for_http(
    url: str, *, timeout: float = 30.0, proc: subprocess.Popen[Any] | None = None
) -> requests.Response:
    """GET ``url`` until it answers (any status below 500); bounded by ``timeout``."""
    import requests

    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode} before it was ready")
        try:
            response = requests.get(url, timeout=2, allow_redirects=False)
        except requests.RequestException as exc:
            last = exc
        else:
            if response.status_code < 500:
                return response
            last = RuntimeError(f"HTTP {response.status_code}")
        time.sleep(0.1)
    raise TimeoutError(f"{url} not ready after {timeout:.0f} s: {last}")


@dataclass(frozen=True)
class Served:
    """A gunicorn we started: its base URL and its master's PID."""

    url: str
    pid: int

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by the master and its live workers."""
        total = 0.0
        for pid in [self.pid, *_children(self.pid)]:
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total


def _children(pid: int) -> list[int]:
    with contextlib.suppress(OSError):
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
        return [int(child) for child in text.split()]
    return []


def machine_busy_seconds() -> float:
    """CPU time all cores have spent busy since boot (``/proc/stat``), 0 if unknown."""
    with contextlib.suppress(OSError, ValueError):
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
        return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")
    return 0.0


@contextlib.contextmanager
def gunicorn(
    env: dict[str, str], *, workers: int = 2, log: IO[str] | None = None, ready_path: str = "/"
) -> Iterator[Served]:
    """The demo's WSGI app under gunicorn on a free loopback port."""
    port = free_port()
    proc = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "gunicorn",
            "project.wsgi:application",
            "--workers",
            str(workers),
            "--worker-class",
            "sync",
            "--bind",
            f"{HOST}:{port}",
            "--log-level",
            "warning",
            "--timeout",
            "30",
        ],
        env=env,
        cwd=ROOT,
        stdout=log or subprocess.DEVNULL,
        stderr=log or subprocess.DEVNULL,
    )
    url = f"http://{HOST}:{port}"
    try:
        wait_for_http(url + ready_path, proc=proc)
        yield Served(url, proc.pid)
    finally:
        stop_process(proc)


# Databases ----------------------------------------------------------------------


def postgres_reachable() -> bool:
    from tests.support.real_services import PG, REDIS, _reachable

    return _reachable(PG) and _reachable(REDIS)


@contextlib.contextmanager
def scratch_database(kind: str) -> Iterator[dict[str, str]]:
    """A fresh, migrated database for the bench site; yields the env a child needs.

    ``postgres``: a new database on 127.0.0.1:5432 (and a Redis key prefix),
    dropped afterwards, via :func:`tests.support.real_services.scratch_database`.
    ``sqlite``: a file in a temporary directory.
    """
    if kind == "postgres":
        from tests.support.real_services import scratch_database as pg_scratch

        with pg_scratch() as env:
            name = env["BETATEL_IT_DB_NAME"]
            yield child_env(
                BETATEL_IT_DB_NAME=name,
                BETATEL_IT_CACHE_PREFIX=env["BETATEL_IT_CACHE_PREFIX"],
                BENCH_DATABASE_URL=f"postgres://postgres@{HOST}:5432/{name}",
                BENCH_DATABASE_NAME=name,
            )
        return
    if kind != "sqlite":
        raise ValueError(f"unknown database kind {kind!r}")
    with tempfile.TemporaryDirectory(prefix="betatel-bench-") as tmp:
        env = child_env(BENCH_DATABASE_URL=f"sqlite:///{tmp}/bench.sqlite3")
        subprocess.run(
            [PYTHON, "-m", "django", "migrate", "--no-input", "-v", "0"],
            env={**env, "DJANGO_SETTINGS_MODULE": "bench.site_settings"},
            cwd=ROOT,
            check=True,
            timeout=120,
        )
        yield env


def pick_database(requested: str) -> str:
    if requested != "auto":
        return requested
    return "postgres" if postgres_reachable() else "sqlite"
