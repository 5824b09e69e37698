"""Explicit webhooks: the Python API, ``/webhooks/ex/<uuid>``, the ``create_webhook`` task."""

from __future__ import annotations

import copy
import uuid as uuidlib
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask, current_app
from flask.testing import FlaskClient
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import select

from flask_stubber import StubberWebhooks, signals
from flask_stubber.errors import ActionNotFound, StubNotFound, WebhookConflict, WebhookNotFound
from flask_stubber.models import utcnow

from .conftest import ORDER, count_rows, make_app, own_tables
from .test_concurrency import fire, server  # noqa: F401  (the fixture is used by name)
from .test_webhooks import assert_problem


def webhook_model() -> Any:
    return current_app.extensions["stubber"].engine.models.webhook


def hooks(db: SQLAlchemy) -> list[tuple[str, str, bool, Any, Any]]:
    """Every webhook row, read in a fresh transaction."""
    db.session.rollback()
    model = webhook_model()
    rows = db.session.scalars(select(model).order_by(model.id)).all()
    return [(h.uuid, h.action_name, h.single_use, h.used_at, h.revoked_at) for h in rows]


def snapshot(stubber: StubberWebhooks, db: SQLAlchemy, stubref: str) -> tuple[Any, ...]:
    """What a refusal must leave untouched: the stub and every webhook."""
    db.session.rollback()
    stub = stubber.get_stub(stubref)
    return stub.state, stub.data, [p.id for p in stub.posts], hooks(db)


def backdate(db: SQLAlchemy, uuid: str, **columns: Any) -> None:
    model = webhook_model()
    db.session.rollback()
    hook = db.session.scalars(select(model).where(model.uuid == uuid)).one()
    for key, value in columns.items():
        setattr(hook, key, value)
    db.session.commit()


# -- Python API ---------------------------------------------------------------------------


def test_create_webhook_binds_a_fresh_uuid4(app: Flask, stub: Any, stubber: StubberWebhooks, db) -> None:
    hook = stubber.create_webhook(stub, "cancel")
    assert uuidlib.UUID(hook.uuid).version == 4
    assert hook.url == f"http://hooks.example.com/webhooks/ex/{hook.uuid}"
    assert hook.status() == "active"
    other = stubber.create_webhook(stub.stubref.lower(), "cancel")
    assert other.uuid != hook.uuid
    assert [(u, a, s) for u, a, s, _, _ in hooks(db)] == [(hook.uuid, "cancel", False), (other.uuid, "cancel", False)]
    assert [h.uuid for h in stubber.get_stub(stub.stubref).webhooks] == [hook.uuid, other.uuid]


def test_same_uuid_and_binding_is_an_idempotent_upsert(app: Flask, stub: Any, stubber: StubberWebhooks, db) -> None:
    given = str(uuidlib.uuid4())
    first = stubber.create_webhook(stub, "add_note", uuid=given.upper())
    again = stubber.create_webhook(stub, "add_note", uuid=given, single_use=True, expires_in=60)
    assert first.uuid == again.uuid == given
    [(uuid, action, single_use, used_at, revoked_at)] = hooks(db)
    assert (uuid, action, single_use, used_at, revoked_at) == (given, "add_note", True, None, None)
    assert again.expires_at is not None


@pytest.mark.parametrize("rebind", ["other-action", "other-stub", "revoked"])
def test_same_uuid_for_another_binding_is_refused(app: Flask, stub: Any, stubber: StubberWebhooks, db,
                                                   rebind: str) -> None:
    given = str(uuidlib.uuid4())
    stubber.create_webhook(stub, "add_note", uuid=given)
    target, action = stub, "add_note"
    if rebind == "other-action":
        action = "cancel"
    elif rebind == "other-stub":
        target = stubber.create_stub("order")
    else:
        stubber.revoke_webhook(given)
    before = hooks(db)
    with pytest.raises(WebhookConflict) as info:
        stubber.create_webhook(target, action, uuid=given)
    assert (info.value.status, info.value.code) == (409, "webhook_conflict")
    assert hooks(db) == before


