"""Benchmark 2: server cost of the resend POST against Django's own password reset.

    python -m bench.server                        # wrk, 5 rounds of 3 s per scenario
    python -m bench.server --smoke                # 1 round of 1 s, SQLite, to check it runs

One gunicorn (``--workers 2``, sync) serves the bench site (``bench.site_settings``:
the demo with ``DEBUG`` off, local-memory cache, ``locmem`` Betatel backend,
rate limits on but never refusing, Django's ``PasswordResetView`` at
``/accounts/password_reset/`` with the locmem email backend and a user to reset).
The database is a scratch PostgreSQL one (``--db postgres``, the default when
PostgreSQL and Redis answer on 127.0.0.1) or an SQLite file.

Scenarios, interleaved round by round (order reversed every other round):

* ``POST /reset-password/resend/``: ours (rate limits, circuit breaker, backend,
  audit row, success message, 302);
* ``POST /accounts/password_reset/``: Django's (user lookup, token, two
  templates, an email built and "sent" to locmem, 302);
* the GET pages: ``/reset-password/resend/``, ``/reset-password/expired/``
  and ``/accounts/password_reset/``.

POSTs reuse one CSRF cookie and token fetched first. The load generator is
``wrk`` (``-t1 -c8``, a Lua script for the POSTs) when installed, else a
bounded Python client (which competes with gunicorn for the 2 cores: prefer
wrk). Reported: requests per second and p50/p99 latency, medians of the rounds.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bench.harness import (
    PYTHON,
    ROOT,
    Result,
    Row,
    command_line,
    gunicorn,
    machine_busy_seconds,
    median,
    percentile,
    pick_database,
    scratch_database,
)


@dataclass(frozen=True)
class Scenario:
    name: str
    method: str
    path: str
    expect: int


SCENARIOS = [
    Scenario("ours_post", "POST", "/reset-password/resend/", 302),
    Scenario("django_post", "POST", "/accounts/password_reset/", 302),
    Scenario("ours_get", "GET", "/reset-password/resend/", 200),
    Scenario("ours_expired_get", "GET", "/reset-password/expired/", 200),
    Scenario("django_get", "GET", "/accounts/password_reset/", 200),
]

_WRK_LUA = """wrk.method = "POST"
wrk.body = "{body}"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Cookie"] = "{cookie}"
"""


@dataclass
class Measurement:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    bad: int  # non-2xx/3xx answers and socket errors
    #: CPU milliseconds per request: gunicorn's processes, and the whole machine
    #: (gunicorn, the database, the load generator, anything else running).
    app_cpu_ms: float = 0.0
    machine_cpu_ms: float = 0.0


def fetch_csrf(base: str) -> tuple[str, str]:
    """(cookie header value, form token) from one GET of our page."""
    import requests

    response = requests.get(base + "/reset-password/resend/", timeout=10)
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', response.text)
    if response.status_code != 200 or match is None or "csrftoken" not in response.cookies:
        raise RuntimeError(f"no CSRF token from the resend page (HTTP {response.status_code})")
    return f"csrftoken={response.cookies['csrftoken']}", match.group(1)


def check_status(base: str, scenario: Scenario, body: str, cookie: str) -> None:
    """One request first: the load generator only counts non-2xx/3xx answers."""
    import requests

    headers = {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"}
    response = requests.request(
        scenario.method,
        base + scenario.path,
        data=body if scenario.method == "POST" else None,
        headers=headers if scenario.method == "POST" else None,
        allow_redirects=False,
        timeout=10,
    )
    if response.status_code != scenario.expect:
        raise RuntimeError(
            f"{scenario.method} {scenario.path}: HTTP {response.status_code}, "
            f"expected {scenario.expect}"
        )


def _duration_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError(f"wrk duration {text!r}")
    value, unit = float(match.group(1)), match.group(2)
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def run_wrk(url: str, *, lua: Path | None, duration: float, connections: int) -> Measurement:
    argv = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "10s",
        "--latency",
    ]
    if lua is not None:
        argv += ["-s", str(lua)]
    done = subprocess.run(
        [*argv, url], capture_output=True, text=True, timeout=duration + 30, check=True
    )
    out = done.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _duration_ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _duration_ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = 0
    if match := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        bad += int(match.group(1))
    if match := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    ):
        bad += sum(int(g) for g in match.groups())
    return Measurement(rps=rps, p50_ms=p50, p99_ms=p99, requests=total, bad=bad)


def run_python_client(
    url: str, *, method: str, body: str, cookie: str, duration: float, connections: int
) -> Measurement:
    """``connections`` threads, each one request at a time, for ``duration`` seconds."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    headers = (
        {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"}
        if method == "POST"
        else {}
    )
    latencies: list[float] = []
    bad = 0
    lock = threading.Lock()
    deadline = time.monotonic() + duration
    max_requests = 100_000  # bound the count too, whatever the speed

    def worker() -> None:
        nonlocal bad
        mine: list[float] = []
        errors = 0
        while time.monotonic() < deadline and len(mine) < max_requests // connections:
            started = time.perf_counter()
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
            try:
                conn.request(method, parts.path, body if method == "POST" else None, headers)
                response = conn.getresponse()
                response.read()
                if response.status >= 400:
                    errors += 1
            except OSError:
                errors += 1
            finally:
                conn.close()
            mine.append(time.perf_counter() - started)
        with lock:
            latencies.extend(mine)
            bad += errors

    started = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    return Measurement(
        rps=len(latencies) / elapsed,
        p50_ms=percentile(latencies, 50) * 1000,
        p99_ms=percentile(latencies, 99) * 1000,
        requests=len(latencies),
        bad=bad,
    )


