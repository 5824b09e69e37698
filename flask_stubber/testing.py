"""Helpers for testing apps built on flask-stubber.

- Signing: one function per verifier scheme of SPEC section 8, each returning the
  headers that sign a given body, and :func:`sign` for a ``STUBBER_VERIFIERS`` entry.
- :class:`StubberClient`: calls webhooks by stub and action name through a Flask test
  client, signing the exact bytes it sends.
- Assertions: :func:`assert_posted`, :func:`assert_not_posted`, :func:`assert_problem`.
- :func:`capture_signals`: records the stubber signals one app sends.
- :func:`create_test_app`: a Flask app with Flask-SQLAlchemy and the extension, tables created.

The pytest plugin (:mod:`flask_stubber.pytest_plugin`, loaded automatically) turns
these into fixtures.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json as _json
import secrets
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from flask import Flask, current_app
from sqlalchemy import inspect, select
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.pool import SingletonThreadPool, StaticPool
from werkzeug.local import LocalProxy

from . import signals
from .models import normalize_stubref

if TYPE_CHECKING:
    from flask.testing import FlaskClient
    from flask_sqlalchemy import SQLAlchemy
    from werkzeug.test import TestResponse

    from .extension import StubberWebhooks

__all__ = [
    "SIGNALS",
    "SignalRecorder",
    "StubberClient",
    "assert_not_posted",
    "assert_posted",
    "assert_problem",
    "bearer_headers",
    "capture_signals",
    "create_test_app",
    "github_headers",
    "hmac_headers",
    "sign",
    "standard_webhooks_headers",
    "stripe_headers",
]

Body = bytes | str

#: The names of the signals in :mod:`flask_stubber.signals`.
SIGNALS = ("stub_created", "webhook_received", "webhook_rejected", "action_executing", "action_executed")


# -- signing -----------------------------------------------------------------------


def _bytes(body: Body) -> bytes:
    return body.encode() if isinstance(body, str) else body


def _hmac(key: bytes, message: bytes, algorithm: str = "sha256") -> bytes:
    return hmac.new(key, message, getattr(hashlib, algorithm)).digest()


def _many(secret: str | Sequence[str]) -> list[str]:
    return [secret] if isinstance(secret, str) else list(secret)


def standard_webhooks_headers(
    body: Body,
    secret: str | Sequence[str],
    *,
    msg_id: str | None = None,
    timestamp: int | None = None,
    prefix: str = "webhook",
) -> dict[str, str]:
    """Sign ``body`` the Standard Webhooks way.

    ``webhook-signature`` is ``v1,<base64 HMAC-SHA256 of "id.timestamp.body">`` keyed
    with the base64-decoded secret (its ``whsec_`` prefix removed); several secrets give
    several space-separated signatures, as during a rotation.

    :param msg_id: The ``webhook-id``; a random ``msg_...`` by default. It is the delivery id.
    :param timestamp: Unix seconds; now by default.
    :param prefix: ``"svix"`` for the ``svix-*`` header aliases.
    """
    msg_id = msg_id or f"msg_{secrets.token_hex(12)}"
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signed = f"{msg_id}.{ts}.".encode() + _bytes(body)
    signatures = [
        "v1," + base64.b64encode(_hmac(base64.b64decode(s.removeprefix("whsec_")), signed)).decode()
        for s in _many(secret)
    ]
    return {f"{prefix}-id": msg_id, f"{prefix}-timestamp": ts, f"{prefix}-signature": " ".join(signatures)}


def stripe_headers(body: Body, secret: str | Sequence[str], *, timestamp: int | None = None) -> dict[str, str]:
    """Sign ``body`` the Stripe way: ``Stripe-Signature: t=<ts>,v1=<hex HMAC-SHA256 of "ts.body">``.

    The whole secret (``whsec_...``) is the key; several secrets give several ``v1`` entries.
    """
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signed = f"{ts}.".encode() + _bytes(body)
    parts = [f"t={ts}", *(f"v1={_hmac(s.encode(), signed).hex()}" for s in _many(secret))]
    return {"Stripe-Signature": ",".join(parts)}


def github_headers(body: Body, secret: str) -> dict[str, str]:
    """Sign ``body`` the GitHub way: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>``."""
    return {"X-Hub-Signature-256": "sha256=" + _hmac(secret.encode(), _bytes(body)).hex()}


def hmac_headers(
    body: Body,
    secret: str,
    *,
    header: str = "X-Signature",
    algorithm: str = "sha256",
    encoding: str = "hex",
    prefix: str = "",
) -> dict[str, str]:
    """Sign ``body`` with a generic HMAC: ``<header>: <prefix><encoded HMAC of the body>``.

    :param algorithm: A :mod:`hashlib` name, such as ``sha256``, ``sha512`` or ``sha1``.
    :param encoding: ``hex``, ``base64`` or ``base64url``.
    """
    digest = _hmac(secret.encode(), _bytes(body), algorithm)
    if encoding == "hex":
        text = digest.hex()
    elif encoding in ("base64", "base64url"):
        text = (base64.b64encode if encoding == "base64" else base64.urlsafe_b64encode)(digest).decode()
    else:
        raise ValueError(f"Unknown signature encoding {encoding!r}; use hex, base64 or base64url.")
    return {header: prefix + text}


def bearer_headers(token: str) -> dict[str, str]:
    """Return ``Authorization: Bearer <token>``."""
    return {"Authorization": f"Bearer {token}"}


def sign(settings: Mapping[str, Any], body: Body = b"", **options: Any) -> dict[str, str]:
    """Return the headers that a sender configured as ``settings`` would send with ``body``.

    :param settings: An entry of ``STUBBER_VERIFIERS``, such as
        ``{"scheme": "stripe", "secrets": ["whsec_test"]}``; its first secret (or token) signs.
    :param options: Passed to the scheme's function, such as ``timestamp=`` or ``msg_id=``.
    """
    scheme = settings.get("scheme")
    if scheme == "bearer":
        return bearer_headers(settings["tokens"][0])
    secret = settings["secrets"][0]
    if scheme == "standard-webhooks":
        return standard_webhooks_headers(body, secret, **options)
    if scheme == "stripe":
        return stripe_headers(body, secret, **options)
    if scheme == "github":
        return github_headers(body, secret)
    if scheme == "hmac":
        keys = ("header", "algorithm", "encoding", "prefix")
        return hmac_headers(body, secret, **{k: settings[k] for k in keys if k in settings}, **options)
    raise ValueError(f"Cannot sign for the verifier scheme {scheme!r}; sign the request yourself.")


_sign = sign  # StubberClient.run takes a ``sign`` argument.


# -- calling webhooks ----------------------------------------------------------------


class StubberClient:
    """Call webhooks by stub and action name through a Flask test client.

    ::

        hooks = StubberClient(app.test_client())
        response = hooks.run(stub, "payment_received", json={"amount": 10}, sign="payments")

    :param client: A Flask test client of an app with flask-stubber.
    """

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self.app: Flask = client.application

    def url(self, stub_or_ref: Any, action: str) -> str:
        """Return the path of the implicit webhook for ``action`` on a stub."""
        ref = stub_or_ref if isinstance(stub_or_ref, str) else stub_or_ref.stubref
        return f"{self.app.extensions['stubber'].config.url_prefix}/im/{ref}/{action}"

    def run(
        self,
        stub_or_ref: Any,
        action: str,
        *,
        json: Any = None,
        data: Mapping[str, Any] | Body | None = None,
        method: str | None = None,
        query: Mapping[str, Any] | None = None,
        sign: str | Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        content_type: str | None = None,
        synchronous: bool = False,
    ) -> TestResponse:
        """Call the implicit webhook of ``action`` on a stub and return the response.

        :param json: A value sent as a JSON body.
        :param data: Form fields (a mapping) or a raw body (bytes or text, with ``content_type``).
        :param method: ``POST`` by default, or ``GET`` when there is no body and ``query`` is given.
        :param query: The query string; the payload of a GET.
        :param sign: The name of a verifier in ``STUBBER_VERIFIERS``, or its settings: the
            request is signed the way that verifier checks it.
        :param headers: More headers, such as ``Idempotency-Key``.
        :param synchronous: Add ``_synchronous=true`` to ask for the state and data.
        """
        body = b""
        if json is not None:
            body, content_type = _json.dumps(json).encode(), content_type or "application/json"
        elif isinstance(data, Mapping):
            body, content_type = urlencode(data, doseq=True).encode(), "application/x-www-form-urlencoded"
        elif data is not None:
            body = _bytes(data)
        method = method or ("GET" if query is not None and not body else "POST")
        query_string = {**(query or {}), **({"_synchronous": "true"} if synchronous else {})}
        all_headers = dict(headers or {})
        if sign is not None:
            settings = sign if isinstance(sign, Mapping) else self.app.config["STUBBER_VERIFIERS"][sign]
            all_headers.update(_sign(settings, body))
        return self.client.open(
            self.url(stub_or_ref, action), method=method, data=body or None, content_type=content_type,
            query_string=query_string, headers=all_headers,
        )


# -- assertions ----------------------------------------------------------------------


def _history(stub_or_ref: Any) -> tuple[Any, list[Any]]:
    """Read a stub and its posts as committed, in a session of their own."""
    engine = current_app.extensions["stubber"].engine
    given = stub_or_ref if isinstance(stub_or_ref, str) else str(stub_or_ref.stubref)
    ref = normalize_stubref(given)
    model = engine.stub_model
    query = select(model).where(model.stubref == ref).options(selectinload(model.posts))
    bind = engine.session.get_bind(mapper=inspect(model))
    if isinstance(bind.pool, StaticPool | SingletonThreadPool):
        # One shared connection (in-memory SQLite): a session of our own would end the caller's transaction.
        stub = engine.session.scalars(query.execution_options(populate_existing=True)).first()
    else:
        with Session(bind) as session:
            stub = session.scalars(query).first()
            session.expunge_all()
    if stub is None:
        raise AssertionError(f"No stub has the stubref {given!r}.")
    return stub, list(stub.posts)


def _describe(posts: Sequence[Any]) -> str:
    if not posts:
        return "no posts"
    return "; ".join(f"{p.action_name} ({p.source}) {p.from_state} -> {p.to_state}" for p in posts)


def assert_posted(
    stub_or_ref: Any,
    action: str,
    *,
    to_state: str | None = None,
    from_state: str | None = None,
    source: str | None = None,
    payload: Mapping[str, Any] | None = None,
    last: bool = True,
) -> Any:
    """Assert that ``action`` was recorded on a stub, and return that post.

    The stub is read as committed, in a session of its own (call it inside an app context).
    The stub's current state must be the post's ``to_state`` when ``last`` is true.

    :param to_state: The state the action moved the stub to; also the stub's state now when ``last``.
    :param from_state: The state it left. :param source: ``webhook``, ``api``, ``cli``...
    :param payload: The validated payload recorded on the post.
    :param last: Check the latest post only; ``False`` accepts any post of the history.
    """
    stub, posts = _history(stub_or_ref)
    wanted = {"action_name": action, "to_state": to_state, "from_state": from_state, "source": source,
              "data": None if payload is None else dict(payload)}
    candidates = posts[-1:] if last else posts
    for post in reversed(candidates):
        if all(value is None or getattr(post, key) == value for key, value in wanted.items()):
            if last and stub.state != post.to_state:
                raise AssertionError(f"Stub {stub.stubref} is in {stub.state!r}, not {post.to_state!r}.")
            return post
    expected = ", ".join(f"{k}={v!r}" for k, v in wanted.items() if v is not None)
    where = "last post" if last else "a post"
    raise AssertionError(f"Expected {where} of stub {stub.stubref} with {expected}; history: {_describe(posts)}.")


def assert_not_posted(stub_or_ref: Any, action: str | None = None) -> None:
    """Assert that a stub has no post of ``action`` (or, without ``action``, no post at all)."""
    stub, posts = _history(stub_or_ref)
    found = [p for p in posts if action is None or p.action_name == action]
    if found:
        what = f"no post of {action!r}" if action else "no posts"
        raise AssertionError(f"Expected {what} on stub {stub.stubref}; history: {_describe(posts)}.")


def assert_problem(response: TestResponse, status: int, error: str) -> dict[str, Any]:
    """Assert that ``response`` is an ``application/problem+json`` refusal and return its body.

    :param status: The expected HTTP status, also the body's ``status``.
    :param error: The expected machine code, the body's ``error``.
    """
    body = response.get_json(silent=True)
    problems = []
    if response.status_code != status:
        problems.append(f"status {response.status_code}, not {status}")
    if response.mimetype != "application/problem+json":
        problems.append(f"content type {response.mimetype}, not application/problem+json")
    if not isinstance(body, dict):
        problems.append("a body that is not a JSON object")
    else:
        if body.get("error") != error:
            problems.append(f"error {body.get('error')!r}, not {error!r}")
        if body.get("status") != status or body.get("success") is not False:
            problems.append("a body whose status or success member is wrong")
        if not {"type", "title", "detail"} <= body.keys():
            problems.append("a body without type, title and detail")
        if "Traceback" in str(body):
            problems.append("a stack trace in the body")
    if problems or not isinstance(body, dict):
        raise AssertionError(f"Expected a {status} {error} problem; got {', '.join(problems)}: {response.data!r}")
    return body


# -- signals ---------------------------------------------------------------------------


@dataclass
class SignalRecorder:
    """The stubber signals one app sent, in order, as ``(name, kwargs)``."""

    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def names(self) -> list[str]:
        """Return the names of the signals received, in order."""
        return [name for name, _ in self.events]

    def of(self, name: str) -> list[dict[str, Any]]:
        """Return the keyword arguments of every ``name`` signal received."""
        return [kwargs for event, kwargs in self.events if event == name]

    def clear(self) -> None:
        """Forget what was recorded so far."""
        self.events.clear()


@contextmanager
def capture_signals(app: Flask | None = None, *names: str) -> Iterator[SignalRecorder]:
    """Record the stubber signals ``app`` sends inside the ``with`` block.

    ::

        with capture_signals(app) as recorded:
            client.post(url, json={"amount": 1})
        assert recorded.names() == ["webhook_received", "action_executing", "action_executed"]

    Context proxies among the keyword arguments, such as ``request``, are recorded as the
    objects they stand for, so they can be inspected after the request.

    :param app: The sender to listen to; the current app by default.
    :param names: The signals to record, such as ``"action_executed"``; every one by default.
    """
    sender = app if app is not None else current_app._get_current_object()  # type: ignore[attr-defined]
    recorder = SignalRecorder()
    receivers = []
    for name in names or SIGNALS:
        if name not in SIGNALS:
            raise ValueError(f"flask_stubber.signals has no signal {name!r}; use one of {', '.join(SIGNALS)}.")

        def receive(_sender: Any, _name: str = name, **kwargs: Any) -> None:
            resolved = {k: v._get_current_object() if isinstance(v, LocalProxy) else v for k, v in kwargs.items()}
            recorder.events.append((_name, resolved))

        getattr(signals, name).connect(receive, sender, weak=False)
        receivers.append((getattr(signals, name), receive))
    try:
        yield recorder
    finally:
        for signal, receive in receivers:
            signal.disconnect(receive, sender)


# -- apps ------------------------------------------------------------------------------


def create_test_app(
    stubber: StubberWebhooks,
    *,
    database_url: str = "sqlite://",
    db: SQLAlchemy | None = None,
    **config: Any,
) -> Flask:
    """Return a testing app with Flask-SQLAlchemy and ``stubber`` initialised, tables created.

    ``SERVER_NAME`` is ``localhost``, so :meth:`~flask_stubber.StubberWebhooks.webhook_url`
    works in an app context as well as in a request.

    :param stubber: The extension, with its templates registered.
    :param database_url: Where to store stubs; an in-memory SQLite database by default.
    :param db: The Flask-SQLAlchemy extension; a new one by default (``app.extensions["sqlalchemy"]``).
    :param config: More configuration, such as ``STUBBER_VERIFIERS``.
    """
    from flask_sqlalchemy import SQLAlchemy

    app = Flask("stubber_test_app")
    app.config.update(TESTING=True, SQLALCHEMY_DATABASE_URI=database_url, SERVER_NAME="localhost", **config)
    db = db if db is not None else SQLAlchemy()
    db.init_app(app)
    stubber.init_app(app)
    with app.app_context():
        db.create_all()
    return app
