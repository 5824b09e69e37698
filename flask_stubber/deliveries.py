"""Idempotent deliveries: the ``stubber_deliveries`` table and what reads and writes it.

A delivery is one successful webhook execution that carried a delivery id. Its row holds
the id, a fingerprint of the request and the response that was sent, and it is written in
the same transaction as the action. A repeat of the same id on the same target (a stub's
action, or a template's create route) is answered with that stored response; the same id
with another request is refused. Refused requests write nothing, so a sender's retry of a
refused delivery is evaluated afresh. Rows older than ``STUBBER_IDEMPOTENCY_TTL`` seconds
are ignored and pruned.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from flask import Response, current_app
from sqlalchemy import DateTime, Integer, String, Text, UniqueConstraint, delete, select
from sqlalchemy.dialects.mysql import MEDIUMTEXT
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from .errors import IdempotencyConflict, IdempotencyKeyReused, StubberError
from .models import utcnow

if TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy
    from sqlalchemy.orm import Session

    from .engine import Outcome

logger = logging.getLogger("flask_stubber")

#: Delivery ids longer than this are stored as their SHA-256.
MAX_KEY_LENGTH = 200
_LONG_TEXT = Text().with_variant(MEDIUMTEXT(), "mysql", "mariadb")


class DeliveryMixin:
    """Columns of one recorded delivery. Combine with the host's ``db.Model``.

    ``scope`` names what the delivery acted on (``<stubref>/<action>`` or
    ``create/<template>``); ``key`` is the delivery id; the pair is unique.
    """

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope: Mapped[str] = mapped_column(String(255))
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    stubref: Mapped[str | None] = mapped_column(String(24), default=None)
    action_name: Mapped[str | None] = mapped_column(String(255), default=None)
    post_id: Mapped[int | None] = mapped_column(Integer, default=None)
    status: Mapped[int] = mapped_column(Integer)
    response_type: Mapped[str] = mapped_column(String(255))
    response_body: Mapped[str] = mapped_column(_LONG_TEXT)
    response_location: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:  # noqa: N805
        return (UniqueConstraint("scope", "key", name=f"uq_{cls.__tablename__}_scope_key"),)  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.key} {self.scope} {self.status}>"


def declare_delivery_model(db: SQLAlchemy, suffix: str) -> Any:
    """Declare the delivery model on ``db.Model``; ``suffix`` follows the stub table's name."""
    name = "StubberDelivery" + "".join(part.title() for part in suffix.split("_"))
    return type(name, (DeliveryMixin, db.Model), {"__tablename__": f"stubber_deliveries{suffix}"})


def delivery_key(value: str) -> str:
    """Return the stored form of a delivery id: itself, or ``sha256:<hex>`` when very long."""
    if len(value) <= MAX_KEY_LENGTH:
        return value
    return "sha256:" + hashlib.sha256(value.encode("utf-8", "replace")).hexdigest()


def fingerprint(method: str, mimetype: str, query: list[tuple[str, str]], body: bytes) -> str:
    """Return the SHA-256 of what makes two requests the same delivery."""
    digest = hashlib.sha256()
    for part in (method, mimetype, repr(sorted(query))):
        digest.update(part.encode("utf-8", "replace") + b"\0")
    digest.update(body)
    return digest.hexdigest()


class DeliveryReplayed(StubberError):
    """A finished delivery came again; :attr:`response` is the one first sent.

    Raised inside the transaction so that nothing is written; the webhook answers with
    the stored response.
    """

    status = 200
    code = "replayed"

    def __init__(self, response: Response) -> None:
        super().__init__("The delivery was already processed; the stored response is sent again.")
        self.response = response


@dataclass(frozen=True)
class StoredResponse:
    """The response recorded with a delivery."""

    status: int
    mimetype: str
    body: str
    location: str | None = None

    @classmethod
    def of(cls, response: Response) -> StoredResponse:
        return cls(response.status_code, response.mimetype or "application/json",
                   response.get_data(as_text=True), response.headers.get("Location"))

    def to_response(self) -> Response:
        """Rebuild the response, marked with ``Idempotent-Replayed: true``."""
        response: Response = current_app.response_class(self.body, status=self.status, mimetype=self.mimetype)
        if self.location is not None:
            response.headers["Location"] = self.location
        response.headers["Idempotent-Replayed"] = "true"
        return response


