"""Limits: body size before reading, JSON that cannot be stored, and optional rate limiting."""

from __future__ import annotations

import io
import sys
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_sqlalchemy import SQLAlchemy

from flask_stubber import StubberError, StubberWebhooks, signals

from . import signing
from .conftest import make_app
from .test_faults import state_of
from .test_webhooks import assert_problem


class UnreadableStream(io.BytesIO):
    """A body that fails the test if anything reads it."""

    def read(self, size: int | None = -1) -> bytes:
        raise AssertionError("the body was read")

    readline = read  # type: ignore[assignment]
    read1 = read


@pytest.mark.parametrize("app_config", [{"STUBBER_MAX_CONTENT_LENGTH": 1024},
                                        {"STUBBER_MAX_CONTENT_LENGTH": 1024, "STUBBER_VERIFIERS": signing.VERIFIERS,
                                         "STUBBER_DEFAULT_AUTH": "partner"}], ids=["open", "verified"])
def test_declared_large_body_is_413_without_reading_it(client: FlaskClient, app: Flask, stub: Any, stubber,
                                                       db) -> None:
    before = state_of(app, db, stubber, stub.stubref)
    response = client.post(f"/webhooks/im/{stub.stubref}/add_note", input_stream=UnreadableStream(),
                           content_type="application/json", environ_overrides={"CONTENT_LENGTH": str(10**9)})
    assert_problem(response, 413, "payload_too_large")
    assert state_of(app, db, stubber, stub.stubref) == before


@pytest.mark.parametrize("body", [
    pytest.param(b'{"amount": NaN}', id="nan"),
    pytest.param(b'{"amount": -Infinity}', id="infinity"),
    pytest.param(b'{"a": ' * 31 + b"1" + b"}" * 31, id="nested-31"),
    pytest.param(b'{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}", id="nested-5000"),
])
def test_json_that_cannot_be_stored_is_400(client: FlaskClient, app: Flask, stub: Any, stubber, db,
                                           body: bytes) -> None:
    before = state_of(app, db, stubber, stub.stubref)
    response = client.post(f"/webhooks/im/{stub.stubref}/add_note", data=body, content_type="application/json")
    assert_problem(response, 400, "invalid_body")
    assert state_of(app, db, stubber, stub.stubref) == before


def test_thirty_levels_are_accepted(client: FlaskClient, stub: Any) -> None:
    # MariaDB refuses JSON nested deeper than 32 levels; the stub's data adds one.
    body = b'{"a": ' * 30 + b"1" + b"}" * 30
    response = client.post(f"/webhooks/im/{stub.stubref}/add_note", data=body, content_type="application/json")
    assert response.status_code == 200, response.get_json()


@pytest.mark.parametrize("app_config", [{"STUBBER_RATE_LIMIT": "2/minute"}])
def test_rate_limit_answers_429_with_retry_after(client: FlaskClient, app: Flask, stub: Any, stubber, db) -> None:
    app.add_url_rule("/elsewhere", "elsewhere", lambda: "ok")
    url = f"/webhooks/im/{stub.stubref}/add_note"
    assert [client.post(url, json={"n": i}).status_code for i in range(2)] == [200, 200]
    before = state_of(app, db, stubber, stub.stubref)
    rejected: list[dict[str, Any]] = []
    signals.webhook_rejected.connect(lambda sender, **kw: rejected.append(kw), app, weak=False)
    response = client.post(url, json={"n": 3})
    body = assert_problem(response, 429, "rate_limited")
    assert 1 <= int(response.headers["Retry-After"]) <= 61
    assert "2 per 1 minute" not in body["detail"]
    assert [(r["error"], r["stubref"]) for r in rejected] == [("rate_limited", stub.stubref)]
    assert state_of(app, db, stubber, stub.stubref) == before
    # Only the webhooks are limited.
    assert [client.get("/elsewhere").status_code for _ in range(3)] == [200, 200, 200]


@pytest.mark.parametrize(("config", "message"), [
    ({"STUBBER_RATE_LIMIT": "lots"}, "is not a rate limit"),
    ({"STUBBER_RATE_LIMIT": 5}, "must be a string"),
])
def test_bad_rate_limit_fails_init_app(tmp_path: Any, config: dict[str, Any], message: str) -> None:
    with pytest.raises(StubberError, match=message):
        make_app(f"sqlite:///{tmp_path / 'l.db'}", SQLAlchemy(), StubberWebhooks(), **config)


def test_rate_limit_needs_flask_limiter(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "flask_limiter", None)
    with pytest.raises(StubberError, match=r"pip install 'flask-stubber\[ratelimit\]'"):
        make_app(f"sqlite:///{tmp_path / 'l.db'}", SQLAlchemy(), StubberWebhooks(), STUBBER_RATE_LIMIT="1/second")


def test_no_rate_limit_unless_configured(app: Flask) -> None:
    assert "limiter" not in app.extensions
