"""Answers to successful webhooks: synchronous bodies, response templates, redirects, confirmation pages."""

from __future__ import annotations

import copy
import re
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_sqlalchemy import SQLAlchemy

from flask_stubber import StubberWebhooks, Template, TemplateError
from flask_stubber.models import utcnow
from flask_stubber.responses import confirm_token

from .conftest import ORDER
from .test_explicit import backdate, snapshot
from .test_webhooks import assert_problem

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
FORM = "application/x-www-form-urlencoded"


def order_with(**webhooks: Any) -> dict[str, Any]:
    """The order template whose ``add_note`` has these extra webhook options."""
    source = copy.deepcopy(ORDER)
    source["actions"]["add_note"]["action_meta"]["webhooks"].update(webhooks)
    return source


def note_url(stub: Any) -> str:
    return f"/webhooks/im/{stub.stubref}/add_note"


# -- synchronous bodies and response templates ----------------------------------------------------


@pytest.mark.parametrize(("options", "query", "synchronous"), [
    ({}, "", False),
    ({}, "?_synchronous=true", True),
    ({}, "?_synchronous=no", False),
    ({"synchronous": {"enable": True}}, "", True),
    ({"synchronous": True}, "", True),
])
def test_synchronous_adds_state_and_data(client: FlaskClient, stub: Any, stubber: StubberWebhooks,
                                         options: dict[str, Any], query: str, synchronous: bool) -> None:
    stubber.register_template(order_with(**options))
    body = client.post(note_url(stub) + query, json={"note": "x"}).get_json()
    expected = {"success": True, "stubref": stub.stubref, "action_name": "add_note", "post_id": body["post_id"]}
    if synchronous:
        expected |= {"state": "awaiting_payment", "data": {"customer": "ada", "note": "x"}}
    assert body == expected


RESPONSE = {
    "ok": True,
    "ref": "~~stub.stubref",
    "state": "~~stub.state",
    "note": "~~stub.data.note",
    "posted": "~~stubpost.data",
    "missing": "~~stub.data.no.such.path",
    "missing_in_text": "[~~stub.data.nope]",
    "list": ["~~stub.data.customer", 1],
    "post_id": "~~stubpost.id",
}


@pytest.mark.parametrize(("enable", "query"), [(True, ""), (False, "?_synchronous=1")])
def test_response_template_replaces_the_body(client: FlaskClient, stub: Any, stubber: StubberWebhooks,
                                             enable: bool, query: str) -> None:
    stubber.register_template(order_with(synchronous={"enable": enable, "response": RESPONSE}))
    response = client.post(note_url(stub) + query, json={"note": "hi"})
    assert response.status_code == 200
    body = response.get_json()
    assert body == {"ok": True, "ref": stub.stubref, "state": "awaiting_payment", "note": "hi",
                    "posted": {"note": "hi"}, "missing": None, "missing_in_text": "[]", "list": ["ada", 1],
                    "post_id": body["post_id"]}
    assert isinstance(body["post_id"], int)


def test_response_template_is_not_used_unless_synchronous(client: FlaskClient, stub: Any,
                                                          stubber: StubberWebhooks) -> None:
    stubber.register_template(order_with(synchronous={"enable": False, "response": RESPONSE}))
    assert client.post(note_url(stub), json={"note": "hi"}).get_json()["success"] is True


def test_explicit_webhook_response_template_sees_lid(client: FlaskClient, stub: Any,
                                                     stubber: StubberWebhooks) -> None:
    stubber.register_template(order_with(synchronous={"enable": True, "response": {
        "lid": "~~stubpost.data.lid", "note": "~~stubpost.data.payload.note"}}))
    hook = stubber.create_webhook(stub, "add_note")
    assert client.post(f"/webhooks/ex/{hook.uuid}", json={"note": "n"}).get_json() == {"lid": hook.uuid, "note": "n"}


# -- redirects -----------------------------------------------------------------------------------------

REDIRECT = "https://shop.example/thanks/~~stub.stubref?note=~~stub.data.note&x=~~stub.data.nope"