class DeliveryStore:
    """Reads and writes the delivery table of one application.

    :param model: The delivery model.
    :param session: Returns the host's ``db.session``.
    :param ttl: ``STUBBER_IDEMPOTENCY_TTL`` in seconds.
    """

    #: Seconds between two opportunistic prunes in one process.
    prune_interval = 3600
    #: Rows deleted per statement while pruning.
    prune_batch = 500

    def __init__(self, model: Any, session: Callable[[], Session], ttl: int) -> None:
        self.model = model
        self.session = session
        self.ttl = ttl
        self._inflight: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._next_prune = 0.0

    def cutoff(self) -> datetime:
        """Return the creation time before which a delivery is forgotten."""
        return utcnow() - timedelta(seconds=self.ttl)

    @contextmanager
    def claim(self, scope: str, key: str) -> Iterator[None]:
        """Hold ``(scope, key)`` for this process while it executes.

        :raises IdempotencyConflict: when another thread of this process holds it. Across
            processes, the row lock on the stub (or the unique key, for creates) serializes
            duplicates instead, and the later one answers with the stored response.
        """
        with self._lock:
            if (scope, key) in self._inflight:
                raise IdempotencyConflict(
                    "A delivery with this id is still being processed; retry it later."
                )
            self._inflight.add((scope, key))
        try:
            yield
        finally:
            with self._lock:
                self._inflight.discard((scope, key))

    def check(self, scope: str, key: str, print_: str) -> None:
        """Replay or refuse a delivery seen before, inside the current transaction.

        :raises DeliveryReplayed: for the same request; carries the stored response.
        :raises IdempotencyKeyReused: for the same id with another request.
        """
        model = self.model
        row = self.session().execute(
            select(model.id, model.fingerprint, model.status, model.response_type, model.response_body,
                   model.response_location, model.created_at)
            .where(model.scope == scope, model.key == key)
        ).first()
        if row is None:
            return
        if _aware(row.created_at) < self.cutoff():
            self.session().execute(delete(model).where(model.id == row.id))
            return
        if row.fingerprint != print_:
            raise IdempotencyKeyReused(
                "This delivery id was used before with a different request; send a new id for new content."
            )
        stored = StoredResponse(row.status, row.response_type, row.response_body, row.response_location)
        raise DeliveryReplayed(stored.to_response())

    def add(self, scope: str, key: str, print_: str, response: Response, outcome: Outcome) -> None:
        """Record a delivery in the current transaction.

        The row is flushed at once, so that a duplicate in another process waits on its unique
        key from now until the commit, and then answers with the stored response.
        """
        stored = StoredResponse.of(response)
        session = self.session()
        session.add(self.model(
            scope=scope, key=key, fingerprint=print_, stubref=outcome.stubref, action_name=outcome.action_name,
            post_id=outcome.post_id, status=stored.status, response_type=stored.mimetype, response_body=stored.body,
            response_location=stored.location,
        ))
        session.flush()

    def prune(self, older_than: int | None = None) -> int:
        """Delete deliveries older than ``older_than`` seconds (default: the TTL) and commit.

        :return: How many rows were deleted.
        """
        model = self.model
        session = self.session()
        cutoff = utcnow() - timedelta(seconds=self.ttl if older_than is None else older_than)
        total = 0
        while True:
            ids = list(session.scalars(
                select(model.id).where(model.created_at < cutoff).order_by(model.id).limit(self.prune_batch)
            ))
            if ids:
                session.execute(delete(model).where(model.id.in_(ids)))
            session.commit()
            total += len(ids)
            if len(ids) < self.prune_batch:
                return total

    def prune_if_due(self) -> None:
        """Prune at most once per :attr:`prune_interval` in this process; failures are logged."""
        now = time.monotonic()
        with self._lock:
            if now < self._next_prune:
                return
            self._next_prune = now + min(self.prune_interval, self.ttl)
        try:
            self.prune()
        except SQLAlchemyError:
            self.session().rollback()
            logger.warning("Pruning old deliveries failed; it is tried again later.", exc_info=True)


def _aware(value: datetime) -> datetime:
    """Return ``value`` as UTC-aware; some drivers hand back naive UTC datetimes."""
    from datetime import UTC

    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
