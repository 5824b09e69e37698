"""Sender verification: every scheme against signatures made by the senders' own tools,
reference vectors, rotation, tolerance, raw bodies, configuration errors and refusals."""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import standardwebhooks
from flask import Flask
from flask.testing import FlaskClient
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import text

from flask_stubber import StubberError, StubberWebhooks, TemplateError, signals
from flask_stubber.verifiers import SCHEMES, SignedRequest, VerificationFailed, build_verifiers

from . import signing
from .conftest import ORDER, count_rows, make_app
from .test_webhooks import assert_problem

SIGNED: dict[str, Any] = {
    "name": "signed",
    "details": {"busy_start_state": "open"},
    "states": {"open": {"actions": [*signing.VERIFIERS, "close"]}, "closed": {"actions": []}},
    "actions": {
        **{name: {"to_state": {}, "action_meta": {"webhooks": {"enable": True, "auth": name}}}
           for name in signing.VERIFIERS},
        "close": {"to_state": {"closed": {}}, "action_meta": {"webhooks": {"enable": True, "auth": "payments"}}},
    },
}

#: (action, signer, what the signer takes to sign with another secret)
SIGNERS = [
    pytest.param("payments", signing.standard, "secret", id="standard-webhooks"),
    pytest.param("payments", signing.svix, "secret", id="svix-headers"),
    pytest.param("stripe", signing.stripe_signature, "secret", id="stripe"),
    pytest.param("github", signing.github, "secret", id="github"),
    pytest.param("tickets", signing.tickets, "secret", id="hmac"),
    pytest.param("slack", signing.slack, "secret", id="hmac-timestamped"),
    pytest.param("partner", signing.partner, "token", id="bearer"),
    pytest.param("apikey", signing.apikey, "token", id="bearer-header"),
]
TIMESTAMPED = [p for p in SIGNERS if p.id in ("standard-webhooks", "svix-headers", "stripe", "hmac-timestamped")]
BODY = json.dumps({"id": "evt_1", "amount": 5}).encode()


@pytest.fixture
def stubber() -> StubberWebhooks:
    ext = StubberWebhooks()
    ext.register_template(copy.deepcopy(ORDER))
    ext.register_template(copy.deepcopy(SIGNED))
    return ext


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"STUBBER_VERIFIERS": copy.deepcopy(signing.VERIFIERS)}


@pytest.fixture
def signed(app: Flask, stubber: StubberWebhooks) -> Any:
    return stubber.create_stub("signed", {"n": 0})


def post(client: FlaskClient, stub: Any, action: str, body: bytes, headers: dict[str, str],
         content_type: str = "application/json") -> Any:
    return client.post(f"/webhooks/im/{stub.stubref}/{action}", data=body, headers=headers,
                       content_type=content_type)


def written(app: Flask, db: SQLAlchemy, stubber: StubberWebhooks, stub: Any) -> tuple[Any, ...]:
    models = app.extensions["stubber"].engine.models
    fresh = stubber.get_stub(stub.stubref)
    return fresh.state, fresh.data, count_rows(db, models.post), count_rows(db, models.delivery)


@contextmanager
def rejections(app: Flask) -> Iterator[list[dict[str, Any]]]:
    seen: list[dict[str, Any]] = []

    def receiver(sender: Any, **kw: Any) -> None:
        seen.append(kw)

    signals.webhook_rejected.connect(receiver, app)
    try:
        yield seen
    finally:
        signals.webhook_rejected.disconnect(receiver, app)


# -- reference vectors and the schemes on their own ------------------------------------

VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TS = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
VECTOR_OTHER = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="


def verifier(scheme: str, **settings: Any) -> Any:
    return build_verifiers({"v": {"scheme": scheme, **settings}}, SCHEMES, 300)["v"]


def vector_headers(signature: str = VECTOR_SIGNATURE, **changes: str | None) -> dict[str, str]:
    headers = {"webhook-id": VECTOR_ID, "webhook-timestamp": str(VECTOR_TS), "webhook-signature": signature}
    headers.update(changes)  # type: ignore[arg-type]
    return {k: v for k, v in headers.items() if v is not None}