@dataclass(frozen=True)
class Config:
    """One gunicorn configuration of the bench site and what to measure under it."""

    name: str
    description: str
    scenarios: tuple[str, ...]
    conn_max_age: int = 0


CONFIGS = {
    "per-request": Config(
        "per-request",
        "CONN_MAX_AGE=0 (Django's default: a database connection per request)",
        tuple(s.name for s in SCENARIOS),
    ),
    "persistent": Config(
        "persistent",
        "CONN_MAX_AGE=600 (persistent database connections)",
        ("ours_post", "django_post"),
        conn_max_age=600,
    ),
}


def run(args: argparse.Namespace) -> dict[str, Any]:
    client = args.client
    if client == "auto":
        client = "wrk" if shutil.which("wrk") else "python"
    database = pick_database(args.db)
    configs = [CONFIGS[name] for name in args.configs.split(",") if name]
    if database != "postgres":  # CONN_MAX_AGE makes no difference worth measuring
        configs = [c for c in configs if c.conn_max_age == 0] or [CONFIGS["per-request"]]
    results: dict[str, Any] = {}
    with scratch_database(database) as env:
        env = {**env, "DJANGO_SETTINGS_MODULE": "bench.site_settings"}
        subprocess.run(
            [PYTHON, "-m", "bench.site_setup"], env=env, cwd=ROOT, check=True, timeout=120
        )
        for config in configs:
            config_env = dict(env)
            if config.conn_max_age:
                config_env["BENCH_DATABASE_URL"] += f"?conn_max_age={config.conn_max_age}"
            results[config.name] = run_config(args, client, config, config_env)
        counts = _count_rows(env)
        probe = _probe_postgres(env["BENCH_DATABASE_NAME"]) if database == "postgres" else {}
    return {
        "client": client,
        "database": database,
        "configs": {c.name: c.description for c in configs},
        "results": results,
        "rows_in_database": counts,
        "database_probe_ms": probe,
    }


#: ``betatel_reset.models.ASYNC_COMMIT`` (that module needs Django set up).
AUDIT_ASYNC_COMMIT = "SET LOCAL synchronous_commit TO OFF; "


