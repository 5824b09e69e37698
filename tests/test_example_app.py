"""The example app's jobs, through its test client and once through gunicorn with the demo."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from example_app import config, create_app
from example_app.demo import payment_event, stripe_signature
from example_app.extensions import db, stubber

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


def snapshot(app: Flask, stubref: str) -> tuple[str, dict[str, Any], list[tuple[str, str, str | None, str]]]:
    """The stub's state, data and history, read in a fresh context."""
    with app.app_context():
        stub = stubber.get_stub(stubref)
        return stub.state, stub.data, [(p.action_name, p.source, p.from_state, p.to_state) for p in stub.posts]


def new_support_request(web: FlaskClient) -> dict[str, Any]:
    response = web.post("/support-requests", json={"email": "ada@example.com", "message": "It leaks."})
    assert response.status_code == 201
    return response.get_json()  # type: ignore[no-any-return]


def new_order(web: FlaskClient, total: int = 2500) -> dict[str, Any]:
    response = web.post("/orders", json={"items": ["espresso machine"], "total": total, "currency": "zar"})
    assert response.status_code == 201
    return response.get_json()  # type: ignore[no-any-return]


def test_the_templates_of_the_four_jobs(example: Flask) -> None:
    with example.app_context():
        templates = stubber.templates()
    assert set(templates) == {"order", "support_request", "access_request"}
    assert templates["support_request"].create_options == {"enable": True}
    assert templates["order"].actions["payment_received"].webhooks.auth == "stripe"
    assert example.config["STUBBER_VERIFIERS"]["stripe"]["scheme"] == "stripe"
    assert not any(a.webhooks.enable for a in templates["access_request"].actions.values())


def test_ticketing_system_moves_a_support_request(example: Flask, web: FlaskClient) -> None:
    page = new_support_request(web)
    ref = page["stubref"]
    assert (page["state"], page["template"]) == ("new", "support_request")
    assert page["url"] == f"http://localhost/stubs/{ref}"
    update, comment = page["webhooks"]["ticket_update"], page["webhooks"]["add_comment"]
    assert update == f"http://localhost/webhooks/im/{ref}/ticket_update"
    assert web.post(update, json={"id": "4711", "status": "open", "assignee": "sam@help.example"}).status_code == 200
    assert web.post(comment, json={"author": "Sam", "body": "A photo?", "public": "on"}).status_code == 200
    assert web.post(comment, json={"author": "Ada", "body": "Sent."}).status_code == 200
    assert web.post(update, json={"id": 4711, "status": "pending"}).status_code == 200
    state, data, history = snapshot(example, ref)
    assert state == "pending"
    assert data == {
        "email": "ada@example.com", "message": "It leaks.", "ticket_id": 4711,
        "payload": {"ticket_id": 4711, "status": "pending"},
        "comments": [{"author": "Sam", "body": "A photo?"}, {"author": "Ada", "body": "Sent."}],
    }
    assert history == [
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
    assert snapshot(example, ref) == before == ("new", {"email": "ada@example.com", "message": "It leaks."}, [])


def test_signed_payment_moves_an_order_to_paid_and_it_ships(example: Flask, web: FlaskClient) -> None:
    page = new_order(web)
    ref = page["stubref"]
    assert (page["state"], page["data"]) == (
        "awaiting_payment", {"items": ["espresso machine"], "total": 2500, "currency": "zar"})
    assert list(page["webhooks"]) == ["payment_received"]
    body, headers = payment_event(ref, 2500)
    response = web.post(page["webhooks"]["payment_received"], data=body, headers=headers,
                        content_type="application/json")
    assert response.status_code == 200, response.get_json()
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


def edited_event(ref: str, edit: Any) -> tuple[bytes, dict[str, str]]:
    import json

    body, _ = payment_event(ref, 2500)
    event = json.loads(body)
    edit(event)
    raw = json.dumps(event).encode()
    return raw, {"Stripe-Signature": stripe_signature(raw, config.stripe_secret())}


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
    body, headers = edited_event(ref, edit)
    response = web.post(page["webhooks"]["payment_received"], data=body, headers=headers,
                        content_type="application/json")
    problem = assert_problem(response, status, code)
    if errors is not None:
        assert problem["errors"] == errors
    assert snapshot(example, ref) == ("awaiting_payment", page["data"], [])


def test_access_request_is_granted_only_by_its_own_link(example: Flask, web: FlaskClient) -> None:
    with example.app_context():
        ref = stubber.create_stub("access_request", {"email": "ada@example.com"}).stubref
    assert_problem(web.get(f"/webhooks/im/{ref}/confirm"), 404, "action_not_found")
    assert snapshot(example, ref)[0] == "awaiting_confirmation"
    with example.app_context():
        stubber.run_action(ref, "confirm")
        assert stubber.available_actions(ref) == ["revoke"]
    assert snapshot(example, ref)[0] == "authorized"


@pytest.mark.parametrize(("path", "kwargs", "status"), [
    ("/orders", {"json": {"total": 0, "currency": "zar"}}, 422),
    ("/orders", {"json": {"total": 100, "currency": "gbp"}}, 422),
    ("/orders", {"json": {"total": True, "currency": "zar"}}, 422),
    ("/orders", {"data": "total=1"}, 400),
    ("/support-requests", {"json": {"email": "ada", "message": "hi"}}, 422),
    ("/support-requests", {"json": ["not", "an", "object"]}, 400),
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
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", "whsec_from_env")
    settings = config.from_environment()
    assert settings["SQLALCHEMY_DATABASE_URI"] == "sqlite:///example.db"
    assert settings["SQLALCHEMY_ENGINE_OPTIONS"] == {"pool_pre_ping": True}
    assert settings["STUBBER_VERIFIERS"]["stripe"]["secrets"] == ["whsec_from_env"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def gunicorn(example: Flask, database_url: str) -> Iterator[str]:
    """The example app served by gunicorn with the documented settings, two workers."""
    base = f"http://127.0.0.1:{free_port()}"
    env = {**os.environ, "DATABASE_URL": database_url, "WEB_CONCURRENCY": "2", "BIND": base[7:]}
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "example_app/gunicorn_conf.py"], cwd=ROOT,
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/", timeout=2).close()
                break
            except OSError:
                assert server.poll() is None, server.stderr.read().decode() if server.stderr else ""
                time.sleep(0.1)
        yield base
    finally:
        server.terminate()
        server.communicate(timeout=30)


@pytest.mark.slow
def test_demo_against_gunicorn(example: Flask, gunicorn: str) -> None:
    demo = subprocess.run([sys.executable, "-m", "example_app.demo", gunicorn], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "13 steps, 0 unexpected" in demo.stdout
    for change in ("new -> open", "pending -> solved", "solved -> closed", "awaiting_payment -> paid",
                   "paid -> shipped", "422, pending -> pending", "409, closed -> closed"):
        assert change in demo.stdout
    with example.app_context():
        from flask_stubber.models import get_models

        states = sorted(stub.state for stub in db.session.scalars(db.select(get_models(db).stub)))
    assert states == ["closed", "shipped"]
