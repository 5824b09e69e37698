"""Models and mixins stored through the host application's Flask-SQLAlchemy ``db``.

The default models are declared on the host's ``db.Model`` when the extension is
initialised, so ``db.create_all()`` creates their ``stubber_*`` tables and
Flask-Migrate/Alembic autogenerate sees them. A host that wants its own stub
model (extra columns, relationships) declares it with :class:`StubMixin` and
passes it as ``stub_model=``.
"""

from __future__ import annotations

import re
import secrets
import string
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, declared_attr, mapped_column, relationship

if TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy

_ALPHABET = string.ascii_uppercase + string.digits
_STUBREF = re.compile(r"\A\d{4}-\d{2}-\d{2}-[A-Z0-9]{4}-[A-Z0-9]{4}\Z")


def utcnow() -> datetime:
    """Return the current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def new_stubref(now: datetime | None = None) -> str:
    """Return a fresh stubref, ``YYYY-MM-DD-XXXX-XXXX``, with 41 random bits from :mod:`secrets`."""
    day = (now or utcnow()).strftime("%Y-%m-%d")
    chars = "".join(secrets.choice(_ALPHABET) for _ in range(8))
    return f"{day}-{chars[:4]}-{chars[4:]}"


def normalize_stubref(value: str) -> str | None:
    """Return ``value`` upper-cased when it is a well-formed stubref, else ``None``."""
    value = value.strip().upper()
    return value if _STUBREF.match(value) else None


class StubMixin:
    """Columns of a stub. Combine with the host's ``db.Model``.

    ::

        class Ticket(StubMixin, db.Model):
            __tablename__ = "tickets"
            customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"))

        stubber = StubberWebhooks(app, db=db, stub_model=Ticket)
    """

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    stubref: Mapped[str] = mapped_column(String(24), unique=True)
    template: Mapped[str] = mapped_column(String(255), index=True)
    state: Mapped[str] = mapped_column(String(255))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    subject: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    if TYPE_CHECKING:
        posts: list[StubPostMixin]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.stubref} {self.template}:{self.state}>"


class StubPostMixin:
    """Columns of one history entry: an executed action.

    The stub table it points at is ``__stub_tablename__`` (``"stubber_stubs"`` by default).
    """

    __stub_tablename__ = "stubber_stubs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    action_name: Mapped[str] = mapped_column(String(255))
    source: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str | None] = mapped_column(String(255))
    to_state: Mapped[str] = mapped_column(String(255))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    delivery_id: Mapped[str | None] = mapped_column(String(255), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    @declared_attr
    def stub_id(cls) -> Mapped[int]:  # noqa: N805
        return mapped_column(ForeignKey(f"{cls.__stub_tablename__}.id", ondelete="CASCADE"), index=True)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.action_name} {self.from_state}->{self.to_state}>"


@dataclass(frozen=True)
class Models:
    """The model classes one application stores its stubs with."""

    stub: Any
    post: Any
    webhook: Any
    delivery: Any


_models: weakref.WeakKeyDictionary[Any, dict[str, Models]] = weakref.WeakKeyDictionary()


def get_models(db: SQLAlchemy, stub_model: type[Any] | None = None) -> Models:
    """Return the models for ``db``, declaring them on ``db.Model`` once.

    :param db: The host's Flask-SQLAlchemy extension.
    :param stub_model: A host model built on :class:`StubMixin`; ``None`` for the default.
    """
    per_db = _models.setdefault(db, {})
    key = stub_model.__name__ if stub_model is not None else ""
    if key in per_db:
        return per_db[key]
    if stub_model is None:
        stub_model = type("StubberStub", (StubMixin, db.Model), {"__tablename__": "stubber_stubs"})
    stub_table = stub_model.__tablename__
    suffix = "" if stub_table == "stubber_stubs" else f"_{stub_table}"
    post_model: Any = type(
        f"StubberPost{stub_model.__name__}" if suffix else "StubberPost",
        (StubPostMixin, db.Model),
        {"__tablename__": f"stubber_posts{suffix}", "__stub_tablename__": stub_table},
    )
    stub_model.posts = relationship(
        post_model, order_by=post_model.id, lazy="select", cascade="all, delete-orphan", passive_deletes=True
    )
    from .deliveries import declare_delivery_model
    from .explicit import declare_webhook_model

    models = per_db[key] = Models(
        stub=stub_model,
        post=post_model,
        webhook=declare_webhook_model(db, stub_model, suffix),
        delivery=declare_delivery_model(db, suffix),
    )
    return models
