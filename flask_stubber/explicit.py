"""Explicit webhooks: an unguessable uuid bound to one action on one stub.

``/webhooks/ex/<uuid>`` runs the bound action, which receives
``{"lid": "<uuid>", "payload": {...}}``; the action's schema validates the inner
payload. The action must be available in the stub's current state, but it does
not need ``webhooks.enable``: holding the uuid is the permission.

A webhook is active until it is revoked (then ``404 webhook_not_found``, like an
unknown uuid), its ``expires_at`` passes or, when single-use, it has run once
(both ``410 webhook_gone``). A call checks and consumes the webhook inside the
action's transaction, after the stub's row lock, so two simultaneous calls of a
single-use webhook execute once and a refused action leaves it unused.
"""

from __future__ import annotations

import uuid as uuidlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from flask import url_for
from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String, select
from sqlalchemy.orm import Mapped, declared_attr, joinedload, mapped_column, relationship

from .errors import ActionNotFound, WebhookConflict, WebhookGone, WebhookNotFound
from .models import utcnow

if TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy

    from .engine import Engine, Outcome

#: The ``source`` recorded on posts made through ``/webhooks/ex/<uuid>``.
SOURCE = "explicit_webhook"


class WebhookMixin:
    """Columns of an explicit webhook: an unguessable uuid bound to one action on one stub.

    flask-stubber declares the model on the host's ``db.Model`` next to the stub model: the
    table ``stubber_webhooks`` (``stubber_webhooks_<table>`` for a host's own stub model),
    reached from a stub as ``stub.webhooks``, oldest first, and deleted with it. Its columns:
    ``uuid`` (canonical, lower case), ``action_name``, ``stub_id``, ``single_use``,
    ``expires_at``, ``used_at`` (the time of the last execution through the webhook),
    ``revoked_at`` and ``created_at``, times in UTC.

    The stub table it points at is ``__stub_tablename__`` (``"stubber_stubs"`` by default).

    .. versionadded:: 0.1
    """

    __stub_tablename__ = "stubber_stubs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    action_name: Mapped[str] = mapped_column(String(255))
    single_use: Mapped[bool] = mapped_column(Boolean, default=False)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    if TYPE_CHECKING:
        stub: Any

    @declared_attr
    def stub_id(cls) -> Mapped[int]:  # noqa: N805
        return mapped_column(ForeignKey(f"{cls.__stub_tablename__}.id", ondelete="CASCADE"), index=True)

    @property
    def url(self) -> str:
        """The absolute URL of this webhook, ``.../webhooks/ex/<uuid>``.

        :raises RuntimeError: outside a request when ``SERVER_NAME`` is not configured.
        """
        return url_for("stubber.explicit", uuid=self.uuid, _external=True)

    def status(self, now: datetime | None = None) -> str:
        """Return ``"active"``, ``"revoked"``, ``"used"`` (single-use, run once) or ``"expired"``.

        :param now: The time to judge the expiry at; the current time when omitted.
        """
        if self.revoked_at is not None:
            return "revoked"
        if self.single_use and self.used_at is not None:
            return "used"
        if self.expires_at is not None and _aware(self.expires_at) <= (now or utcnow()):
            return "expired"
        return "active"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.uuid} {self.action_name}>"


def declare_webhook_model(db: SQLAlchemy, stub_model: Any, suffix: str) -> Any:
    """Declare the webhook model for ``stub_model`` on ``db.Model``: ``stubber_webhooks`` + ``suffix``."""
    model: Any = type(
        f"StubberWebhook{stub_model.__name__}" if suffix else "StubberWebhook",
        (WebhookMixin, db.Model),
        {"__tablename__": f"stubber_webhooks{suffix}", "__stub_tablename__": stub_model.__tablename__},
    )
    model.stub = relationship(stub_model, back_populates="webhooks")
    # Not passive: SQLite does not enforce the foreign key's ON DELETE CASCADE by default.
    stub_model.webhooks = relationship(model, back_populates="stub", order_by=model.id, cascade="all, delete-orphan")
    return model


def normalize_uuid(value: Any) -> str | None:
    """Return ``value`` as a canonical lower-case uuid string, or ``None`` when it is not a uuid."""
    try:
        return str(uuidlib.UUID(str(value).strip()))
    except ValueError:
        return None


# -- creating and revoking ---------------------------------------------------------------


@dataclass(frozen=True)
class WebhookSpec:
    """The checked arguments of one explicit webhook: see :meth:`check`."""

    action_name: str
    uuid: str | None
    expires_at: datetime | None
    single_use: bool

    @classmethod
    def check(
        cls,
        action_name: str,
        *,
        uuid: str | None = None,
        expires_in: float | timedelta | None = None,
        single_use: bool = False,
    ) -> WebhookSpec:
        """Check the arguments before anything is written.

        :param uuid: A caller-given uuid; a fresh :func:`uuid.uuid4` is made when ``None``.
        :param expires_in: Seconds (or a timedelta) until the webhook expires; ``None`` never.
        :raises ValueError: for a ``uuid`` that is not a uuid, or a non-positive ``expires_in``.
        """
        key = None if uuid is None else normalize_uuid(uuid)
        if uuid is not None and key is None:
            raise ValueError(f"The webhook uuid {uuid!r} is not a uuid; omit it to get a fresh one.")
        expires_at = None
        if expires_in is not None:
            delta = expires_in if isinstance(expires_in, timedelta) else timedelta(seconds=float(expires_in))
            if delta <= timedelta(0):
                raise ValueError("expires_in must be a positive number of seconds, or None for no expiry.")
            expires_at = utcnow() + delta
        return cls(action_name=action_name, uuid=key, expires_at=expires_at, single_use=single_use)