@pytest.mark.parametrize(("method", "kwargs", "redirected"), [
    pytest.param("post", {"data": {"note": "a b&c/d"}, "headers": BROWSER}, True, id="browser-form"),
    pytest.param("post", {"data": {"note": "a b&c/d"}, "content_type": "multipart/form-data", "headers": BROWSER},
                 True, id="browser-multipart"),
    pytest.param("get", {"query_string": {"note": "a b&c/d"}, "headers": BROWSER}, True, id="browser-link"),
    pytest.param("post", {"json": {"note": "a b&c/d"}, "headers": BROWSER}, False, id="json-with-html-accept"),
    pytest.param("post", {"data": {"note": "a b&c/d"}}, False, id="form-from-a-script"),
    pytest.param("post", {"data": {"note": "a b&c/d"}, "headers": {"Accept": "application/json"}}, False,
                 id="form-asking-json"),
    pytest.param("get", {"query_string": {"note": "a b&c/d"}}, False, id="get-from-a-script"),
])
def test_browsers_are_redirected_with_303(client: FlaskClient, stub: Any, stubber: StubberWebhooks, db,
                                          method: str, kwargs: dict[str, Any], redirected: bool) -> None:
    stubber.register_template(order_with(redirect=REDIRECT))
    response = getattr(client, method)(note_url(stub), **kwargs)
    if redirected:
        assert response.status_code == 303
        assert response.headers["Location"] == (
            f"https://shop.example/thanks/{stub.stubref}?note=a%20b%26c%2Fd&x=")
    else:
        assert response.status_code == 200
        assert response.get_json()["stubref"] == stub.stubref
    db.session.rollback()
    assert stubber.get_stub(stub.stubref).data["note"] == "a b&c/d"


def test_redirect_can_be_relative_and_use_task_results(client: FlaskClient, stubber: StubberWebhooks) -> None:
    source = order_with(redirect="/orders/~~tasks.copy.stubref")
    source["actions"]["add_note"]["tasks"] = {"copy": {"tasktype": "create_stub", "params": {"template": "order"}}}
    stubber.register_template(source)
    stub = stubber.create_stub("order")
    response = client.post(note_url(stub), data={"note": "x"}, headers=BROWSER)
    assert response.status_code == 303
    assert re.fullmatch(r"/orders/\d{4}-\d\d-\d\d-[A-Z0-9]{4}-[A-Z0-9]{4}", response.headers["Location"])


def test_refusals_are_never_redirected(client: FlaskClient, stub: Any, stubber: StubberWebhooks) -> None:
    stubber.register_template(order_with(redirect=REDIRECT))
    assert_problem(client.post(f"/webhooks/im/{stub.stubref}/ship", data={}, headers=BROWSER), 409,
                   "action_not_in_state")


# -- the confirmation page -------------------------------------------------------------------------

ACCESS: dict[str, Any] = {
    "name": "access",
    "details": {"busy_start_state": "pending"},
    "states": {"pending": {"actions": ["authorize", "decline"]}, "authorized": {"actions": []},
               "declined": {"actions": []}},
    "actions": {
        "authorize": {"to_state": "authorized", "action_meta": {"webhooks": {
            "confirm": {"title": "Authorize ~~stub.data.who?", "message": "Grant <access> to ~~stub.data.who.",
                        "button": "Yes, authorize"},
            "redirect": "https://app.example/authorized?ref=~~stub.stubref"}}},
        "decline": {"to_state": "declined", "fields": {"reason": {"fieldtype": "text"}},
                    "action_meta": {"webhooks": {"confirm": True}}},
    },
}


@pytest.fixture
def access(app: Flask, stubber: StubberWebhooks) -> Any:
    stubber.register_template(ACCESS)
    return stubber.create_stub("access", {"who": "<b>Eve</b>"})


def token_of(page: str) -> str:
    match = re.search(r'name="_confirm" value="([0-9a-f]{64})"', page)
    assert match, page
    return match.group(1)


