"""Faults: the database going away (through a TCP proxy that is cut), failing handlers and
receivers. Every one answers in problem+json and leaves nothing half-written."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import event
from sqlalchemy.engine import make_url

from flask_stubber import ActionRejected, StubberWebhooks, signals

from .conftest import count_rows, make_app
from .proxy import TCPProxy
from .test_webhooks import assert_problem


def state_of(app: Flask, db: SQLAlchemy, stubber: StubberWebhooks, stubref: str) -> tuple[Any, ...]:
    models = app.extensions["stubber"].engine.models
    stub = stubber.get_stub(stubref)
    return (stub.state, stub.data, count_rows(db, models.post), count_rows(db, models.delivery),
            count_rows(db, models.stub))


def pay(client: FlaskClient, stubref: str, key: str | None = "d-1") -> Any:
    return client.post(f"/webhooks/im/{stubref}/payment_received", json={"amount": 3},
                       headers={"Idempotency-Key": key} if key else {})


@pytest.fixture
def proxied(database_url: str, db: SQLAlchemy, stubber: StubberWebhooks) -> Iterator[tuple[Flask, TCPProxy]]:
    """An app that reaches its database server through a proxy the test can cut."""
    if database_url.startswith("sqlite"):
        pytest.skip("SQLite is a file in the process: there is no server to lose.")
    url = make_url(database_url)
    proxy = TCPProxy(url.host or "127.0.0.1", url.port or (5432 if url.get_backend_name() == "postgresql" else 3306))
    app = make_app(url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False), db, stubber)
    try:
        with app.app_context():
            db.drop_all()
            db.create_all()
        yield app, proxy
    finally:
        proxy.restore()
        with app.app_context():
            db.session.remove()
            db.drop_all()
            db.engine.dispose()
        proxy.close()


def assert_unavailable(response: Any) -> None:
    assert_problem(response, 503, "unavailable")
    assert int(response.headers["Retry-After"]) > 0


@pytest.mark.parametrize("key", [None, "d-1"], ids=["no-delivery-id", "delivery-id"])
def test_database_gone_before_the_request_is_503(proxied: tuple[Flask, TCPProxy], stubber: StubberWebhooks,
                                                 db: SQLAlchemy, key: str | None) -> None:
    app, proxy = proxied
    with app.app_context():
        stubref = stubber.create_stub("order", {"customer": "ada"}).stubref
        before = state_of(app, db, stubber, stubref)
        db.session.remove()
    rejected: list[dict[str, Any]] = []
    signals.webhook_rejected.connect(lambda sender, **kw: rejected.append(kw), app, weak=False)
    proxy.cut()
    assert_unavailable(pay(app.test_client(), stubref, key))
    assert [(r["error"], r["status"]) for r in rejected] == [("unavailable", 503)]
    proxy.restore()
    with app.app_context():
        assert state_of(app, db, stubber, stubref) == before
    assert pay(app.test_client(), stubref, key).status_code == 200


def _cut_in_handler(app: Flask, stubber: StubberWebhooks, db: SQLAlchemy, proxy: TCPProxy) -> Callable[[], None]:
    @stubber.action_handler("order", "payment_received")
    def handler(stub: Any, payload: Any, ctx: Any) -> None:
        stub.data["half"] = "written"
        proxy.cut()

    return lambda: None


def _cut_in_receiver(app: Flask, stubber: StubberWebhooks, db: SQLAlchemy, proxy: TCPProxy) -> Callable[[], None]:
    def receiver(sender: Any, **kw: Any) -> None:
        kw["stub"].data["half"] = "written"
        proxy.cut()

    signals.action_executing.connect(receiver, app)
    return lambda: signals.action_executing.disconnect(receiver, app)


def _cut_before_commit(app: Flask, stubber: StubberWebhooks, db: SQLAlchemy, proxy: TCPProxy) -> Callable[[], None]:
    """Cut after the post and the delivery row were flushed, just before COMMIT is sent."""
    delivery = app.extensions["stubber"].engine.models.delivery
    flushed: list[bool] = []
    with app.app_context():
        session = db.session

    def after_flush(sess: Any, context: Any) -> None:
        flushed.extend(isinstance(obj, delivery) for obj in sess.new)

    def before_commit(sess: Any) -> None:
        if any(flushed):
            proxy.cut()

    event.listen(session, "after_flush", after_flush)
    event.listen(session, "before_commit", before_commit)

    def undo() -> None:
        event.remove(session, "after_flush", after_flush)
        event.remove(session, "before_commit", before_commit)

    return undo


@pytest.mark.parametrize("cut", [_cut_in_handler, _cut_in_receiver, _cut_before_commit],
                         ids=["in-handler", "in-action-executing", "before-commit"])
def test_database_gone_mid_request_is_503_and_nothing_half_written(
    proxied: tuple[Flask, TCPProxy], stubber: StubberWebhooks, db: SQLAlchemy, cut: Any,
) -> None:
    app, proxy = proxied
    with app.app_context():
        stubref = stubber.create_stub("order", {"customer": "ada"}).stubref
        before = state_of(app, db, stubber, stubref)
        db.session.remove()
    undo = cut(app, stubber, db, proxy)
    try:
        assert_unavailable(pay(app.test_client(), stubref))
    finally:
        undo()
        stubber._handlers.clear()
    proxy.restore()
    with app.app_context():
        assert state_of(app, db, stubber, stubref) == before
    # The delivery id was not used up: the retry runs the action, and its repeat replays it.
    assert "Idempotent-Replayed" not in pay(app.test_client(), stubref).headers
    assert pay(app.test_client(), stubref).headers["Idempotent-Replayed"] == "true"


# -- failing handlers and receivers (every database) ------------------------------------


def _handler_raises(app: Flask, stubber: StubberWebhooks) -> Callable[[], None]:
    @stubber.action_handler("order", "payment_received")
    def handler(stub: Any, payload: Any, ctx: Any) -> None:
        stub.data["half"] = "written"
        stubber.get_task("create_stub")(_task_ctx(ctx), {"template": "order"})
        raise RuntimeError("boom")

    return lambda: None


def _receiver_raises(exc: Exception) -> Callable[[Flask, StubberWebhooks], Callable[[], None]]:
    def install(app: Flask, stubber: StubberWebhooks) -> Callable[[], None]:
        def receiver(sender: Any, **kw: Any) -> None:
            kw["stub"].data["half"] = "written"
            raise exc

        signals.action_executing.connect(receiver, app)
        return lambda: signals.action_executing.disconnect(receiver, app)

    return install


def _task_ctx(ctx: Any) -> Any:
    from flask import current_app

    from flask_stubber.tasks import TaskContext

    return TaskContext(engine=current_app.extensions["stubber"].engine, action=ctx)


@pytest.mark.parametrize(("install", "status", "code"), [
    pytest.param(_handler_raises, 500, "internal_error", id="handler-raises"),
    pytest.param(_receiver_raises(RuntimeError("boom")), 500, "internal_error", id="receiver-raises"),
    pytest.param(_receiver_raises(ActionRejected("vetoed", "Not today.", status=422)), 422, "vetoed",
                 id="receiver-vetoes"),
])
def test_failing_handler_or_receiver_rolls_everything_back(client: FlaskClient, app: Flask, stub: Any,
                                                           stubber: StubberWebhooks, db: SQLAlchemy,
                                                           install: Any, status: int, code: str) -> None:
    before = state_of(app, db, stubber, stub.stubref)
    undo = install(app, stubber)
    try:
        body = assert_problem(pay(client, stub.stubref), status, code)
    finally:
        undo()
        stubber._handlers.clear()
    assert "boom" not in str(body)
    assert state_of(app, db, stubber, stub.stubref) == before
    ok = pay(client, stub.stubref)
    assert (ok.status_code, ok.headers.get("Idempotent-Replayed")) == (200, None)
