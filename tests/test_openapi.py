"""The OpenAPI 3.1 document at /webhooks/openapi.json."""

from __future__ import annotations

import copy
import json
import sys
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_sqlalchemy import SQLAlchemy
from marshmallow import Schema, fields
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

from flask_stubber import StubberWebhooks, Template
from flask_stubber.openapi import component_name, openapi_document
from flask_stubber.testing import assert_problem

from .conftest import ORDER, make_app

IM = "/webhooks/im/{stubref}"
VERIFIERS = {
    "payments": {"scheme": "standard-webhooks", "secrets": ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]},
    "stripe": {"scheme": "stripe", "secrets": ["whsec_test"]},
    "github": {"scheme": "github", "secrets": ["s3cret"]},
    "tickets": {"scheme": "hmac", "secrets": ["k"], "header": "X-Signature", "algorithm": "sha512"},
    "partner": {"scheme": "bearer", "tokens": ["t0ken"]},
}


@pytest.fixture
def database_url(tmp_path: Any) -> str:
    """The document does not depend on the database: these tests run on SQLite only."""
    return f"sqlite:///{tmp_path / 'stubber.db'}"


@pytest.fixture
def doc(client: FlaskClient) -> dict[str, Any]:
    response = client.get("/webhooks/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    document: dict[str, Any] = response.get_json()
    validate(document)  # type: ignore[arg-type]
    return document


def schema_of(doc: dict[str, Any], ref: dict[str, Any]) -> Any:
    """A validator for a schema of the document, its references resolved in the document."""
    return OAS31Validator({**ref, "components": doc["components"]})


def test_one_operation_per_method_of_each_webhook_action(doc: dict[str, Any]) -> None:
    assert doc["openapi"] == "3.1.0"
    assert set(doc["paths"]) == {f"{IM}/payment_received", f"{IM}/add_note", f"{IM}/ship",
                                 "/webhooks/create/order", "/webhooks/ex/{uuid}"}
    assert set(doc["paths"][f"{IM}/payment_received"]) == {"get", "post", "parameters"}
    assert set(doc["paths"][f"{IM}/ship"]) == {"post", "parameters"}  # methods: ["POST"]
    [stubref] = doc["paths"][f"{IM}/ship"]["parameters"]
    assert stubref["in"] == "path" and stubref["required"] is True
    assert [tag["name"] for tag in doc["tags"]] == ["order"]
    ids = [op["operationId"] for path in doc["paths"].values() for m, op in path.items() if m != "parameters"]
    assert len(ids) == len(set(ids)) == 8  # 5 implicit, 1 create, 2 explicit


def test_get_takes_the_schema_as_query_parameters(doc: dict[str, Any]) -> None:
    params = {p["name"]: p for p in doc["paths"][f"{IM}/payment_received"]["get"]["parameters"]}
    assert set(params) == {"amount", "currency", "_synchronous", "Idempotency-Key"}
    assert params["amount"]["required"] is True
    assert params["amount"]["schema"] == {"type": "number", "minimum": 0}
    assert params["currency"]["required"] is False
    assert params["currency"]["schema"]["enum"] == ["ZAR", "USD", None]
    assert params["_synchronous"]["schema"] == {"type": "boolean"}


def test_post_takes_json_and_forms_of_the_schema(doc: dict[str, Any]) -> None:
    body = doc["paths"][f"{IM}/payment_received"]["post"]["requestBody"]
    assert set(body["content"]) == {"application/json", "application/x-www-form-urlencoded", "multipart/form-data"}
    ref = body["content"]["application/json"]["schema"]
    assert ref == {"$ref": "#/components/schemas/order.payment_received"}
    validator = schema_of(doc, ref)
    assert validator.is_valid({"amount": 5, "currency": "ZAR", "extra": "kept"})
    assert not validator.is_valid({"currency": "ZAR"})
    assert not validator.is_valid({"amount": 5, "currency": "EUR"})
    assert not validator.is_valid({"amount": -1})


def test_actions_without_fields_take_any_object(doc: dict[str, Any]) -> None:
    post = doc["paths"][f"{IM}/add_note"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Payload"}
    params = [p["name"] for p in doc["paths"][f"{IM}/add_note"]["get"]["parameters"]]
    assert params == ["payload", "_synchronous", "Idempotency-Key"]
    assert "lands at the root of `stub.data`" in post["description"]


def test_every_error_is_a_problem(doc: dict[str, Any]) -> None:
    post = doc["paths"][f"{IM}/payment_received"]["post"]
    assert sorted(post["responses"]) == ["200", "400", "404", "409", "413", "415", "422", "500", "503"]
    assert post["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/WebhookSuccess"}
    for status, response in post["responses"].items():
        if status != "200":
            content = response["content"]["application/problem+json"]
            assert content["schema"] == {"$ref": "#/components/schemas/Problem"}
            for example in content["examples"].values():
                value = doc["components"]["examples"][example["$ref"].rsplit("/", 1)[1]]["value"]
                assert value["status"] == int(status) and value["success"] is False
                assert schema_of(doc, {"$ref": "#/components/schemas/Problem"}).is_valid(value)
    assert set(post["responses"]["404"]["content"]["application/problem+json"]["examples"]) == {
        "stub_not_found", "action_not_found"}
    assert set(post["responses"]["409"]["content"]["application/problem+json"]["examples"]) == {
        "action_not_in_state", "idempotency_conflict"}
    assert set(post["responses"]["422"]["content"]["application/problem+json"]["examples"]) == {
        "validation_error", "idempotency_key_reused"}
    assert "Retry-After" in post["responses"]["503"]["headers"]
    get = doc["paths"][f"{IM}/payment_received"]["get"]
    # No body, no verifier, no rate limit, no method refused, no redirect.
    assert not {"303", "400", "413", "415", "405", "401", "429"} & set(get["responses"])


def test_the_problem_schema_matches_real_refusals(doc: dict[str, Any], client: FlaskClient, stub: Any) -> None:
    validator = schema_of(doc, {"$ref": "#/components/schemas/Problem"})
    for response in (client.post(f"/webhooks/im/{stub.stubref}/ship"),
                     client.post(f"/webhooks/im/{stub.stubref}/payment_received", json={})):
        assert validator.is_valid(response.get_json()), response.get_json()
    ok = client.post(f"/webhooks/im/{stub.stubref}/add_note?_synchronous=1", json={"n": 1}).get_json()
    assert schema_of(doc, {"$ref": "#/components/schemas/WebhookSuccess"}).is_valid(ok)


def test_create_and_explicit_routes(doc: dict[str, Any]) -> None:
    create = doc["paths"]["/webhooks/create/order"]["post"]
    assert create["responses"]["201"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/StubCreated"}
    assert create["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Payload"}
    assert sorted(create["responses"]) == ["201", "400", "409", "413", "415", "422", "500", "503"]
    explicit = doc["paths"]["/webhooks/ex/{uuid}"]
    assert {"get", "post"} <= set(explicit)
    assert sorted(explicit["post"]["responses"]) == ["200", "400", "404", "409", "410", "413", "415", "422", "500",
                                                     "503"]
    assert "405" in explicit["get"]["responses"]  # ship takes POST only; every order action takes POST.
    assert set(explicit["post"]["responses"]["404"]["content"]["application/problem+json"]["examples"]) == {
        "webhook_not_found"}
    for operation in (explicit["get"], explicit["post"]):  # No action asks for confirmation or a redirect.
        assert set(operation["responses"]["200"]["content"]) == {"application/json"}
        assert "303" not in operation["responses"] and "403" not in operation["responses"]


def operations(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(f"{m.upper()} {path}", op) for path, item in doc["paths"].items() for m, op in item.items()
            if m != "parameters"]


def test_every_operation_takes_a_delivery_id(doc: dict[str, Any], client: FlaskClient, stub: Any) -> None:
    for name, operation in operations(doc):
        [header] = [p for p in operation["parameters"] if p["in"] == "header"]
        assert (header["name"], header["required"]) == ("Idempotency-Key", False), name
        responses = operation["responses"]
        success = responses.get("200") or responses["201"]
        assert success["headers"]["Idempotent-Replayed"]["schema"] == {"type": "string", "enum": ["true"]}, name
        codes = {k: set(r["content"]["application/problem+json"]["examples"]) for k, r in responses.items()
                 if int(k) >= 400}
        assert "idempotency_conflict" in codes["409"] and "idempotency_key_reused" in codes["422"], name
    url = f"/webhooks/im/{stub.stubref}/add_note"
    first, again = (client.post(url, json={}, headers={"Idempotency-Key": "k"}) for _ in range(2))
    assert again.headers["Idempotent-Replayed"] == "true" and again.get_json() == first.get_json()


@pytest.mark.parametrize("app_config", [{"STUBBER_RATE_LIMIT": "1000/minute"}])
def test_rate_limited_where_a_rate_limit_is_configured(doc: dict[str, Any]) -> None:
    for name, operation in operations(doc):
        response = operation["responses"]["429"]
        assert set(response["content"]["application/problem+json"]["examples"]) == {"rate_limited"}, name
        assert "Retry-After" in response["headers"], name


CONTACT = {
    "name": "contact",
    "details": {"busy_start_state": "new", "webhooks": {"create": {
        "enable": True, "auth": "partner", "post_data_on_root": True,
        "fields": {"email": {"fieldtype": "email", "validations": [{"validationtype": "required"}]},
                   "topic": {"fieldtype": "select", "params": {"options": ["sales", "support"]}}},
        "redirect": "https://example.com/thanks/~~stub.stubref",
        "synchronous": {"enable": False, "response": {"ref": "~~stub.stubref"}},
    }}},
    "states": {"new": {"actions": ["verify", "note"]}, "verified": {"actions": []}},
    "actions": {
        "verify": {"to_state": "verified", "action_meta": {"webhooks": {
            "confirm": {"title": "Confirm your address"}, "redirect": "https://example.com/done"}}},
        "note": {"action_meta": {"webhooks": {"enable": True, "auth": "payments", "confirm": True,
                                              "methods": ["POST"]}},
                 "tasks": {"link": {"tasktype": "create_webhook",
                                    "params": {"action_name": "verify", "webhookuuid": "~~stubpost.data.uuid"}}}},
    },
}


@pytest.fixture
def contact_doc(client: FlaskClient, stubber: StubberWebhooks) -> dict[str, Any]:
    stubber.register_template(copy.deepcopy(CONTACT))
    document: dict[str, Any] = client.get("/webhooks/openapi.json").get_json()
    validate(document)  # type: ignore[arg-type]
    return document


@pytest.mark.parametrize("app_config", [{"STUBBER_VERIFIERS": VERIFIERS}])
def test_the_create_operation_follows_the_create_options(contact_doc: dict[str, Any]) -> None:
    create = contact_doc["paths"]["/webhooks/create/contact"]["post"]
    ref = create["requestBody"]["content"]["application/json"]["schema"]
    assert ref == {"$ref": "#/components/schemas/contact.create"}
    validator = schema_of(contact_doc, ref)
    assert validator.is_valid({"email": "ada@example.com", "topic": "sales"})
    assert not validator.is_valid({"topic": "sales"}) and not validator.is_valid({"email": "a@b.c", "topic": "x"})
    assert "lands at the root of `stub.data`" in create["description"]
    assert create["security"] == [{"partner": []}] and "401" in create["responses"]
    assert create["responses"]["201"]["content"]["application/json"]["schema"] == {}  # synchronous.response
    assert create["responses"]["303"]["headers"]["Location"]["required"] is True
    assert "Idempotent-Replayed" in create["responses"]["303"]["headers"]
    assert [p["name"] for p in create["parameters"]] == ["_synchronous", "Idempotency-Key"]
    assert "405" not in create["responses"] and "404" not in create["responses"]


@pytest.mark.parametrize("app_config", [{"STUBBER_VERIFIERS": VERIFIERS}])
def test_confirmation_pages_redirects_and_conflicts_on_the_explicit_route(contact_doc: dict[str, Any]) -> None:
    get, post = (contact_doc["paths"]["/webhooks/ex/{uuid}"][m] for m in ("get", "post"))
    assert set(get["responses"]["200"]["content"]) == {"application/json", "text/html"}
    assert "confirmation page" in get["responses"]["200"]["description"]
    assert set(post["responses"]["200"]["content"]) == {"application/json", "text/html"}  # note's "done" page
    assert "403" not in get["responses"]
    assert set(post["responses"]["403"]["content"]["application/problem+json"]["examples"]) == {
        "confirmation_required"}
    assert "303" in get["responses"] and "303" in post["responses"]  # verify's redirect
    for operation in (get, post):
        assert operation["security"] == [{}, {"payments": []}]  # An action may name a verifier.
        assert "401" in operation["responses"]
        assert "webhook_conflict" in operation["responses"]["409"]["content"]["application/problem+json"]["examples"]
    note = contact_doc["paths"][f"{IM}/note"]["post"]  # Its create_webhook task names the uuid.
    assert "webhook_conflict" in note["responses"]["409"]["content"]["application/problem+json"]["examples"]
    add_note = contact_doc["paths"][f"{IM}/add_note"]["post"]
    assert "webhook_conflict" not in add_note["responses"]["409"]["content"]["application/problem+json"]["examples"]


@pytest.mark.parametrize("app_config", [{"STUBBER_VERIFIERS": VERIFIERS}])
def test_real_pages_and_redirects_match_the_document(contact_doc: dict[str, Any], client: FlaskClient,
                                                     stubber: StubberWebhooks) -> None:
    created = client.post("/webhooks/create/contact", data={"email": "ada@example.com"},
                          headers={"Authorization": "Bearer t0ken", "Accept": "text/html"})
    assert created.status_code == 303 and created.headers["Location"].startswith("https://example.com/thanks/")
    stub = stubber.get_stub(created.headers["Location"].rsplit("/", 1)[1])
    hook = stubber.create_webhook(stub, "verify")
    page = client.get(f"/webhooks/ex/{hook.uuid}")
    assert (page.status_code, page.mimetype) == (200, "text/html")
    assert_problem(client.post(f"/webhooks/ex/{hook.uuid}", json={}), 403, "confirmation_required")


def secured_order() -> dict[str, Any]:
    source = copy.deepcopy(ORDER)
    source["actions"]["payment_received"]["action_meta"]["webhooks"]["auth"] = "payments"
    source["details"]["webhooks"]["create"]["auth"] = "partner"
    return source


@pytest.mark.parametrize("app_config", [{"STUBBER_VERIFIERS": VERIFIERS, "STUBBER_DEFAULT_AUTH": "github"}])
def test_security_of_configured_verifiers(client: FlaskClient, stubber: StubberWebhooks) -> None:
    stubber.register_template(secured_order())
    doc = client.get("/webhooks/openapi.json").get_json()
    validate(doc)
    schemes = doc["components"]["securitySchemes"]
    assert schemes["payments"] == {"type": "apiKey", "in": "header", "name": "webhook-signature",
                                   "description": schemes["payments"]["description"]}
    assert (schemes["stripe"]["name"], schemes["github"]["name"], schemes["tickets"]["name"]) == (
        "Stripe-Signature", "X-Hub-Signature-256", "X-Signature")
    assert "HMAC-SHA512" in schemes["tickets"]["description"]
    assert {k: schemes["partner"][k] for k in ("type", "scheme")} == {"type": "http", "scheme": "bearer"}
    paths = doc["paths"]
    assert paths[f"{IM}/payment_received"]["post"]["security"] == [{"payments": []}]
    assert paths[f"{IM}/add_note"]["post"]["security"] == [{"github": []}]  # STUBBER_DEFAULT_AUTH
    assert paths[f"{IM}/ship"]["post"]["security"] == [{"github": []}]  # STUBBER_DEFAULT_AUTH
    assert paths["/webhooks/create/order"]["post"]["security"] == [{"partner": []}]
    assert paths["/webhooks/ex/{uuid}"]["post"]["security"] == [{"payments": []}, {"github": []}]
    for path in (f"{IM}/payment_received", f"{IM}/add_note", f"{IM}/ship", "/webhooks/create/order",
                 "/webhooks/ex/{uuid}"):
        assert "401" in paths[path]["post"]["responses"]
    text = json.dumps(doc)
    for secret in ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_test", "s3cret", "t0ken", '"k"'):
        assert secret not in text


def test_templates_sharing_an_action_share_its_path(client: FlaskClient, stubber: StubberWebhooks) -> None:
    t = Template("ticket", start_state="open")
    t.state("open", actions=["add_note", "close"]).state("closed")
    t.action("add_note", webhook=True, methods=["POST"],
             fields={"note": {"fieldtype": "text", "validations": ["required"]}})
    t.action("close", to_state="closed")
    stubber.register_template(t)
    doc = client.get("/webhooks/openapi.json").get_json()
    validate(doc)
    path = doc["paths"][f"{IM}/add_note"]
    assert path["post"]["tags"] == ["order", "ticket"]
    assert path["post"]["requestBody"]["content"]["application/json"]["schema"] == {
        "anyOf": [{"$ref": "#/components/schemas/Payload"}, {"$ref": "#/components/schemas/ticket.add_note"}]}
    assert path["get"]["tags"] == ["order"]  # ticket's add_note takes POST only...
    assert "405" in path["get"]["responses"]  # ...so a GET may be refused.
    assert "405" not in path["post"]["responses"]


def test_nested_and_registered_schemas_get_stable_names(client: FlaskClient, stubber: StubberWebhooks) -> None:
    class PaymentSchema(Schema):
        reference = fields.String(required=True)

    stubber.register_schema("PaymentSchema", PaymentSchema)
    t = Template("shop order", start_state="new", create_webhook=True)
    t.state("new", actions=["pay", "pay_later", "describe"])
    t.action("pay", schema="PaymentSchema", webhook=True)
    t.action("pay_later", schema="PaymentSchema", webhook=True)
    t.action("describe", webhook=True, fields={
        "lines": {"fieldtype": "arraybuilder", "params": {"fields": {"sku": {"fieldtype": "text"},
                                                                     "qty": {"fieldtype": "integer"}}}},
        "customer": {"fieldtype": "objectbuilder", "fields": {"email": {"fieldtype": "email"}}},
    })
    stubber.register_template(t)
    doc = client.get("/webhooks/openapi.json").get_json()
    validate(doc)
    schemas = doc["components"]["schemas"]
    assert {"PaymentSchema", "shop_order.describe", "shop_order.describe.lines", "shop_order.describe.customer"} <= (
        set(schemas))
    assert schemas["shop_order.describe.lines"]["properties"]["qty"]["type"] == ["integer", "null"]
    assert schemas["shop_order.describe"]["properties"]["lines"]["items"] == {
        "$ref": "#/components/schemas/shop_order.describe.lines"}
    for action in ("pay", "pay_later"):
        body = doc["paths"][f"{IM}/{action}"]["post"]["requestBody"]["content"]["application/json"]
        assert body["schema"] == {"$ref": "#/components/schemas/PaymentSchema"}
    assert doc["paths"]["/webhooks/create/shop%20order"]["post"]["operationId"] == "create_shop_order"


def test_component_names() -> None:
    generated = type("order:actions.pay.fields.lines.params.fields", (Schema,), {})
    assert component_name(generated) == "order.pay.lines"
    assert component_name(type("order:details.webhooks.create.fields", (Schema,), {})) == "order.create"
    assert component_name(type("my flow:actions.pay.fields", (Schema,), {})()) == "my_flow.pay"
    assert component_name(type("PaymentSchema", (Schema,), {})) == "PaymentSchema"


def test_document_is_cached_until_a_template_is_registered(app: Flask, stubber: StubberWebhooks) -> None:
    first = openapi_document(app)
    assert openapi_document(app) is first
    stubber.register_template(dict(copy.deepcopy(ORDER), name="refund"))
    second = openapi_document(app)
    assert second is not first
    assert [tag["name"] for tag in second["tags"]] == ["order", "refund"]
    assert "/webhooks/create/refund" in second["paths"]


@pytest.mark.parametrize("app_config", [{"STUBBER_URL_PREFIX": "/hooks",
                                         "STUBBER_OPENAPI_INFO": {"title": "Shop", "version": "2.1"}}])
def test_prefix_and_info(client: FlaskClient) -> None:
    doc = client.get("/hooks/openapi.json").get_json()
    assert (doc["info"]["title"], doc["info"]["version"]) == ("Shop", "2.1")
    assert all(path.startswith("/hooks/") for path in doc["paths"])


def test_each_app_has_its_own_document(database_url: str, db: SQLAlchemy, stubber: StubberWebhooks,
                                       tmp_path: Any) -> None:
    other = make_app(f"sqlite:///{tmp_path / 'other.db'}", SQLAlchemy(), stubber, STUBBER_URL_PREFIX="/other")
    assert all(p.startswith("/other/") for p in openapi_document(other)["paths"])


def test_without_apispec_the_route_answers_501(client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "apispec", None)  # type: ignore[arg-type]
    monkeypatch.delitem(sys.modules, "flask_stubber.openapi")
    body = assert_problem(client.get("/webhooks/openapi.json"), 501, "not_implemented")
    assert "flask-stubber[openapi]" in body["detail"]


def test_only_get(client: FlaskClient) -> None:
    assert_problem(client.post("/webhooks/openapi.json"), 405, "method_not_allowed")
