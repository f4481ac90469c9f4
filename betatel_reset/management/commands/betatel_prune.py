from __future__ import annotations

import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from betatel_reset.batches import ENDED
from betatel_reset.models import ResendAttempt, ResendBatch
from betatel_reset.ratelimit import parse_period


class Command(BaseCommand):
    help = "Delete resend attempts, and bulk sends that have ended, older than a retention period."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            default="90d",
            help="Retention period: a number and a unit, s, m, h, d or w (default: 90d).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Only count what would be deleted."
        )

    def handle(self, *args: Any, older_than: str, dry_run: bool, **options: Any) -> None:
        try:
            seconds = parse_period(older_than)
        except ValueError as exc:
            raise CommandError(f"--older-than: {exc}") from None
        cutoff = timezone.now() - datetime.timedelta(seconds=seconds)
        old = ResendAttempt.objects.filter(created_at__lt=cutoff)
        # A batch that may still be resumed is kept, whatever its age.
        old_batches = ResendBatch.objects.filter(created_at__lt=cutoff, state__in=ENDED)
        if dry_run:
            self.stdout.write(f"{old.count()} attempts older than {older_than} would be deleted.")
            self.stdout.write(
                f"{old_batches.count()} ended bulk sends older than {older_than} would be deleted."
            )
            return
        deleted, _ = old.delete()
        _, by_model = old_batches.delete()
        batches = by_model.get(ResendBatch._meta.label, 0)
        self.stdout.write(f"Deleted {deleted} attempts older than {older_than}.")
        self.stdout.write(f"Deleted {batches} ended bulk sends older than {older_than}.")
