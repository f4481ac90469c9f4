"""Benchmark 4: the POST handler's hot path, profiled, upstream stubbed.

    python -m bench.profile_post                  # writes docs/profile-post.txt
    python -m bench.profile_post --smoke --output /tmp/p.txt

The bench site (``bench.site_settings``: the demo, ``DEBUG`` off, in-memory
SQLite, local-memory cache, ``locmem`` Betatel backend, rate limits on but
never refusing) is called as a WSGI server would call it, in this process:
``POST /reset-password/resend/`` with a CSRF cookie and token, through every
middleware, the view, the form, the service, the rate limits, the circuit
breaker and the audit row, to the 302.

Two outputs:

* a pyinstrument call tree and a cProfile table of the functions with the most
  own time, for ``N`` POSTs (``--output``);
* in-process microseconds per request, ours against Django's
  ``PasswordResetView`` (locmem email backend) and the two GET pages, median
  of several interleaved batches: the server benchmark's comparison without
  the HTTP server, the network or a load generator in the way.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import logging
import os
import pstats
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bench.harness import ROOT, Result, Row, command_line, median

OURS_POST = "/reset-password/resend/"
DJANGO_POST = "/accounts/password_reset/"
DEFAULT_OUTPUT = ROOT / "docs" / "profile-post.txt"

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class InProcessSite:
    """The bench site's WSGI application, called directly with hand-made environs."""

    def __init__(self) -> None:
        os.environ["DJANGO_SETTINGS_MODULE"] = "bench.site_settings"
        os.environ.pop("BENCH_DATABASE_URL", None)  # in-memory SQLite
        import django

        django.setup()
        from django.conf import settings
        from django.core.management import call_command
        from django.core.wsgi import get_wsgi_application

        from bench.site_setup import ensure_user

        call_command("migrate", verbosity=0, interactive=False)
        from django.contrib.auth import get_user_model

        ensure_user(get_user_model(), settings.BENCH_USER_EMAIL)
        self.email = settings.BENCH_USER_EMAIL
        self.app: WsgiApp = get_wsgi_application()  # configures logging again
        silence_console_log()
        status, headers, body = self.request("GET", OURS_POST)
        cookies = [v.strip() for k, v in headers if k == "Set-Cookie"]
        cookie = next(c for c in cookies if c.startswith("csrftoken="))
        self.csrf_cookie = cookie.split(";", 1)[0]
        match = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', body)
        if status != "200 OK" or match is None:
            raise RuntimeError(f"GET {OURS_POST}: {status}, no CSRF token")
        self.csrf_token = match.group(1).decode()

    def request(
        self, method: str, path: str, body: bytes = b"", cookie: str = ""
    ) -> tuple[str, list[tuple[str, str]], bytes]:
        environ: dict[str, Any] = {
            "REQUEST_METHOD": method,
            "PATH_INFO": path,
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": "127.0.0.1:8000",
            "REMOTE_ADDR": "127.0.0.1",
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
            "wsgi.version": (1, 0),
        }
        if body:
            environ["CONTENT_TYPE"] = "application/x-www-form-urlencoded"
            environ["CONTENT_LENGTH"] = str(len(body))
        if cookie:
            environ["HTTP_COOKIE"] = cookie
        started: list[Any] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> None:
            started[:] = [status, headers]

        chunks = self.app(environ, start_response)
        content = b"".join(chunks)
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
        return started[0], started[1], content

    def post_form(self, path: str) -> Callable[[], str]:
        body = urlencode({"email": self.email, "csrfmiddlewaretoken": self.csrf_token}).encode()

        def post() -> str:
            status, _headers, _content = self.request("POST", path, body, self.csrf_cookie)
            return status

        return post

    def get_page(self, path: str) -> Callable[[], str]:
        def get() -> str:
            return self.request("GET", path)[0]

        return get

    def forget_sent(self) -> None:
        """Empty both outboxes, so memory does not grow over a long run."""
        from django.core import mail

        from betatel_reset.backends import locmem

        locmem.outbox.clear()
        if hasattr(mail, "outbox"):
            mail.outbox.clear()