def _probe_postgres(name: str, n: int = 200) -> dict[str, float]:
    """Median milliseconds, on one open connection, of what each POST asks the
    database: the audit row as the app writes it (``ASYNC_COMMIT`` + ``INSERT``,
    bound client-side as Django binds), the same ``INSERT`` waiting for the disk,
    and a ``SELECT`` of a user by address (as Django's form does)."""
    import psycopg

    from tests.support.real_services import PG

    insert = (
        "INSERT INTO betatel_reset_resendattempt (created_at, email, source, outcome,"
        " status_code, duration_ms, detail) VALUES (now(), %s, 'web', 'sent', NULL, 0, '')"
    )
    statements = {
        "audit_insert": AUDIT_ASYNC_COMMIT + insert,
        "audit_insert_durable": insert,
        "select_user": "SELECT id, password FROM auth_user WHERE UPPER(email) = UPPER(%s)"
        " AND is_active",
    }
    timings: dict[str, list[float]] = {key: [] for key in statements}
    with psycopg.connect(
        host=PG[0],
        port=PG[1],
        user="postgres",
        dbname=name,
        autocommit=True,
        cursor_factory=psycopg.ClientCursor,
    ) as conn:
        for i in range(n):
            for key, sql in statements.items():
                started = time.perf_counter()
                conn.execute(sql, (f"probe{i}@example.com",))  # type: ignore[arg-type]
                timings[key].append(time.perf_counter() - started)
        conn.execute("DELETE FROM betatel_reset_resendattempt WHERE email LIKE 'probe%%'")
    return {key: median(values) * 1000 for key, values in timings.items()}


def run_config(
    args: argparse.Namespace, client: str, config: Config, env: dict[str, str]
) -> dict[str, Any]:
    scenarios = [s for s in SCENARIOS if s.name in config.scenarios]
    rounds: dict[str, list[Measurement]] = {s.name: [] for s in scenarios}
    with (
        tempfile.TemporaryDirectory(prefix="betatel-bench-") as tmp,
        open(Path(tmp) / "gunicorn.log", "w") as log,
        gunicorn(env, workers=args.workers, log=log, ready_path=SCENARIOS[2].path) as served,
    ):
        base = served.url
        cookie, token = fetch_csrf(base)
        body = urlencode({"email": "ada@example.com", "csrfmiddlewaretoken": token})
        lua = Path(tmp) / "post.lua"
        lua.write_text(_WRK_LUA.format(body=body, cookie=cookie))

        def measure(scenario: Scenario, duration: float) -> Measurement:
            url = base + scenario.path
            app_before, machine_before = served.cpu_seconds(), machine_busy_seconds()
            if client == "wrk":
                m = run_wrk(
                    url,
                    lua=lua if scenario.method == "POST" else None,
                    duration=duration,
                    connections=args.connections,
                )
            else:
                m = run_python_client(
                    url,
                    method=scenario.method,
                    body=body,
                    cookie=cookie,
                    duration=duration,
                    connections=args.connections,
                )
            requests = max(1, m.requests)
            m.app_cpu_ms = (served.cpu_seconds() - app_before) * 1000 / requests
            m.machine_cpu_ms = (machine_busy_seconds() - machine_before) * 1000 / requests
            return m

        for scenario in scenarios:
            check_status(base, scenario, body, cookie)
            if args.warmup > 0:
                measure(scenario, args.warmup)  # warm both workers' caches
        for number in range(args.rounds):
            order = scenarios if number % 2 == 0 else list(reversed(scenarios))
            for scenario in order:
                rounds[scenario.name].append(measure(scenario, args.duration))
    return {
        "summary": {
            name: {
                "rps": median([m.rps for m in ms]),
                "p50_ms": median([m.p50_ms for m in ms]),
                "p99_ms": median([m.p99_ms for m in ms]),
                "requests": sum(m.requests for m in ms),
                "bad": sum(m.bad for m in ms),
                "app_cpu_ms": median([m.app_cpu_ms for m in ms]),
                "machine_cpu_ms": median([m.machine_cpu_ms for m in ms]),
            }
            for name, ms in rounds.items()
        },
        "rounds": {name: [m.__dict__ for m in ms] for name, ms in rounds.items()},
    }


