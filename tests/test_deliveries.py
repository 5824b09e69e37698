"""Idempotent deliveries: replays, reused ids, in-flight duplicates, refusals, TTL and pruning."""

from __future__ import annotations

import copy
import json
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from flask import Flask, Response
from flask.testing import FlaskClient
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import event, select, update

from flask_stubber import ActionRejected, StubberWebhooks, signals
from flask_stubber.models import utcnow

from . import signing
from .conftest import ORDER, count_rows, make_app
from .test_concurrency import executions, fire, server  # noqa: F401  (the threaded server fixture)
from .test_verifiers import SIGNED
from .test_webhooks import assert_problem


def pay(client: FlaskClient, stub: Any, key: str | None = "delivery-1", amount: Any = 5,
        header: str = "Idempotency-Key", query: str = "") -> Response:
    headers = {header: key} if key is not None else {}
    return client.post(f"/webhooks/im/{stub.stubref}/payment_received{query}", json={"amount": amount},
                       headers=headers)


def note(client: FlaskClient, stub: Any, key: str, text: str = "hi") -> Response:
    return client.post(f"/webhooks/im/{stub.stubref}/add_note", json={"note": text},
                       headers={"Idempotency-Key": key})


def models(app: Flask) -> Any:
    return app.extensions["stubber"].engine.models


def snapshot(app: Flask, db: SQLAlchemy, stubber: StubberWebhooks, stub: Any) -> tuple[Any, ...]:
    fresh = stubber.get_stub(stub.stubref)
    return fresh.state, fresh.data, count_rows(db, models(app).post), count_rows(db, models(app).delivery)


def age_deliveries(app: Flask, db: SQLAlchemy, seconds: int) -> None:
    model = models(app).delivery
    db.session.execute(update(model).values(created_at=utcnow() - timedelta(seconds=seconds)))
    db.session.commit()


@pytest.mark.parametrize("header", ["Idempotency-Key", "webhook-id", "svix-id"])
def test_repeat_of_a_finished_delivery_replays_the_stored_response(client: FlaskClient, app: Flask, stub: Any,
                                                                   stubber, db, header: str) -> None:
    first = pay(client, stub, header=header)
    assert first.status_code == 200
    assert "Idempotent-Replayed" not in first.headers
    again = pay(client, stub, header=header)
    assert again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    assert again.mimetype == "application/json"
    fresh = stubber.get_stub(stub.stubref)
    assert [(p.action_name, p.delivery_id) for p in fresh.posts] == [("payment_received", "delivery-1")]
    [row] = db.session.scalars(select(models(app).delivery)).all()
    assert (row.scope, row.key, row.stubref, row.action_name, row.post_id, row.status) == (
        f"{stub.stubref}/payment_received", "delivery-1", stub.stubref, "payment_received",
        first.get_json()["post_id"], 200)


def test_the_response_sent_first_is_the_one_replayed(client: FlaskClient, stub: Any) -> None:
    first = pay(client, stub, query="?_synchronous=true")
    assert first.get_json()["state"] == "paid"
    assert client.post(f"/webhooks/im/{stub.stubref}/add_note", json={"later": 1}).status_code == 200
    again = pay(client, stub, query="?_synchronous=true")
    assert again.get_json() == first.get_json()
    assert "later" not in again.get_json()["data"]


@pytest.mark.parametrize("change", [
    pytest.param(lambda c, s: pay(c, s, amount=6), id="other-body"),
    pytest.param(lambda c, s: c.get(f"/webhooks/im/{s.stubref}/payment_received?amount=5",
                                    headers={"Idempotency-Key": "delivery-1"}), id="other-method"),
    pytest.param(lambda c, s: c.post(f"/webhooks/im/{s.stubref}/payment_received", data={"amount": "5"},
                                     headers={"Idempotency-Key": "delivery-1"}), id="other-content-type"),
])
def test_same_id_with_another_request_is_422(client: FlaskClient, app: Flask, stub: Any, stubber, db,
                                             change: Any) -> None:
    assert pay(client, stub).status_code == 200
    before = snapshot(app, db, stubber, stub)
    rejected: list[str] = []
    signals.webhook_rejected.connect(lambda sender, **kw: rejected.append(kw["error"]), app, weak=False)
    body = assert_problem(change(client, stub), 422, "idempotency_key_reused")
    assert "different request" in body["detail"]
    assert rejected == ["idempotency_key_reused"]
    assert snapshot(app, db, stubber, stub) == before


def test_same_id_on_another_target_is_another_delivery(client: FlaskClient, stub: Any, stubber, db) -> None:
    other = stubber.create_stub("order")
    assert pay(client, stub).status_code == 200
    assert "Idempotent-Replayed" not in pay(client, other).headers
    assert note(client, stub, "delivery-1").status_code == 200
    assert [s.state for s in (stubber.get_stub(stub.stubref), stubber.get_stub(other.stubref))] == ["paid", "paid"]