@pytest.mark.parametrize("secret", [VECTOR_SECRET, VECTOR_SECRET.removeprefix("whsec_")])
def test_standard_webhooks_reference_vector(secret: str) -> None:
    check = verifier("standard-webhooks", secrets=[secret])
    assert check.verify(SignedRequest(VECTOR_BODY, vector_headers()), VECTOR_TS) == VECTOR_ID
    # The reference library signs the vector the same way.
    assert standardwebhooks.Webhook(secret).sign(VECTOR_ID, _utc(VECTOR_TS), VECTOR_BODY) == VECTOR_SIGNATURE


@pytest.mark.parametrize(("headers", "passes"), [
    pytest.param(vector_headers(f"{VECTOR_OTHER} v2,{VECTOR_OTHER[3:]} {VECTOR_SIGNATURE} {VECTOR_OTHER}"), True,
                 id="several-signatures"),
    pytest.param(vector_headers("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA="), False, id="invalid-signature"),
    pytest.param(vector_headers(VECTOR_SIGNATURE.replace("v1,", "v2,")), False, id="other-version"),
    pytest.param(vector_headers(**{"webhook-id": None}), False, id="missing-id"),
    pytest.param(vector_headers(**{"webhook-timestamp": None}), False, id="missing-timestamp"),
    pytest.param(vector_headers(**{"webhook-signature": None}), False, id="missing-signature"),
    pytest.param(vector_headers(**{"webhook-timestamp": "hello"}), False, id="invalid-timestamp"),
    pytest.param(vector_headers(**{"webhook-id": "msg_other"}), False, id="other-id"),
])
def test_standard_webhooks_reference_cases(headers: dict[str, str], passes: bool) -> None:
    check = verifier("standard-webhooks", secrets=[VECTOR_SECRET])
    if passes:
        assert check.verify(SignedRequest(VECTOR_BODY, headers), VECTOR_TS) == VECTOR_ID
    else:
        with pytest.raises(VerificationFailed):
            check.verify(SignedRequest(VECTOR_BODY, headers), VECTOR_TS)


@pytest.mark.parametrize(("offset", "passes"), [(-300, True), (300, True), (-301, False), (301, False)])
@pytest.mark.parametrize("scheme", ["standard-webhooks", "stripe"])
def test_timestamp_tolerance_applies_both_ways(scheme: str, offset: int, passes: bool) -> None:
    if scheme == "stripe":
        check = verifier("stripe", secrets=[signing.STRIPE_SECRET])
        headers = signing.stripe_signature(VECTOR_BODY, ts=VECTOR_TS)
    else:
        check, headers = verifier(scheme, secrets=[VECTOR_SECRET]), vector_headers()
    request = SignedRequest(VECTOR_BODY, headers)
    if passes:
        check.verify(request, VECTOR_TS + offset)
    else:
        with pytest.raises(VerificationFailed, match="tolerance"):
            check.verify(request, VECTOR_TS + offset)


def test_stripe_rolling_secrets_and_event_id() -> None:
    check = verifier("stripe", secrets=[signing.STRIPE_SECRET], tolerance=60)
    body = b'{"id": "evt_1NG8Du2eZvKYlo2CUI79vXWy", "type": "charge.succeeded"}'
    payload = json.loads(body)
    # During a roll Stripe sends one v1 per secret; one of them is ours.
    headers = signing.stripe_documented(body, ["whsec_unknown", signing.STRIPE_SECRET], VECTOR_TS)
    assert check.verify(SignedRequest(body, headers, payload), VECTOR_TS + 60) == payload["id"]
    with pytest.raises(VerificationFailed):
        check.verify(SignedRequest(body, headers, payload), VECTOR_TS + 61)
    only_other = signing.stripe_documented(body, ["whsec_unknown"], VECTOR_TS)
    with pytest.raises(VerificationFailed):
        check.verify(SignedRequest(body, only_other, payload), VECTOR_TS)


def test_many_offered_signatures_are_capped() -> None:
    check = verifier("standard-webhooks", secrets=[VECTOR_SECRET])
    flood = " ".join([VECTOR_OTHER] * 50 + [VECTOR_SIGNATURE])
    with pytest.raises(VerificationFailed):
        check.verify(SignedRequest(VECTOR_BODY, vector_headers(flood)), VECTOR_TS)


# -- through the webhook route ---------------------------------------------------------


@pytest.mark.parametrize(("action", "sign", "_kw"), SIGNERS)
def test_signed_request_runs_the_action(client: FlaskClient, app: Flask, signed: Any, stubber, db,
                                        action: str, sign: Callable[..., dict[str, str]], _kw: str) -> None:
    response = post(client, signed, action, BODY, sign(BODY))
    assert response.status_code == 200, response.get_json()
    assert [p.action_name for p in stubber.get_stub(signed.stubref).posts] == [action]


