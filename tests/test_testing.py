"""The testing kit: signing helpers, the webhook client, assertions, signal capture, the pytest plugin."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from blinker import NamedSignal
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_stubber import StubberWebhooks, signals
from flask_stubber.testing import (
    SIGNALS,
    StubberClient,
    assert_not_posted,
    assert_posted,
    assert_problem,
    bearer_headers,
    capture_signals,
    create_test_app,
    github_headers,
    hmac_headers,
    sign,
    standard_webhooks_headers,
    stripe_headers,
)

from .conftest import ORDER

# The Standard Webhooks specification's published test vector.
SW_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SW_BODY = '{"test": 2432232314}'
SW_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
# GitHub's documented example ("Validating webhook deliveries").
GH_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
# Computed with stripe-python's WebhookSignature, which also verified it.
STRIPE_BODY = '{"id": "evt_1", "object": "event"}'
STRIPE_SIGNATURE = "t=1700000000,v1=4278dbfbe45c971d383f6bf4a8a18768ed311b236ddb92b8ac93952f8d567247"

VERIFIERS: dict[str, dict[str, Any]] = {
    "payments": {"scheme": "standard-webhooks", "secrets": [SW_SECRET]},
    "stripe": {"scheme": "stripe", "secrets": ["whsec_test"]},
    "github": {"scheme": "github", "secrets": ["It's a Secret to Everybody"]},
    "tickets": {"scheme": "hmac", "secrets": ["k"], "header": "X-Signature", "algorithm": "sha256",
                "encoding": "hex", "prefix": "sha256="},
    "partner": {"scheme": "bearer", "tokens": ["t0ken"]},
}


# -- signing ------------------------------------------------------------------------


@pytest.mark.parametrize("body", [SW_BODY, SW_BODY.encode()])
def test_standard_webhooks_vector(body: str | bytes) -> None:
    headers = standard_webhooks_headers(body, SW_SECRET, msg_id="msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp=1614265330)
    assert headers == {"webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek", "webhook-timestamp": "1614265330",
                       "webhook-signature": SW_SIGNATURE}


def test_standard_webhooks_rotation_svix_aliases_and_defaults() -> None:
    other = "whsec_" + "c2VjcmV0LW9mLWEtcm90YXRlZC1lbmRwb2ludA=="
    headers = standard_webhooks_headers(SW_BODY, [other, SW_SECRET[6:]], msg_id="msg_p5jXN8AQM9LWM0D4loKWxJek",
                                        timestamp=1614265330, prefix="svix")
    first, second = headers["svix-signature"].split(" ")
    assert second == SW_SIGNATURE  # A secret without its whsec_ prefix signs the same.
    assert first != SW_SIGNATURE and first.startswith("v1,")
    fresh = standard_webhooks_headers("{}", SW_SECRET)
    assert fresh["webhook-id"].startswith("msg_") and fresh["webhook-timestamp"].isdigit()
    assert fresh["webhook-id"] != standard_webhooks_headers("{}", SW_SECRET)["webhook-id"]


def test_stripe_vector_and_rotation() -> None:
    assert stripe_headers(STRIPE_BODY, "whsec_test", timestamp=1700000000) == {"Stripe-Signature": STRIPE_SIGNATURE}
    rotated = stripe_headers(STRIPE_BODY, ["whsec_old", "whsec_test"], timestamp=1700000000)["Stripe-Signature"]
    t, old, new = rotated.split(",")
    assert (t, new) == ("t=1700000000", STRIPE_SIGNATURE.split(",")[1]) and old.startswith("v1=")


def test_github_vector() -> None:
    assert github_headers(b"Hello, World!", "It's a Secret to Everybody") == {"X-Hub-Signature-256": GH_SIGNATURE}


GH_DIGEST = bytes.fromhex(GH_SIGNATURE.removeprefix("sha256="))
GH_KEY, GH_BODY = b"It's a Secret to Everybody", b"Hello, World!"


@pytest.mark.parametrize(("options", "expected"), [
    ({"prefix": "sha256="}, GH_SIGNATURE),
    ({"encoding": "base64"}, base64.b64encode(GH_DIGEST).decode()),
    ({"encoding": "base64url", "prefix": "v1="}, "v1=" + base64.urlsafe_b64encode(GH_DIGEST).decode()),
    ({"algorithm": "sha512"}, hmac.new(GH_KEY, GH_BODY, hashlib.sha512).hexdigest()),
])
def test_generic_hmac(options: dict[str, str], expected: str) -> None:
    headers = hmac_headers(GH_BODY.decode(), GH_KEY.decode(), header="X-Sig", **options)
    assert headers == {"X-Sig": expected}


def test_generic_hmac_refuses_unknown_encodings() -> None:
    with pytest.raises(ValueError, match="hex, base64 or base64url"):
        hmac_headers("x", "k", encoding="base32")


def test_sign_follows_the_verifier_settings() -> None:
    assert sign(VERIFIERS["payments"], SW_BODY, msg_id="msg_p5jXN8AQM9LWM0D4loKWxJek",
                timestamp=1614265330)["webhook-signature"] == SW_SIGNATURE
    assert sign(VERIFIERS["stripe"], STRIPE_BODY, timestamp=1700000000) == {"Stripe-Signature": STRIPE_SIGNATURE}
    assert sign(VERIFIERS["github"], "Hello, World!") == {"X-Hub-Signature-256": GH_SIGNATURE}
    assert sign(dict(VERIFIERS["tickets"], secrets=["It's a Secret to Everybody"]), "Hello, World!") == {
        "X-Signature": GH_SIGNATURE}
    assert sign(VERIFIERS["partner"]) == bearer_headers("t0ken") == {"Authorization": "Bearer t0ken"}
    with pytest.raises(ValueError, match="'carrier-pigeon'"):
        sign({"scheme": "carrier-pigeon", "secrets": ["x"]}, "{}")


# -- the client ---------------------------------------------------------------------


@pytest.fixture
def hooks(app: Flask) -> StubberClient:
    return StubberClient(app.test_client())


def test_run_json(hooks: StubberClient, stub: Any) -> None:
    response = hooks.run(stub, "payment_received", json={"amount": 3})
    assert response.status_code == 200
    assert_posted(stub, "payment_received", to_state="paid", source="webhook", payload={"amount": 3})


def test_run_form_get_and_synchronous(hooks: StubberClient, stub: Any) -> None:
    assert hooks.url(stub, "add_note") == f"/webhooks/im/{stub.stubref}/add_note"
    assert hooks.run(stub.stubref, "add_note", data={"note": "form", "tags": ["a", "b"]}).status_code == 200
    assert_posted(stub, "add_note", payload={"note": "form", "tags": ["a", "b"]})
    body = hooks.run(stub, "payment_received", query={"amount": "2"}, synchronous=True).get_json()
    assert (body["state"], body["data"]["payload"]) == ("paid", {"amount": 2})
    assert_posted(stub, "payment_received", to_state="paid")
    assert_problem(hooks.run(stub, "ship", method="GET"), 405, "method_not_allowed")


@pytest.mark.parametrize("app_config", [{"STUBBER_VERIFIERS": VERIFIERS}])
@pytest.mark.parametrize("verifier", sorted(VERIFIERS))
def test_run_signs_the_bytes_it_sends(app: Flask, hooks: StubberClient, stub: Any, verifier: str) -> None:
    with capture_signals(app, "webhook_received") as recorded:
        response = hooks.run(stub, "add_note", json={"n": verifier}, sign=verifier, headers={"X-Trace": "1"})
    assert response.status_code == 200
    [received] = recorded.of("webhook_received")
    request = received["request"]
    sent = dict(request.headers)
    assert sent["X-Trace"] == "1"
    raw = request.get_data()
    assert raw == b'{"n": "' + verifier.encode() + b'"}'
    options: dict[str, Any] = {}
    if verifier == "payments":
        options = {"msg_id": sent["Webhook-Id"], "timestamp": int(sent["Webhook-Timestamp"])}
    elif verifier == "stripe":
        options = {"timestamp": int(sent["Stripe-Signature"].split(",")[0][2:])}
    for name, value in sign(VERIFIERS[verifier], raw, **options).items():
        assert request.headers[name] == value


@pytest.mark.skipif(importlib.util.find_spec("flask_stubber.verifiers") is None,
                    reason="sender verification (flask_stubber.verifiers) is not part of this build")
@pytest.mark.parametrize("app_config", [{"STUBBER_VERIFIERS": VERIFIERS}])
@pytest.mark.parametrize("verifier", sorted(VERIFIERS))
def test_signed_calls_pass_the_verifiers(hooks: StubberClient, stubber: StubberWebhooks, app: Flask,
                                         verifier: str) -> None:
    source = copy.deepcopy(ORDER)
    source["actions"]["add_note"]["action_meta"]["webhooks"]["auth"] = verifier
    stubber.register_template(source)
    stub = stubber.create_stub("order")
    assert_problem(hooks.run(stub, "add_note", json={"n": 1}), 401, "unauthorized")
    assert_not_posted(stub)
    assert hooks.run(stub, "add_note", json={"n": 1}, sign=verifier).status_code == 200
    assert_posted(stub, "add_note", payload={"n": 1})


# -- assertions ---------------------------------------------------------------------


def test_assert_posted_failures_show_the_history(app: Flask, stubber: StubberWebhooks, stub: Any) -> None:
    with pytest.raises(AssertionError, match="no posts"):
        assert_posted(stub, "payment_received")
    stubber.run_action(stub, "payment_received", {"amount": 1})
    stubber.run_action(stub, "add_note", {"n": 1})
    history = "payment_received \\(api\\) awaiting_payment -> paid; add_note \\(api\\) paid -> paid"
    with pytest.raises(AssertionError, match=f"last post .* action_name='payment_received'.*{history}"):
        assert_posted(stub, "payment_received")
    post = assert_posted(stub, "payment_received", last=False, to_state="paid", payload={"amount": 1})
    assert post.from_state == "awaiting_payment"
    for wrong in ({"to_state": "shipped"}, {"source": "webhook"}, {"payload": {"n": 2}}, {"from_state": "new"}):
        with pytest.raises(AssertionError, match="Expected last post"):
            assert_posted(stub, "add_note", **wrong)
    with pytest.raises(AssertionError, match="No stub has the stubref '2026-01-01-AAAA-BBBB'"):
        assert_posted("2026-01-01-AAAA-BBBB", "add_note")


def test_assert_posted_checks_the_current_state(app: Flask, stubber: StubberWebhooks, db: SQLAlchemy,
                                                stub: Any) -> None:
    stubber.run_action(stub, "payment_received", {"amount": 1})
    model = app.extensions["stubber"].engine.stub_model
    db.session.rollback()
    db.session.execute(model.__table__.update().values(state="shipped"))
    db.session.commit()
    with pytest.raises(AssertionError, match="is in 'shipped', not 'paid'"):
        assert_posted(stub, "payment_received")


def test_assert_not_posted(app: Flask, stubber: StubberWebhooks, stub: Any) -> None:
    assert_not_posted(stub)
    stubber.run_action(stub, "add_note", {"n": 1})
    assert_not_posted(stub, "payment_received")
    with pytest.raises(AssertionError, match=r"Expected no posts on stub .*add_note"):
        assert_not_posted(stub)
    with pytest.raises(AssertionError, match="Expected no post of 'add_note'"):
        assert_not_posted(stub.stubref.lower(), "add_note")


def test_assert_problem_failures(hooks: StubberClient, stub: Any) -> None:
    refused = hooks.run(stub, "ship")
    assert assert_problem(refused, 409, "action_not_in_state")["state"] == "awaiting_payment"
    with pytest.raises(AssertionError, match="status 409, not 404"):
        assert_problem(refused, 404, "action_not_in_state")
    with pytest.raises(AssertionError, match="error 'action_not_in_state', not 'stub_not_found'"):
        assert_problem(refused, 409, "stub_not_found")
    with pytest.raises(AssertionError, match="content type application/json"):
        assert_problem(hooks.run(stub, "add_note", json={}), 200, "x")


# -- signals ------------------------------------------------------------------------


def test_capture_signals_of_one_app(app: Flask, stubber: StubberWebhooks, tmp_path: Path) -> None:
    other = create_test_app(stubber, database_url=f"sqlite:///{tmp_path / 'other.db'}")
    with capture_signals(app) as recorded, capture_signals(other, "stub_created") as other_recorded:
        stub = stubber.create_stub("order")
        with other.app_context():
            stubber.create_stub("order")
            stubber.create_stub("order")
        stubber.run_action(stub, "cancel")
    assert recorded.names() == ["stub_created", "action_executing", "action_executed"]
    assert recorded.of("action_executed")[0]["to_state"] == "cancelled"
    assert other_recorded.names() == ["stub_created", "stub_created"]
    stubber.create_stub("order")  # After the block: not recorded.
    assert len(recorded.events) == 3
    recorded.clear()
    assert recorded.events == []
    with other.app_context():
        other.extensions["sqlalchemy"].engine.dispose()


def test_capture_signals_defaults_to_the_current_app_and_checks_names(app: Flask, stubber: StubberWebhooks) -> None:
    with capture_signals() as recorded:
        stubber.create_stub("order")
    assert recorded.names() == ["stub_created"]
    assert set(SIGNALS) == {name for name, value in vars(signals).items() if isinstance(value, NamedSignal)}
    with pytest.raises(ValueError, match="no signal 'stub_deleted'"), capture_signals(app, "stub_deleted"):
        pass


def test_create_test_app_in_memory() -> None:
    stubber = StubberWebhooks()
    stubber.register_template(copy.deepcopy(ORDER))
    app = create_test_app(stubber)
    with app.app_context():
        stub = stubber.create_stub("order")
        response = StubberClient(app.test_client()).run(stub, "payment_received", json={"amount": 9})
        assert response.status_code == 200
        assert_posted(stub, "payment_received", to_state="paid", payload={"amount": 9})
        assert app.config["TESTING"] and app.extensions["sqlalchemy"].engine.url.database in (None, "", ":memory:")


# -- the pytest plugin ----------------------------------------------------------------


@pytest.mark.slow
def test_plugin_fixtures_in_a_project_of_their_own(tmp_path: Path) -> None:
    """A user's project: its own ``app`` fixture and pytest-flask's ``client`` next to ours."""
    (tmp_path / "conftest.py").write_text(textwrap.dedent("""
        import pytest
        from flask_stubber import StubberWebhooks, Template

        stubber = StubberWebhooks()
        flow = Template("flow", start_state="new")
        flow.state("new", actions=["approve"]).state("approved")
        flow.action("approve", to_state="approved", webhook=True)
        stubber.register_template(flow)


        @pytest.fixture
        def app(stubber_app_factory):
            app = stubber_app_factory(stubber)
            with app.app_context():
                yield app
    """))
    (tmp_path / "test_flow.py").write_text(textwrap.dedent("""
        from flask_stubber.testing import assert_posted
        from conftest import stubber


        def test_approve(app, client, stubber_client, stubber_signals):
            stub = stubber.create_stub("flow")
            assert stubber_client.run(stub, "approve", json={}).status_code == 200
            assert_posted(stub, "approve", to_state="approved", source="webhook")
            assert stubber_signals.names() == [
                "stub_created", "webhook_received", "action_executing", "action_executed"]
            assert client.get("/webhooks/openapi.json").status_code == 200


        def test_own_database_per_test(app):
            assert stubber.create_stub("flow").state == "new"
    """))
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout


def test_plugin_fixture_names_do_not_clash() -> None:
    from flask_stubber import pytest_plugin

    names = {n for n in vars(pytest_plugin) if n.startswith("stubber_")}
    assert names == {"stubber_client", "stubber_signals", "stubber_app_factory"}
    conftest = (Path(__file__).parent / "conftest.py").read_text()
    assert not any(f"def {name}(" in conftest for name in names)