def bind_webhook(engine: Engine, stub: Any, spec: WebhookSpec) -> Any:
    """Add the webhook ``spec`` describes to ``stub``, in the running transaction; return it, flushed.

    A caller-given uuid already bound to the same stub and action is an idempotent upsert:
    the row is kept, with this call's expiry and ``single_use``; its use and revocation stay.

    :raises ActionNotFound: when the stub's template has no such action.
    :raises WebhookConflict: when the uuid is bound to another stub or action, or was revoked.
    """
    action_name = spec.action_name
    template = engine.ext.get_template(stub.template)
    if template is None or action_name not in template.actions:
        raise ActionNotFound(f"The template of stub {stub.stubref} has no action {action_name!r}.")
    model = engine.models.webhook
    session = engine.session
    hook = session.scalars(select(model).where(model.uuid == spec.uuid)).first() if spec.uuid else None
    if hook is None:
        hook = model(
            uuid=spec.uuid or str(uuidlib.uuid4()), stub_id=stub.id, action_name=action_name,
            single_use=spec.single_use, expires_at=spec.expires_at,
        )
        session.add(hook)
    elif hook.stub_id != stub.id or hook.action_name != action_name:
        raise WebhookConflict(
            f"The webhook uuid {spec.uuid} is already bound to another stub or action; use another uuid."
        )
    elif hook.revoked_at is not None:
        raise WebhookConflict(f"The webhook uuid {spec.uuid} was revoked and cannot be used again; use another uuid.")
    else:
        hook.single_use, hook.expires_at = spec.single_use, spec.expires_at
    session.flush()
    return hook


def create_webhook(engine: Engine, stubref: str, spec: WebhookSpec) -> Any:
    """Bind an explicit webhook in a transaction of its own, with the stub locked; see :func:`bind_webhook`.

    :raises StubNotFound: when no stub has ``stubref``.
    """
    return engine.transaction(lambda: bind_webhook(engine, engine._lock(stubref), spec))


def revoke_webhook(engine: Engine, uuid: str) -> None:
    """Revoke the webhook ``uuid`` for good; revoking it again does nothing.

    :raises WebhookNotFound: when no webhook has that uuid.
    """
    model = engine.models.webhook

    def work() -> None:
        key = normalize_uuid(uuid)
        hook = engine.session.scalars(select(model).where(model.uuid == key)).first() if key else None
        if hook is None:
            raise WebhookNotFound(f"No explicit webhook has the uuid {uuid!r}.")
        if hook.revoked_at is None:
            hook.revoked_at = utcnow()

    engine.transaction(work)


# -- calling -------------------------------------------------------------------------------


def find_webhook(engine: Engine, uuid: str) -> Any:
    """Return the active webhook ``uuid``, with its ``stub`` loaded.

    :raises WebhookNotFound: when it is unknown or revoked.
    :raises WebhookGone: when it expired or was single-use and used.
    """
    model = engine.models.webhook
    key = normalize_uuid(uuid)
    hook = None
    if key is not None:
        hook = engine.session.scalars(select(model).options(joinedload(model.stub)).where(model.uuid == key)).first()
    return _check(hook, uuid)


def run_webhook(engine: Engine, hook: Any, payload: dict[str, Any], *, method: str | None = None) -> Outcome:
    """Run the action bound to ``hook``, consuming it in the action's transaction.

    :param hook: A webhook returned by :func:`find_webhook`.
    :param method: The HTTP method, checked against the action's ``methods``.
    """
    model = engine.models.webhook
    hook_id, uuid, stubref, action_name = hook.id, hook.uuid, hook.stub.stubref, hook.action_name

    def consume(stub: Any) -> None:
        # A locking read returns the committed row even under MariaDB's REPEATABLE READ.
        stmt = select(model).where(model.id == hook_id).with_for_update().execution_options(populate_existing=True)
        _check(engine.session.scalars(stmt).first(), uuid).used_at = utcnow()

    return engine.run_action(
        stubref, action_name, payload, source=SOURCE, method=method, lid=uuid, before_execute=consume
    )


def _check(hook: Any, uuid: str) -> Any:
    """Return ``hook`` when it is active; raise the refusal its status calls for."""
    status = "unknown" if hook is None else hook.status()
    if status in ("unknown", "revoked"):
        raise WebhookNotFound(f"No active explicit webhook has the uuid {uuid!r}.")
    if status == "used":
        raise WebhookGone(f"The single-use webhook {uuid!r} was used already.")
    if status == "expired":
        raise WebhookGone(f"The webhook {uuid!r} expired.")
    return hook


def _aware(value: datetime) -> datetime:
    """SQLite and MariaDB hand back naive datetimes; they are stored in UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