def silence_console_log() -> None:
    """Keep the demo's INFO line per resend (its cost is real) but write it to
    ``/dev/null`` instead of this terminal."""
    sink = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    for handler in logging.getLogger("betatel_reset").handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sink)


def per_request_us(
    site: InProcessSite, calls: dict[str, Callable[[], str]], batch: int, batches: int
) -> dict[str, list[float]]:
    """Microseconds per request of each call, one mean per batch, interleaved."""
    results: dict[str, list[float]] = {name: [] for name in calls}
    for number in range(batches):
        order = list(calls) if number % 2 == 0 else list(reversed(calls))
        for name in order:
            call = calls[name]
            started = time.perf_counter()
            for _ in range(batch):
                call()
            results[name].append((time.perf_counter() - started) / batch * 1e6)
            site.forget_sent()
    return results


def component_us(site: InProcessSite, number: int, repeat: int) -> dict[str, float]:
    """Microseconds per call of the pieces of our POST, each timed alone
    (median of ``repeat`` runs of ``number`` calls)."""
    import timeit

    from django.test import RequestFactory

    from betatel_reset import circuit, services
    from betatel_reset.choices import Outcome, Source
    from betatel_reset.forms import ResendForm
    from betatel_reset.models import ResendAttempt
    from betatel_reset.ratelimit import check_rate_limits

    email = site.email
    request = RequestFactory().post(OURS_POST, {"email": email}, REMOTE_ADDR="127.0.0.1")
    from django.contrib.auth.models import AnonymousUser

    request.user = AnonymousUser()
    result = services.ResendResult(Outcome.SENT, email, None, "", 0.001)
    log = logging.getLogger("betatel_reset.services")
    pieces: dict[str, Callable[[], Any]] = {
        "whole POST (ours)": site.post_form(OURS_POST),
        "whole POST (Django PasswordResetView)": site.post_form(DJANGO_POST),
        "ResendForm: bind + is_valid()": lambda: ResendForm(data={"email": email}).is_valid(),
        "resend_reset_email() (locmem backend)": lambda: services.resend_reset_email(
            email, request=request
        ),
        "  audit row: ResendAttempt.objects.record": lambda: services._record(
            email, Source.WEB, None, Outcome.SENT, result, 0.001
        ),
        "  (the same row through ResendAttempt.objects.create)": lambda: (
            ResendAttempt.objects.create(
                email=email, source=Source.WEB, outcome=Outcome.SENT, duration_ms=1
            )
        ),
        "  rate limits: check_rate_limits (IP + address)": lambda: check_rate_limits(
            email, request
        ),
        "  circuit breaker: before_call + record_success": lambda: (
            circuit.before_call(),
            circuit.record_success(),
        ),
        "  clean_address (also run by the form)": lambda: services.clean_address(email),
        "  the INFO log line (to /dev/null)": lambda: log.info(
            "Resend to %s from %s: sent (HTTP %s) in %.0f ms",
            services.mask_email(email),
            Source.WEB,
            None,
            1.0,
        ),
    }
    timings: dict[str, float] = {}
    for name, call in pieces.items():
        call()
        runs = timeit.repeat(call, number=number, repeat=max(3, repeat))
        timings[name] = median(runs) / number * 1e6
        site.forget_sent()
    return timings


def expect(calls: dict[str, Callable[[], str]], statuses: dict[str, str]) -> None:
    for name, call in calls.items():
        status = call()
        if status != statuses[name]:
            raise RuntimeError(f"{name}: {status}, expected {statuses[name]}")


def profile(call: Callable[[], str], n: int) -> tuple[str, str]:
    """(pyinstrument call tree, cProfile own-time table) for ``n`` calls."""
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0005)
    profiler.start()
    for _ in range(n):
        call()
    profiler.stop()
    # Paths relative to the checkout: the report is committed.
    tree = profiler.output_text(unicode=True, color=False, show_all=False).replace(f"{ROOT}/", "")

    stats_profile = cProfile.Profile()
    stats_profile.enable()
    for _ in range(n):
        call()
    stats_profile.disable()
    out = io.StringIO()
    stats = pstats.Stats(stats_profile, stream=out)
    stats.strip_dirs().sort_stats("tottime").print_stats(25)
    return tree, out.getvalue()


