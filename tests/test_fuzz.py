"""Property-based tests of the webhook routes: whatever arrives, no 5xx, every refusal is
problem+json, and a refused request writes nothing.

``STUBBER_FUZZ_EXAMPLES`` sets the examples per test and database (default 100); run with
``--hypothesis-show-statistics`` to see how many cases ran.
"""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import quote

from flask import Flask
from flask.testing import FlaskClient
from flask_sqlalchemy import SQLAlchemy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flask_stubber import StubberWebhooks

from . import signing, test_verifiers
from .conftest import count_rows

# The order and signed templates, and one verifier per scheme.
stubber = test_verifiers.stubber
app_config = test_verifiers.app_config

EXAMPLES = int(os.environ.get("STUBBER_FUZZ_EXAMPLES", "100"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

ACTIONS = st.sampled_from(["payment_received", "add_note", "ship", "cancel", "nope", *signing.VERIFIERS])
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                          max_size=4), max_leaves=12)
CONTENT_TYPES = st.sampled_from([
    "application/json", "application/json; charset=latin-1", "application/vnd.api+json",
    "application/x-www-form-urlencoded", "multipart/form-data; boundary=xyz", "multipart/form-data",
    "text/plain", "application/xml", "", "application/octet-stream",
])
HEADER_TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=255, exclude_characters="\x7f"), max_size=60)
HEADER_NAMES = st.sampled_from([
    "Idempotency-Key", "webhook-id", "webhook-timestamp", "webhook-signature", "svix-id", "svix-timestamp",
    "svix-signature", "Stripe-Signature", "X-Hub-Signature-256", "X-GitHub-Delivery", "X-Signature",
    "X-Slack-Signature", "X-Slack-Request-Timestamp", "Authorization", "X-Api-Key", "Content-Encoding",
]) | st.from_regex(r"\AX-[A-Za-z0-9-]{1,20}\Z")


def written(app: Flask, db: SQLAlchemy) -> tuple[Any, ...]:
    models = app.extensions["stubber"].engine.models
    db.session.rollback()
    stubs = db.session.query(models.stub.stubref, models.stub.state, models.stub.data).order_by(models.stub.id)
    return tuple(map(tuple, stubs)), count_rows(db, models.post), count_rows(db, models.delivery)


def check(response: Any, before: tuple[Any, ...], app: Flask, db: SQLAlchemy) -> int:
    """The properties every answer has; returns the status."""
    status = response.status_code
    assert status < 500, response.get_data(as_text=True)
    if status >= 400:
        assert response.mimetype == "application/problem+json"
        body = response.get_json()
        assert body["status"] == status and body["success"] is False
        assert isinstance(body["error"], str) and body["error"]
        assert {"type", "title", "detail"} <= body.keys()
        assert written(app, db) == before
    else:
        assert response.get_json()["success"] is True
    return status


@FUZZ
@given(action=ACTIONS, value=JSON, content_type=CONTENT_TYPES, raw=st.none() | st.binary(max_size=200),
       method=st.sampled_from(["POST", "POST", "GET", "PUT"]))
def test_any_payload(client: FlaskClient, app: Flask, stubber: StubberWebhooks, db: SQLAlchemy, action: str,
                     value: Any, content_type: str, raw: bytes | None, method: str) -> None:
    stub = stubber.create_stub("order", {"customer": "ada"})
    before = written(app, db)
    url = f"/webhooks/im/{stub.stubref}/{action}"
    if method == "GET":
        query = value if isinstance(value, dict) else {"v": value}
        response = client.get(url, query_string={k: json.dumps(v) for k, v in query.items()})
    else:
        data = raw if raw is not None else json.dumps(value).encode()
        response = client.open(url, method=method, data=data, content_type=content_type)
    check(response, before, app, db)


@FUZZ
@given(action=st.sampled_from(list(signing.VERIFIERS)), headers=st.dictionaries(HEADER_NAMES, HEADER_TEXT),
       body=st.binary(max_size=100))
def test_random_headers_never_pass_a_verifier(client: FlaskClient, app: Flask, stubber: StubberWebhooks,
                                              db: SQLAlchemy, action: str, headers: dict[str, str],
                                              body: bytes) -> None:
    stub = stubber.create_stub("signed")
    before = written(app, db)
    response = client.post(f"/webhooks/im/{stub.stubref}/{action}", data=body, headers=headers,
                           content_type="application/json")
    assert check(response, before, app, db) == 401


@FUZZ
@given(headers=st.dictionaries(HEADER_NAMES, HEADER_TEXT), value=JSON)
def test_random_headers_on_open_webhooks(client: FlaskClient, app: Flask, stubber: StubberWebhooks,
                                         db: SQLAlchemy, headers: dict[str, str], value: Any) -> None:
    stub = stubber.create_stub("order")
    before = written(app, db)
    response = client.post(f"/webhooks/im/{stub.stubref}/add_note", json={"v": value}, headers=headers)
    assert check(response, before, app, db) in (200, 400, 422)  # 400: NaN and Infinity are not JSON


# One path segment each: a "/" would make another URL, which is not a webhook route at all.
SEGMENT = st.characters(exclude_characters="/", exclude_categories=("Cs",))
STUBREFS = (st.text(SEGMENT, min_size=1, max_size=30)
            | st.from_regex(r"\A\d{4}-\d{2}-\d{2}-[A-Za-z0-9]{4}-[A-Za-z0-9]{4}\Z")
            | st.from_regex(r"\A[ -.0-~]{1,30}\Z"))


@FUZZ
@given(stubref=STUBREFS, action=ACTIONS | st.text(SEGMENT, min_size=1, max_size=20),
       method=st.sampled_from(["GET", "POST", "DELETE", "PATCH"]))
def test_any_stubref_and_action(client: FlaskClient, app: Flask, stubber: StubberWebhooks, db: SQLAlchemy,
                                stubref: str, action: str, method: str) -> None:
    stubber.create_stub("order")
    before = written(app, db)
    response = client.open(f"/webhooks/im/{quote(stubref, safe='')}/{quote(action, safe='')}", method=method,
                           json={"amount": 1} if method != "GET" else None)
    assert check(response, before, app, db) in (401, 404, 405)
