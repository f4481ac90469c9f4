"""Benchmark 2: server cost of the resend POST against Django's own password reset.

The bench site under gunicorn on a scratch PostgreSQL database, with a database
connection per request and with persistent ones; each scenario loaded in
interleaved rounds. Then the statements each POST asks of PostgreSQL, alone.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

import requests

from bench.harness import (
    DJANGOS,
    EMAIL,
    LOAD_GENERATOR,
    OURS,
    bench_site,
    csrf_token,
    gunicorn,
    http_load,
    interleaved,
    median,
)
from bench.report import arguments, finish, met, table

#: name: (path, POST?, the status checked before loading it)
SCENARIOS = {
    "ours_post": (OURS, True, 302),
    "django_post": (DJANGOS, True, 302),
    "ours_get": (OURS, False, 200),
    "ours_expired_get": ("/reset-password/expired/", False, 200),
    "django_get": (DJANGOS, False, 200),
}
#: configuration: (CONN_MAX_AGE, scenarios)
CONFIGS = {"per-request": (0, list(SCENARIOS)), "persistent": (600, ["ours_post", "django_post"])}
COMPARED = {
    ("ours_post", "django_post"): "our resend POST vs Django PasswordResetView POST",
    ("ours_get", "django_get"): "our resend GET page vs Django's reset GET page",
    ("ours_expired_get", "django_get"): "our expired-link GET page vs Django's reset GET",
}
#: ``betatel_reset.models.ASYNC_COMMIT`` (that module needs Django set up).
AUDIT_ASYNC_COMMIT = "SET LOCAL synchronous_commit TO OFF; "


def run_config(
    env: dict[str, str], names: list[str], rounds: int, seconds: float, connections: int
) -> dict[str, Any]:
    with gunicorn(env) as served, requests.Session() as session:
        fields = {"email": EMAIL, "csrfmiddlewaretoken": csrf_token(session, served.url + OURS)}
        form, cookie = urlencode(fields), f"csrftoken={session.cookies['csrftoken']}"

        def load(name: str, seconds: float = seconds) -> dict[str, Any]:
            path, post = SCENARIOS[name][:2]
            return http_load(served, path, seconds, connections, form if post else "", cookie)

        for name in names:  # the load generator only counts answers other than 2xx/3xx
            path, post, expected = SCENARIOS[name]
            method, data = ("POST", fields) if post else ("GET", None)
            answer = session.request(
                method, served.url + path, data=data, allow_redirects=False, timeout=10
            )
            if answer.status_code != expected:
                raise RuntimeError(f"{path}: HTTP {answer.status_code}, expected {expected}")
            load(name, seconds / 3)  # warm both workers
        return interleaved(names, rounds, load)


def probe_postgres(url: str, n: int) -> dict[str, float]:
    """Median milliseconds, on one open connection, of what each POST asks the database:
    our audit row as the app writes it (bound client-side, as Django binds), the same
    ``INSERT`` waiting for the disk, and Django's ``SELECT`` of a user by address."""
    import psycopg

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
    with psycopg.connect(url, autocommit=True, cursor_factory=psycopg.ClientCursor) as conn:
        for i in range(n):
            for key, sql in statements.items():
                started = time.perf_counter()
                conn.execute(sql, (f"probe{i}@example.com",))  # type: ignore[arg-type]
                timings[key].append(time.perf_counter() - started)
        conn.execute("DELETE FROM betatel_reset_resendattempt WHERE email LIKE 'probe%%'")
        audit_rows, sessions = conn.execute(  # type: ignore[misc]
            "SELECT (SELECT count(*) FROM betatel_reset_resendattempt),"
            " (SELECT count(*) FROM django_session)"
        ).fetchone()
    probe = {key: median(values) * 1000 for key, values in timings.items()}
    return {**probe, "audit_rows": audit_rows, "sessions": sessions}


def run(rounds: int, seconds: float, connections: int, probes: int) -> dict[str, Any]:
    results = {}
    with bench_site() as env:
        for config, (conn_max_age, names) in CONFIGS.items():
            url = f"{env['BENCH_DATABASE_URL']}?conn_max_age={conn_max_age}"
            results[config] = run_config(
                {**env, "BENCH_DATABASE_URL": url}, names, rounds, seconds, connections
            )
        probe = probe_postgres(env["BENCH_DATABASE_URL"], probes)
    bad = [m["bad"] for ms in results.values() for each in ms.values() for m in each]
    if any(bad):
        raise RuntimeError(f"{sum(bad)} answers other than the expected status")
    return {
        "rounds": rounds,
        "seconds": seconds,
        "connections": connections,
        "generator": LOAD_GENERATOR,
        "results": results,
        "probe_ms": probe,
    }


def tables(data: dict[str, Any]) -> str:
    rows, ratios = [], []
    for config, scenarios in data["results"].items():
        rps = {name: median([m["rps"] for m in ms]) for name, ms in scenarios.items()}
        for name, ms in scenarios.items():
            m = {key: median([each[key] for each in ms]) for key in ms[0]}
            per_round = ", ".join(f"{each['rps']:.0f}" for each in ms)
            rows.append(
                f"{config} | {name} | {per_round} | "
                f"**{m['rps']:.0f}** | {m['p50_ms']:.1f} | {m['p99_ms']:.1f} | "
                f"{m['app_cpu_ms']:.2f} | {m['machine_cpu_ms']:.2f}"
            )
        for (ours, django), title in COMPARED.items():
            if ours in rps:
                ratio, post = rps[ours] / rps[django], ours == "ours_post"
                target = f"≥ 1.0 | {met(ratio >= 1.0)}" if post else "- | -"
                ratios.append(f"{config} | {title} | **{ratio:.3f}** | {target}")
    probe = data["probe_ms"]
    return (
        f"Load: {data['generator']}, {data['connections']} connections, {data['rounds']} "
        f"rounds of {data['seconds']:g} s per scenario; no unexpected answers; after the "
        f"run {probe['audit_rows']} audit rows and {probe['sessions']} sessions.\n\n"
        + table(
            "configuration | scenario | req/s per round | median req/s | p50 ms | p99 ms "
            "| gunicorn CPU ms/request | machine CPU ms/request",
            rows,
        )
        + "\n"
        + table("configuration | comparison | ours ÷ Django, req/s | target | met?", ratios)
        + "\n"
        + table(
            "on one open connection | median ms",
            [
                "our audit row as the app writes it (commit not waiting for the disk) | "
                f"{probe['audit_insert']:.2f}",
                "the same `INSERT` waiting for the disk (`AUDIT_ASYNC_COMMIT` off) | "
                f"{probe['audit_insert_durable']:.2f}",
                f"Django's `SELECT` of a user by address | {probe['select_user']:.2f}",
            ],
        )
    )


def main(argv: list[str] | None = None) -> None:
    args = arguments(__doc__).parse_args(argv)
    data = run(1, 1.0, 2, 5) if args.smoke else run(5, 3.0, 8, 200)
    finish(args.json, tables(data), data)


if __name__ == "__main__":
    main()
