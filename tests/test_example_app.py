"""The example app's four jobs, through its test client, and through gunicorn with the demo and a browser."""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
import uuid as uuidlib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from example_app import config, create_app
from example_app.demo import payment_event, stripe_signature
from example_app.extensions import db, stubber
from flask_stubber.models import get_models
from flask_stubber.testing import stripe_headers

from .test_browser import browser  # noqa: F401  (the fixtures are used by name)
from .test_concurrency import server  # noqa: F401
from .test_webhooks import assert_problem

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def example(database_url: str) -> Iterator[Flask]:
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "TESTING": True})
    yield app
    with app.app_context():
        db.session.remove()
        db.drop_all()
        db.engine.dispose()


@pytest.fixture
def web(example: Flask) -> FlaskClient:
    return example.test_client()


CREATE = "/webhooks/create/support_request"
SUPPORT = {"email": "ada@example.com", "name": "Ada", "message": "It leaks."}
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
FORM_TYPES = ["application/x-www-form-urlencoded", "multipart/form-data"]


def snapshot(app: Flask, stubref: str) -> tuple[str, dict[str, Any], list[tuple[str, str, str | None, str]]]:
    """The stub's state, data and history, read in a fresh context."""
    with app.app_context():
        stub = stubber.get_stub(stubref)
        return stub.state, stub.data, [(p.action_name, p.source, p.from_state, p.to_state) for p in stub.posts]


def stub_count(app: Flask) -> int:
    with app.app_context():
        return len(db.session.scalars(db.select(get_models(db).stub)).all())


def new_support_request(web: FlaskClient) -> dict[str, Any]:
    """Post the contact form as a JSON caller; return the new stub's page."""
    response = web.post(CREATE, json=SUPPORT)
    assert response.status_code == 201, response.get_json()
    return web.get(f"/stubs/{response.get_json()['stubref']}").get_json()  # type: ignore[no-any-return]


def new_order(web: FlaskClient, total: int = 2500) -> dict[str, Any]:
    response = web.post("/orders", json={"items": ["espresso machine"], "total": total, "currency": "zar"})
    assert response.status_code == 201
    return response.get_json()  # type: ignore[no-any-return]


def test_the_templates_of_the_four_jobs(example: Flask) -> None:
    with example.app_context():
        templates = stubber.templates()
    assert set(templates) == {"order", "support_request", "access_request"}
    create = templates["support_request"].create
    assert create is not None and create.webhooks.enable
    assert create.webhooks.redirect == "/support/thanks?ref=~~stub.stubref"
    assert templates["order"].actions["payment_received"].webhooks.auth == "stripe"
    assert example.config["STUBBER_VERIFIERS"]["stripe"]["scheme"] == "stripe"
    access = templates["access_request"]
    assert not any(a.webhooks.enable for a in access.actions.values())
    assert [t.tasktype for t in access.actions["send_link"].tasks] == ["create_webhook", "create_webhook", "savedata"]
    assert all(access.actions[a].webhooks.confirm for a in ("confirm", "decline"))


# -- job 1: a website form creates a support request ------------------------------------------------


def test_the_contact_form_is_plain_html_posting_the_templates_fields(example: Flask, web: FlaskClient) -> None:
    page = web.get("/support").get_data(as_text=True)
    assert f'<form method="post" action="{CREATE}">' in page
    assert "<script" not in page
    with example.app_context():
        create = stubber.get_template("support_request").create
    assert set(re.findall(r'<(?:input|textarea) name="(\w+)"', page)) == set(create.schema.fields)


def test_a_json_caller_creates_a_support_request(example: Flask, web: FlaskClient) -> None:
    response = web.post(CREATE, json=SUPPORT)
    assert response.status_code == 201
    body = response.get_json()
    assert body == {"success": True, "stubref": body["stubref"], "action_name": "create", "post_id": body["post_id"]}
    assert snapshot(example, body["stubref"]) == ("new", SUPPORT, [("create", "create_webhook", None, "new")])
    page = web.get(f"/stubs/{body['stubref']}").get_json()
    assert (page["subject"], set(page["webhooks"])) == (
        "Support request from ada@example.com", {"ticket_update", "add_comment"})


