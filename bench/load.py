"""Load test: the demo under gunicorn, many concurrent resend POSTs, invariants checked.

    python -m bench.load             # 400 POSTs, 32 at a time
    python -m bench.load --short     # 120 POSTs: what CI runs (tests/test_load.py)

The demo's URLs with ``tests.support.settings.postgres_redis`` (PostgreSQL, Redis
cache) on a scratch database and Redis key prefix
(``tests.support.real_services.scratch_database``), served by
``gunicorn --workers 2`` on a free loopback port, calling a fake
Betatel over TLS with ``--latency-ms`` per answer. A bounded pool of client
threads, each with its own ``requests`` session (one GET for the CSRF cookie
and token, then POSTs), sends the POSTs spread over ``--addresses`` addresses
and ``--ips`` client IPs (``X-Forwarded-For``, trusted through
``CLIENT_IP_HEADER``), with ``RATE_LIMIT_EMAIL`` ``<limit>/15m`` and an IP
limit too high to matter.

Checked (and reported): no 5xx; each address admitted exactly ``--limit``
times (302s, requests the fake received, and ``sent`` audit rows all agree);
one audit row per POST (``sent`` + ``rate_limited``). Reported too: status
counts and p50/p99 latency. Everything is bounded: the POST count, the
per-request timeout and an overall deadline.
"""

from __future__ import annotations

import argparse
import re
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from typing import Any

import requests

from bench.harness import Result, Row, command_line, gunicorn, median, percentile

RESEND_PATH = "/reset-password/resend/"
TOKEN = "fake-token-for-tests"  # the token tests.support.settings.postgres_redis sends


@dataclass(frozen=True)
class LoadConfig:
    posts: int = 400
    addresses: int = 5
    ips: int = 10
    limit: int = 3
    concurrency: int = 32
    latency: float = 0.02
    deadline: float = 180.0  # seconds, for the whole client run

    @classmethod
    def short(cls) -> LoadConfig:
        return cls(posts=120, concurrency=24, deadline=90.0)

    def address(self, i: int) -> str:
        return f"load{i % self.addresses}@example.com"

    def ip(self, i: int) -> str:
        return f"198.51.100.{i % self.ips + 1}"


@dataclass
class LoadReport:
    config: LoadConfig
    statuses: dict[int, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)  # client-side failures
    latencies_ms: list[float] = field(default_factory=list)
    admitted_per_address: dict[str, int] = field(default_factory=dict)  # 302s
    received_per_address: dict[str, int] = field(default_factory=dict)  # at the fake
    audit: dict[str, dict[str, int]] = field(default_factory=dict)  # email -> outcome -> n
    wall_seconds: float = 0.0

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)

    @property
    def audit_rows(self) -> int:
        return sum(sum(outcomes.values()) for outcomes in self.audit.values())

    @property
    def p50_ms(self) -> float:
        return percentile(self.latencies_ms, 50)

    @property
    def p99_ms(self) -> float:
        return percentile(self.latencies_ms, 99)

    def problems(self) -> list[str]:
        """Every broken invariant, in words; empty when the run is sound."""
        cfg = self.config
        expected = {cfg.address(i): cfg.limit for i in range(cfg.addresses)}
        found = []
        if self.errors:
            found.append(f"{len(self.errors)} requests failed in the client: {self.errors[:3]}")
        if self.server_errors:
            found.append(f"{self.server_errors} answers were 5xx")
        unexpected = set(self.statuses) - {302, 429}
        if unexpected:
            found.append(f"unexpected statuses {sorted(unexpected)}")
        if self.admitted_per_address != expected:
            found.append(f"302s per address {self.admitted_per_address}, expected {expected}")
        if self.received_per_address != expected:
            found.append(f"fake received per address {self.received_per_address}")
        sent = {email: o.get("sent", 0) for email, o in self.audit.items()}
        if sent != expected:
            found.append(f"sent audit rows per address {sent}, expected {expected}")
        if self.audit_rows != cfg.posts:
            found.append(f"{self.audit_rows} audit rows for {cfg.posts} POSTs")
        outcomes = Counter[str]()
        for per_email in self.audit.values():
            outcomes.update(per_email)
        if set(outcomes) - {"sent", "rate_limited"}:
            found.append(f"unexpected outcomes {dict(outcomes)}")
        return found

    def as_dict(self) -> dict[str, Any]:
        return {
            "config": asdict(self.config),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "errors": self.errors[:10],
            "admitted_per_address": self.admitted_per_address,
            "received_per_address": self.received_per_address,
            "audit": self.audit,
            "audit_rows": self.audit_rows,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "median_ms": median(self.latencies_ms),
            "wall_seconds": self.wall_seconds,
            "problems": self.problems(),
        }


class _Client(threading.local):
    """One ``requests`` session per client thread, with its CSRF cookie and token."""

    session: requests.Session | None = None
    token: str = ""


def run_load(config: LoadConfig) -> LoadReport:
    """Start everything, fire the POSTs, collect the report; stops what it started."""
    from betatel_reset.testing import FakeBetatelServer, make_tls_context
    from tests.support.real_services import scratch_database

    context, ca_bundle = make_tls_context()
    report = LoadReport(config)
    with (
        FakeBetatelServer(
            token=TOKEN, ssl_context=context, ca_bundle=ca_bundle, latency=config.latency
        ) as fake,
        scratch_database() as env,
    ):
        env = {
            **env,
            "BETATEL_IT_BACKEND": "http",
            "BETATEL_IT_API_URL": fake.url,
            "BETATEL_IT_CA_BUNDLE": ca_bundle,
            "BETATEL_IT_RATE_LIMIT_EMAIL": f"{config.limit}/15m",
            "BETATEL_IT_RATE_LIMIT_IP": "100000/h",
            "BETATEL_IT_CLIENT_IP_HEADER": "HTTP_X_FORWARDED_FOR",
        }
        with gunicorn(env, workers=2, ready_path=RESEND_PATH) as served:
            _fire(served.url, config, report)
        received = Counter(r.json.get("email") for r in fake.requests if isinstance(r.json, dict))
        report.received_per_address = dict(sorted(received.items()))
        report.audit = _audit_counts(env["BETATEL_IT_DB_NAME"])
    return report


