"""``manage.py betatel_resend``: resend reset-password emails from the shell.

Addresses come from the arguments, a file, or stdin (``--file -``), one per
line; blank lines, ``#`` comments and repeats are skipped, and each address is
validated before anything is sent. The addresses become a batch
(:mod:`betatel_reset.batches`): each is marked in flight before its request
leaves, so a batch stopped by a crash, Ctrl-C or Betatel's 429 is resumed with
``--resume [ID]`` without sending any address twice. Sends go through the
service like any other (audit rows with source "command line"), a bounded
number at a time.

Exit status: 0 when every address was sent (or, with ``--dry-run``, is valid);
1 when a send failed, is in doubt or an address was invalid; 2 when there was
nothing to read or nothing to resume; 3 when the batch paused (Betatel's 429)
or stopped with addresses left: ``--resume`` sends them.
"""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from typing import Any, TextIO

from django.core.management.base import BaseCommand, CommandError, CommandParser

from betatel_reset.addresses import clean_address, unique_addresses
from betatel_reset.batches import create_batch, describe, progress, run_batch
from betatel_reset.choices import Outcome, Source
from betatel_reset.conf import app_settings
from betatel_reset.exceptions import ConfigurationError, InvalidAddress
from betatel_reset.models import ResendBatch
from betatel_reset.resuming import NotResumable, resumable_batch, take_over


def positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError(value)
    return number


class Command(BaseCommand):
    help = (
        "Ask Betatel to resend reset-password emails to addresses given as arguments, "
        "in a file, or on stdin (--file -)."
    )
    # call_command(..., stdin=StringIO(...)) in tests, like createsuperuser.
    stealth_options = ("stdin",)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("emails", nargs="*", metavar="EMAIL", help="Addresses to send to.")
        parser.add_argument(
            "--file",
            metavar="PATH",
            help="Read addresses from PATH, one per line; - reads stdin.",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Validate and list the addresses; send nothing, record nothing.",
        )
        parser.add_argument(
            "--concurrency",
            type=positive_int,
            default=None,
            metavar="N",
            help="Sends at a time (default: the INLINE_CONCURRENCY setting).",
        )
        parser.add_argument(
            "--resume",
            nargs="?",
            const=0,
            type=positive_int,
            metavar="ID",
            help="Resume batch ID (default: the most recent unfinished one) instead of "
            "starting one; its addresses already sent are skipped.",
        )
        parser.add_argument(
            "--resend-in-doubt",
            action="store_true",
            help="With --resume: also send the addresses that were being sent when the "
            "batch stopped (Betatel may have emailed them already).",
        )

    def handle(
        self,
        *args: Any,
        emails: list[str],
        file: str | None,
        dry_run: bool,
        concurrency: int | None,
        resume: int | None,
        resend_in_doubt: bool,
        **options: Any,
    ) -> None:
        self.verbosity = int(options["verbosity"])
        self.invalid = 0
        self.duplicates = 0
        self.resuming = resume is not None
        if resume is not None:
            if emails or file is not None or dry_run:
                raise CommandError(
                    "--resume takes no addresses, --file or --dry-run.", returncode=2
                )
            batch_id = resume or None
            self._resume(batch_id, concurrency or app_settings.INLINE_CONCURRENCY, resend_in_doubt)
            return
        if not emails and file is None:
            raise CommandError(
                "Give addresses as arguments, or --file PATH (--file - reads stdin).",
                returncode=2,
            )
        with ExitStack() as stack:
            lines: Iterable[tuple[str, str]] = (("argument", e) for e in emails)
            if file is not None:
                stream = self._open(file, options.get("stdin"), stack)
                lines = itertools.chain(lines, _numbered(file, stream))
            addresses = self._valid_addresses(lines)
            if dry_run:
                self._dry_run(addresses)
            else:
                self._send(addresses, concurrency or app_settings.INLINE_CONCURRENCY)

    def _open(self, file: str, stdin: TextIO | None, stack: ExitStack) -> TextIO:
        if file == "-":
            return stdin or sys.stdin
        try:
            return stack.enter_context(open(file, encoding="utf-8-sig"))
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror}", returncode=2) from None

    def _valid_addresses(self, lines: Iterable[tuple[str, str]]) -> Iterator[str]:
        """Cleaned, first-seen addresses; problems go to stderr as they are met."""

        def valid() -> Iterator[str]:
            for where, line in lines:
                text = line.strip()
                if not text or text.startswith("#"):
                    continue
                try:
                    yield clean_address(text)
                except InvalidAddress:
                    self.invalid += 1
                    self.stderr.write(f"{where}: not a valid address: {text[:80]!r}")

        def repeated(address: str) -> None:
            self.duplicates += 1

        return unique_addresses(valid(), on_repeat=repeated)

    def _dry_run(self, addresses: Iterator[str]) -> None:
        count = 0
        for address in addresses:
            count += 1
            self.stdout.write(f"would send: {address}")
        self.stdout.write(
            f"Dry run: {count} to send, {self.invalid} invalid, "
            f"{self.duplicates} repeated; nothing sent."
        )
        if self.invalid:
            raise CommandError(f"{self.invalid} invalid address(es).", returncode=1)

    def _send(self, addresses: Iterator[str], concurrency: int) -> None:
        batch = create_batch(addresses, source=Source.COMMAND)
        self.stdout.write(f"Batch #{batch.pk}: {batch.total} addresses.")
        self._run(batch, concurrency)
        if self.invalid:
            raise CommandError(f"{self.invalid} invalid address(es).", returncode=1)

    def _resume(self, batch_id: int | None, concurrency: int, resend_in_doubt: bool) -> None:
        try:
            batch = resumable_batch(batch_id)
            in_doubt = take_over(batch, resend_in_doubt=resend_in_doubt)
        except NotResumable as exc:
            raise CommandError(str(exc), returncode=2) from None
        self.stdout.write(f"Resuming batch #{batch.pk}: {describe(batch)}")
        for address in in_doubt:
            self.stderr.write(f"in doubt: {address}")
        if in_doubt and not resend_in_doubt:
            self.stderr.write(
                f"{len(in_doubt)} address(es) were being sent when the batch stopped: "
                "Betatel may have emailed them already, so they are not sent again. "
                "Add --resend-in-doubt to send them anyway."
            )
        self._run(batch, concurrency)

    def _run(self, batch: ResendBatch, concurrency: int) -> None:
        bar = ProgressLine(self.stdout, batch)

        def on_result(address: str, outcome: Outcome) -> None:
            if outcome != Outcome.SENT:
                bar.clear()
                self.stderr.write(f"failed: {address}: {outcome.label}")
            elif self.verbosity >= 2:
                bar.clear()
                self.stdout.write(f"sent: {address}")
            bar.advance()

        try:
            result = run_batch(
                batch,
                concurrency=concurrency,
                retries=app_settings.BULK_RETRIES,
                max_retry_wait=app_settings.BULK_MAX_RETRY_WAIT,
                on_result=on_result,
            )
        except ConfigurationError as exc:
            raise CommandError(f"The site is misconfigured: {exc}", returncode=1) from None
        finally:
            bar.clear()
        found = progress(batch)
        summary = f"Batch #{batch.pk}: {describe(batch, found)}"
        if not self.resuming:
            summary += f" {self.invalid} invalid, {self.duplicates} repeated."
        self.stdout.write(summary)
        if result.paused_until is not None:
            raise CommandError(
                f"Betatel asked to slow down: batch #{batch.pk} is paused until "
                f"{result.paused_until:%Y-%m-%d %H:%M:%S %Z}. Then run: "
                f"manage.py betatel_resend --resume {batch.pk}",
                returncode=3,
            )
        if found.remaining:
            raise CommandError(
                f"Batch #{batch.pk} stopped with {found.remaining} address(es) left; "
                f"manage.py betatel_resend --resume {batch.pk} sends them.",
                returncode=3,
            )
        if found.failed or found.in_doubt:
            raise CommandError(
                f"{found.failed} send(s) failed, {found.in_doubt} in doubt.", returncode=1
            )