@pytest.mark.parametrize("content_type", FORM_TYPES)
def test_the_browsers_form_post_lands_on_the_thank_you_page(example: Flask, web: FlaskClient,
                                                             content_type: str) -> None:
    response = web.post(CREATE, data=SUPPORT, content_type=content_type, headers=BROWSER)
    assert response.status_code == 303
    found = re.fullmatch(r"/support/thanks\?ref=([0-9A-Z-]+)", response.headers["Location"])
    assert found, response.headers["Location"]
    ref = found.group(1)
    assert snapshot(example, ref) == ("new", SUPPORT, [("create", "create_webhook", None, "new")])
    thanks = web.get(response.headers["Location"])
    assert thanks.status_code == 200
    assert f'<strong id="ref">{ref}</strong>' in thanks.get_data(as_text=True)


@pytest.mark.parametrize(("method", "path", "kwargs", "status", "code", "errors"), [
    pytest.param("post", CREATE, {"json": {**SUPPORT, "email": "ada"}}, 422, "validation_error",
                 {"email": ["Not a valid email address."]}, id="bad-email"),
    pytest.param("post", CREATE, {"data": {**SUPPORT, "message": ""}, "headers": BROWSER}, 422,
                 "validation_error", {"message": ["Tell us what happened."]}, id="browser-empty-message"),
    pytest.param("post", CREATE, {"data": {"name": "Ada"}, "content_type": FORM_TYPES[1]}, 422,
                 "validation_error", {"email": ["Tell us your email address."], "message": ["Tell us what happened."]},
                 id="multipart-missing"),
    pytest.param("post", CREATE, {"json": {**SUPPORT, "message": "x" * 5001}}, 422, "validation_error",
                 {"message": ["Longer than maximum length 5000."]}, id="message-too-long"),
    pytest.param("get", CREATE, {"query_string": SUPPORT}, 405, "method_not_allowed", None, id="get"),
    pytest.param("post", "/webhooks/create/order", {"json": {}}, 404, "action_not_found", None,
                 id="template-without-create"),
])
def test_refused_contact_forms_create_nothing(example: Flask, web: FlaskClient, method: str, path: str,
                                              kwargs: dict[str, Any], status: int, code: str,
                                              errors: dict[str, Any] | None) -> None:
    problem = assert_problem(getattr(web, method)(path, **kwargs), status, code)
    if errors is not None:
        assert problem["errors"] == errors
    assert stub_count(example) == 0


def test_the_thank_you_page_knows_support_requests_only(web: FlaskClient) -> None:
    order = new_order(web)["stubref"]
    for ref in ("2020-01-01-AAAA-AAAA", order, "nonsense"):
        response = web.get("/support/thanks", query_string={"ref": ref})
        assert (response.status_code, response.get_json()["error"]) == (404, "Not Found")


# -- job 2: a ticketing system posts status updates -----------------------------------------------------


def test_ticketing_system_moves_a_support_request(example: Flask, web: FlaskClient) -> None:
    page = new_support_request(web)
    ref = page["stubref"]
    assert (page["state"], page["template"]) == ("new", "support_request")
    update, comment = page["webhooks"]["ticket_update"], page["webhooks"]["add_comment"]
    assert update == f"http://localhost/webhooks/im/{ref}/ticket_update"
    assert web.post(update, json={"id": "4711", "status": "open", "assignee": "sam@help.example"}).status_code == 200
    assert web.post(comment, json={"author": "Sam", "body": "A photo?", "public": "on"}).status_code == 200
    assert web.post(comment, json={"author": "Ada", "body": "Sent."}).status_code == 200
    assert web.post(update, json={"id": 4711, "status": "pending"}).status_code == 200
    state, data, history = snapshot(example, ref)
    assert state == "pending"
    assert data == {
        **SUPPORT, "ticket_id": 4711,
        "payload": {"ticket_id": 4711, "status": "pending"},
        "comments": [{"author": "Sam", "body": "A photo?"}, {"author": "Ada", "body": "Sent."}],
    }
    assert history == [
        ("create", "create_webhook", None, "new"),
        ("ticket_update", "webhook", "new", "open"), ("add_comment", "webhook", "open", "open"),
        ("add_comment", "webhook", "open", "open"), ("ticket_update", "webhook", "open", "pending"),
    ]
    assert web.post(update, json={"id": 4711, "status": "closed"}).status_code == 200
    body = assert_problem(web.post(comment, json={"author": "Ada", "body": "Thanks"}), 409, "action_not_in_state")
    assert (body["state"], body["available_actions"]) == ("closed", [])
    assert web.get(f"/stubs/{ref}").get_json()["webhooks"] == {}


