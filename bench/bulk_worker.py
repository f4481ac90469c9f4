"""One bulk resend in a child process of ``bench.bulk``, timed from inside.

    python -m bench.bulk_worker command ADDRESS_FILE [--concurrency N]
    python -m bench.bulk_worker task ADDRESS_FILE

``command`` runs ``manage.py betatel_resend --file ADDRESS_FILE`` (through
``call_command``: the same ``handle()``); ``task`` reads the file into a list
and hands it to :func:`betatel_reset.tasks.enqueue_in_chunks`, as the admin
does, on the settings' task backend (the demo's: immediate, so the chunks run
here, one after another, ``TASK_CONCURRENCY`` sends at a time, as a single
queue worker would run them).

Prints one JSON line: the wall and CPU time of the send alone (not Django's
start-up), the audit rows it wrote by outcome, and this process's peak RSS
before and after.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import sys
import time


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("path", choices=["command", "task"])
    parser.add_argument("file")
    parser.add_argument("--concurrency", type=int)
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.site_settings")
    import django

    django.setup()
    from django.core.management import CommandError, call_command
    from django.db.models import Count
    from django.utils import timezone

    from bench.profile_post import silence_console_log
    from betatel_reset.choices import Source
    from betatel_reset.models import ResendAttempt

    silence_console_log()
    # Import everything the send needs before measuring the baseline.
    from betatel_reset import tasks  # noqa: F401

    usage = resource.getrusage(resource.RUSAGE_SELF)
    baseline_kb, cpu_before = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
    began_at = timezone.now()
    error = ""
    started = time.perf_counter()
    if args.path == "command":
        options = ["--concurrency", str(args.concurrency)] if args.concurrency else []
        try:
            call_command(
                "betatel_resend",
                "--file",
                args.file,
                *options,
                stdout=io.StringIO(),
                stderr=io.StringIO(),
            )
        except CommandError as exc:
            error = str(exc)
    else:
        from betatel_reset.tasks import enqueue_in_chunks

        with open(args.file, encoding="utf-8") as lines:
            addresses = [line.strip() for line in lines if line.strip()]
        enqueue_in_chunks(addresses, source=Source.TASK, actor=None)
    wall = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak_kb, cpu = usage.ru_maxrss, usage.ru_utime + usage.ru_stime - cpu_before
    outcomes = dict(
        ResendAttempt.objects.filter(created_at__gte=began_at)
        .values_list("outcome")
        .annotate(n=Count("id"))
        .values_list("outcome", "n")
    )
    print(
        json.dumps(
            {
                "wall_seconds": wall,
                "cpu_seconds": cpu,
                "outcomes": outcomes,
                "error": error,
                "baseline_rss_kb": baseline_kb,
                "peak_rss_kb": peak_kb,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1:])