ROTATED = {"standard-webhooks": signing.SW_OLD_SECRET, "svix-headers": signing.SW_OLD_SECRET,
           "stripe": signing.STRIPE_OLD_SECRET, "github": "gh-previous", "bearer": "t0ken-old"}


@pytest.mark.parametrize(("action", "sign", "kw", "old"), [
    pytest.param(*p.values, ROTATED[p.id], id=p.id) for p in SIGNERS if p.id in ROTATED])
def test_every_configured_secret_verifies(client: FlaskClient, signed: Any, action: str,
                                          sign: Callable[..., dict[str, str]], kw: str, old: str) -> None:
    assert post(client, signed, action, BODY, sign(BODY, **{kw: old})).status_code == 200


def _forgeries() -> list[Any]:
    cases = []
    for param in SIGNERS:
        action, sign, kw = param.values
        wrong = "whsec_" + "QUFBQUFBQUFBQUFBQUFBQQ==" if param.id in ("standard-webhooks", "svix-headers") else "nope"
        cases.append(pytest.param(action, lambda b, s=sign: {}, id=f"{param.id}-missing"))
        cases.append(pytest.param(action, lambda b, s=sign, k=kw, w=wrong: s(b, **{k: w}), id=f"{param.id}-wrong"))
        if kw == "secret":
            cases.append(pytest.param(action, lambda b, s=sign: s(b + b" "), id=f"{param.id}-tampered"))
    for param in TIMESTAMPED:
        action, sign, _ = param.values
        for label, shift in (("stale", -3600), ("future", 3600)):
            cases.append(pytest.param(action, lambda b, s=sign, d=shift: s(b, ts=signing.now() + d),
                                      id=f"{param.id}-{label}"))
    return cases


@pytest.mark.parametrize(("action", "forge"), _forgeries())
def test_forged_requests_are_401_and_write_nothing(client: FlaskClient, app: Flask, signed: Any, stubber, db,
                                                   action: str, forge: Callable[[bytes], dict[str, str]]) -> None:
    before = written(app, db, stubber, signed)
    with rejections(app) as seen:
        body = assert_problem(post(client, signed, action, BODY, forge(BODY)), 401, "unauthorized")
    assert body["detail"] == "The request could not be authenticated."
    assert set(body) == {"type", "title", "status", "detail", "success", "error"}
    assert [(r["error"], r["status"]) for r in seen] == [("unauthorized", 401)]
    assert written(app, db, stubber, signed) == before


def test_signatures_cover_the_raw_bytes(client: FlaskClient, signed: Any, stubber, db) -> None:
    raw = '{ "amount" :5,\n  "note": "caf\u00e9" }'.encode()
    assert post(client, signed, "payments", raw, signing.standard(raw)).status_code == 200
    form = b"amount=5&note=caf%C3%A9&note=again"
    response = post(client, signed, "github", form, signing.github(form), "application/x-www-form-urlencoded")
    assert response.status_code == 200
    db.session.rollback()
    assert stubber.get_stub(signed.stubref).posts[-1].data == {"amount": "5", "note": ["café", "again"]}


def test_get_requests_are_verified_over_the_empty_body(client: FlaskClient, signed: Any) -> None:
    url = f"/webhooks/im/{signed.stubref}/payments?amount=3"
    assert_problem(client.get(url), 401, "unauthorized")
    assert client.get(url, headers=signing.standard(b"")).status_code == 200


@pytest.mark.parametrize(("body", "content_type"), [(b"{nope", "application/json"), (b"<a/>", "application/xml")])
def test_undecodable_body_is_401_until_the_sender_is_verified(client: FlaskClient, app: Flask, signed: Any,
                                                              stubber, db, body: bytes, content_type: str) -> None:
    before = written(app, db, stubber, signed)
    assert_problem(post(client, signed, "payments", body, {}, content_type), 401, "unauthorized")
    status, code = (400, "invalid_body") if content_type == "application/json" else (415, "unsupported_media_type")
    assert_problem(post(client, signed, "payments", body, signing.standard(body), content_type), status, code)
    assert written(app, db, stubber, signed) == before


