from __future__ import annotations

import functools
import logging
from typing import Any

from django.conf import settings
from django.db import ProgrammingError, connections, models, router
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .choices import AddressState, BatchState, Outcome, Source
from .conf import app_settings

#: Prefixed to the INSERT on PostgreSQL: that one implicit transaction commits
#: without waiting for the write-ahead log to reach the disk.
ASYNC_COMMIT = "SET LOCAL synchronous_commit TO OFF; "

logger = logging.getLogger(__name__)

#: Database aliases that refused ``ASYNC_COMMIT`` (not PostgreSQL after all, or
#: binding parameters server-side): written to without it from then on.
_refused_async: set[str] = set()


class ResendAttemptManager(models.Manager["ResendAttempt"]):
    def record(
        self, *, returning: bool = False, own_transaction: bool = False, **values: Any
    ) -> int | None:
        """Write one audit row with a single ``INSERT``; with ``returning``,
        return its id.

        Every resend writes one, on the page's POST and for each address of a
        bulk send, so this skips what ``objects.create()`` does beyond the
        ``INSERT`` (a model instance, query compilation, ``RETURNING``, save
        signals: listen to :mod:`betatel_reset.signals` instead). ``values``
        are keyed by field attribute name (``actor_id``, not ``actor``); the
        fields' defaults fill the rest.

        On PostgreSQL, in autocommit mode, the row is committed asynchronously
        unless ``AUDIT_ASYNC_COMMIT`` is off: the commit does not wait for the
        disk (nor for synchronous standbys), so a crash of the database server
        can lose the last moments of rows (up to three ``wal_writer_delay``,
        600 ms by default), never corrupt them. Inside a transaction open on
        the same database (``ATOMIC_REQUESTS``, ``atomic()``) the row is part
        of it and commits as it does, unless ``own_transaction`` says the
        caller opened that transaction for this row and what it writes with it
        (a queued resend and its task): then the whole transaction commits
        asynchronously, as an autocommitted row would.

        Why by hand: this is the one write of every public POST and of every
        address of a bulk send. ``objects.create()`` takes 193 µs of CPU where
        this takes 75 µs (the profile in ``docs/benchmarks.md``), and only a
        statement built here can carry ``SET LOCAL synchronous_commit TO OFF``
        in the same round trip: 0.23 ms of a web worker's time against 0.45 ms
        per POST on PostgreSQL (benchmark 2). Together they are what brings
        the POST level with Django's own reset view under load, so they stay.
        What it costs a reader: a new field needs a default, and ``post_save``
        is not sent.
        """
        alias = self._db or router.db_for_write(self.model)
        connection = connections[alias]
        fields, names, sql = _insert_statement(self.model, alias, connection.vendor)
        if returning and connection.features.can_return_columns_from_insert:
            sql += " RETURNING " + connection.ops.quote_name(str(self.model._meta.pk.column))
        unknown = values.keys() - names
        if unknown:
            raise TypeError(f"Unknown audit fields: {', '.join(sorted(unknown))}")
        params = [
            field.get_db_prep_save(
                values[field.attname] if field.attname in values else field.get_default(),
                connection,
            )
            for field in fields
        ]
        with connection.cursor() as cursor:
            if _can_commit_async(connection, own_transaction):
                try:
                    cursor.execute(ASYNC_COMMIT + sql, params)
                except ProgrammingError:
                    # Nothing was written: the statement was refused as a whole.
                    _refused_async.add(alias)
                    logger.warning(
                        "Database %r refused the asynchronous commit of audit rows; "
                        "writing them synchronously from now on.",
                        alias,
                    )
                    if connection.in_atomic_block:
                        raise  # the transaction is aborted; its caller decides
                    cursor.execute(sql, params)
            else:
                cursor.execute(sql, params)
            return _inserted_id(cursor, connection, self.model) if returning else None


def _inserted_id(cursor: Any, connection: Any, model: type[models.Model]) -> int:
    """The id of the row the cursor has just inserted."""
    if connection.features.can_return_columns_from_insert:
        if cursor.description is None:  # psycopg 3 is still on the SET's result
            cursor.nextset()
        return int(cursor.fetchone()[0])
    return int(connection.ops.last_insert_id(cursor, model._meta.db_table, model._meta.pk.column))


@functools.cache
def _insert_statement(
    model: type[models.Model], alias: str, vendor: str
) -> tuple[tuple[Any, ...], frozenset[str], str]:
    """The fields written, their attribute names, and the ``INSERT`` for them on
    database ``alias``."""
    meta = model._meta
    fields = tuple(field for field in meta.concrete_fields if field is not meta.auto_field)
    quote = connections[alias].ops.quote_name
    # Only the model's own table and column names, quoted; values are parameters.
    sql = "INSERT INTO {} ({}) VALUES ({})".format(  # noqa: S608
        quote(meta.db_table),
        ", ".join(quote(str(field.column)) for field in fields),
        ", ".join(["%s"] * len(fields)),
    )
    return fields, frozenset(field.attname for field in fields), sql