TICKET_REFUSALS = [
    pytest.param("ticket_update", {"json": {"id": 4711, "status": "on fire"}}, 422, "validation_error",
                 id="unknown-status"),
    pytest.param("ticket_update", {"json": {"status": "open"}}, 422, "validation_error", id="no-ticket-id"),
    pytest.param("add_comment", {"json": {"author": "Sam", "body": "x" * 5001}}, 422, "validation_error",
                 id="comment-too-long"),
    pytest.param("ticket_update", {"query_string": {"id": 1, "status": "open"}, "method": "GET"}, 405,
                 "method_not_allowed", id="get"),
    pytest.param("ticket_update", {"data": "id=1", "content_type": "text/plain"}, 415, "unsupported_media_type",
                 id="text-body"),
    pytest.param("reopen", {"json": {}}, 404, "action_not_found", id="unknown-action"),
]


@pytest.mark.parametrize(("action", "kwargs", "status", "code"), TICKET_REFUSALS)
def test_refused_ticket_updates_write_nothing(example: Flask, web: FlaskClient, action: str,
                                              kwargs: dict[str, Any], status: int, code: str) -> None:
    ref = new_support_request(web)["stubref"]
    before = snapshot(example, ref)
    kwargs = dict(kwargs)
    method = kwargs.pop("method", "POST")
    assert_problem(web.open(f"/webhooks/im/{ref}/{action}", method=method, **kwargs), status, code)
    assert snapshot(example, ref) == before == ("new", SUPPORT, [("create", "create_webhook", None, "new")])


# -- job 3: a signed payment notification moves an order to paid ----------------------------------------


def pay(web: FlaskClient, page: dict[str, Any], body: bytes, headers: dict[str, str] | None = None) -> Any:
    """Post a payment notification, signed with the shop's secret unless ``headers`` are given."""
    sent = stripe_headers(body, config.stripe_secret()) if headers is None else headers
    return web.post(page["webhooks"]["payment_received"], data=body, headers=sent, content_type="application/json")


def deliveries(app: Flask) -> int:
    with app.app_context():
        return len(db.session.scalars(db.select(get_models(db).delivery)).all())


def test_signed_payment_moves_an_order_to_paid_and_it_ships(example: Flask, web: FlaskClient) -> None:
    page = new_order(web)
    ref = page["stubref"]
    assert page["url"] == f"http://localhost/stubs/{ref}"
    assert (page["state"], page["data"]) == (
        "awaiting_payment", {"items": ["espresso machine"], "total": 2500, "currency": "zar"})
    assert list(page["webhooks"]) == ["payment_received"]
    response = pay(web, page, payment_event(ref, 2500))
    assert response.status_code == 200, response.get_json()
    assert "Idempotent-Replayed" not in response.headers
    state, data, _ = snapshot(example, ref)
    event = data["payload"]
    assert state == "paid"
    assert event["id"].startswith("evt_") and event["data"]["object"]["amount"] == 2500
    assert data["payment"] == {"event": event["id"], "intent": event["data"]["object"]["id"], "amount": 2500}
    ship = web.get(f"/stubs/{ref}").get_json()["webhooks"]["ship"]
    shipped = web.post(ship, json={"carrier": "PostNet", "tracking_number": "PN1"}).get_json()
    assert shipped["state"] == "shipped"
    assert shipped["data"]["payload"] == {"carrier": "PostNet", "tracking_number": "PN1"}
    assert snapshot(example, ref)[2] == [
        ("payment_received", "webhook", "awaiting_payment", "paid"), ("ship", "webhook", "paid", "shipped")]