def _fire(base: str, config: LoadConfig, report: LoadReport) -> None:
    client = _Client()
    lock = threading.Lock()
    stop = threading.Event()
    started = time.monotonic()
    deadline = started + config.deadline

    def post(i: int) -> None:
        if stop.is_set() or time.monotonic() > deadline:
            return
        email = config.address(i)
        try:
            if client.session is None:
                client.session = requests.Session()
                page = client.session.get(base + RESEND_PATH, timeout=30)
                match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
                if match is None:
                    raise RuntimeError(f"no CSRF token (HTTP {page.status_code})")
                client.token = match.group(1)
            began = time.perf_counter()
            response = client.session.post(
                base + RESEND_PATH,
                data={"email": email, "csrfmiddlewaretoken": client.token},
                headers={"X-Forwarded-For": config.ip(i)},
                allow_redirects=False,
                timeout=30,
            )
            elapsed = (time.perf_counter() - began) * 1000
        except (requests.RequestException, RuntimeError) as exc:
            with lock:
                report.errors.append(f"{type(exc).__name__}: {exc}")
            return
        with lock:
            report.statuses[response.status_code] = (
                report.statuses.get(response.status_code, 0) + 1
            )
            report.latencies_ms.append(elapsed)
            if response.status_code == 302:
                report.admitted_per_address[email] = report.admitted_per_address.get(email, 0) + 1

    with ThreadPoolExecutor(max_workers=config.concurrency, thread_name_prefix="load") as pool:
        futures = [pool.submit(post, i) for i in range(config.posts)]
        _done, pending = wait(futures, timeout=config.deadline + 35)
        if pending:
            stop.set()
            report.errors.append(f"{len(pending)} POSTs did not finish before the deadline")
    report.wall_seconds = time.monotonic() - started
    report.admitted_per_address = dict(sorted(report.admitted_per_address.items()))


def _audit_counts(database: str) -> dict[str, dict[str, int]]:
    import psycopg

    from tests.support.real_services import PG

    with psycopg.connect(host=PG[0], port=PG[1], user="postgres", dbname=database) as conn:
        rows = conn.execute(
            "SELECT email, outcome, count(*) FROM betatel_reset_resendattempt "
            "GROUP BY email, outcome ORDER BY email, outcome"
        ).fetchall()
    audit: dict[str, dict[str, int]] = {}
    for email, outcome, count in rows:
        audit.setdefault(email, {})[outcome] = count
    return audit


def build_result(argv: list[str], report: LoadReport) -> Result:
    cfg = report.config
    problems = report.problems()
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(report.statuses.items()))
    return Result(
        benchmark="load",
        command=command_line("bench.load", argv),
        params=asdict(cfg),
        rows=[
            Row(
                benchmark="Load test: concurrent resend POSTs, gunicorn 2 workers, PG + Redis",
                n=f"{cfg.posts} POSTs, {cfg.concurrency} at a time, "
                f"{cfg.addresses} addresses, {cfg.ips} IPs",
                ours=f"p50 {report.p50_ms:.0f} ms, p99 {report.p99_ms:.0f} ms; {statuses}",
                alternative=f"limit {cfg.limit} per address; fake latency "
                f"{cfg.latency * 1000:.0f} ms",
                ratio=None,
                ratio_label="",
                target="no 5xx; limit admitted per address; 1 audit row per POST",
                met=not problems,
            )
        ],
        details=[report.as_dict()],
        notes=problems
        or [
            f"No 5xx; each address admitted exactly {cfg.limit} times (302s, fake's "
            f"requests and 'sent' rows agree); {report.audit_rows} audit rows for "
            f"{cfg.posts} POSTs; wall time {report.wall_seconds:.1f} s."
        ],
    )


def main(argv: list[str] | None = None) -> Result:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", action="store_true", help="the CI form: 120 POSTs")
    parser.add_argument("--posts", type=int)
    parser.add_argument("--concurrency", type=int)
    parser.add_argument("--latency-ms", type=float)
    parser.add_argument("--json", metavar="PATH", help="write the result as JSON")
    args = parser.parse_args(argv)
    config = LoadConfig.short() if args.short else LoadConfig()
    overrides: dict[str, Any] = {}
    if args.posts:
        overrides["posts"] = args.posts
    if args.concurrency:
        overrides["concurrency"] = args.concurrency
    if args.latency_ms is not None:
        overrides["latency"] = args.latency_ms / 1000
    if overrides:
        config = LoadConfig(**{**asdict(config), **overrides})

    from tests.support.real_services import PG, REDIS, _reachable

    if not (_reachable(PG) and _reachable(REDIS)):
        raise SystemExit("bench.load needs PostgreSQL and Redis on 127.0.0.1")
    report = run_load(config)
    result = build_result(list(argv or []), report)
    result.print_rows()
    result.write(args.json)
    if report.problems():
        raise SystemExit(1)
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
