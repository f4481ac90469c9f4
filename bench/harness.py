"""The pieces every benchmark is built from: timing loops, child processes, the
bench site under gunicorn on a scratch PostgreSQL database, a load generator.

Everything listens on 127.0.0.1; every process started here is stopped by its
own PID in a ``finally``.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import math
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple, TypeVar
from urllib.parse import urlsplit

import requests

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
PYTHON = sys.executable
EMAIL = "ada@example.com"  # the bench site's account, for which both reset forms are posted
OURS, DJANGOS = "/reset-password/resend/", "/accounts/password_reset/"  # the two reset forms
CSRF_TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
T = TypeVar("T")


# Timing ----------------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (``pct`` in 0-100)."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[min(len(ordered), max(1, math.ceil(pct / 100 * len(ordered)))) - 1]


def mean_seconds(call: Callable[[], object], n: int) -> float:
    """Mean seconds per call over ``n`` calls in a row."""
    started = time.perf_counter()
    for _ in range(n):
        call()
    return (time.perf_counter() - started) / n


def interleaved(
    names: Sequence[str], rounds: int, measure: Callable[[str], T]
) -> dict[str, list[T]]:
    """``measure`` each name once per round, the order reversed every other round,
    so that a machine getting busier or quieter does not favour one of them."""
    results: dict[str, list[T]] = {name: [] for name in names}
    for number in range(rounds):
        for name in names if number % 2 == 0 else reversed(names):
            results[name].append(measure(name))
    return results


# Processes -------------------------------------------------------------------------------


def child_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1", **extra}


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) used so far by process ``pid`` and its live children."""
    children: list[str] = []
    with contextlib.suppress(OSError):
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    total = 0.0
    for each in [pid, *map(int, children)]:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def machine_busy_seconds() -> float:
    """CPU time all cores have spent busy since boot (``/proc/stat``), 0 if unknown."""
    with contextlib.suppress(OSError, ValueError):
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return (sum(values[:8]) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")
    return 0.0


class Served(NamedTuple):
    """A gunicorn we started: its base URL and its master's PID."""

    url: str
    pid: int


@contextlib.contextmanager
def gunicorn(env: dict[str, str]) -> Iterator[Served]:
    """``project.wsgi`` (settings from ``env``) under gunicorn, two sync workers, on a free
    port; ready once our resend page answers."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port = sock.getsockname()[1]
    argv = [PYTHON, "-m", "gunicorn", "project.wsgi:application", "--workers", "2"]
    argv += ["--bind", f"{HOST}:{port}", "--log-level", "warning"]
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=log, stderr=log)
        url = f"http://{HOST}:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError(f"gunicorn did not start: {log.read()[-2000:]}")
                with contextlib.suppress(requests.RequestException):
                    if requests.get(url + OURS, timeout=2).status_code < 500:
                        break
                time.sleep(0.1)
            yield Served(url, proc.pid)
        finally:  # gunicorn stops its workers on SIGTERM
            stop_processes([proc])


def stop_processes(procs: Sequence[subprocess.Popen[Any]], wait: float = 10) -> None:
    """SIGTERM our own children, then SIGKILL those still running after ``wait`` s."""
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


# The bench site --------------------------------------------------------------------------


def setup_site() -> None:
    """Migrate the bench site's database and create the account both password-reset
    forms are posted for (Django must be set up)."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    users = get_user_model()._default_manager
    if not users.filter(email=EMAIL).exists():
        users.create_user("ada", EMAIL, "correct horse battery staple")  # type: ignore[attr-defined]


@contextlib.contextmanager
def bench_site() -> Iterator[dict[str, str]]:
    """``bench.site_settings`` on a new PostgreSQL database, dropped afterwards;
    yields the environment a child process (gunicorn, a worker) needs."""
    from tests.support.real_services import in_django, scratch_database

    with scratch_database() as scratch:
        name = scratch["BETATEL_IT_DB_NAME"]
        env = child_env(
            DJANGO_SETTINGS_MODULE="bench.site_settings",
            BENCH_DATABASE_URL=f"postgres://postgres@{HOST}:5432/{name}",
        )
        in_django("from bench.harness import setup_site\nsetup_site()\nprint('{}')", env)
        yield env


def site_in_process(database: str = "sqlite://:memory:", **betatel: Any) -> Any:
    """The bench site in this process, its database migrated; its WSGI app.
    ``betatel`` overrides entries of ``BETATEL_RESET``."""
    os.environ.update(DJANGO_SETTINGS_MODULE="bench.site_settings", BENCH_DATABASE_URL=database)
    from django.conf import settings
    from django.core.wsgi import get_wsgi_application

    app = get_wsgi_application()
    settings.BETATEL_RESET = {**settings.BETATEL_RESET, **betatel}
    setup_site()
    silence_console_log()
    return app


def silence_console_log() -> None:
    """Keep the demo's INFO line per resend (its cost is real), written to /dev/null."""
    sink = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    for handler in logging.getLogger("betatel_reset").handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sink)


