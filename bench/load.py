"""Load test: the demo under gunicorn, many concurrent resend POSTs, invariants checked.

``python -m bench.load``: 400 POSTs, 32 at a time; ``--smoke`` (or ``--short``):
the 120 that CI runs through tests/test_load.py. Checked: no 5xx; each address
admitted exactly ``limit`` times (302s, requests the fake received and ``sent``
audit rows agree); one audit row per POST. Timings are reported, not checked.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

import requests

from bench.harness import HOST, OURS, csrf_token, gunicorn, percentile
from bench.report import arguments, finish, table

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

    def problems(self) -> list[str]:
        """Every broken invariant, in words; empty when the run is sound."""
        cfg = self.config
        expected = {cfg.address(i): cfg.limit for i in range(cfg.addresses)}
        sent = {email: o.get("sent", 0) for email, o in self.audit.items()}
        outcomes = {outcome for per_email in self.audit.values() for outcome in per_email}
        checks = {
            f"{len(self.errors)} requests failed in the client: {self.errors[:3]}": self.errors,
            f"{self.server_errors} answers were 5xx": self.server_errors,
            f"statuses {dict(self.statuses)}": set(self.statuses) - {302, 429},
            f"302s per address {self.admitted_per_address}": self.admitted_per_address != expected,
            f"fake received per address {self.received_per_address}": (
                self.received_per_address != expected
            ),
            f"sent audit rows per address {sent}": sent != expected,
            f"{self.audit_rows} audit rows for {cfg.posts} POSTs": self.audit_rows != cfg.posts,
            f"outcomes {outcomes}": outcomes - {"sent", "rate_limited"},
        }
        return [problem for problem, broken in checks.items() if broken]


def run_load(config: LoadConfig) -> LoadReport:
    """Start everything, fire the POSTs, collect the report; stops what it started."""
    import psycopg

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
        with gunicorn(env) as served:
            _fire(served.url, config, report)
        received = Counter(r.json.get("email") for r in fake.requests if isinstance(r.json, dict))
        report.received_per_address = dict(received)
        database = f"postgres://postgres@{HOST}:5432/{env['BETATEL_IT_DB_NAME']}"
        with psycopg.connect(database) as conn:
            rows = conn.execute(
                "SELECT email, outcome, count(*) FROM betatel_reset_resendattempt "
                "GROUP BY email, outcome"
            ).fetchall()
    for email, outcome, count in rows:
        report.audit.setdefault(email, {})[outcome] = count
    return report


def _fire(base: str, config: LoadConfig, report: LoadReport) -> None:
    client = threading.local()  # one requests session per thread, with its CSRF token
    started = time.monotonic()
    deadline = started + config.deadline

    def post(i: int) -> tuple[str, int, float] | str:
        """POST number ``i``: (address, status, ms), or what went wrong in the client."""
        if time.monotonic() > deadline:
            return "not sent: past the deadline"
        try:
            if not hasattr(client, "session"):
                client.session = requests.Session()
                client.token = csrf_token(client.session, base + OURS)
            began = time.perf_counter()
            response = client.session.post(
                base + OURS,
                data={"email": config.address(i), "csrfmiddlewaretoken": client.token},
                headers={"X-Forwarded-For": config.ip(i)},
                allow_redirects=False,
                timeout=30,
            )
        except (requests.RequestException, RuntimeError) as exc:
            return f"{type(exc).__name__}: {exc}"
        return config.address(i), response.status_code, (time.perf_counter() - began) * 1000

    with ThreadPoolExecutor(max_workers=config.concurrency, thread_name_prefix="load") as pool:
        results = list(pool.map(post, range(config.posts)))
    report.wall_seconds = time.monotonic() - started
    report.errors = [result for result in results if isinstance(result, str)]
    answers = [result for result in results if not isinstance(result, str)]
    report.statuses = dict(Counter(status for _, status, _ in answers))
    report.latencies_ms = [ms for _, _, ms in answers]
    admitted = Counter(email for email, status, _ in answers if status == 302)
    report.admitted_per_address = dict(admitted)


def tables(report: LoadReport) -> str:
    cfg, problems = report.config, report.problems()
    statuses = ", ".join(f"{status}: {n}" for status, n in sorted(report.statuses.items()))
    run = table(
        "POSTs | at a time | addresses | client IPs | limit per address | statuses "
        "| client errors | audit rows | p50 ms | p99 ms | wall s | invariants",
        [
            f"{cfg.posts} | {cfg.concurrency} | {cfg.addresses} | {cfg.ips} | {cfg.limit} | "
            f"{statuses} | {len(report.errors)} | {report.audit_rows} | "
            f"{percentile(report.latencies_ms, 50):.0f} | "
            f"{percentile(report.latencies_ms, 99):.0f} | {report.wall_seconds:.1f} | "
            + ("all hold" if not problems else "**broken**: " + "; ".join(problems))
        ],
    )
    per_address = table(
        "address | 302s | requests at the fake | `sent` audit rows",
        (
            f"{email} | {report.admitted_per_address.get(email, 0)} | "
            f"{report.received_per_address.get(email, 0)} | "
            f"{report.audit.get(email, {}).get('sent', 0)}"
            for email in sorted({cfg.address(i) for i in range(cfg.addresses)})
        ),
    )
    return f"{run}\n{per_address}"


def main(argv: list[str] | None = None) -> None:
    parser = arguments(__doc__)
    parser.add_argument("--short", dest="smoke", action="store_true", help="the same as --smoke")
    args = parser.parse_args(argv)
    report = run_load(LoadConfig.short() if args.smoke else LoadConfig())
    finish(args.json, tables(report), {**asdict(report), "problems": report.problems()})
    if report.problems():
        raise SystemExit(1)


if __name__ == "__main__":
    main()
