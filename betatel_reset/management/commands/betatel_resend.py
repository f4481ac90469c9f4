"""``manage.py betatel_resend``: resend reset-password emails from the shell.

Addresses come from the arguments, a file, or stdin (``--file -``), one per
line; blank lines, ``#`` comments and repeats are skipped, and each address is
validated before anything is sent. Sends go through the service like any other
(audit rows with source "command line"), a bounded number at a time, waiting
out Betatel's 429 ``Retry-After`` as background tasks do.

Exit status: 0 when every address was sent (or, with ``--dry-run``, is valid);
1 when a send failed or an address was invalid; 2 when there was nothing to
read.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from typing import Any, TextIO

from django.core.management.base import BaseCommand, CommandError, CommandParser

from betatel_reset.addresses import clean_address, unique_addresses
from betatel_reset.bulk import BulkSummary, send_many
from betatel_reset.choices import Outcome, Source
from betatel_reset.conf import app_settings
from betatel_reset.exceptions import ConfigurationError, InvalidAddress


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

    def handle(
        self,
        *args: Any,
        emails: list[str],
        file: str | None,
        dry_run: bool,
        concurrency: int | None,
        **options: Any,
    ) -> None:
        if not emails and file is None:
            raise CommandError(
                "Give addresses as arguments, or --file PATH (--file - reads stdin).",
                returncode=2,
            )
        self.verbosity = int(options["verbosity"])
        self.invalid = 0
        self.duplicates = 0
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
        progress = self.stdout.isatty()
        done = 0

        def on_result(address: str, outcome: Outcome) -> None:
            nonlocal done
            done += 1
            if outcome != Outcome.SENT:
                if progress:
                    self.stdout.write("\r\033[K", ending="")
                self.stderr.write(f"failed: {address}: {outcome.label}")
            elif self.verbosity >= 2:
                self.stdout.write(f"sent: {address}")
            if progress:
                self.stdout.write(f"\r{done} done…", ending="")
                self.stdout.flush()

        try:
            summary = send_many(
                addresses,
                source=Source.COMMAND,
                concurrency=concurrency,
                retries=app_settings.BULK_RETRIES,
                max_retry_wait=app_settings.BULK_MAX_RETRY_WAIT,
                on_result=on_result,
            )
        except ConfigurationError as exc:
            raise CommandError(f"The site is misconfigured: {exc}", returncode=1) from None
        finally:
            if progress:
                self.stdout.write("\r\033[K", ending="")
        self.stdout.write(self._summary(summary))
        if summary.failed or self.invalid:
            raise CommandError(
                f"{summary.failed} send(s) failed, {self.invalid} invalid address(es).",
                returncode=1,
            )

    def _summary(self, summary: BulkSummary) -> str:
        text = f"{summary.sent} sent, {summary.failed} failed"
        if summary.failed:
            details = ", ".join(
                f"{outcome.label}: {count}" for outcome, count in summary.failures_by_outcome()
            )
            text += f" ({details})"
        return f"{text}, {self.invalid} invalid, {self.duplicates} repeated."


def _numbered(name: str, stream: TextIO) -> Iterator[tuple[str, str]]:
    label = "stdin" if name == "-" else name
    for number, line in enumerate(stream, start=1):
        yield f"{label}:{number}", line