def _count_rows(env: dict[str, str]) -> dict[str, Any]:
    """Audit rows written, and sessions created (the POST should create none)."""
    from tests.support.real_services import in_django

    result: dict[str, Any] = in_django(
        "from django.contrib.sessions.models import Session\n"
        "from betatel_reset.models import ResendAttempt\n"
        "print(json.dumps({'audit_rows': ResendAttempt.objects.count(),"
        " 'sessions': Session.objects.count()}))",
        env,
    )
    return result


def build_result(args: argparse.Namespace, argv: list[str], data: dict[str, Any]) -> Result:
    n = f"{args.rounds} x {args.duration:g} s, c={args.connections}"
    result = Result(
        benchmark="server",
        command=command_line("bench.server", argv),
        params={
            "rounds": args.rounds,
            "duration_s": args.duration,
            "connections": args.connections,
            "workers": args.workers,
            "client": data["client"],
            "database": data["database"],
        },
        details=[data],
    )
    titles = {
        ("ours_post", "django_post"): "our resend POST vs Django PasswordResetView POST",
        ("ours_get", "django_get"): "our resend GET page vs Django's reset GET page",
        ("ours_expired_get", "django_get"): "our expired-link GET page vs Django's reset GET",
    }
    for config_name, config_result in data["results"].items():
        s = config_result["summary"]

        def describe(m: dict[str, Any]) -> str:
            return (
                f"{m['rps']:.0f} req/s, p50 {m['p50_ms']:.1f} ms, p99 {m['p99_ms']:.1f} ms; "
                f"CPU/request: gunicorn {m['app_cpu_ms']:.2f} ms, "
                f"machine {m['machine_cpu_ms']:.2f} ms"
            )

        for (ours, theirs), title in titles.items():
            if ours not in s or theirs not in s:
                continue
            ratio = s[ours]["rps"] / s[theirs]["rps"]
            is_post = ours == "ours_post"
            result.rows.append(
                Row(
                    benchmark=f"2. Server ({data['database']}, {config_name}): {title}",
                    n=n,
                    ours=describe(s[ours]),
                    alternative=describe(s[theirs]),
                    ratio=ratio,
                    ratio_label="ours ÷ Django, req/s",
                    target="≥ 1.0" if is_post else "-",
                    met=ratio >= 1.0 if is_post else None,
                )
            )
        bad = {name: m["bad"] for name, m in s.items() if m["bad"]}
        result.notes.append(
            f"{config_name}: {data['configs'][config_name]}; unexpected answers: {bad or 'none'}."
        )
    result.notes.append(
        f"gunicorn --workers {args.workers} (sync); load generator: {data['client']}; "
        f"database: {data['database']}; after the run: {data['rows_in_database']}."
    )
    return result


def main(argv: list[str] | None = None) -> Result:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per scenario")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds per scenario")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--db", choices=["auto", "postgres", "sqlite"], default="auto")
    parser.add_argument("--client", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument(
        "--configs",
        default="per-request,persistent",
        help=f"comma-separated, of {', '.join(CONFIGS)} (persistent: PostgreSQL only)",
    )
    parser.add_argument("--smoke", action="store_true", help="tiny run, to check it works")
    parser.add_argument("--json", metavar="PATH", help="write the result as JSON")
    args = parser.parse_args(argv)
    if args.smoke:
        args.rounds, args.duration, args.warmup = 1, 1.0, 0.0
        args.connections = 2
        if args.db == "auto":
            args.db = "sqlite"
    data = run(args)
    result = build_result(args, list(argv or []), data)
    result.print_rows()
    result.write(args.json)
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