@pytest.mark.parametrize(("args", "kwargs", "error"), [
    (("2020-01-01-AAAA-AAAA", "cancel"), {}, StubNotFound),
    ((None, "fly"), {}, ActionNotFound),
    ((None, "cancel"), {"uuid": "not-a-uuid"}, ValueError),
    ((None, "cancel"), {"expires_in": 0}, ValueError),
])
def test_create_webhook_misuse(app: Flask, stub: Any, stubber: StubberWebhooks, db, args: tuple[Any, ...],
                               kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        stubber.create_webhook(args[0] or stub, args[1], **kwargs)
    assert hooks(db) == []


def test_revoke_webhook(app: Flask, stub: Any, stubber: StubberWebhooks, db) -> None:
    hook = stubber.create_webhook(stub, "cancel")
    stubber.revoke_webhook(hook.uuid)
    [(_, _, _, _, revoked_at)] = hooks(db)
    assert revoked_at is not None
    stubber.revoke_webhook(hook.uuid.upper())
    assert hooks(db)[0][4] == revoked_at
    for unknown in (str(uuidlib.uuid4()), "garbage"):
        with pytest.raises(WebhookNotFound):
            stubber.revoke_webhook(unknown)


def test_webhooks_are_deleted_with_their_stub(app: Flask, stub: Any, stubber: StubberWebhooks, db) -> None:
    stubber.create_webhook(stub, "cancel")
    db.session.delete(stubber.get_stub(stub.stubref))
    db.session.commit()
    assert count_rows(db, webhook_model()) == 0


# -- the route ---------------------------------------------------------------------------------


def ex(hook: Any) -> str:
    return f"/webhooks/ex/{hook.uuid}"


def test_post_runs_the_bound_action_with_lid_and_payload(client: FlaskClient, app: Flask, stub: Any,
                                                           stubber: StubberWebhooks, db) -> None:
    hook = stubber.create_webhook(stub, "payment_received")
    seen: list[dict[str, Any]] = []
    stubber.action_handler("order", "payment_received")(lambda s, payload, ctx: seen.append(payload))
    kinds: list[str] = []
    signals.webhook_received.connect(lambda sender, **kw: kinds.append(kw["kind"]), app, weak=False)
    response = client.post(ex(hook), json={"amount": "12", "currency": "USD"})
    assert response.status_code == 200
    body = response.get_json()
    assert body == {"success": True, "stubref": stub.stubref, "action_name": "payment_received",
                    "post_id": body["post_id"]}
    received = {"lid": hook.uuid, "payload": {"amount": 12, "currency": "USD"}}
    assert seen == [received]
    assert kinds == ["explicit"]
    db.session.rollback()
    fresh = stubber.get_stub(stub.stubref)
    assert (fresh.state, fresh.data) == ("paid", {"customer": "ada", "payload": received})
    [post] = fresh.posts
    assert (post.id, post.action_name, post.source, post.from_state, post.to_state, post.data) == (
        body["post_id"], "payment_received", "explicit_webhook", "awaiting_payment", "paid", received)
    assert hooks(db)[0][3] is not None  # used_at records the call


def test_get_takes_the_query_string_and_needs_no_webhooks_enable(client: FlaskClient, stub: Any,
                                                                  stubber: StubberWebhooks, db) -> None:
    hook = stubber.create_webhook(stub, "cancel")
    response = client.get(ex(hook) + "?reason=changed+my+mind&_synchronous=true")
    assert response.status_code == 200
    body = response.get_json()
    assert body["state"] == "cancelled"
    assert body["data"]["payload"] == {"lid": hook.uuid, "payload": {"reason": "changed my mind"}}


def test_post_data_on_root_merges_the_inner_payload(client: FlaskClient, stub: Any, stubber, db) -> None:
    hook = stubber.create_webhook(stub, "add_note")
    assert client.post(ex(hook), data={"note": "hi"}).status_code == 200
    db.session.rollback()
    fresh = stubber.get_stub(stub.stubref)
    assert fresh.data == {"customer": "ada", "note": "hi"}
    assert fresh.posts[0].data == {"lid": hook.uuid, "payload": {"note": "hi"}}


def test_a_multi_use_webhook_runs_again(client: FlaskClient, stub: Any, stubber: StubberWebhooks, db) -> None:
    hook = stubber.create_webhook(stub, "add_note", expires_in=timedelta(hours=1))
    assert [client.post(ex(hook), json={"n": i}).status_code for i in range(3)] == [200, 200, 200]
    db.session.rollback()
    assert len(stubber.get_stub(stub.stubref).posts) == 3


def test_single_use_runs_once(client: FlaskClient, stub: Any, stubber: StubberWebhooks, db) -> None:
    hook = stubber.create_webhook(stub, "add_note", single_use=True)
    assert client.post(ex(hook), json={"n": 1}).status_code == 200
    before = snapshot(stubber, db, stub.stubref)
    assert_problem(client.post(ex(hook), json={"n": 2}), 410, "webhook_gone")
    assert snapshot(stubber, db, stub.stubref) == before


def test_a_refused_action_does_not_use_up_a_single_use_webhook(client: FlaskClient, stub: Any, stubber, db) -> None:
    hook = stubber.create_webhook(stub, "payment_received", single_use=True)
    assert_problem(client.post(ex(hook), json={"amount": -5}), 422, "validation_error")
    assert client.post(ex(hook), json={"amount": 5}).status_code == 200


def explicit_refusals() -> list[Any]:
    unknown = str(uuidlib.uuid4())
    past = {"expires_at": utcnow() - timedelta(seconds=1)}
    return [
        pytest.param("post", unknown, "add_note", {}, {}, {"json": {}}, 404, "webhook_not_found", id="unknown"),
        pytest.param("get", "not-a-uuid", "add_note", {}, {}, {}, 404, "webhook_not_found", id="malformed-uuid"),
        pytest.param("post", None, "add_note", {}, {"revoked_at": utcnow()}, {"json": {}}, 404,
                     "webhook_not_found", id="revoked"),
        pytest.param("get", None, "add_note", {"expires_in": 60}, past, {}, 410, "webhook_gone", id="expired"),
        pytest.param("post", None, "add_note", {"single_use": True}, {"used_at": utcnow()}, {"json": {}}, 410,
                     "webhook_gone", id="single-use-used"),
        pytest.param("post", None, "ship", {}, {}, {"json": {}}, 409, "action_not_in_state", id="not-in-state"),
        pytest.param("get", None, "ship", {}, {}, {}, 405, "method_not_allowed", id="method-not-in-methods"),
        pytest.param("put", None, "add_note", {}, {}, {"json": {}}, 405, "method_not_allowed", id="put"),
        pytest.param("post", None, "payment_received", {}, {}, {"json": {"amount": "lots"}}, 422,
                     "validation_error", id="inner-payload-invalid"),
        pytest.param("post", None, "add_note", {}, {}, {"data": "[1]", "content_type": "application/json"}, 400,
                     "invalid_body", id="json-array"),
        pytest.param("post", None, "add_note", {}, {}, {"data": "x", "content_type": "text/plain"}, 415,
                     "unsupported_media_type", id="text"),
    ]


@pytest.mark.parametrize(("method", "uuid", "action", "options", "state", "kwargs", "status", "code"),
                         explicit_refusals())
def test_refusals_are_problems_and_write_nothing(
    client: FlaskClient, app: Flask, stub: Any, stubber: StubberWebhooks, db: SQLAlchemy, method: str,
    uuid: str | None, action: str, options: dict[str, Any], state: dict[str, Any], kwargs: dict[str, Any],
    status: int, code: str,
) -> None:
    hook = stubber.create_webhook(stub, action, **options)
    if state:
        backdate(db, hook.uuid, **state)
    rejected: list[dict[str, Any]] = []
    signals.webhook_rejected.connect(lambda sender, **kw: rejected.append(kw), app, weak=False)
    before = snapshot(stubber, db, stub.stubref)
    response = getattr(client, method)(f"/webhooks/ex/{uuid or hook.uuid}", **kwargs)
    body = assert_problem(response, status, code)
    assert snapshot(stubber, db, stub.stubref) == before
    assert [(r["error"], r["status"]) for r in rejected] == [(code, status)]
    if code == "action_not_in_state":
        assert (body["state"], body["available_actions"]) == ("awaiting_payment", ["payment_received", "add_note"])


def test_head_from_a_link_scanner_runs_nothing(client: FlaskClient, stub: Any, stubber: StubberWebhooks,
                                               db) -> None:
    hook = stubber.create_webhook(stub, "cancel", single_use=True)
    before = snapshot(stubber, db, stub.stubref)
    response = client.head(ex(hook))
    assert (response.status_code, response.mimetype) == (405, "application/problem+json")
    assert snapshot(stubber, db, stub.stubref) == before


# -- the create_webhook task -------------------------------------------------------------------


def inviting(stubber: StubberWebhooks, params: dict[str, Any]) -> None:
    """``invite`` binds a webhook with ``params`` and answers synchronously with the task's result."""
    source = copy.deepcopy(ORDER)
    source["states"]["awaiting_payment"]["actions"].append("invite")
    source["actions"]["invite"] = {
        "to_state": {},
        "action_meta": {"webhooks": {"enable": True, "synchronous": {"enable": True}}},
        "tasks": {"link": {"tasktype": "create_webhook", "params": params}},
    }
    stubber.register_template(source)


@pytest.mark.parametrize("given", [None, "1f0c6a8e-8d7a-4c1e-9a43-0c1f3e0b9d11"])
def test_create_webhook_task_binds_in_the_transaction(client: FlaskClient, stub: Any, stubber: StubberWebhooks,
                                                       db, given: str | None) -> None:
    params = {"action_name": "payment_received", "single_use": True}
    if given:
        params["webhookuuid"] = "~~stubpost.data.uuid"
    inviting(stubber, params)
    body = client.post(f"/webhooks/im/{stub.stubref}/invite", json={"uuid": given}).get_json()
    result = body["tasks"]["link"]
    uuid = result["webhookuuid"]
    assert uuid == given or uuidlib.UUID(uuid).version == 4
    assert result["url"] == f"http://hooks.example.com/webhooks/ex/{uuid}"
    assert [(u, a, s) for u, a, s, _, _ in hooks(db)] == [(uuid, "payment_received", True)]
    assert client.post(f"/webhooks/ex/{uuid}", json={"amount": 1}).status_code == 200
    assert_problem(client.post(f"/webhooks/ex/{uuid}", json={"amount": 1}), 410, "webhook_gone")


def test_create_webhook_task_for_another_stub(client: FlaskClient, stub: Any, stubber: StubberWebhooks, db) -> None:
    other = stubber.create_stub("order")
    inviting(stubber, {"action_name": "cancel", "stubref": "~~stubpost.data.ref"})
    body = client.post(f"/webhooks/im/{stub.stubref}/invite", json={"ref": other.stubref.lower()}).get_json()
    assert client.get(f"/webhooks/ex/{body['tasks']['link']['webhookuuid']}").status_code == 200
    db.session.rollback()
    assert (stubber.get_stub(other.stubref).state, stubber.get_stub(stub.stubref).state) == (
        "cancelled", "awaiting_payment")


@pytest.mark.parametrize(("params", "payload", "status", "code"), [
    ({"action_name": "cancel", "stubref": "~~stubpost.data.ref"}, {"ref": "2020-01-01-AAAA-AAAA"}, 404,
     "stub_not_found"),
    ({"action_name": "fly"}, {}, 404, "action_not_found"),
    ({}, {}, 500, "internal_error"),
    ({"action_name": "cancel", "webhookuuid": "nope"}, {}, 422, "validation_error"),
    ({"action_name": "cancel", "webhookuuid": "~~stubpost.data.uuid"}, {"uuid": "X-Hub"}, 422, "validation_error"),
    ({"action_name": "cancel", "expires_in": "~~stubpost.data.ttl"}, {"ttl": "soon"}, 422, "validation_error"),
    ({"action_name": "cancel", "expires_in": "~~stubpost.data.ttl"}, {"ttl": -1}, 422, "validation_error"),
    ({"action_name": "cancel", "expires_in": "~~stubpost.data.ttl"}, {"ttl": 1e300}, 422, "validation_error"),
    ({"action_name": "cancel", "expires_in": "~~stubpost.data.ttl"}, {"ttl": [1]}, 422, "validation_error"),
])
def test_create_webhook_task_failures_roll_back(client: FlaskClient, stub: Any, stubber: StubberWebhooks, db,
                                                params: dict[str, Any], payload: dict[str, Any], status: int,
                                                code: str) -> None:
    inviting(stubber, params)
    before = snapshot(stubber, db, stub.stubref)
    assert_problem(client.post(f"/webhooks/im/{stub.stubref}/invite", json=payload), status, code)
    assert snapshot(stubber, db, stub.stubref) == before


def test_create_webhook_task_conflict_rolls_back(client: FlaskClient, stub: Any, stubber: StubberWebhooks,
                                                 db) -> None:
    taken = stubber.create_webhook(stubber.create_stub("order"), "cancel").uuid
    inviting(stubber, {"action_name": "cancel", "webhookuuid": taken})
    before = snapshot(stubber, db, stub.stubref)
    assert_problem(client.post(f"/webhooks/im/{stub.stubref}/invite", json={}), 409, "webhook_conflict")
    assert snapshot(stubber, db, stub.stubref) == before


def test_create_webhook_task_without_a_request_has_no_url(database_url: str, db: SQLAlchemy,
                                                         stubber: StubberWebhooks) -> None:
    inviting(stubber, {"action_name": "cancel"})
    stubber.register_template(_with_savedata(stubber))
    app = make_app(database_url, db, stubber)
    app.config["SERVER_NAME"] = None
    with app.app_context(), own_tables(db):
        stub = stubber.create_stub("order")
        stubber.run_action(stub, "invite")
        fresh = stubber.get_stub(stub.stubref)
        [hook] = fresh.webhooks
        assert fresh.data["link"] == {"uuid": hook.uuid, "url": None}
        with pytest.raises(RuntimeError):
            hook.url  # noqa: B018


def _with_savedata(stubber: StubberWebhooks) -> dict[str, Any]:
    source = copy.deepcopy(dict(stubber._templates["order"].source))
    source["actions"]["invite"]["tasks"]["keep"] = {
        "tasktype": "savedata", "sequence": 1,
        "params": {"link": {"uuid": "~~tasks.link.webhookuuid", "url": "~~tasks.link.url"}},
    }
    return source


# -- parallel calls --------------------------------------------------------------------------------

PARALLEL = 16


@pytest.mark.slow
def test_parallel_calls_of_a_single_use_webhook_execute_once(app: Flask, server: str,  # noqa: F811
                                                             stubber: StubberWebhooks, db) -> None:
    stub = stubber.create_stub("order")
    hook = stubber.create_webhook(stub, "add_note", single_use=True)
    responses = fire([(f"{server}/webhooks/ex/{hook.uuid}", {f"n{i}": i}) for i in range(PARALLEL)])
    assert Counter(r.status_code for r in responses) == {200: 1, 410: PARALLEL - 1}, [r.text for r in responses]
    assert all(r.json()["error"] == "webhook_gone" for r in responses if r.status_code == 410)
    db.session.rollback()
    assert len(stubber.get_stub(stub.stubref).posts) == 1


# -- misuse and host models ------------------------------------------------------------------------


@pytest.mark.parametrize("call", [
    pytest.param(lambda ext: ext.create_webhook("2026-01-01-AAAA-AAAA", "cancel"), id="create_webhook"),
    pytest.param(lambda ext: ext.revoke_webhook(str(uuidlib.uuid4())), id="revoke_webhook"),
])
def test_api_needs_an_application_context(call: Any) -> None:
    with pytest.raises(RuntimeError, match="application context"):
        call(StubberWebhooks())


def test_webhooks_of_a_host_stub_model(database_url: str) -> None:
    from sqlalchemy import inspect

    from flask_stubber import StubMixin

    db = SQLAlchemy()
    ticket = type("Ticket", (StubMixin, db.Model), {"__tablename__": "tickets"})
    ext = StubberWebhooks(db=db, stub_model=ticket)
    ext.register_template(ORDER)
    app = make_app(database_url, db, ext)
    with app.app_context(), own_tables(db):
        hook = ext.create_webhook(ext.create_stub("order"), "cancel")
        assert "stubber_webhooks_tickets" in inspect(db.engine).get_table_names()
        assert app.test_client().get(f"/webhooks/ex/{hook.uuid}").status_code == 200
        db.session.rollback()
        [got] = db.session.scalars(select(ticket)).all()
        assert (got.state, [h.uuid for h in got.webhooks]) == ("cancelled", [hook.uuid])