def test_get_shows_the_page_and_writes_nothing(client: FlaskClient, access: Any, stubber: StubberWebhooks,
                                               db: SQLAlchemy) -> None:
    hook = stubber.create_webhook(access, "authorize", single_use=True)
    before = snapshot(stubber, db, access.stubref)
    response = client.get(f"/webhooks/ex/{hook.uuid}", headers=BROWSER)
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    page = response.get_data(as_text=True)
    assert '<html lang="en">' in page
    assert "<title>Authorize &lt;b&gt;Eve&lt;/b&gt;?</title>" in page
    assert "<p>Grant &lt;access&gt; to &lt;b&gt;Eve&lt;/b&gt;.</p>" in page
    assert '<form method="post">' in page
    assert '<button type="submit">Yes, authorize</button>' in page
    assert "<b>" not in page
    assert token_of(page) == confirm_token(hook.uuid)
    assert snapshot(stubber, db, access.stubref) == before
    assert client.get(f"/webhooks/ex/{hook.uuid}").status_code == 200  # a scanner's second fetch: still usable


def test_post_from_the_page_runs_and_redirects(client: FlaskClient, access: Any, stubber: StubberWebhooks,
                                               db) -> None:
    hook = stubber.create_webhook(access, "authorize", single_use=True)
    token = token_of(client.get(f"/webhooks/ex/{hook.uuid}").get_data(as_text=True))
    response = client.post(f"/webhooks/ex/{hook.uuid}", data={"_confirm": token})
    assert response.status_code == 303
    assert response.headers["Location"] == f"https://app.example/authorized?ref={access.stubref}"
    db.session.rollback()
    stub = stubber.get_stub(access.stubref)
    assert stub.state == "authorized"
    assert [(p.action_name, p.source, p.data) for p in stub.posts] == [
        ("authorize", "explicit_webhook", {"lid": hook.uuid, "payload": {}})]
    assert_problem(client.post(f"/webhooks/ex/{hook.uuid}", data={"_confirm": token}), 410, "webhook_gone")


def test_page_carries_the_link_values_and_answers_with_a_done_page(client: FlaskClient, access: Any,
                                                                   stubber: StubberWebhooks, db) -> None:
    hook = stubber.create_webhook(access, "decline")
    page = client.get(f"/webhooks/ex/{hook.uuid}?reason=too+%22late%22").get_data(as_text=True)
    assert '<input type="hidden" name="reason" value="too &#34;late&#34;">' in page
    assert "<h1>Please confirm</h1>" in page
    form = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page))
    form["reason"] = 'too "late"'
    response = client.post(f"/webhooks/ex/{hook.uuid}", data=form)
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert "Thank you, this is confirmed." in response.get_data(as_text=True)
    db.session.rollback()
    stub = stubber.get_stub(access.stubref)
    assert (stub.state, stub.data["payload"]) == ("declined", {"lid": hook.uuid, "payload": {"reason": 'too "late"'}})


def test_done_page_texts_are_substituted_and_escaped(client: FlaskClient, app: Flask, stubber: StubberWebhooks) -> None:
    source = copy.deepcopy(ACCESS)
    source["actions"]["decline"]["action_meta"]["webhooks"]["confirm"] = {
        "title": "Decline ~~stub.data.who?", "done": "~~stub.data.who is now ~~stub.state."}
    stubber.register_template(source)
    stub = stubber.create_stub("access", {"who": "<b>Eve</b>"})
    hook = stubber.create_webhook(stub, "decline")
    token = token_of(client.get(f"/webhooks/ex/{hook.uuid}").get_data(as_text=True))
    page = client.post(f"/webhooks/ex/{hook.uuid}", data={"_confirm": token}).get_data(as_text=True)
    assert "<title>Decline &lt;b&gt;Eve&lt;/b&gt;?</title>" in page
    assert "<p>&lt;b&gt;Eve&lt;/b&gt; is now declined.</p>" in page
    assert "~~" not in page


def confirm_refusals() -> list[Any]:
    return [
        pytest.param("post", {"data": {}}, None, 403, "confirmation_required", id="post-without-token"),
        pytest.param("post", {"json": {"reason": "x"}}, None, 403, "confirmation_required", id="json-without-token"),
        pytest.param("post", {"data": {"_confirm": "0" * 64}}, None, 403, "confirmation_required", id="wrong-token"),
        pytest.param("post", {"json": {"_confirm": ["a"]}}, None, 403, "confirmation_required", id="token-not-text"),
        pytest.param("post", "other", None, 403, "confirmation_required", id="token-of-another-webhook"),
        pytest.param("get", {}, {"revoked_at": utcnow()}, 404, "webhook_not_found", id="get-revoked"),
        pytest.param("get", {}, {"expires_at": utcnow() - timedelta(seconds=1)}, 410, "webhook_gone",
                     id="get-expired"),
        pytest.param("get", {}, "moved", 409, "action_not_in_state", id="get-after-the-state-moved"),
        pytest.param("post", "token", "moved", 409, "action_not_in_state", id="post-after-the-state-moved"),
    ]


