"""Benchmark 4: the POST handler's hot path, in process, with no server in the way.

Whole requests, ours against Django's ``PasswordResetView``, then each piece of
our POST alone, then a profile of 2,000 POSTs written to docs/profile-post.txt.
"""

from __future__ import annotations

import cProfile
import io
import logging
import pstats
import tempfile
import timeit
import wsgiref.util
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bench.harness import (
    CSRF_TOKEN,
    DJANGOS,
    EMAIL,
    OURS,
    ROOT,
    interleaved,
    mean_seconds,
    median,
    site_in_process,
)
from bench.report import arguments, finish, met, table


class InProcessSite:
    """The bench site's WSGI application, called with hand-made environs."""

    def __init__(self) -> None:
        self.app = site_in_process()
        headers, page = self.request("GET", OURS, "200 OK")
        match = CSRF_TOKEN.search(page.decode())
        if match is None:
            raise RuntimeError(f"GET {OURS}: no CSRF token")
        cookies = (v.strip().split(";")[0] for k, v in headers if k == "Set-Cookie")
        self.cookie = next(c for c in cookies if c.startswith("csrftoken="))
        self.form = urlencode({"email": EMAIL, "csrfmiddlewaretoken": match.group(1)}).encode()

    def request(self, method: str, path: str, expect: str) -> tuple[list[Any], bytes]:
        """One request, a POST of the form or a GET; its headers and body if it answers
        ``expect``, else RuntimeError."""
        body = self.form if method == "POST" else b""
        environ: dict[str, Any] = {
            "REQUEST_METHOD": method,
            "PATH_INFO": path,
            "REMOTE_ADDR": "127.0.0.1",
            "wsgi.input": io.BytesIO(body),
        }
        wsgiref.util.setup_testing_defaults(environ)
        if body:
            environ["CONTENT_TYPE"] = "application/x-www-form-urlencoded"
            environ["CONTENT_LENGTH"] = str(len(body))
            environ["HTTP_COOKIE"] = self.cookie
        started: list[Any] = []  # start_response(status, headers, exc_info=None)
        chunks = self.app(environ, lambda *response: started.extend(response[:2]))
        content = b"".join(chunks)
        chunks.close()
        if started[0] != expect:
            raise RuntimeError(f"{method} {path}: {started[0]}, expected {expect}")
        return started[1], content


def forget_sent() -> None:
    """Empty both outboxes, so memory does not grow over a long run."""
    from django.core import mail

    from betatel_reset.backends import locmem

    locmem.outbox.clear()
    getattr(mail, "outbox", []).clear()


def pieces_us(number: int, repeat: int) -> dict[str, float]:
    """Microseconds per call of each piece of our POST, timed alone (median of runs)."""
    from django.contrib.auth.models import AnonymousUser
    from django.test import RequestFactory

    from betatel_reset import addresses, circuit, services
    from betatel_reset.choices import Outcome, Source
    from betatel_reset.forms import ResendForm
    from betatel_reset.models import ResendAttempt
    from betatel_reset.ratelimit import check_rate_limits

    request = RequestFactory().post(OURS, {"email": EMAIL}, REMOTE_ADDR="127.0.0.1")
    request.user = AnonymousUser()
    attempt = services._Attempt(EMAIL, Source.WEB, None)
    log = logging.getLogger("betatel_reset.services")
    pieces: dict[str, Callable[[], object]] = {
        "ResendForm: bind + is_valid()": lambda: ResendForm(data={"email": EMAIL}).is_valid(),
        "resend_reset_email() (locmem backend)": lambda: services.resend_reset_email(
            EMAIL, request=request
        ),
        "  audit row: ResendAttempt.objects.record": lambda: services._record(
            attempt, Outcome.SENT, None, "", 0.001
        ),
        "  (the same row through ResendAttempt.objects.create)": lambda: (
            ResendAttempt.objects.create(
                email=EMAIL, source=Source.WEB, outcome=Outcome.SENT, duration_ms=1
            )
        ),
        "  rate limits: check_rate_limits (IP + address)": lambda: check_rate_limits(
            EMAIL, request
        ),
        "  circuit breaker: before_call + record_success": lambda: (
            circuit.before_call(),
            circuit.record_success(),
        ),
        "  clean_address (also run by the form)": lambda: addresses.clean_address(EMAIL),
        "  the INFO log line (to /dev/null)": lambda: log.info(
            "Resend to %s from %s: sent (HTTP %s) in %.0f ms",
            addresses.mask_email(EMAIL),
            Source.WEB,
            None,
            1.0,
        ),
    }
    timings = {}
    for name, call in pieces.items():
        call()
        timings[name] = median(timeit.repeat(call, number=number, repeat=repeat)) / number * 1e6
        forget_sent()
    return timings


