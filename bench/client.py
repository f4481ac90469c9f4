"""Benchmark 1: what one resend costs the caller, ours against the vendor's snippet.

    python -m bench.client --n 200            # N sequential resends per client, 3 rounds
    python -m bench.client --smoke            # tiny N: checks the benchmark still runs

N sequential resends against the fake Betatel over TLS behind a link with a
simulated round-trip time (``bench.upstream``: every connection pays its TCP
and TLS handshakes in round trips too). Clients, in the same run, interleaved:

* **ours, http backend**: ``HttpBackend.send()``, the pooled keep-alive session,
  after one warm-up call;
* **ours, resend_reset_email()**: the whole service (validation, circuit
  breaker, audit row in SQLite, signals) around that backend;
* **vendor snippet**: ``http.client.HTTPSConnection`` per call, exactly as in
  Betatel's Python example, trusting the fake CA;
* **requests.Session.post**: what an integrator writes with ``requests`` (as
  django-anymail does): one keep-alive session, the same timeouts, no
  redirects, ``post()`` per call;
* **floor**: one persistent ``http.client`` connection sending a prepared
  request: the link's round trip plus the fake server's own time, no client.

Reported per client: mean milliseconds per call for each round, and the
median of the rounds.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import ssl
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import requests

from bench.harness import Result, Row, command_line, median
from bench.upstream import TOKEN, Upstream

EMAIL = "ada@example.com"
PATH = "/api/auth/reset-password/resend"


def vendor_resend(host: str, port: int, ca_bundle: str, email: str) -> bytes:
    """Betatel's Python example, as published, pointed at the fake and its CA.

    The example builds ``HTTPSConnection(host)`` with no context, so
    ``http.client`` makes a default one per connection; here the default one
    trusts the fake CA instead of the system store (loading one certificate is
    cheaper than loading the system store, which favours the snippet).
    """
    conn = http.client.HTTPSConnection(
        host, port, context=ssl.create_default_context(cafile=ca_bundle)
    )
    payload = json.dumps({"email": email})
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    conn.request("POST", PATH, payload, headers)
    res = conn.getresponse()
    data = res.read()
    conn.close()  # the snippet leaves this to garbage collection, which is the same here
    return data


class FloorClient:
    """The least a client can do per call: one warm connection, a prepared request."""

    def __init__(self, host: str, port: int, ca_bundle: str) -> None:
        self.conn = http.client.HTTPSConnection(
            host, port, context=ssl.create_default_context(cafile=ca_bundle)
        )
        self.body = json.dumps({"email": EMAIL}).encode()
        self.headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}

    def __call__(self) -> None:
        self.conn.request("POST", PATH, self.body, self.headers)
        response = self.conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"floor client: HTTP {response.status}")

    def close(self) -> None:
        self.conn.close()


def setup_django(url: str, ca_bundle: str) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.site_settings"
    os.environ.pop("BENCH_DATABASE_URL", None)  # in-memory SQLite
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    settings.BETATEL_RESET = {
        **settings.BETATEL_RESET,
        "API_URL": url,
        "BACKEND": "http",
        "CA_BUNDLE": ca_bundle,
        "TOKEN": TOKEN,
    }
    from bench.profile_post import silence_console_log

    silence_console_log()


def time_calls(call: Callable[[], Any], n: int) -> list[float]:
    """Seconds for each of ``n`` calls."""
    times = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return times


def run(n: int, rounds: int, rtt: float) -> dict[str, Any]:
    with Upstream(rtt=rtt) as upstream:
        setup_django(upstream.url, upstream.ca_bundle)
        from betatel_reset.backends import get_backend
        from betatel_reset.backends.http import reset_session
        from betatel_reset.services import resend_reset_email

        parts = urlsplit(upstream.url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 443
        backend = get_backend()

        def ours_backend() -> None:
            backend.send(EMAIL, token=TOKEN)

        def ours_service() -> None:
            resend_reset_email(EMAIL, source="api")

        def vendor() -> None:
            data = vendor_resend(host, port, upstream.ca_bundle, EMAIL)
            if b"successfully" not in data:
                raise RuntimeError(f"vendor snippet: unexpected answer {data[:80]!r}")

        session = requests.Session()
        session.trust_env = False
        url = upstream.url + PATH

        def plain_session() -> None:
            response = session.post(
                url,
                data=json.dumps({"email": EMAIL}).encode(),
                headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
                timeout=(3.05, 8),
                allow_redirects=False,
                verify=upstream.ca_bundle,
            )
            if response.status_code != 200:
                raise RuntimeError(f"requests.Session.post: HTTP {response.status_code}")

        floor = FloorClient(host, port, upstream.ca_bundle)
        clients: dict[str, Callable[[], Any]] = {
            "ours_backend": ours_backend,
            "ours_service": ours_service,
            "vendor": vendor,
            "session_post": plain_session,
            "floor": floor,
        }
        per_round: dict[str, list[float]] = {name: [] for name in clients}
        cold: list[float] = []
        for call in clients.values():  # warm up: imports, pools, the first handshake
            call()
        for number in range(rounds):
            order = list(clients) if number % 2 == 0 else list(reversed(clients))
            for name in order:
                times = time_calls(clients[name], n)
                per_round[name].append(sum(times) / len(times))
            # Ours on a new connection: what the first resend after a restart costs.
            reset_session()
            cold.extend(time_calls(ours_backend, 1))
        floor.close()
        session.close()
        stats = upstream.stats()

    expected = len(clients) + rounds * (len(clients) * n + 1)  # warm-ups, rounds, cold calls
    return {
        "per_round_ms": {k: [v * 1000 for v in values] for k, values in per_round.items()},
        "median_ms": {k: median(values) * 1000 for k, values in per_round.items()},
        "ours_cold_ms": median(cold) * 1000,
        "upstream": {
            "requests": stats["requests"],
            "expected_requests": expected,
            "proxy_connections": stats["proxy_connections"],
        },
    }


def build_result(args: argparse.Namespace, argv: list[str], data: dict[str, Any]) -> Result:
    rtt_ms = args.rtt_ms
    med = data["median_ms"]
    ours, service, vendor, floor, session = (
        med["ours_backend"],
        med["ours_service"],
        med["vendor"],
        med["floor"],
        med["session_post"],
    )
    n = f"{args.n} x {args.rounds} rounds"
    result = Result(
        benchmark="client",
        command=command_line("bench.client", argv),
        params={"n": args.n, "rounds": args.rounds, "rtt_ms": rtt_ms},
        details=[data],
    )
    result.rows = [
        Row(
            benchmark="1. Per-call cost, warm: http backend vs one round trip as measured "
            "(floor: raw keep-alive client, 1 RTT + the fake server's own time)",
            n=n,
            ours=f"{ours:.2f} ms/call",
            alternative=f"floor {floor:.2f} ms/call",
            ratio=ours / floor,
            ratio_label="ours ÷ floor",
            target="≤ 1.10",
            met=ours / floor <= 1.10,
        ),
        Row(
            benchmark="1. Per-call cost, warm: http backend vs the nominal RTT alone",
            n=n,
            ours=f"{ours:.2f} ms/call",
            alternative=f"{rtt_ms:g} ms (1 RTT, no server time at all)",
            ratio=ours / rtt_ms,
            ratio_label="ours ÷ RTT",
            target="≤ 1.10",
            met=ours / rtt_ms <= 1.10,
        ),
        Row(
            benchmark="1. Per-call cost: http backend vs vendor snippet",
            n=n,
            ours=f"{ours:.2f} ms/call",
            alternative=f"{vendor:.2f} ms/call (new TCP+TLS connection per call)",
            ratio=vendor / ours,
            ratio_label="vendor ÷ ours",
            target="> 1 (no per-call handshake)",
            met=vendor / ours > 1.0,
        ),
        Row(
            benchmark="1. Per-call cost, warm: http backend vs a keep-alive requests.Session.post",
            n=n,
            ours=f"{ours:.2f} ms/call",
            alternative=f"{session:.2f} ms/call (same pool and timeouts, Session.post per call)",
            ratio=(session - floor) / max(ours - floor, 1e-9),
            ratio_label="its cost above the floor ÷ ours",
            target="-",
            met=None,
        ),
        Row(
            benchmark="1. Per-call cost: resend_reset_email() (audit, circuit) vs vendor snippet",
            n=n,
            ours=f"{service:.2f} ms/call",
            alternative=f"{vendor:.2f} ms/call",
            ratio=vendor / service,
            ratio_label="vendor ÷ ours",
            target="> 1",
            met=vendor / service > 1.0,
        ),
    ]
    result.notes.append(
        f"Simulated RTT {rtt_ms:.0f} ms. Our first call on a new connection: "
        f"{data['ours_cold_ms']:.1f} ms (TCP + TLS + request = 3 RTT, like every vendor call). "
        f"Harness floor = persistent raw http.client connection, i.e. 1 RTT + the fake "
        f"server's and the proxy's own time."
    )
    return result


def main(argv: list[str] | None = None) -> Result:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100, help="sequential calls per client")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rtt-ms", type=float, default=20.0)
    parser.add_argument("--smoke", action="store_true", help="tiny N, to check it runs")
    parser.add_argument("--json", metavar="PATH", help="write the result as JSON")
    args = parser.parse_args(argv)
    if args.smoke:
        args.n, args.rounds, args.rtt_ms = 3, 1, 2.0
    data = run(args.n, args.rounds, args.rtt_ms / 1000)
    result = build_result(args, list(argv or []), data)
    result.print_rows()
    result.write(args.json)
    return result


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