def test_refused_deliveries_are_not_recorded_and_retry_afresh(client: FlaskClient, app: Flask, stub: Any,
                                                               stubber, db) -> None:
    busy = {"refuse": True}

    @stubber.action_handler("order", "payment_received")
    def gateway(stub: Any, payload: Any, ctx: Any) -> None:
        if busy["refuse"]:
            raise ActionRejected("ledger_closed", "The ledger is closed; retry later.", status=409)

    before = snapshot(app, db, stubber, stub)
    assert_problem(pay(client, stub, amount=-1), 422, "validation_error")
    assert_problem(pay(client, stub), 409, "ledger_closed")
    assert snapshot(app, db, stubber, stub) == before
    busy["refuse"] = False
    ok = pay(client, stub)
    assert ok.status_code == 200
    assert "Idempotent-Replayed" not in ok.headers
    assert stubber.get_stub(stub.stubref).state == "paid"


def test_delivery_in_flight_is_409(app: Flask, stub: Any, stubber, db) -> None:
    entered, release = threading.Event(), threading.Event()

    @stubber.action_handler("order", "payment_received")
    def slow(stub: Any, payload: Any, ctx: Any) -> None:
        entered.set()
        assert release.wait(30)

    results: list[Response] = []
    stub = SimpleNamespace(stubref=stub.stubref)  # plain data: other threads have their own sessions
    first = threading.Thread(target=lambda: results.append(pay(app.test_client(), stub)))
    first.start()
    try:
        assert entered.wait(30)
        before = snapshot(app, db, stubber, stub)
        db.session.rollback()
        body = assert_problem(pay(app.test_client(), stub), 409, "idempotency_conflict")
        assert "still being processed" in body["detail"]
        assert snapshot(app, db, stubber, stub) == before
        db.session.rollback()
    finally:
        release.set()
        first.join(30)
    assert results[0].status_code == 200
    again = pay(app.test_client(), stub)
    assert (again.status_code, again.headers.get("Idempotent-Replayed")) == (200, "true")
    assert again.get_json() == results[0].get_json()


def test_expired_delivery_is_forgotten(client: FlaskClient, app: Flask, stub: Any, stubber, db) -> None:
    assert note(client, stub, "n-1").status_code == 200
    assert note(client, stub, "n-1").headers.get("Idempotent-Replayed") == "true"
    age_deliveries(app, db, 86400 + 1)
    fresh = note(client, stub, "n-1")
    assert "Idempotent-Replayed" not in fresh.headers
    assert len(stubber.get_stub(stub.stubref).posts) == 2
    assert count_rows(db, models(app).delivery) == 1


@pytest.mark.parametrize("app_config", [{"STUBBER_IDEMPOTENCY_TTL": 600}])
def test_prune_deliveries(client: FlaskClient, app: Flask, stub: Any, stubber, db) -> None:
    for index in range(3):
        assert note(client, stub, f"old-{index}").status_code == 200
    age_deliveries(app, db, 601)
    for index in range(2):
        assert note(client, stub, f"new-{index}").status_code == 200
    assert stubber.prune_deliveries() == 3
    assert sorted(db.session.scalars(select(models(app).delivery.key))) == ["new-0", "new-1"]
    assert stubber.prune_deliveries() == 0
    assert stubber.prune_deliveries(older_than=0) == 2


def test_old_deliveries_are_pruned_now_and_then(client: FlaskClient, app: Flask, stub: Any, db) -> None:
    store = app.extensions["stubber"].deliveries
    keys = lambda: sorted(db.session.scalars(select(models(app).delivery.key)))  # noqa: E731
    assert note(client, stub, "a").status_code == 200
    age_deliveries(app, db, 86400 + 1)
    # The first recorded delivery of the process pruned (nothing yet); the next prune is due in an hour.
    assert note(client, stub, "b").status_code == 200
    assert keys() == ["a", "b"]
    store._next_prune = 0.0
    assert note(client, stub, "c").status_code == 200
    assert keys() == ["b", "c"]


def test_long_delivery_ids_are_stored_hashed(client: FlaskClient, app: Flask, stub: Any, db) -> None:
    key = "k" * 5000
    assert pay(client, stub, key=key).status_code == 200
    assert pay(client, stub, key=key).headers.get("Idempotent-Replayed") == "true"
    stored = db.session.scalar(select(models(app).delivery.key))
    assert stored.startswith("sha256:") and len(stored) == 71


# -- delivery ids vouched for by verifiers ------------------------------------------------


@pytest.fixture
def signed_app(database_url: str, db: SQLAlchemy) -> Iterator[tuple[Flask, StubberWebhooks]]:
    ext = StubberWebhooks()
    ext.register_template(copy.deepcopy(SIGNED))
    app = make_app(database_url, db, ext, STUBBER_VERIFIERS=signing.VERIFIERS)
    with app.app_context():
        db.drop_all()
        db.create_all()
        yield app, ext
        db.session.remove()
        db.drop_all()
        db.engine.dispose()