@pytest.mark.parametrize("app_config", [{"STUBBER_VERIFIERS": signing.VERIFIERS, "STUBBER_DEFAULT_AUTH": "partner"}])
def test_default_auth_guards_actions_without_their_own(client: FlaskClient, app: Flask, stub: Any, signed: Any,
                                                       stubber, db) -> None:
    missing = "/webhooks/im/2026-01-01-AAAA-BBBB/payment_received"
    # Without the token even an unknown stub or action answers 401: nothing can be probed.
    assert_problem(client.post(missing, json={"amount": 1}), 401, "unauthorized")
    assert_problem(client.post(f"/webhooks/im/{stub.stubref}/nope", json={}), 401, "unauthorized")
    assert_problem(client.post(missing, json={"amount": 1}, headers=signing.partner(b"")), 404, "stub_not_found")
    assert_problem(client.post(f"/webhooks/im/{stub.stubref}/payment_received", json={"amount": 1}), 401,
                   "unauthorized")
    ok = client.post(f"/webhooks/im/{stub.stubref}/payment_received", json={"amount": 1},
                     headers=signing.partner(b""))
    assert ok.status_code == 200
    # An action that names its own verifier uses that one, not the default.
    assert_problem(post(client, signed, "github", BODY, signing.partner(BODY)), 401, "unauthorized")
    assert post(client, signed, "github", BODY, signing.github(BODY)).status_code == 200