# Load generation -------------------------------------------------------------------------

LOAD_GENERATOR = "wrk" if shutil.which("wrk") else "python"


def csrf_token(session: requests.Session, url: str) -> str:
    """The form token from one GET of the form page at ``url``; ``session`` keeps the cookie."""
    page = session.get(url, timeout=30)
    match = CSRF_TOKEN.search(page.text)
    if match is None or "csrftoken" not in session.cookies:
        raise RuntimeError(f"no CSRF token from {url} (HTTP {page.status_code})")
    return match.group(1)


def http_load(
    served: Served, path: str, seconds: float, connections: int, body: str = "", cookie: str = ""
) -> dict[str, float]:
    """``connections`` clients requesting ``path`` of ``served`` for ``seconds`` (a GET, or
    a form POST of ``body`` when given): requests per second, p50 and p99 ms, answers
    other than 2xx/3xx (``bad``), and CPU ms per request, gunicorn's and the machine's.
    wrk (``-t1``) when installed, else Python threads, which compete with gunicorn for
    the cores."""
    app, machine = cpu_seconds(served.pid), machine_busy_seconds()
    generator = _wrk if LOAD_GENERATOR == "wrk" else _python_load
    load = generator(served.url + path, seconds, connections, body, cookie)
    load["app_cpu_ms"] = (cpu_seconds(served.pid) - app) * 1000 / max(1, load["requests"])
    load["machine_cpu_ms"] = (machine_busy_seconds() - machine) * 1000 / max(1, load["requests"])
    return load


def _wrk(url: str, seconds: float, connections: int, body: str, cookie: str) -> dict[str, float]:
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        if body:
            script.write(
                f'wrk.method = "POST"\nwrk.body = "{body}"\nwrk.headers["Cookie"] = "{cookie}"\n'
                'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n'
            )
            script.flush()
            argv += ["-s", script.name]
        argv += ["--timeout", "10s", url]
        ran = subprocess.run(
            argv, capture_output=True, text=True, timeout=seconds + 30, check=True
        )
    out = ran.stdout

    def find(pattern: str, default: str = "") -> str:
        match = re.search(pattern, out)
        if match is None and not default:
            raise RuntimeError(f"no {pattern!r} in the output of wrk: {out[-500:]}")
        return match.group(1) if match else default

    def ms(text: str) -> float:
        value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]

    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    return {
        "rps": float(find(r"Requests/sec:\s+([\d.]+)")),
        "p50_ms": ms(find(r"\s50%\s+(\S+)")),
        "p99_ms": ms(find(r"\s99%\s+(\S+)")),
        "requests": int(find(r"(\d+) requests in")),
        "bad": int(find(r"Non-2xx or 3xx responses: (\d+)", "0"))
        + (sum(map(int, errors.groups())) if errors else 0),
    }


def _python_load(
    url: str, seconds: float, connections: int, body: str, cookie: str
) -> dict[str, float]:
    parts = urlsplit(url)
    form = {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"}
    method, headers = ("POST", form) if body else ("GET", {})
    deadline = time.monotonic() + seconds

    def client(_: int) -> tuple[list[float], int]:
        latencies, errors = [], 0
        while time.monotonic() < deadline:
            started = time.perf_counter()
            conn = http.client.HTTPConnection(parts.hostname or HOST, parts.port, timeout=10)
            try:
                conn.request(method, parts.path, body or None, headers)
                response = conn.getresponse()
                response.read()
                errors += response.status >= 400
            except OSError:
                errors += 1
            finally:
                conn.close()
            latencies.append(time.perf_counter() - started)
        return latencies, errors

    started = time.monotonic()
    with ThreadPoolExecutor(connections) as pool:
        results = list(pool.map(client, range(connections)))
    latencies = [latency for mine, _ in results for latency in mine]
    return {
        "rps": len(latencies) / (time.monotonic() - started),
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "requests": len(latencies),
        "bad": sum(errors for _, errors in results),
    }