def test_a_retried_event_is_answered_again_and_runs_once(example: Flask, web: FlaskClient) -> None:
    page = new_order(web)
    ref = page["stubref"]
    body = payment_event(ref, 2500)
    first = pay(web, page, body)
    paid = snapshot(example, ref)
    # The processor retries with the same event, signed again a minute later.
    again = pay(web, page, body, stripe_headers(body, config.stripe_secret(), timestamp=int(time.time()) + 60))
    assert (first.status_code, again.status_code, again.headers["Idempotent-Replayed"]) == (200, 200, "true")
    assert again.get_json() == first.get_json()
    assert snapshot(example, ref) == paid
    assert [p[0] for p in paid[2]] == ["payment_received"]
    with example.app_context():
        [post] = stubber.get_stub(ref).posts
        assert post.delivery_id == json.loads(body)["id"]
    assert deliveries(example) == 1
    other = pay(web, page, payment_event(ref, 2500))
    assert_problem(other, 409, "action_not_in_state")
    assert snapshot(example, ref) == paid


def signatures(body: bytes) -> dict[str, dict[str, str]]:
    """Headers a payment notification must not get through with."""
    secret, now = config.stripe_secret(), int(time.time())
    valid = stripe_headers(body, secret)["Stripe-Signature"]
    return {
        "unsigned": {},
        "wrong-secret": stripe_headers(body, "whsec_another_shops_secret"),
        "stale": stripe_headers(body, secret, timestamp=now - 600),
        "from-the-future": stripe_headers(body, secret, timestamp=now + 600),
        "forged": stripe_headers(body.replace(b'"amount": 2500', b'"amount": 250000'), secret),
        "no-timestamp": {"Stripe-Signature": valid.split(",", 1)[1]},
        "made-up": {"Stripe-Signature": f"t={now},v1={'0' * 64}"},
    }


@pytest.mark.parametrize("kind", list(signatures(b"")))
def test_payments_that_are_not_the_processors_write_nothing(example: Flask, web: FlaskClient, kind: str) -> None:
    page = new_order(web)
    ref = page["stubref"]
    body = payment_event(ref, 2500)
    assert_problem(pay(web, page, body, signatures(body)[kind]), 401, "unauthorized")
    assert snapshot(example, ref) == ("awaiting_payment", page["data"], [])
    assert deliveries(example) == 0
    assert pay(web, page, body).status_code == 200  # the real one, sent afterwards, still runs


def test_the_demo_signs_as_the_testing_kit_does() -> None:
    body = payment_event("2026-12-04-7QK2-M9XD", 2500)
    assert stripe_signature(body, "whsec_test", 1796376600) == stripe_headers(
        body, "whsec_test", timestamp=1796376600)["Stripe-Signature"]


def edited_event(ref: str, edit: Any) -> bytes:
    event = json.loads(payment_event(ref, 2500))
    edit(event)
    return json.dumps(event).encode()


PAYMENT_REFUSALS = [
    pytest.param(lambda e: e["data"]["object"].update(amount=2000), 422, "amount_mismatch", None, id="short"),
    pytest.param(lambda e: e["data"]["object"].update(currency="usd"), 422, "amount_mismatch", None, id="currency"),
    pytest.param(lambda e: e.update(id="ch_1"), 422, "validation_error", {"id": ["An event id starts with evt_."]},
                 id="event-id"),
    pytest.param(lambda e: e.update(type="charge.refunded"), 422, "validation_error", None, id="event-type"),
    pytest.param(lambda e: e["data"].pop("object"), 422, "validation_error", None, id="no-object"),
]


@pytest.mark.parametrize(("edit", "status", "code", "errors"), PAYMENT_REFUSALS)
def test_refused_payments_write_nothing(example: Flask, web: FlaskClient, edit: Any, status: int, code: str,
                                        errors: dict[str, Any] | None) -> None:
    page = new_order(web)
    ref = page["stubref"]
    problem = assert_problem(pay(web, page, edited_event(ref, edit)), status, code)
    if errors is not None:
        assert problem["errors"] == errors
    assert snapshot(example, ref) == ("awaiting_payment", page["data"], [])
    assert deliveries(example) == 0


# -- job 4: a link in an email grants access --------------------------------------------------------------


def request_access(web: FlaskClient) -> dict[str, Any]:
    """Ask for access; return the new access request's page."""
    response = web.post("/access-requests", json={"email": "ada@example.com"})
    assert response.status_code == 201, response.get_json()
    return response.get_json()  # type: ignore[no-any-return]


