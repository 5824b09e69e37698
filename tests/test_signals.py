"""Signals: what fires, when, with which keyword arguments."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from flask_sqlalchemy import SQLAlchemy

from flask_stubber import ActionRejected, StubberWebhooks, signals
from flask_stubber.testing import SignalRecorder, assert_not_posted, assert_problem


def test_signals_are_in_their_own_namespace() -> None:
    assert signals.action_executed.name == "action-executed"
    assert signals.stub_created.name == "stub-created"


def test_successful_webhook_fires_in_order(client: FlaskClient, stub: Any, stubber_signals: SignalRecorder) -> None:
    stubber_signals.clear()
    client.post(f"/webhooks/im/{stub.stubref}/payment_received", json={"amount": 4})
    assert stubber_signals.names() == ["webhook_received", "action_executing", "action_executed"]
    received, executing, executed = (kw for _, kw in stubber_signals.events)
    assert received["kind"] == "implicit"
    assert received["request"].path == f"/webhooks/im/{stub.stubref}/payment_received"
    assert {k: executing[k] for k in ("action_name", "payload", "from_state", "to_state", "source")} == {
        "action_name": "payment_received", "payload": {"amount": 4}, "from_state": "awaiting_payment",
        "to_state": "paid", "source": "webhook"}
    assert executed["post"].action_name == "payment_received"
    assert executed["stub"].stubref == stub.stubref
    assert executed["to_state"] == "paid"


def test_stub_created_after_commit(app: Flask, stubber: StubberWebhooks, db: SQLAlchemy,
                                  stubber_signals: SignalRecorder) -> None:
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
    assert stubber_signals.events == [("stub_created", {"stub": stub, "source": "api"})]
    assert seen_in_db == [True]


def test_executing_receiver_can_veto(client: FlaskClient, app: Flask, stub: Any, stubber, db,
                                     stubber_signals: SignalRecorder) -> None:
    def veto(sender: Any, **kwargs: Any) -> None:
        raise ActionRejected("blocked", "Payments are paused.")

    signals.action_executing.connect(veto, app)
    try:
        response = client.post(f"/webhooks/im/{stub.stubref}/payment_received", json={"amount": 4})
    finally:
        signals.action_executing.disconnect(veto, app)
    assert assert_problem(response, 409, "blocked")["detail"] == "Payments are paused."
    names = stubber_signals.names()
    assert "action_executed" not in names
    assert names[-1] == "webhook_rejected"
    assert stubber_signals.of("webhook_rejected") == [{"error": "blocked", "status": 409, "stubref": stub.stubref,
                                                       "action_name": "payment_received"}]
    db.session.rollback()
    assert stubber.get_stub(stub.stubref).state == "awaiting_payment"
    assert_not_posted(stub)


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


def test_no_executed_signal_for_rolled_back_work(client: FlaskClient, stub: Any, stubber,
                                                 stubber_signals: SignalRecorder) -> None:
    stubber.action_handler("order", "payment_received")(lambda s, p, c: 1 / 0)
    stubber_signals.clear()
    assert client.post(f"/webhooks/im/{stub.stubref}/payment_received", json={"amount": 4}).status_code == 500
    assert stubber_signals.names() == ["webhook_received", "webhook_rejected"]
    assert_not_posted(stub)
