"""Creating stubs from outside: ``/webhooks/create/<template>`` and the creator-stub way."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from flask import Flask, current_app
from flask.testing import FlaskClient
from flask_sqlalchemy import SQLAlchemy
from marshmallow import Schema, fields

from flask_stubber import StubberWebhooks, Template, TemplateError, signals

from .conftest import count_rows
from .test_webhooks import assert_problem

REQUEST: dict[str, Any] = {
    "name": "request",
    "details": {
        "busy_start_state": "new",
        "webhooks": {"create": {
            "enable": True,
            "subject": "Request from ~~stubpost.data.name",
            "fields": {
                "name": {"fieldtype": "text", "validations": [{"validationtype": "required"}]},
                "email": {"fieldtype": "email", "validations": [{"validationtype": "required"}]},
                "topic": {"fieldtype": "select", "params": {"options": [
                    {"label": "Billing", "value": "billing"}, {"label": "Technical", "value": "tech"}]}},
                "seats": {"fieldtype": "number", "params": {"min": 1}},
                "urgent": {"fieldtype": "checkbox"},
                "products": {"fieldtype": "select", "params": {"multiple": True, "options": ["a", "b", "c"]}},
            },
        }},
    },
    "states": {"new": {"actions": ["close"]}, "closed": {"actions": []}},
    "actions": {"close": {"to_state": "closed"}},
}

VALID = {"name": "Ada", "email": "ada@example.com", "topic": "tech", "seats": "3"}


def request_template(**create: Any) -> dict[str, Any]:
    source = copy.deepcopy(REQUEST)
    source["details"]["webhooks"]["create"].update(create)
    return source


@pytest.fixture
def requests_(stubber: StubberWebhooks) -> StubberWebhooks:
    stubber.register_template(request_template())
    return stubber


def models() -> Any:
    return current_app.extensions["stubber"].engine.models


def stubs_and_posts(db: SQLAlchemy) -> tuple[int, int]:
    return count_rows(db, models().stub), count_rows(db, models().post)


def test_json_post_creates_a_stub(client: FlaskClient, app: Flask, requests_: StubberWebhooks, db) -> None:
    created: list[tuple[Any, str, int]] = []

    def on_created(sender: Flask, stub: Any, source: str) -> None:
        created.append((stub.stubref, source, stubs_and_posts(db)[0]))

    kinds: list[str] = []
    signals.stub_created.connect(on_created, app, weak=False)
    signals.webhook_received.connect(lambda sender, **kw: kinds.append(kw["kind"]), app, weak=False)
    response = client.post("/webhooks/create/request", json={**VALID, "extra": "kept"})
    assert response.status_code == 201
    body = response.get_json()
    assert body == {"success": True, "stubref": body["stubref"], "action_name": "create", "post_id": body["post_id"]}
    db.session.rollback()
    stub = requests_.get_stub(body["stubref"])
    payload = {"name": "Ada", "email": "ada@example.com", "topic": "tech", "seats": 3, "extra": "kept"}
    assert (stub.template, stub.state, stub.data, stub.subject) == (
        "request", "new", {"payload": payload}, "Request from Ada")
    [post] = stub.posts
    assert (post.id, post.action_name, post.source, post.from_state, post.to_state, post.data) == (
        body["post_id"], "create", "create_webhook", None, "new", payload)
    assert created == [(stub.stubref, "create_webhook", 1)]  # sent after the commit
    assert kinds == ["create"]


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "multipart/form-data"])
def test_form_values_are_coerced_by_the_field_schema(client: FlaskClient, requests_: StubberWebhooks, db,
                                                     content_type: str) -> None:
    form = {**VALID, "urgent": "on", "products": ["a", "c"]}
    response = client.post("/webhooks/create/request", data=form, content_type=content_type)
    assert response.status_code == 201, response.get_json()
    db.session.rollback()
    assert requests_.get_stub(response.get_json()["stubref"]).data["payload"] == {
        "name": "Ada", "email": "ada@example.com", "topic": "tech", "seats": 3, "urgent": True,
        "products": ["a", "c"]}


def test_unticked_checkbox_is_absent(client: FlaskClient, requests_: StubberWebhooks, db) -> None:
    body = client.post("/webhooks/create/request?_synchronous=true", data=VALID).get_json()
    assert "urgent" not in body["data"]["payload"]
    assert body["state"] == "new"


def test_post_data_on_root_and_a_registered_schema(client: FlaskClient, stubber: StubberWebhooks, db) -> None:
    class Contact(Schema):
        phone = fields.String(required=True)

    stubber.register_schema("Contact", Contact)
    stubber.register_template(request_template(post_data_on_root=True, schema="Contact"))
    assert_problem(client.post("/webhooks/create/request", json=VALID), 422, "validation_error")
    response = client.post("/webhooks/create/request", json={**VALID, "phone": "555"})
    assert response.status_code == 201
    db.session.rollback()
    stub = stubber.get_stub(response.get_json()["stubref"])
    assert stub.data == {"name": "Ada", "email": "ada@example.com", "topic": "tech", "seats": 3, "phone": "555"}


def test_synchronous_response_template(client: FlaskClient, stubber: StubberWebhooks, db) -> None:
    response_template = {"ref": "~~stub.stubref", "who": "~~stub.data.payload.name", "nope": "~~stub.data.x.y",
                         "text": "Request ~~stub.stubref is ~~stub.state", "post": "~~stubpost.data.email"}
    stubber.register_template(request_template(synchronous={"enable": True, "response": response_template}))
    response = client.post("/webhooks/create/request", json=VALID)
    assert response.status_code == 201
    body = response.get_json()
    ref = body["ref"]
    assert body == {"ref": ref, "who": "Ada", "nope": None, "text": f"Request {ref} is new",
                    "post": "ada@example.com"}
    db.session.rollback()
    assert stubber.get_stub(ref).state == "new"


def test_builder_create_options_match_json(stubber: StubberWebhooks) -> None:
    options = REQUEST["details"]["webhooks"]["create"]
    built = Template("request", start_state="new",
                     create_webhook={k: v for k, v in options.items() if k != "enable"})
    built.state("new", actions=["close"]).state("closed").action("close", to_state="closed")
    compiled = stubber.register_template(built)
    assert compiled.create_options == options
    assert compiled.create is not None
    assert compiled.create.webhooks.enable
    assert compiled.create.webhooks.methods == ("POST",)


@pytest.mark.parametrize(("name", "create", "method", "kwargs", "status", "code"), [
    pytest.param("nope", None, "post", {"json": VALID}, 404, "action_not_found", id="unknown-template"),
    pytest.param("plain", None, "post", {"json": VALID}, 404, "action_not_found", id="no-create-options"),
    pytest.param("request", {"enable": False}, "post", {"json": VALID}, 404, "action_not_found", id="disabled"),
    pytest.param("request", None, "get", {"query_string": VALID}, 405, "method_not_allowed", id="get"),
    pytest.param("request", None, "put", {"json": VALID}, 405, "method_not_allowed", id="put"),
    pytest.param("request", None, "post", {"json": {"name": "Ada", "email": "nope"}}, 422, "validation_error",
                 id="invalid-email"),
    pytest.param("request", None, "post", {"data": {**VALID, "seats": "0"}}, 422, "validation_error",
                 id="form-below-min"),
    pytest.param("request", None, "post", {"data": {**VALID, "topic": "sales"}}, 422, "validation_error",
                 id="form-unknown-option"),
    pytest.param("request", None, "post", {"data": "{", "content_type": "application/json"}, 400,
                 "invalid_body", id="malformed-json"),
    pytest.param("request", None, "post", {"data": "<a/>", "content_type": "application/xml"}, 415,
                 "unsupported_media_type", id="xml"),
])
def test_refusals_are_problems_and_create_nothing(
    client: FlaskClient, app: Flask, stubber: StubberWebhooks, db: SQLAlchemy, name: str,
    create: dict[str, Any] | None, method: str, kwargs: dict[str, Any], status: int, code: str,
) -> None:
    stubber.register_template(request_template(**(create or {})))
    stubber.register_template({**REQUEST, "name": "plain", "details": {"busy_start_state": "new"}})
    rejected: list[dict[str, Any]] = []
    signals.webhook_rejected.connect(lambda sender, **kw: rejected.append(kw), app, weak=False)
    created: list[Any] = []
    signals.stub_created.connect(lambda sender, **kw: created.append(kw), app, weak=False)
    assert_problem(getattr(client, method)(f"/webhooks/create/{name}", **kwargs), status, code)
    assert stubs_and_posts(db) == (0, 0)
    assert created == []
    assert [(r["error"], r["status"]) for r in rejected] == [(code, status)]


def test_validation_error_names_the_fields(client: FlaskClient, requests_: StubberWebhooks) -> None:
    body = assert_problem(client.post("/webhooks/create/request", json={"topic": "sales"}), 422, "validation_error")
    assert set(body["errors"]) == {"name", "email", "topic"}


@pytest.mark.parametrize(("create", "path"), [
    ({"tasks": {}}, "details.webhooks.create.tasks"),
    ({"to_state": "closed"}, "details.webhooks.create.to_state"),
    ({"confirm": True}, "details.webhooks.create.confirm"),
    ({"fields": {"x": {"fieldtype": "telepathy"}}}, "details.webhooks.create.fields.x"),
    ({"schema": "Missing"}, "details.webhooks.create.schema"),
    ({"redirect": 5}, "details.webhooks.create.redirect"),
    ({"subject": ["x"]}, "details.webhooks.create.subject"),
    ("yes", "details.webhooks.create"),
])
def test_broken_create_options_are_refused(create: Any, path: str) -> None:
    source = copy.deepcopy(REQUEST)
    if isinstance(create, dict):
        source["details"]["webhooks"]["create"].update(create)
    else:
        source["details"]["webhooks"]["create"] = create
    with pytest.raises(TemplateError) as info:
        StubberWebhooks().register_template(source)
    assert info.value.path is not None and info.value.path.startswith(path)
    assert info.value.template == "request"


# -- the creator-stub way ---------------------------------------------------------------------------

INTAKE: dict[str, Any] = {
    "name": "intake",
    "details": {"busy_start_state": "open"},
    "states": {"open": {"actions": ["new_request"]}},
    "actions": {"new_request": {
        "to_state": {},
        "fields": {"name": {"fieldtype": "text", "validations": [{"validationtype": "required"}]}},
        "action_meta": {"webhooks": {"enable": True, "post_data_on_root": True}},
        "tasks": {"make": {"tasktype": "create_stub", "params": {
            "template": "request", "subject": "~~stubpost.data.name", "data": {"name": "~~stubpost.data.name"}}}},
    }},
}


def intake(stubber: StubberWebhooks, **webhooks: Any) -> Any:
    source = copy.deepcopy(INTAKE)
    source["actions"]["new_request"]["action_meta"]["webhooks"].update(webhooks)
    stubber.register_template(source)
    stubber.register_template(request_template())
    return stubber.create_stub("intake")


def test_creator_stub_answers_with_the_new_stubref(client: FlaskClient, app: Flask, stubber: StubberWebhooks,
                                                    db) -> None:
    creator = intake(stubber, synchronous={"enable": True, "response": {
        "success": True, "stubref": "~~tasks.make.stubref", "creator": "~~stub.stubref", "nope": "~~tasks.x.y"}})
    created: list[tuple[str, str]] = []
    signals.stub_created.connect(lambda sender, **kw: created.append((kw["stub"].stubref, kw["source"])), app,
                                 weak=False)
    response = client.post(f"/webhooks/im/{creator.stubref}/new_request", data={"name": "Grace"})
    assert response.status_code == 200
    body = response.get_json()
    new = body["stubref"]
    assert body == {"success": True, "stubref": new, "creator": creator.stubref, "nope": None}
    assert created == [(new, "webhook")]
    db.session.rollback()
    stub = stubber.get_stub(new)
    assert (stub.template, stub.state, stub.subject, stub.data) == ("request", "new", "Grace", {"name": "Grace"})
    got = stubber.get_stub(creator.stubref)
    assert (got.state, got.data["name"]) == ("open", "Grace")


def test_creator_stub_synchronous_body_carries_task_results(client: FlaskClient, stubber: StubberWebhooks,
                                                            db) -> None:
    creator = intake(stubber)
    url = f"/webhooks/im/{creator.stubref}/new_request"
    plain = client.post(url, json={"name": "A"}).get_json()
    assert "tasks" not in plain
    body = client.post(url + "?_synchronous=true", json={"name": "B"}).get_json()
    new = body["tasks"]["make"]["stubref"]
    assert (body["state"], body["data"]["name"]) == ("open", "B")
    db.session.rollback()
    assert stubber.get_stub(new).data == {"name": "B"}
    assert count_rows(db, models().stub) == 3


def test_creator_stub_refusal_creates_nothing(client: FlaskClient, stubber: StubberWebhooks, db) -> None:
    creator = intake(stubber)
    assert_problem(client.post(f"/webhooks/im/{creator.stubref}/new_request", json={}), 422, "validation_error")
    assert stubs_and_posts(db) == (1, 0)