def uuid_of(link: str) -> str:
    return link.rsplit("/", 1)[1]


def links(app: Flask, stubref: str) -> list[tuple[str, bool, str]]:
    """The stub's explicit webhooks: action, single use, status."""
    with app.app_context():
        return [(h.action_name, h.single_use, h.status()) for h in stubber.get_stub(stubref).webhooks]


def everything(app: Flask, stubref: str) -> tuple[Any, ...]:
    """What a refused call must leave untouched: the stub and its links."""
    return *snapshot(app, stubref), links(app, stubref)


def token_on(page: str) -> str:
    found = re.search(r'<input type="hidden" name="_confirm" value="([0-9a-f]{64})">', page)
    assert found, page
    return found.group(1)


def test_an_access_request_emails_two_single_use_links(example: Flask, web: FlaskClient,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="example_app"):
        page = request_access(web)
    ref, mail = page["stubref"], page["data"]["mail"]
    assert (page["state"], page["subject"], page["webhooks"]) == (
        "awaiting_confirmation", "Access for ada@example.com", {})
    assert page["history"] == [{"action": "send_link", "source": "api", "from": "new", "to": "awaiting_confirmation"}]
    with example.test_request_context():
        hooks = stubber.get_stub(ref).webhooks
        assert mail == {"to": "ada@example.com", "confirm": hooks[0].url, "decline": hooks[1].url}
        for hook in hooks:
            assert uuidlib.UUID(hook.uuid).version == 4
            lifetime = hook.expires_at - hook.created_at
            assert timedelta(hours=23) < lifetime <= timedelta(days=1)
    assert links(example, ref) == [("confirm", True, "active"), ("decline", True, "active")]
    [sent] = [r for r in caplog.records if r.getMessage().startswith("Mail to ada@example.com")]
    assert mail["confirm"] in sent.getMessage() and mail["decline"] in sent.getMessage()


def test_the_email_link_asks_before_it_grants_access(example: Flask, web: FlaskClient) -> None:
    page = request_access(web)
    ref, confirm, decline = page["stubref"], page["data"]["mail"]["confirm"], page["data"]["mail"]["decline"]
    before = everything(example, ref)
    shown = web.get(confirm, headers=BROWSER)
    assert (shown.status_code, shown.mimetype, shown.headers["Cache-Control"]) == (200, "text/html", "no-store")
    text = shown.get_data(as_text=True)
    assert "<h1>Confirm your access</h1>" in text
    assert "confirm that you, ada@example.com, asked for access" in text
    assert everything(example, ref) == before  # a mail scanner's GET changes nothing
    done = web.post(confirm, data={"_confirm": token_on(text)}, headers=BROWSER)
    assert (done.status_code, done.mimetype) == (200, "text/html")
    assert "Thank you: access granted." in done.get_data(as_text=True)
    state, data, history = snapshot(example, ref)
    assert state == "authorized"
    assert data == {"email": "ada@example.com", "mail": page["data"]["mail"],
                    "payload": {"lid": uuid_of(confirm), "payload": {}}}
    assert history[-1] == ("confirm", "explicit_webhook", "awaiting_confirmation", "authorized")
    assert links(example, ref) == [("confirm", True, "used"), ("decline", True, "active")]
    after = everything(example, ref)
    assert_problem(web.post(confirm, data={"_confirm": token_on(text)}), 410, "webhook_gone")
    assert_problem(web.get(confirm), 410, "webhook_gone")
    body = assert_problem(web.get(decline, headers=BROWSER), 409, "action_not_in_state")
    assert (body["state"], body["available_actions"]) == ("authorized", [])
    assert everything(example, ref) == after
    with example.app_context():
        stubber.run_action(ref, "revoke")
    assert snapshot(example, ref)[0] == "revoked"


def test_the_decline_link(example: Flask, web: FlaskClient) -> None:
    page = request_access(web)
    ref, mail = page["stubref"], page["data"]["mail"]
    text = web.get(mail["decline"]).get_data(as_text=True)
    assert "<h1>Decline the request</h1>" in text
    assert web.post(mail["decline"], data={"_confirm": token_on(text)}).status_code == 200
    assert snapshot(example, ref)[0] == "declined"
    assert_problem(web.get(mail["confirm"]), 409, "action_not_in_state")
    assert links(example, ref) == [("confirm", True, "active"), ("decline", True, "used")]