def profile(call: Callable[[], object], n: int) -> str:
    """A pyinstrument call tree and a cProfile own-time table of ``n`` calls."""
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0005)
    with profiler:
        for _ in range(n):
            call()
    # Paths relative to the checkout: the report is committed.
    tree = profiler.output_text(unicode=True, color=False).replace(f"{ROOT}/", "")
    stats = cProfile.Profile()
    with stats:
        for _ in range(n):
            call()
    out = io.StringIO()
    pstats.Stats(stats, stream=out).strip_dirs().sort_stats("tottime").print_stats(25)
    return (
        f"# POST {OURS}, {n} requests in-process (bench.site_settings: DEBUG off, "
        "in-memory SQLite, locmem cache, locmem backend)\n"
        f"# Command: python -m bench.profile_post\n\n"
        f"## pyinstrument call tree (sampled every 0.5 ms)\n\n{tree}\n"
        f"## cProfile: the 25 functions with the most own time\n\n{out.getvalue()}"
    )


def run(n: int, batch: int, batches: int, output: Path) -> dict[str, Any]:
    site = InProcessSite()
    calls = {
        "ours_post": partial(site.request, "POST", OURS, "302 Found"),
        "django_post": partial(site.request, "POST", DJANGOS, "302 Found"),
        "ours_get": partial(site.request, "GET", OURS, "200 OK"),
        "django_get": partial(site.request, "GET", DJANGOS, "200 OK"),
    }
    for call in calls.values():  # warm up: template and URL caches, lazy imports
        mean_seconds(call, min(50, batch))
    forget_sent()

    def batch_us(name: str) -> float:
        us = mean_seconds(calls[name], batch) * 1e6
        forget_sent()
        return us

    per_batch = interleaved(list(calls), batches, batch_us)
    pieces = pieces_us(max(10, batch // 2), max(3, batches))
    output.write_text(profile(calls["ours_post"], n))
    forget_sent()
    from django.contrib.sessions.models import Session

    return {
        "batch": batch,
        "per_batch_us": per_batch,
        "median_us": {name: median(values) for name, values in per_batch.items()},
        "pieces_us": pieces,
        "sessions_created": Session.objects.count(),
        "profile": str(output),
    }


def tables(data: dict[str, Any]) -> str:
    med = data["median_us"]
    post, get = med["django_post"] / med["ours_post"], med["django_get"] / med["ours_get"]
    requests = table(
        "request | ours µs | Django PasswordResetView µs | Django ÷ ours | target | met?",
        [
            f"POST | {med['ours_post']:.0f} | {med['django_post']:.0f} | **{post:.3f}** | ≥ 1.0 "
            f"| {met(post >= 1.0)}",
            f"GET page | {med['ours_get']:.0f} | {med['django_get']:.0f} | **{get:.3f}** | - | -",
        ],
    )
    pieces = table(
        "piece of our POST | µs",
        [f"whole POST (the interleaved median above) | {med['ours_post']:.0f}"]
        + [
            f"{'&nbsp;' * 4 if name.startswith('  ') else ''}{name.strip()} | {us:.0f}"
            for name, us in data["pieces_us"].items()
        ],
    )
    return (
        f"{len(data['per_batch_us']['ours_post'])} interleaved batches of {data['batch']} "
        f"requests; sessions created by all those POSTs: {data['sessions_created']}.\n\n"
        f"{requests}\n{pieces}"
    )


def main(argv: list[str] | None = None) -> None:
    args = arguments(__doc__).parse_args(argv)
    if args.smoke:  # never overwrite the published profile
        data = run(20, 10, 1, Path(tempfile.gettempdir()) / "betatel-profile-smoke.txt")
    else:
        data = run(2000, 500, 5, ROOT / "docs" / "profile-post.txt")
    finish(args.json, tables(data), data)


if __name__ == "__main__":
    main()