class ProgressLine:
    """A progress bar redrawn in place on a terminal; elsewhere (cron logs) a
    line every ``EVERY`` seconds. A few lines of our own: the command already
    prints failures between redraws, which is all a library would add."""

    EVERY = 10.0
    WIDTH = 30

    def __init__(self, stdout: Any, batch: ResendBatch) -> None:
        self.stdout = stdout
        self.tty = stdout.isatty()
        self.batch = batch
        self.start = progress(batch).done
        self.count = 0
        self.last = float("-inf") if self.tty else time.monotonic()

    def advance(self) -> None:
        self.count += 1
        now = time.monotonic()
        if self.tty:
            if now - self.last < 0.1:
                return
        elif now - self.last < self.EVERY:
            return
        self.last = now
        done = self.start + self.count
        total = max(self.batch.total, 1)
        if not self.tty:
            self.stdout.write(f"{done}/{self.batch.total} done")
            return
        filled = self.WIDTH * done // total
        self.stdout.write(
            f"\r[{'#' * filled}{'-' * (self.WIDTH - filled)}] {done}/{self.batch.total}",
            ending="",
        )
        self.stdout.flush()

    def clear(self) -> None:
        if self.tty:
            self.stdout.write("\r\033[K", ending="")


def _numbered(name: str, stream: TextIO) -> Iterator[tuple[str, str]]:
    label = "stdin" if name == "-" else name
    for number, line in enumerate(stream, start=1):
        yield f"{label}:{number}", line