@pytest.mark.parametrize(("action", "sign", "expected"), [
    pytest.param("payments", lambda b: {**signing.standard(b, msg_id="msg_42"), "Idempotency-Key": "ignored"},
                 "msg_42", id="standard-webhooks-id"),
    pytest.param("stripe", signing.stripe_signature, "evt_1", id="stripe-event-id"),
    pytest.param("github", lambda b: signing.github(b, delivery="gh-7"), "gh-7", id="github-delivery"),
    pytest.param("partner", lambda b: {**signing.partner(b), "Idempotency-Key": "pk-1"}, "pk-1",
                 id="bearer-with-idempotency-key"),
])
def test_verified_deliveries_replay(signed_app: tuple[Flask, StubberWebhooks], db: SQLAlchemy, action: str,
                                    sign: Any, expected: str) -> None:
    app, ext = signed_app
    stub = ext.create_stub("signed")
    client = app.test_client()
    body = json.dumps({"id": "evt_1", "n": 1}).encode()
    url = f"/webhooks/im/{stub.stubref}/{action}"
    first = client.post(url, data=body, headers=sign(body), content_type="application/json")
    assert first.status_code == 200
    again = client.post(url, data=body, headers=sign(body), content_type="application/json")
    assert (again.status_code, again.headers.get("Idempotent-Replayed")) == (200, "true")
    assert [p.delivery_id for p in ext.get_stub(stub.stubref).posts] == [expected]


def test_a_forged_repeat_gets_401_not_the_stored_response(signed_app: tuple[Flask, StubberWebhooks],
                                                          db: SQLAlchemy) -> None:
    app, ext = signed_app
    stub = ext.create_stub("signed")
    client = app.test_client()
    url = f"/webhooks/im/{stub.stubref}/close?_synchronous=true"
    headers = signing.standard(b"", msg_id="msg_secret")
    assert client.post(url, headers=headers).status_code == 200
    forged = {**headers, "webhook-signature": "v1,bm90IGEgc2lnbmF0dXJl"}
    assert_problem(client.post(url, headers=forged), 401, "unauthorized")
    assert_problem(client.post(url, headers={"Idempotency-Key": "msg_secret"}), 401, "unauthorized")


# -- the create route -------------------------------------------------------------------


@pytest.fixture
def two_processes(database_url: str) -> Iterator[list[tuple[Flask, SQLAlchemy]]]:
    """Two apps on one database, each with its own db, models and in-process claims."""
    apps = []
    for _ in range(2):
        ext, db = StubberWebhooks(), SQLAlchemy()
        ext.register_template(copy.deepcopy(ORDER))
        app = make_app(database_url, db, ext)
        apps.append((app, db))
    app, db = apps[0]
    with app.app_context():
        db.drop_all()
        db.create_all()
    yield apps
    for app, db in apps:
        with app.app_context():
            db.session.remove()
            if app is apps[0][0]:
                db.drop_all()
            db.engine.dispose()


def test_create_deliveries_race_across_processes(two_processes: list[tuple[Flask, SQLAlchemy]]) -> None:
    (first_app, first_db), (second_app, _) = two_processes
    committing, release = threading.Event(), threading.Event()

    def hold(session: Any) -> None:
        if not release.is_set():
            committing.set()
            assert release.wait(30)

    body = {"customer": "ada"}
    headers = {"Idempotency-Key": "form-1"}
    results: dict[str, Response] = {}
    with first_app.app_context():
        event.listen(first_db.session, "before_commit", hold)
    first = threading.Thread(target=lambda: results.setdefault(
        "first", first_app.test_client().post("/webhooks/create/order", json=body, headers=headers)))
    second = threading.Thread(target=lambda: results.setdefault(
        "second", second_app.test_client().post("/webhooks/create/order", json=body, headers=headers)))
    first.start()
    try:
        assert committing.wait(30)
        # The second process arrives while the first has not committed yet.
        second.start()
        second.join(0.5)
    finally:
        release.set()
        first.join(30)
        second.join(30)
    assert results["first"].status_code == 201
    assert results["second"].status_code == 201
    assert results["second"].get_json() == results["first"].get_json()
    assert results["second"].headers["Idempotent-Replayed"] == "true"
    with first_app.app_context():
        engine = first_app.extensions["stubber"].engine
        assert count_rows(first_db, engine.stub_model) == 1
        assert count_rows(first_db, engine.models.delivery) == 1


@pytest.mark.slow
def test_twenty_identical_deliveries_in_parallel_execute_once(app: Flask, server: str, stubber, db) -> None:  # noqa: F811
    stub = stubber.create_stub("order")
    with executions(app) as executed:
        url = f"{server}/webhooks/im/{stub.stubref}/payment_received"
        responses = fire([(url, {"amount": 7})] * 20, headers={"Idempotency-Key": "pay-7"})
    assert executed == [stub.stubref]
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {200, 409} and statuses[200] >= 1, statuses
    successes = [r for r in responses if r.status_code == 200]
    assert len({json.dumps(r.json(), sort_keys=True) for r in successes}) == 1
    assert sum("Idempotent-Replayed" not in r.headers for r in successes) == 1
    assert all(r.json()["error"] == "idempotency_conflict" for r in responses if r.status_code == 409)
    db.session.rollback()
    assert [p.action_name for p in stubber.get_stub(stub.stubref).posts] == ["payment_received"]
