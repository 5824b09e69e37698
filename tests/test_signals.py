"""Signals: what fires, when, with which keyword arguments."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_sqlalchemy import SQLAlchemy

from flask_stubber import ActionRejected, StubberWebhooks, signals


@pytest.fixture
def events(app: Flask) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    log: list[tuple[str, dict[str, Any]]] = []
    receivers = []
    for name in ("stub_created", "webhook_received", "webhook_rejected", "action_executing", "action_executed"):
        signal = getattr(signals, name)

        def receiver(sender: Any, _name: str = name, **kwargs: Any) -> None:
            assert sender is app
            log.append((_name, kwargs))

        signal.connect(receiver, app)
        receivers.append((signal, receiver))
    yield log
    for signal, receiver in receivers:
        signal.disconnect(receiver, app)


def test_signals_are_in_their_own_namespace() -> None:
    assert signals.action_executed.name == "action-executed"
    assert signals.stub_created.name == "stub-created"


def test_successful_webhook_fires_in_order(client: FlaskClient, stub: Any, events: list[Any]) -> None:
    events.clear()
    client.post(f"/webhooks/im/{stub.stubref}/payment_received", json={"amount": 4})
    assert [name for name, _ in events] == ["webhook_received", "action_executing", "action_executed"]
    received, executing, executed = (kw for _, kw in events)
    assert received["kind"] == "implicit"
    assert received["request"].path.endswith("/payment_received")
    assert {k: executing[k] for k in ("action_name", "payload", "from_state", "to_state", "source")} == {
        "action_name": "payment_received", "payload": {"amount": 4}, "from_state": "awaiting_payment",
        "to_state": "paid", "source": "webhook"}
    assert executed["post"].action_name == "payment_received"
    assert executed["stub"].stubref == stub.stubref
    assert executed["to_state"] == "paid"


def test_stub_created_after_commit(app: Flask, stubber: StubberWebhooks, db: SQLAlchemy, events: list[Any]) -> None:
    seen_in_db: list[bool] = []

    def check(sender: Any, stub: Any, source: str) -> None:
        with db.engine.connect() as other:
            from sqlalchemy import text

            seen_in_db.append(other.execute(text("select count(*) from stubber_stubs where stubref = :r"),
                                            {"r": stub.stubref}).scalar() == 1)

    signals.stub_created.connect(check, app)
    try:
        stub = stubber.create_stub("order")
    finally:
        signals.stub_created.disconnect(check, app)
    assert events == [("stub_created", {"stub": stub, "source": "api"})]
    assert seen_in_db == [True]


def test_executing_receiver_can_veto(client: FlaskClient, app: Flask, stub: Any, stubber, db,
                                     events: list[Any]) -> None:
    def veto(sender: Any, **kwargs: Any) -> None:
        raise ActionRejected("blocked", "Payments are paused.")

    signals.action_executing.connect(veto, app)
    try:
        response = client.post(f"/webhooks/im/{stub.stubref}/payment_received", json={"amount": 4})
    finally:
        signals.action_executing.disconnect(veto, app)
    assert response.status_code == 409
    assert response.get_json()["error"] == "blocked"
    names = [name for name, _ in events]
    assert "action_executed" not in names
    assert names[-1] == "webhook_rejected"
    assert events[-1][1] == {"error": "blocked", "status": 409, "stubref": stub.stubref,
                             "action_name": "payment_received"}
    db.session.rollback()
    assert stubber.get_stub(stub.stubref).state == "awaiting_payment"


def test_executed_receiver_failure_is_logged_and_work_kept(client: FlaskClient, app: Flask, stub: Any,
                                                           stubber, db, caplog: Any) -> None:
    def broken(sender: Any, **kwargs: Any) -> None:
        raise RuntimeError("receiver bug")

    signals.action_executed.connect(broken, app)
    try:
        response = client.post(f"/webhooks/im/{stub.stubref}/payment_received", json={"amount": 4})
    finally:
        signals.action_executed.disconnect(broken, app)
    assert response.status_code == 200
    assert "action_executed failed" in caplog.text
    db.session.rollback()
    assert stubber.get_stub(stub.stubref).state == "paid"


def test_no_executed_signal_for_rolled_back_work(client: FlaskClient, stub: Any, stubber, events: list[Any]) -> None:
    stubber.action_handler("order", "payment_received")(lambda s, p, c: 1 / 0)
    events.clear()
    assert client.post(f"/webhooks/im/{stub.stubref}/payment_received", json={"amount": 4}).status_code == 500
    assert [name for name, _ in events] == ["webhook_received", "webhook_rejected"]