def run(n: int, batch: int, batches: int) -> tuple[dict[str, Any], str]:
    site = InProcessSite()
    calls = {
        "ours_post": site.post_form(OURS_POST),
        "django_post": site.post_form(DJANGO_POST),
        "ours_get": site.get_page(OURS_POST),
        "django_get": site.get_page(DJANGO_POST),
    }
    expect(
        calls,
        {
            "ours_post": "302 Found",
            "django_post": "302 Found",
            "ours_get": "200 OK",
            "django_get": "200 OK",
        },
    )
    for call in calls.values():  # warm up: template and URL caches, lazy imports
        for _ in range(min(50, batch)):
            call()
    site.forget_sent()
    timings = per_request_us(site, calls, batch, batches)
    parts = component_us(site, max(10, batch // 2), max(1, batches))
    tree, table = profile(calls["ours_post"], n)
    site.forget_sent()
    from django.contrib.sessions.models import Session

    from betatel_reset.models import ResendAttempt

    data = {
        "per_batch_us": timings,
        "median_us": {name: median(values) for name, values in timings.items()},
        "components_us": parts,
        "audit_rows": ResendAttempt.objects.count(),
        "sessions_created": Session.objects.count(),
    }
    text = (
        f"# POST {OURS_POST}, {n} requests in-process (bench.site_settings: DEBUG off, "
        "in-memory SQLite, locmem cache, locmem backend)\n"
        f"# Command: python -m bench.profile_post --n {n}\n\n"
        "## pyinstrument call tree (sampled every 0.5 ms)\n\n"
        f"{tree}\n"
        "## cProfile: the 25 functions with the most own time\n\n"
        f"{table}"
    )
    return data, text


def build_result(args: argparse.Namespace, argv: list[str], data: dict[str, Any]) -> Result:
    med = data["median_us"]
    n = f"{args.batch} x {args.batches} batches"
    post_ratio = med["django_post"] / med["ours_post"]
    get_ratio = med["django_get"] / med["ours_get"]
    return Result(
        benchmark="profile_post",
        command=command_line("bench.profile_post", argv),
        params={"n": args.n, "batch": args.batch, "batches": args.batches},
        rows=[
            Row(
                benchmark="4. In-process POST: ours vs Django PasswordResetView (no server)",
                n=n,
                ours=f"{med['ours_post']:.0f} µs/request",
                alternative=f"{med['django_post']:.0f} µs/request",
                ratio=post_ratio,
                ratio_label="Django ÷ ours (time)",
                target="≥ 1.0",
                met=post_ratio >= 1.0,
            ),
            Row(
                benchmark="4. In-process GET page: ours vs Django PasswordResetView",
                n=n,
                ours=f"{med['ours_get']:.0f} µs/request",
                alternative=f"{med['django_get']:.0f} µs/request",
                ratio=get_ratio,
                ratio_label="Django ÷ ours (time)",
                target="-",
                met=None,
            ),
        ],
        details=[data],
    )


def main(argv: list[str] | None = None) -> Result:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="POSTs profiled")
    parser.add_argument("--batch", type=int, default=500, help="requests per timing batch")
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT), help="the profile's text file")
    parser.add_argument("--smoke", action="store_true", help="tiny N, to check it runs")
    parser.add_argument("--json", metavar="PATH", help="write the result as JSON")
    args = parser.parse_args(argv)
    if args.smoke:
        args.n, args.batch, args.batches = 20, 10, 1
        if args.output == str(DEFAULT_OUTPUT):  # never overwrite the published profile
            args.output = os.path.join(tempfile.gettempdir(), "betatel-profile-smoke.txt")
    data, text = run(args.n, args.batch, args.batches)
    Path(args.output).write_text(text)
    result = build_result(args, list(argv or []), data)
    result.notes.append(f"Profile written to {args.output}")
    result.print_rows()
    result.write(args.json)
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
