"""Recording an execution: the statements the recorder sends, and the unit of work where it stands aside."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from flask_sqlalchemy.track_modifications import models_committed
from sqlalchemy import String, event, inspect
from sqlalchemy.orm import Mapped, mapped_column

from flask_stubber import StubberWebhooks, StubMixin

from .conftest import ORDER, make_app, own_tables


def _state_engine() -> Any:
    from flask import current_app

    return current_app.extensions["stubber"].engine


@pytest.fixture(params=["statements", "unit_of_work"])
def recording(request: pytest.FixtureRequest, app: Flask, stubber: StubberWebhooks, db: SQLAlchemy) -> Iterator[str]:
    """Record through the recorder's statements, or (with a flush listener) through the unit of work."""
    if request.param == "statements":
        yield request.param
        return
    listener = lambda session, context, instances: None  # noqa: E731
    event.listen(db.session, "before_flush", listener)
    yield request.param
    event.remove(db.session, "before_flush", listener)


def test_both_ways_store_the_same(app: Flask, stubber: StubberWebhooks, db: SQLAlchemy, stub: Any,
                                  recording: str) -> None:
    engine = _state_engine()
    assert engine.recorder.usable(db.session()) is (recording == "statements")
    before, ref = stub.updated_at, stub.stubref
    response = app.test_client().post(f"/webhooks/im/{ref}/payment_received", json={"amount": 7})
    assert response.status_code == 200
    post_id = response.json["post_id"]
    db.session.remove()
    got = stubber.get_stub(ref)
    assert (got.state, got.data, got.subject) == ("paid", {"customer": "ada", "payload": {"amount": 7}}, None)
    assert got.updated_at >= before  # MySQL keeps whole seconds
    assert [(p.id, p.action_name, p.source, p.from_state, p.to_state, p.data, p.delivery_id) for p in got.posts] == [
        (post_id, "payment_received", "webhook", "awaiting_payment", "paid", {"amount": 7}, None)
    ]
    assert got.posts[0].created_at is not None


def test_post_and_stub_are_usable_in_the_session(app: Flask, stubber: StubberWebhooks, db: SQLAlchemy, stub: Any,
                                                  recording: str) -> None:
    post = stubber.run_action(stub, "payment_received", {"amount": 3})
    assert inspect(post).persistent
    assert (post.id, post.to_state, post.data) == (post.id, "paid", {"amount": 3})
    assert post in db.session.get(type(stub), stub.id).posts
    assert not db.session.dirty and not db.session.new


def test_handler_changes_to_other_columns_are_flushed(app: Flask, stubber: StubberWebhooks, db: SQLAlchemy,
                                                      stub: Any, recording: str) -> None:
    @stubber.action_handler("order", "add_note")
    def retitle(stub: Any, payload: dict[str, Any], ctx: Any) -> None:
        stub.subject = payload["subject"]
        stub.data["seen"] = True

    ref = stub.stubref
    stubber.run_action(stub, "add_note", {"subject": "Rush order"})
    db.session.remove()
    got = stubber.get_stub(ref)
    assert (got.subject, got.state, got.data["seen"], got.data["subject"]) == (
        "Rush order", "awaiting_payment", True, "Rush order")


def test_mapper_events_see_the_change(app: Flask, stubber: StubberWebhooks, db: SQLAlchemy, stub: Any) -> None:
    calls: list[str] = []
    model = _state_engine().stub_model
    listener = lambda mapper, connection, target: calls.append(target.state)  # noqa: E731
    event.listen(model, "before_update", listener)
    try:
        assert not _state_engine().recorder.usable(db.session())
        stubber.run_action(stub, "cancel")
    finally:
        event.remove(model, "before_update", listener)
    assert calls == ["cancelled"]




def test_tracked_modifications_include_stub_and_post(database_url: str, db: SQLAlchemy,
                                                     stubber: StubberWebhooks) -> None:
    app = make_app(database_url, db, stubber, SQLALCHEMY_TRACK_MODIFICATIONS=True)
    seen: list[tuple[str, str]] = []

    def receiver(sender: Flask, changes: list[tuple[Any, str]]) -> None:
        seen.extend((type(model).__name__, operation) for model, operation in changes)

    with app.app_context(), own_tables(db):
        stub = stubber.create_stub("order")
        models_committed.connect(receiver, app)
        try:
            stubber.run_action(stub, "cancel")
        finally:
            models_committed.disconnect(receiver, app)
        assert sorted(seen) == [("StubberPost", "insert"), ("StubberStub", "update")]


def test_host_model_onupdate_columns_are_kept(database_url: str, db: SQLAlchemy) -> None:
    class Ticket(StubMixin, db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "recorded_tickets"
        revision: Mapped[str | None] = mapped_column(String(10), default=None, onupdate="revised")

    ext = StubberWebhooks(db=db, stub_model=Ticket)
    ext.register_template(ORDER)
    app = make_app(database_url, db, ext)
    with app.app_context(), own_tables(db):
        ref = ext.create_stub("order").stubref
        assert ext.get_stub(ref).revision is None
        db.session.remove()
        ext.run_action(ref, "payment_received", {"amount": 1})
        db.session.remove()
        got: Any = ext.get_stub(ref)
        assert (got.state, got.revision) == ("paid", "revised")
