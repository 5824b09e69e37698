"""The implicit webhook route: payloads, success bodies and every refusal."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_sqlalchemy import SQLAlchemy

from flask_stubber import StubberWebhooks, signals
from flask_stubber.testing import StubberClient, assert_posted, assert_problem

from .conftest import count_rows


def url(stub: Any, action: str) -> str:
    return f"/webhooks/im/{stub.stubref}/{action}"


def posts(stubber: StubberWebhooks, db: SQLAlchemy) -> int:
    from flask import current_app

    return count_rows(db, current_app.extensions["stubber"].engine.post_model)


def reload(stubber: StubberWebhooks, db: SQLAlchemy, stubref: str) -> Any:
    db.session.rollback()
    return stubber.get_stub(stubref)


def test_post_json_moves_stub_and_answers_success_body(client: FlaskClient, stub: Any, stubber, db) -> None:
    response = client.post(url(stub, "payment_received"), json={"amount": "12.5", "currency": "ZAR", "ref": "x1"})
    assert response.status_code == 200
    body = response.get_json()
    assert body == {"success": True, "stubref": stub.stubref, "action_name": "payment_received",
                    "post_id": body["post_id"]}
    assert isinstance(body["post_id"], int)
    post = assert_posted(stub, "payment_received", source="webhook", from_state="awaiting_payment", to_state="paid",
                         payload={"amount": 12.5, "currency": "ZAR", "ref": "x1"})
    assert post.id == body["post_id"]
    fresh = reload(stubber, db, stub.stubref)
    assert fresh.data == {"customer": "ada", "payload": {"amount": 12.5, "currency": "ZAR", "ref": "x1"}}
    assert len(fresh.posts) == 1


def test_get_query_string_is_the_payload(stubber_client: StubberClient, stub: Any, stubber, db) -> None:
    response = stubber_client.run(stub, "payment_received", query={"amount": "3", "currency": "USD"},
                                  synchronous=True)
    assert response.request.method == "GET"
    assert response.status_code == 200
    body = response.get_json()
    assert body["state"] == "paid"
    assert body["data"]["payload"] == {"amount": 3, "currency": "USD"}
    assert "_synchronous" not in reload(stubber, db, stub.stubref).data["payload"]


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "multipart/form-data"])
def test_form_posts_are_payloads(client: FlaskClient, stub: Any, stubber, db, content_type: str) -> None:
    response = client.post(url(stub, "payment_received"), data={"amount": "7", "currency": "ZAR"},
                           content_type=content_type)
    assert response.status_code == 200, response.get_json()
    assert reload(stubber, db, stub.stubref).data["payload"] == {"amount": 7, "currency": "ZAR"}


def test_post_data_on_root_merges_and_keeps_state(client: FlaskClient, stub: Any, stubber, db) -> None:
    response = client.post(url(stub, "add_note"), json={"note": "call back", "customer": "grace"})
    assert response.status_code == 200
    fresh = reload(stubber, db, stub.stubref)
    assert fresh.state == "awaiting_payment"
    assert fresh.data == {"customer": "grace", "note": "call back"}


def test_payload_replaces_previous_payload(client: FlaskClient, stubber, db, app: Flask) -> None:
    stub = stubber.create_stub("order", {"payload": {"old": True}})
    assert client.post(url(stub, "payment_received"), json={"amount": 1}).status_code == 200
    assert reload(stubber, db, stub.stubref).data["payload"] == {"amount": 1}


def test_stubref_lookup_is_case_insensitive(client: FlaskClient, stub: Any) -> None:
    response = client.post(f"/webhooks/im/{stub.stubref.lower()}/payment_received", json={"amount": 1})
    assert response.status_code == 200
    assert response.get_json()["stubref"] == stub.stubref


def test_synchronous_flag_adds_state_and_data(client: FlaskClient, stub: Any) -> None:
    body = client.post(url(stub, "add_note") + "?_synchronous=1", json={"n": 1}).get_json()
    assert body["state"] == "awaiting_payment"
    assert body["data"] == {"customer": "ada", "n": 1}


REFUSALS = [
    pytest.param("post", "/webhooks/im/2026-01-01-AAAA-BBBB/payment_received", {"json": {"amount": 1}}, 404,
                 "stub_not_found", id="unknown-stub"),
    pytest.param("post", "/webhooks/im/not-a-ref/payment_received", {"json": {}}, 404, "stub_not_found",
                 id="malformed-stubref"),
    pytest.param("post", "{ref}/nope", {"json": {}}, 404, "action_not_found", id="unknown-action"),
    pytest.param("post", "{ref}/cancel", {"json": {}}, 404, "action_not_found", id="action-without-webhooks"),
    pytest.param("get", "{ref}/ship", {}, 405, "method_not_allowed", id="method-not-in-methods"),
    pytest.param("put", "{ref}/payment_received", {"json": {}}, 405, "method_not_allowed", id="put"),
    pytest.param("post", "{ref}/ship", {"json": {}}, 409, "action_not_in_state", id="not-in-state"),
    pytest.param("post", "{ref}/payment_received", {"json": {"amount": -1}}, 422, "validation_error",
                 id="below-min"),
    pytest.param("post", "{ref}/payment_received", {"json": {"currency": "EUR"}}, 422, "validation_error",
                 id="missing-required-and-bad-option"),
    pytest.param("post", "{ref}/payment_received", {"data": "{nope", "content_type": "application/json"}, 400,
                 "invalid_body", id="malformed-json"),
    pytest.param("post", "{ref}/payment_received", {"data": "[1, 2]", "content_type": "application/json"}, 400,
                 "invalid_body", id="json-array"),
    pytest.param("post", "{ref}/payment_received", {"data": b"\xff\xfe", "content_type": "application/json"}, 400,
                 "invalid_body", id="undecodable-json"),
    pytest.param("post", "{ref}/payment_received", {"data": "<a/>", "content_type": "application/xml"}, 415,
                 "unsupported_media_type", id="xml"),
    pytest.param("post", "{ref}/payment_received", {"data": "amount=1", "content_type": "text/plain"}, 415,
                 "unsupported_media_type", id="text"),
]


@pytest.mark.parametrize(("method", "path", "kwargs", "status", "code"), REFUSALS)
def test_refusals_are_problems_and_write_nothing(
    client: FlaskClient, app: Flask, stub: Any, stubber: StubberWebhooks, db: SQLAlchemy,
    method: str, path: str, kwargs: dict[str, Any], status: int, code: str,
) -> None:
    rejected: list[dict[str, Any]] = []
    signals.webhook_rejected.connect(lambda sender, **kw: rejected.append(kw), app, weak=False)
    response = getattr(client, method)(path.format(ref=f"/webhooks/im/{stub.stubref}"), **kwargs)
    assert_problem(response, status, code)
    fresh = reload(stubber, db, stub.stubref)
    assert (fresh.state, fresh.data, fresh.posts) == ("awaiting_payment", {"customer": "ada"}, [])
    assert [r["error"] for r in rejected] == [code]
    assert rejected[0]["status"] == status


def test_validation_error_lists_marshmallow_messages(client: FlaskClient, stub: Any) -> None:
    body = assert_problem(client.post(url(stub, "payment_received"), json={"currency": "EUR"}), 422,
                          "validation_error")
    assert body["errors"]["amount"] == ["amount is required"]
    assert "currency" in body["errors"]


def test_not_in_state_names_state_and_webhook_actions(client: FlaskClient, stub: Any) -> None:
    body = assert_problem(client.post(url(stub, "ship"), json={}), 409, "action_not_in_state")
    assert body["state"] == "awaiting_payment"
    assert body["available_actions"] == ["payment_received", "add_note"]


def test_action_of_a_left_state_cannot_run_again(client: FlaskClient, stub: Any) -> None:
    assert client.post(url(stub, "payment_received"), json={"amount": 1}).status_code == 200
    body = assert_problem(client.post(url(stub, "payment_received"), json={"amount": 1}), 409,
                          "action_not_in_state")
    assert body["state"] == "paid"


@pytest.mark.parametrize("app_config", [{"STUBBER_MAX_CONTENT_LENGTH": 64}])
def test_body_over_the_limit_is_413(client: FlaskClient, stub: Any, stubber, db) -> None:
    body = assert_problem(client.post(url(stub, "add_note"), json={"note": "x" * 100}), 413, "payload_too_large")
    assert "64" in body["detail"]
    assert reload(stubber, db, stub.stubref).posts == []
    assert client.post(url(stub, "add_note"), json={"note": "short"}).status_code == 200


@pytest.mark.parametrize("app_config", [{"STUBBER_MAX_CONTENT_LENGTH": 64}])
def test_chunked_body_over_the_limit_is_413(client: FlaskClient, stub: Any) -> None:
    import io

    response = client.post(url(stub, "add_note"), input_stream=io.BytesIO(b'{"n": "' + b"x" * 200 + b'"}'),
                           headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
                           environ_overrides={"wsgi.input_terminated": True})
    assert_problem(response, 413, "payload_too_large")


def test_handler_failure_is_500_without_internals(client: FlaskClient, stub: Any, stubber, db) -> None:
    @stubber.action_handler("order", "payment_received")
    def explode(stub: Any, payload: Any, ctx: Any) -> None:
        stub.data["half"] = "written"
        raise KeyError("secret-internal-detail")

    body = assert_problem(client.post(url(stub, "payment_received"), json={"amount": 1}), 500, "internal_error")
    assert "secret-internal-detail" not in str(body)
    fresh = reload(stubber, db, stub.stubref)
    assert (fresh.state, fresh.data, fresh.posts) == ("awaiting_payment", {"customer": "ada"}, [])


def test_url_prefix_is_configurable(database_url: str, db: SQLAlchemy, stubber: StubberWebhooks) -> None:
    from .conftest import make_app

    app = make_app(database_url, db, stubber, STUBBER_URL_PREFIX="/hooks/")
    assert any(r.rule == "/hooks/im/<stubref>/<action_name>" for r in app.url_map.iter_rules())
