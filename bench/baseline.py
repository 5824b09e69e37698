"""The hand-written baseline: the same behaviour as the webhook, as a competent Flask developer writes it.

Find the order by its reference with a row lock, check its state, validate the body with a
marshmallow schema, update the order, add a history row, commit, answer JSON. Its tables
have the same columns and indexes as flask-stubber's, so the database does the same work.
The schemas are built once at import; the session is Flask-SQLAlchemy's with its default
settings, so reading ``order.reference`` and ``event.id`` after the commit refreshes them
(``expire_on_commit``), which is what a plain ORM endpoint does.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, abort, jsonify, request
from marshmallow import INCLUDE, Schema, ValidationError, fields, validate
from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column

from .data import db


def _now() -> datetime:
    return datetime.now(UTC)


class Order(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "bench_orders"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    stubref: Mapped[str] = mapped_column(String(24), unique=True)
    template: Mapped[str] = mapped_column(String(255), index=True)
    state: Mapped[str] = mapped_column(String(255))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    subject: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class OrderEvent(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "bench_order_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    stub_id: Mapped[int] = mapped_column(ForeignKey("bench_orders.id", ondelete="CASCADE"), index=True)
    action_name: Mapped[str] = mapped_column(String(255))
    source: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str | None] = mapped_column(String(255))
    to_state: Mapped[str] = mapped_column(String(255))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    delivery_id: Mapped[str | None] = mapped_column(String(255), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class PaymentSchema(Schema):
    class Meta:
        unknown = INCLUDE

    amount = fields.Float(required=True, validate=validate.Range(min=0))
    currency = fields.String(validate=validate.OneOf(["ZAR", "USD"]))


class NoteSchema(Schema):
    class Meta:
        unknown = INCLUDE


#: action -> (states it may run in, the state it moves to or None, schema, merge into data's root)
ACTIONS: dict[str, tuple[frozenset[str], str | None, Schema, bool]] = {
    "payment_received": (frozenset({"awaiting_payment"}), "paid", PaymentSchema(), False),
    "add_note": (frozenset({"awaiting_payment", "paid"}), None, NoteSchema(), True),
}

blueprint = Blueprint("baseline", __name__)


def _error(status: int, error: str, **extra: Any) -> Any:
    return jsonify(success=False, error=error, **extra), status


@blueprint.post("/orders/<stubref>/<action_name>")
def order_action(stubref: str, action_name: str) -> Any:
    """Run ``action_name`` on the order ``stubref``."""
    if action_name not in ACTIONS:
        abort(404)
    states, to_state, schema, on_root = ACTIONS[action_name]
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        return _error(400, "invalid_body")
    order = db.session.execute(
        select(Order).where(Order.stubref == stubref.upper()).with_for_update()
    ).scalar_one_or_none()
    if order is None:
        return _error(404, "not_found")
    if order.state not in states:
        return _error(409, "wrong_state", state=order.state)
    try:
        validated = schema.load(payload)
    except ValidationError as exc:
        db.session.rollback()
        return _error(422, "validation_error", errors=exc.messages)
    from_state = order.state
    order.data = {**order.data, **validated} if on_root else {**order.data, "payload": validated}
    order.state = to_state or from_state
    order.updated_at = _now()
    event = OrderEvent(
        stub_id=order.id, action_name=action_name, source="webhook", from_state=from_state,
        to_state=order.state, data=validated,
    )
    db.session.add(event)
    db.session.commit()
    return jsonify(success=True, stubref=order.stubref, action_name=action_name, post_id=event.id)