def revoked(app: Flask, mail: dict[str, str]) -> str:
    with app.app_context():
        stubber.revoke_webhook(uuid_of(mail["confirm"]))
    return mail["confirm"]


ACCESS_REFUSALS = [
    pytest.param("get", revoked, {"headers": BROWSER}, 404, "webhook_not_found", id="revoked-link"),
    pytest.param("post", revoked, {"data": {"_confirm": "x"}}, 404, "webhook_not_found", id="revoked-link-post"),
    pytest.param("get", lambda app, mail: f"/webhooks/ex/{uuidlib.uuid4()}", {}, 404, "webhook_not_found",
                 id="unknown-link"),
    pytest.param("post", lambda app, mail: mail["confirm"], {"data": {}}, 403, "confirmation_required",
                 id="post-without-the-pages-token"),
    pytest.param("post", lambda app, mail: mail["confirm"], {"json": {"_confirm": "0" * 64}}, 403,
                 "confirmation_required", id="wrong-token"),
    pytest.param("post", lambda app, mail: mail["confirm"], {"data": {"x": "1"}, "headers": {"Accept": "*/*"}}, 403,
                 "confirmation_required", id="scanner-post"),
]


@pytest.mark.parametrize(("method", "link", "kwargs", "status", "code"), ACCESS_REFUSALS)
def test_refused_links_write_nothing(example: Flask, web: FlaskClient, method: str, link: Any,
                                     kwargs: dict[str, Any], status: int, code: str) -> None:
    page = request_access(web)
    ref = page["stubref"]
    url = link(example, page["data"]["mail"])
    before = everything(example, ref)
    assert_problem(getattr(web, method)(url, **kwargs), status, code)
    assert everything(example, ref) == before


@pytest.mark.parametrize("action", ["send_link", "confirm", "decline", "revoke"])
def test_the_stubref_alone_grants_nothing(example: Flask, web: FlaskClient, action: str) -> None:
    ref = request_access(web)["stubref"]
    before = everything(example, ref)
    assert_problem(web.post(f"/webhooks/im/{ref}/{action}", json={}), 404, "action_not_found")
    assert everything(example, ref) == before


# -- the app's own routes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "kwargs", "status"), [
    ("/orders", {"json": {"total": 0, "currency": "zar"}}, 422),
    ("/orders", {"json": {"total": 100, "currency": "gbp"}}, 422),
    ("/orders", {"json": {"total": True, "currency": "zar"}}, 422),
    ("/orders", {"data": "total=1"}, 400),
    ("/access-requests", {"json": {"email": "ada"}}, 422),
    ("/access-requests", {"json": {"email": "ada@example.com\nbcc: eve@example.com"}}, 422),
    ("/access-requests", {"json": ["not", "an", "object"]}, 400),
])
def test_the_apps_own_routes_refuse_bad_input(example: Flask, web: FlaskClient, path: str,
                                               kwargs: dict[str, Any], status: int) -> None:
    response = web.post(path, **kwargs)
    assert response.status_code == status
    assert response.get_json()["detail"]
    assert b"No stubs yet" in web.get("/").data


def test_index_lists_stubs_and_unknown_stubs_are_404(web: FlaskClient) -> None:
    assert b"No stubs yet" in web.get("/").data
    ref = new_order(web)["stubref"]
    page = web.get("/").get_data(as_text=True)
    assert ref in page and "awaiting_payment" in page
    response = web.get("/stubs/2020-01-01-AAAA-AAAA")
    assert (response.status_code, response.get_json()["error"]) == (404, "Not Found")


@pytest.mark.parametrize(("given", "expected"), [
    ("postgres://u@db/shop", "postgresql+psycopg://u@db/shop"),
    ("postgresql://u@db/shop", "postgresql+psycopg://u@db/shop"),
    ("postgresql+psycopg://u@db/shop", "postgresql+psycopg://u@db/shop"),
    ("mysql+pymysql://root@db/shop", "mysql+pymysql://root@db/shop"),
])
def test_database_url_from_the_environment(monkeypatch: pytest.MonkeyPatch, given: str, expected: str) -> None:
    monkeypatch.setenv("DATABASE_URL", given)
    settings = config.from_environment()
    assert settings["SQLALCHEMY_DATABASE_URI"] == expected
    assert settings["SQLALCHEMY_ENGINE_OPTIONS"] == {"pool_pre_ping": True, **config.POOL}


