"""Benchmark 1: what one resend costs the caller, ours against the vendor's snippet.

N sequential resends per client against the fake Betatel behind a simulated
20 ms link (``bench.upstream``), the clients interleaved round by round.
"""

from __future__ import annotations

import http.client
import json
import ssl
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import requests

from bench.harness import EMAIL, interleaved, mean_seconds, median, site_in_process
from bench.report import arguments, finish, met, table
from bench.upstream import TOKEN, Upstream

PATH = "/api/auth/reset-password/resend"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
CLIENTS = {
    "ours_backend": "ours: http backend",
    "ours_service": "ours: resend_reset_email()",
    "vendor": "vendor snippet",
    "session_post": "requests.Session.post (keep-alive)",
    "floor": "floor (raw keep-alive)",
}


def vendor_resend(host: str, port: int | None, ca_bundle: str, email: str) -> bytes:
    """Betatel's Python example as published, pointed at the fake and trusting its CA
    (loading one certificate is cheaper than the system store: it favours the snippet)."""
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

    def __init__(self, url: str, ca_bundle: str) -> None:
        parts = urlsplit(url)
        context = ssl.create_default_context(cafile=ca_bundle)
        self.conn = http.client.HTTPSConnection(parts.hostname or "", parts.port, context=context)
        self.body = json.dumps({"email": EMAIL}).encode()

    def __call__(self) -> None:
        self.conn.request("POST", PATH, self.body, HEADERS)
        response = self.conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"floor client: HTTP {response.status}")


def run(n: int, rounds: int, rtt: float) -> dict[str, Any]:
    with Upstream(rtt=rtt) as upstream:
        site_in_process(API_URL=upstream.url, BACKEND="http", CA_BUNDLE=upstream.ca_bundle)
        from betatel_reset.backends import get_backend
        from betatel_reset.backends.http import reset_session
        from betatel_reset.services import resend_reset_email

        backend = get_backend()
        parts = urlsplit(upstream.url)
        session = requests.Session()
        session.trust_env = False

        def vendor() -> None:
            data = vendor_resend(parts.hostname or "", parts.port, upstream.ca_bundle, EMAIL)
            if b"successfully" not in data:
                raise RuntimeError(f"vendor snippet: unexpected answer {data[:80]!r}")

        def session_post() -> None:
            response = session.post(
                upstream.url + PATH,
                data=json.dumps({"email": EMAIL}).encode(),
                headers=HEADERS,
                timeout=(3.05, 8),
                allow_redirects=False,
                verify=upstream.ca_bundle,
            )
            if response.status_code != 200:
                raise RuntimeError(f"requests.Session.post: HTTP {response.status_code}")

        clients: dict[str, Callable[[], object]] = {
            "ours_backend": lambda: backend.send(EMAIL, token=TOKEN),
            "ours_service": lambda: resend_reset_email(EMAIL, source="api"),
            "vendor": vendor,
            "session_post": session_post,
            "floor": FloorClient(upstream.url, upstream.ca_bundle),
        }
        for call in clients.values():  # warm up: imports, pools, the first handshake
            call()
        per_round = interleaved(
            list(clients), rounds, lambda name: mean_seconds(clients[name], n) * 1000
        )
        cold = []  # ours on a new connection: the first resend after a restart
        for _ in range(rounds):
            reset_session()
            cold.append(mean_seconds(clients["ours_backend"], 1) * 1000)
        requests_seen = upstream.requests()
    expected = len(clients) + rounds * (len(clients) * n + 1)
    if requests_seen != expected:
        raise RuntimeError(f"the fake received {requests_seen} requests, expected {expected}")
    return {
        "n": n,
        "rtt_ms": rtt * 1000,
        "per_round_ms": per_round,
        "median_ms": {name: median(values) for name, values in per_round.items()},
        "ours_cold_ms": median(cold),
        "requests": requests_seen,
    }


def tables(data: dict[str, Any]) -> str:
    rounds = len(data["per_round_ms"]["floor"])
    med, rtt = data["median_ms"], data["rtt_ms"]
    ours, service = med["ours_backend"], med["ours_service"]
    floor, vendor = med["floor"], med["vendor"]
    clients = table(
        " | ".join(["client (ms/call)", *(f"round {i + 1}" for i in range(rounds)), "median"]),
        (
            " | ".join([label, *(f"{v:.2f}" for v in data["per_round_ms"][key])])
            + f" | **{med[key]:.2f}**"
            for key, label in CLIENTS.items()
        ),
    )
    above_floor = (med["session_post"] - floor) / max(ours - floor, 1e-9)
    checks = [
        ("http backend ÷ floor", ours / floor, "≤ 1.10", ours / floor <= 1.10),
        (f"http backend ÷ the nominal RTT ({rtt:g} ms)", ours / rtt, "≤ 1.10", ours / rtt <= 1.10),
        ("vendor snippet ÷ http backend", vendor / ours, "> 1", vendor > ours),
        ("vendor snippet ÷ resend_reset_email()", vendor / service, "> 1", vendor > service),
        ("Session.post ÷ http backend, cost above the floor", above_floor, "-", None),
    ]
    comparisons = table(
        "comparison | ratio | target | met?",
        (
            f"{label} | **{ratio:.3f}** | {target} | {met(ok)}"
            for label, ratio, target, ok in checks
        ),
    )
    return (
        f"{data['n']} calls per client per round.\n\n{clients}\n{comparisons}\n"
        f"Our first call on a new connection: {data['ours_cold_ms']:.1f} ms. Requests "
        f"counted by the fake: {data['requests']}, as expected.\n"
    )


def main(argv: list[str] | None = None) -> None:
    args = arguments(__doc__).parse_args(argv)
    data = run(3, 1, 0.002) if args.smoke else run(100, 3, 0.020)
    finish(args.json, tables(data), data)


if __name__ == "__main__":
    main()