def _can_commit_async(connection: Any, own_transaction: bool = False) -> bool:
    """PostgreSQL, autocommit (or a transaction the caller opened for the
    row), and parameters bound client-side (a statement bound server-side
    cannot carry two commands)."""
    autocommit = connection.get_autocommit() and not connection.in_atomic_block
    return (
        # A value it cannot use (check E007) means the plain commit, always correct.
        app_settings.usable("AUDIT_ASYNC_COMMIT")
        and app_settings.AUDIT_ASYNC_COMMIT
        and connection.vendor == "postgresql"
        and connection.alias not in _refused_async
        and (autocommit or (own_transaction and connection.in_atomic_block))
        and _binds_client_side(connection)
    )


def _binds_client_side(connection: Any) -> bool:
    """psycopg 2 always does; psycopg 3 with Django's default cursor
    (``ClientCursor``), not with ``server_side_binding`` or a cursor of the
    site's own."""
    try:
        import psycopg
    except ImportError:
        return True
    connection.ensure_connection()
    factory = getattr(connection.connection, "cursor_factory", None)
    if not isinstance(connection.connection, psycopg.Connection):
        return True
    return isinstance(factory, type) and issubclass(factory, psycopg.ClientCursor)


class ResendAttempt(models.Model):
    """One attempt to resend a reset email, whatever its outcome.

    Kept: when, the address (admins search by it and retry from it), where the
    attempt came from, which admin made it, the outcome, Betatel's HTTP status,
    how long it took, and a short description of a failure written by this app
    (never Betatel's raw answer, never the token). Not kept: IP addresses,
    user agents, request bodies or tokens. Old rows are removed with
    ``manage.py betatel_prune --older-than 90d``.
    """

    created_at = models.DateTimeField(_("when"), default=timezone.now, db_index=True)
    email = models.EmailField(_("address"), max_length=254, db_index=True)
    source = models.CharField(_("source"), max_length=16, choices=Source.choices)
    outcome = models.CharField(_("outcome"), max_length=32, choices=Outcome.choices, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    status_code = models.PositiveSmallIntegerField(_("Betatel status"), null=True, blank=True)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), default=0)
    detail = models.CharField(_("detail"), max_length=255, blank=True)

    objects = ResendAttemptManager()

    class Meta:
        verbose_name = _("resend attempt")
        verbose_name_plural = _("resend attempts")
        ordering = ["-created_at", "-id"]
        default_permissions = ("view",)
        permissions = [("send_reset_email", _("Can resend reset-password emails"))]

    def __str__(self) -> str:
        return f"{self.email} ({self.get_outcome_display()})"


class ResendBatch(models.Model):
    """One bulk send: who started it, from where, when, and where it stands.

    Its addresses are :class:`BatchAddress` rows; the counts per outcome are
    computed from them (:func:`betatel_reset.batches.progress`). Removed with
    the audit trail by ``manage.py betatel_prune`` once it has ended.
    """

    created_at = models.DateTimeField(_("started"), default=timezone.now, db_index=True)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    source = models.CharField(_("source"), max_length=16, choices=Source.choices)
    state = models.CharField(
        _("state"), max_length=16, choices=BatchState.choices, default=BatchState.QUEUED
    )
    total = models.PositiveIntegerField(_("addresses"), default=0)
    #: Last sign of life of a process sending it (see ``BULK_STALE_AFTER``).
    heartbeat_at = models.DateTimeField(_("last progress"), null=True, blank=True)
    #: When Betatel's ``Retry-After`` ends, for a batch it paused.
    resume_after = models.DateTimeField(_("may resume after"), null=True, blank=True)
    detail = models.CharField(_("detail"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("bulk send")
        verbose_name_plural = _("bulk sends")
        ordering = ["-created_at", "-id"]
        default_permissions = ("view", "change")

    def __str__(self) -> str:
        return f"#{self.pk} ({self.get_state_display()})"


class BatchAddress(models.Model):
    """One address of a batch: only what resuming and the admin need."""

    batch = models.ForeignKey(ResendBatch, on_delete=models.CASCADE, related_name="addresses")
    email = models.EmailField(_("address"), max_length=254)
    #: Which queued task sends it (0 when one process sends the whole batch).
    chunk = models.PositiveIntegerField(_("chunk"), default=0)
    state = models.CharField(
        _("state"), max_length=16, choices=AddressState.choices, default=AddressState.PENDING
    )
    outcome = models.CharField(_("outcome"), max_length=32, choices=Outcome.choices, blank=True)
    updated_at = models.DateTimeField(_("updated"), default=timezone.now)

    class Meta:
        verbose_name = _("batch address")
        verbose_name_plural = _("batch addresses")
        ordering = ["id"]
        default_permissions = ()
        indexes = [models.Index(fields=["batch", "state", "chunk"], name="betatel_batch_state")]

    def __str__(self) -> str:
        return f"{self.email} ({self.get_state_display()})"