def test_defaults_to_a_sqlite_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", "whsec_from_env")
    settings = config.from_environment()
    assert settings["SQLALCHEMY_DATABASE_URI"] == "sqlite:///example.db"
    assert settings["SQLALCHEMY_ENGINE_OPTIONS"] == {"pool_pre_ping": True}
    assert settings["STUBBER_VERIFIERS"]["stripe"]["secrets"] == ["whsec_from_env"]
    assert len(settings["SECRET_KEY"]) == 64 and settings["SECRET_KEY"] != config.from_environment()["SECRET_KEY"]
    monkeypatch.setenv("SECRET_KEY", "from-env")
    assert config.from_environment()["SECRET_KEY"] == "from-env"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def gunicorn(example: Flask, database_url: str) -> Iterator[str]:
    """The example app served by gunicorn with the documented settings, two workers."""
    base = f"http://127.0.0.1:{free_port()}"
    env = {**os.environ, "DATABASE_URL": database_url, "WEB_CONCURRENCY": "2", "BIND": base[7:]}
    process = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "example_app/gunicorn_conf.py"], cwd=ROOT,
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/", timeout=2).close()
                break
            except OSError:
                assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.communicate(timeout=30)


@pytest.mark.slow
def test_demo_against_gunicorn(example: Flask, gunicorn: str) -> None:
    demo = subprocess.run([sys.executable, "-m", "example_app.demo", gunicorn], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "21 steps, 0 unexpected" in demo.stdout
    for change in ("303 to /support/thanks?ref=", "422, nothing created", "new -> open", "pending -> solved",
                   "solved -> closed", "401, awaiting_payment -> awaiting_payment", "200, awaiting_payment -> paid",
                   "200 Idempotent-Replayed, paid -> paid", "paid -> shipped", "422, pending -> pending",
                   "409, closed -> closed", "200, awaiting_confirmation -> awaiting_confirmation",
                   "200, awaiting_confirmation -> authorized", "410, authorized -> authorized",
                   "409, authorized -> authorized"):
        assert change in demo.stdout
    with example.app_context():
        states = sorted(stub.state for stub in db.session.scalars(db.select(get_models(db).stub)))
    assert states == ["authorized", "closed", "shipped"]


@pytest.fixture
def app(example: Flask) -> Flask:
    """The example app, served by the ``server`` fixture in a thread (a browser keeps connections open)."""
    return example


@pytest.mark.slow
def test_jobs_1_and_4_in_a_browser(example: Flask, server: str, browser: Any) -> None:  # noqa: F811
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{server}/support")
    browser.find_element("name", "email").send_keys("ada@example.com")
    browser.find_element("name", "name").send_keys("Ada Lovelace")
    browser.find_element("name", "message").send_keys("My espresso machine leaks.")
    browser.find_element("css selector", "button[type=submit]").click()
    [shown] = WebDriverWait(browser, 20).until(lambda d: d.find_elements("id", "ref"))
    assert browser.current_url.startswith(f"{server}/support/thanks?ref=")
    ref = shown.text
    assert snapshot(example, ref) == (
        "new", {"email": "ada@example.com", "name": "Ada Lovelace", "message": "My espresso machine leaks."},
        [("create", "create_webhook", None, "new")])

    request = urllib.request.Request(f"{server}/access-requests", data=b'{"email": "ada@example.com"}',
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        page = json.load(response)
    browser.get(page["data"]["mail"]["confirm"])
    assert browser.find_element("tag name", "h1").text == "Confirm your access"
    assert snapshot(example, page["stubref"])[0] == "awaiting_confirmation"
    browser.find_element("css selector", "button[type=submit]").click()
    WebDriverWait(browser, 20).until(lambda d: "access granted" in d.page_source)
    assert snapshot(example, page["stubref"])[0] == "authorized"