@contextmanager
def stub_locked(db: SQLAlchemy, database_url: str, stubref: str) -> Iterator[None]:
    """Hold the stub's row lock (the database's write lock on SQLite) from another connection."""
    with db.engine.connect() as conn:
        if database_url.startswith("sqlite"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            conn.execute(text("UPDATE stubber_stubs SET state = state WHERE stubref = :r"), {"r": stubref})
        else:
            conn.execute(text("SELECT id FROM stubber_stubs WHERE stubref = :r FOR UPDATE"), {"r": stubref})
        try:
            yield
        finally:
            conn.rollback()


def short_lock_waits(database_url: str) -> dict[str, Any]:
    """Engine options that make waiting for a lock fail after a second instead of hanging."""
    if database_url.startswith("sqlite"):
        connect_args: dict[str, Any] = {"timeout": 1}
    elif database_url.startswith("postgresql"):
        connect_args = {"options": "-c lock_timeout=1000"}
    else:
        connect_args = {"init_command": "SET SESSION innodb_lock_wait_timeout = 1"}
    return {"pool_pre_ping": True, "connect_args": connect_args}


@pytest.fixture
def app_with_short_lock_waits(database_url: str, db: SQLAlchemy, stubber: StubberWebhooks) -> Iterator[Flask]:
    app = make_app(database_url, db, stubber, STUBBER_VERIFIERS=signing.VERIFIERS,
                   SQLALCHEMY_ENGINE_OPTIONS=short_lock_waits(database_url))
    with app.app_context():
        db.drop_all()
        db.create_all()
        yield app
        db.session.remove()
        db.drop_all()
        db.engine.dispose()


def test_forged_request_does_not_wait_for_the_stub_lock(app_with_short_lock_waits: Flask, database_url: str,
                                                        stubber: StubberWebhooks, db: SQLAlchemy) -> None:
    app = app_with_short_lock_waits
    stub = stubber.create_stub("signed")
    client = app.test_client()
    with stub_locked(db, database_url, stub.stubref):
        # Were the lock taken, the short lock wait would end in 503, not 401.
        assert_problem(post(client, stub, "close", BODY, {}), 401, "unauthorized")
        assert_problem(post(client, stub, "close", BODY, signing.standard(BODY, secret=signing.SW_OLD_SECRET,
                                                                          ts=signing.now() - 3600)),
                       401, "unauthorized")
        busy = post(client, stub, "close", BODY, signing.standard(BODY))
        assert_problem(busy, 503, "unavailable")
    assert post(client, stub, "close", BODY, signing.standard(BODY)).status_code == 200


def test_secrets_never_reach_logs_or_responses(client: FlaskClient, signed: Any,
                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    bodies = []
    for param in SIGNERS:
        action, sign, _ = param.values
        bodies.append(post(client, signed, action, BODY, sign(BODY + b"x")).get_data(as_text=True))
    text_seen = caplog.text + "".join(bodies)
    assert "failed the verifier" in caplog.text
    for secret in signing.ALL_SECRETS:
        assert secret not in text_seen


# -- configuration ---------------------------------------------------------------------

BAD_CONFIGS = [
    pytest.param({"v": {"scheme": "carrier-pigeon"}}, "unknown scheme 'carrier-pigeon'", id="unknown-scheme"),
    pytest.param({"v": "whsec_abc"}, "must be a dict", id="not-a-dict"),
    pytest.param({"v": {"scheme": "stripe"}}, "'secrets' must be a non-empty list", id="no-secrets"),
    pytest.param({"v": {"scheme": "stripe", "secrets": "whsec_leak"}}, "must be a non-empty list",
                 id="secrets-as-string"),
    pytest.param({"v": {"scheme": "stripe", "secrets": ["whsec_leak", ""]}}, r"secrets\[1\]", id="empty-secret"),
    pytest.param({"v": {"scheme": "standard-webhooks", "secrets": ["whsec_!!leak!!"]}}, "not a base64 secret",
                 id="bad-whsec"),
    pytest.param({"v": {"scheme": "github", "secret": ["leak"]}}, "'secrets' must be", id="typo-without-secrets"),
    pytest.param({"v": {"scheme": "github", "secrets": ["leak"], "secret": "x"}}, "Did you mean 'secrets'",
                 id="typo"),
    pytest.param({"v": {"scheme": "stripe", "secrets": ["leak"], "tolerance": 0}}, "'tolerance' must be",
                 id="tolerance"),
    pytest.param({"v": {"scheme": "hmac", "secrets": ["leak"]}}, "'header' must be", id="hmac-without-header"),
    pytest.param({"v": {"scheme": "hmac", "secrets": ["leak"], "header": "X", "algorithm": "md5"}},
                 "'algorithm' must be one of", id="hmac-algorithm"),
    pytest.param({"v": {"scheme": "hmac", "secrets": ["leak"], "header": "X", "encoding": "rot13"}},
                 "'encoding' must be one of", id="hmac-encoding"),
    pytest.param({"v": {"scheme": "hmac", "secrets": ["leak"], "header": "X", "signed_payload": "{timestamp}"}},
                 "must contain '{body}'", id="hmac-payload"),
    pytest.param({"v": {"scheme": "hmac", "secrets": ["leak"], "header": "X",
                        "signed_payload": "{timestamp}.{body}"}}, "set the header", id="hmac-timestamp-header"),
    pytest.param({"v": {"scheme": "bearer", "secrets": ["leak"]}}, "'tokens' must be", id="bearer-tokens"),
]


@pytest.mark.parametrize(("verifiers", "message"), BAD_CONFIGS)
def test_bad_verifier_settings_fail_init_app(tmp_path: Any, verifiers: dict[str, Any], message: str) -> None:
    with pytest.raises(StubberError, match=message) as info:
        make_app(f"sqlite:///{tmp_path / 'v.db'}", SQLAlchemy(), StubberWebhooks(), STUBBER_VERIFIERS=verifiers)
    assert "leak" not in str(info.value)
    assert "STUBBER_VERIFIERS['v']" in str(info.value) or "STUBBER_VERIFIERS must" in str(info.value)


@pytest.mark.parametrize(("config", "message"), [
    ({"STUBBER_DEFAULT_AUTH": "nobody"}, "STUBBER_DEFAULT_AUTH names 'nobody'"),
    ({"STUBBER_VERIFIERS": ["x"]}, "STUBBER_VERIFIERS must be a dict"),
    ({"STUBBER_TIMESTAMP_TOLERANCE": -1}, "STUBBER_TIMESTAMP_TOLERANCE must be a positive"),
    ({"STUBBER_IDEMPOTENCY_TTL": "1d"}, "STUBBER_IDEMPOTENCY_TTL must be a positive"),
    ({"STUBBER_DEFAULT_AUTH": 1}, "STUBBER_DEFAULT_AUTH must be a string"),
])
def test_bad_auth_config_fails_init_app(tmp_path: Any, config: dict[str, Any], message: str) -> None:
    with pytest.raises(StubberError, match=message):
        make_app(f"sqlite:///{tmp_path / 'v.db'}", SQLAlchemy(), StubberWebhooks(), **config)


def test_template_naming_an_unknown_verifier_is_refused(tmp_path: Any) -> None:
    ext = StubberWebhooks()
    ext.register_template(copy.deepcopy(SIGNED))
    with pytest.raises(TemplateError, match="no verifier named 'apikey', 'github'") as info:
        make_app(f"sqlite:///{tmp_path / 'v.db'}", SQLAlchemy(), ext,
                 STUBBER_VERIFIERS={k: v for k, v in signing.VERIFIERS.items() if k not in ("github", "apikey")})
    assert "actions.github.action_meta.webhooks.auth" in str(info.value)
    # Registered after init_app: refused as well, and not registered.
    app = make_app(f"sqlite:///{tmp_path / 'w.db'}", SQLAlchemy(), ext2 := StubberWebhooks(),
                   STUBBER_VERIFIERS={"payments": signing.VERIFIERS["payments"]})
    with pytest.raises(TemplateError, match="'signed'"):
        ext2.register_template(copy.deepcopy(SIGNED))
    with app.app_context():
        assert "signed" not in ext2.templates()


def test_require_auth_names_every_unguarded_webhook(tmp_path: Any) -> None:
    ext = StubberWebhooks()
    ext.register_template(copy.deepcopy(ORDER))
    with pytest.raises(TemplateError) as info:
        make_app(f"sqlite:///{tmp_path / 'a.db'}", SQLAlchemy(), ext, STUBBER_REQUIRE_AUTH=True)
    message = str(info.value)
    assert "'order'" in message
    assert "payment_received, add_note, ship, create" in message
    assert "cancel" not in message.split("verifier:")[1].split(".")[0]
    # With a default verifier every webhook is guarded.
    make_app(f"sqlite:///{tmp_path / 'b.db'}", SQLAlchemy(), ext, STUBBER_REQUIRE_AUTH=True,
             STUBBER_VERIFIERS=signing.VERIFIERS, STUBBER_DEFAULT_AUTH="partner")


def test_require_auth_checks_templates_registered_later(tmp_path: Any) -> None:
    ext = StubberWebhooks()
    app = make_app(f"sqlite:///{tmp_path / 'a.db'}", SQLAlchemy(), ext, STUBBER_REQUIRE_AUTH=True,
                   STUBBER_VERIFIERS=signing.VERIFIERS)
    ext.register_template(copy.deepcopy(SIGNED))
    with pytest.raises(TemplateError, match="payment_received"):
        ext.register_template(copy.deepcopy(ORDER))
    with app.app_context():
        assert sorted(ext.templates()) == ["signed"]


# -- custom schemes --------------------------------------------------------------------


class SharedHeader:
    """A toy scheme: a header must carry the configured value; its id header is the delivery id."""

    def __init__(self, settings: Any) -> None:
        self.header = settings.string("header")
        self.values = settings.secrets("values")

    def verify(self, request: SignedRequest, now: float) -> str | None:
        if request.header(self.header) not in self.values:
            raise VerificationFailed("wrong value")
        return request.header("X-Toy-Id")


def test_registered_scheme_is_usable(database_url: str, db: SQLAlchemy, stubber: StubberWebhooks) -> None:
    stubber.register_verifier_scheme("toy", SharedHeader)
    verifiers = {**signing.VERIFIERS, "payments": {"scheme": "toy", "header": "X-Toy", "values": ["v1"]}}
    app = make_app(database_url, db, stubber, STUBBER_VERIFIERS=verifiers)
    with app.app_context():
        db.drop_all()
        db.create_all()
        stub = stubber.create_stub("signed")
        client = app.test_client()
        assert_problem(post(client, stub, "payments", BODY, {"X-Toy": "v2"}), 401, "unauthorized")
        ok = post(client, stub, "payments", BODY, {"X-Toy": "v1", "X-Toy-Id": "toy-1"})
        assert ok.status_code == 200
        assert stubber.get_stub(stub.stubref).posts[0].delivery_id == "toy-1"
        db.session.remove()
        db.drop_all()
        db.engine.dispose()


def test_registered_scheme_settings_are_checked(tmp_path: Any) -> None:
    ext = StubberWebhooks()
    ext.register_verifier_scheme("toy", SharedHeader)
    with pytest.raises(StubberError, match=r"unknown setting 'valuez'\. Did you mean 'values'"):
        make_app(f"sqlite:///{tmp_path / 'a.db'}", SQLAlchemy(), ext,
                 STUBBER_VERIFIERS={"t": {"scheme": "toy", "header": "X", "values": ["a"], "valuez": 1}})
    with pytest.raises(TypeError, match="callable"):
        ext.register_verifier_scheme("bad", "nope")  # type: ignore[arg-type]


def _utc(ts: int) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC)