@pytest.mark.parametrize(("method", "kwargs", "state", "status", "code"), confirm_refusals())
def test_confirmation_refusals_write_nothing(client: FlaskClient, access: Any, stubber: StubberWebhooks,
                                             db: SQLAlchemy, method: str, kwargs: Any, state: Any, status: int,
                                             code: str) -> None:
    hook = stubber.create_webhook(access, "decline", single_use=True)
    if kwargs == "other":
        kwargs = {"data": {"_confirm": confirm_token(stubber.create_webhook(access, "decline").uuid)}}
    elif kwargs == "token":
        kwargs = {"data": {"_confirm": confirm_token(hook.uuid)}}
    if state == "moved":
        stubber.run_action(access, "authorize")
    elif state:
        backdate(db, hook.uuid, **state)
    before = snapshot(stubber, db, access.stubref)
    body = assert_problem(getattr(client, method)(f"/webhooks/ex/{hook.uuid}", **kwargs), status, code)
    assert snapshot(stubber, db, access.stubref) == before
    if code == "action_not_in_state":
        assert (body["state"], body["available_actions"]) == ("authorized", [])


def test_token_is_keyed_with_the_secret_key(app: Flask) -> None:
    uuid = "0b6f8a52-6a55-4a4e-9d0c-5a3b0a9e2f11"
    app.config["SECRET_KEY"] = None
    unkeyed = confirm_token(uuid)
    app.config["SECRET_KEY"] = "s3cret"
    keyed = confirm_token(uuid)
    app.config["SECRET_KEY"] = b"other"
    assert len({unkeyed, keyed, confirm_token(uuid)}) == 3
    assert uuid not in (unkeyed, keyed)


def test_confirm_does_not_change_implicit_webhooks(client: FlaskClient, stub: Any, stubber: StubberWebhooks) -> None:
    stubber.register_template(order_with(confirm=True))
    assert client.get(note_url(stub) + "?note=x").get_json()["success"] is True


# -- template options -------------------------------------------------------------------------------


def test_builder_options_match_json(stubber: StubberWebhooks) -> None:
    built = Template("access", start_state="pending")
    built.state("pending", actions=["authorize", "decline"]).state("authorized").state("declined")
    authorize = ACCESS["actions"]["authorize"]["action_meta"]["webhooks"]
    built.action("authorize", to_state="authorized", confirm=authorize["confirm"], redirect=authorize["redirect"])
    built.action("decline", to_state="declined", confirm=True, fields={"reason": {"fieldtype": "text"}})
    compiled = stubber.register_template(built)
    expected = stubber.register_template(ACCESS)
    for name in ("authorize", "decline"):
        got, want = compiled.actions[name].webhooks, expected.actions[name].webhooks
        assert (got.confirm, got.redirect) == (want.confirm, want.redirect)
    assert compiled.actions["decline"].webhooks.confirm == {
        "title": "Please confirm", "message": "Press the button to confirm.", "button": "Confirm",
        "done": "Thank you, this is confirmed."}


@pytest.mark.parametrize(("webhooks", "path"), [
    ({"confirm": {"colour": "red"}}, "actions.add_note.action_meta.webhooks.confirm.colour"),
    ({"confirm": {"title": 5}}, "actions.add_note.action_meta.webhooks.confirm.title"),
    ({"confirm": "yes"}, "actions.add_note.action_meta.webhooks.confirm"),
    ({"confirm": True, "methods": ["GET"]}, "actions.add_note.action_meta.webhooks.confirm"),
    ({"redirect": ""}, "actions.add_note.action_meta.webhooks.redirect"),
    ({"redirect": ["/x"]}, "actions.add_note.action_meta.webhooks.redirect"),
])
def test_broken_response_options_are_refused(webhooks: dict[str, Any], path: str) -> None:
    with pytest.raises(TemplateError) as info:
        StubberWebhooks().register_template(order_with(**webhooks))
    assert info.value.path == path
