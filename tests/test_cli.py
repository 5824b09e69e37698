"""The ``flask stubber`` commands: output for people and scripts, exit codes, what they write."""

from __future__ import annotations

import copy
import json
import re
import shutil
import uuid as uuidlib
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from flask import Flask
from flask.testing import FlaskClient
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import select, update

from flask_stubber import StubberWebhooks, Template
from flask_stubber.models import utcnow
from flask_stubber.testing import assert_not_posted, assert_posted, assert_problem, capture_signals

from .conftest import ORDER, count_rows


def invoke(app: Flask, *args: str) -> Result:
    return app.test_cli_runner().invoke(args=["stubber", *args])


def stubs(app: Flask, db: SQLAlchemy) -> int:
    return count_rows(db, app.extensions["stubber"].engine.stub_model)


def test_group_is_registered_with_every_command(app: Flask) -> None:
    result = invoke(app, "--help")
    assert result.exit_code == 0
    for command in ("templates", "show", "create", "run", "urls", "check", "graph", "webhook", "deliveries"):
        assert f"  {command} " in result.output
    for group, commands in (("webhook", ("create", "list", "revoke")),
                            ("deliveries", ("list", "show", "replay", "prune"))):
        output = invoke(app, group, "--help").output
        assert all(f"  {command} " in output for command in commands), output


def test_templates_table(app: Flask) -> None:
    result = invoke(app, "templates")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "TEMPLATE        STATE                     ACTIONS",
        "order (create)  awaiting_payment (start)  payment_received*, cancel, add_note*",
        "                paid                      ship*, add_note*",
        "                shipped",
        "                cancelled",
        "",
        "* webhook-enabled",
    ]


def test_templates_json(app: Flask) -> None:
    result = invoke(app, "templates", "--json")
    [order] = json.loads(result.output)
    assert order["name"] == "order" and order["start_state"] == "awaiting_payment" and order["create_webhook"]
    assert order["states"]["paid"] == ["ship", "add_note"]
    assert order["actions"]["ship"] == {"to_state": ["shipped"], "webhook": True, "methods": ["POST"], "auth": None}
    assert order["actions"]["cancel"]["webhook"] is False


def test_create_with_data_and_subject(app: Flask, db: SQLAlchemy, stubber: StubberWebhooks) -> None:
    with capture_signals(app, "stub_created") as recorded:
        result = invoke(app, "create", "order", "--data", '{"customer": "ada"}', "--subject", "Order 7", "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert (info["template"], info["state"], info["subject"], info["data"]) == (
        "order", "awaiting_payment", "Order 7", {"customer": "ada"})
    assert info["posts"] == [] and info["available_actions"] == ["payment_received", "cancel", "add_note"]
    assert [kw["source"] for kw in recorded.of("stub_created")] == ["cli"]
    db.session.rollback()
    assert stubber.get_stub(info["stubref"]).data == {"customer": "ada"}


def test_create_for_people_and_data_from_a_file(app: Flask, db: SQLAlchemy, stubber: StubberWebhooks,
                                                tmp_path: Path) -> None:
    (tmp_path / "data.json").write_text('{"from": "file"}')
    result = invoke(app, "create", "order", "--data", f"@{tmp_path / 'data.json'}")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Created ") and result.output.endswith(" (order: awaiting_payment).\n")
    db.session.rollback()
    assert stubber.get_stub(result.output.split()[1]).data == {"from": "file"}


@pytest.mark.parametrize(("args", "code", "message"), [
    (["order", "--data", "{nope"], 2, "not valid JSON"),
    (["order", "--data", "[1, 2]"], 2, "must be a JSON object"),
    (["order", "--data", "@/no/such/file.json"], 2, "cannot read"),
    (["nope"], 1, "No template named 'nope'"),
])
def test_create_refusals_write_nothing(app: Flask, db: SQLAlchemy, args: list[str], code: int, message: str) -> None:
    result = invoke(app, "create", *args)
    assert result.exit_code == code
    assert message in result.output
    assert stubs(app, db) == 0


def test_show_for_people(app: Flask, stub: Any, stubber: StubberWebhooks) -> None:
    stubber.run_action(stub, "payment_received", {"amount": 5})
    lines = invoke(app, "show", stub.stubref.lower()).output.splitlines()
    assert f"stubref     {stub.stubref}" in lines
    assert "state       paid" in lines
    assert "subject     -" in lines
    assert "available   ship*, add_note*" in lines
    data = lines[lines.index("data") + 1: lines.index("history") - 1]
    assert json.loads("\n".join(data)) == {"customer": "ada", "payload": {"amount": 5}}
    header, row = lines[lines.index("history") + 1:]
    assert header.split() == ["ID", "WHEN", "ACTION", "SOURCE", "FROM", "TO"]
    assert row.split()[2:] == ["payment_received", "api", "awaiting_payment", "paid"]


def test_show_json(app: Flask, stub: Any, stubber: StubberWebhooks) -> None:
    post = stubber.run_action(stub, "add_note", {"n": 1})
    info = json.loads(invoke(app, "show", stub.stubref, "--json").output)
    assert info["stubref"] == stub.stubref and info["state"] == "awaiting_payment"
    assert info["data"] == {"customer": "ada", "n": 1}
    [entry] = info["posts"]
    assert entry["id"] == post.id
    assert {k: entry[k] for k in ("action_name", "source", "from_state", "to_state", "data", "delivery_id")} == {
        "action_name": "add_note", "source": "api", "from_state": "awaiting_payment",
        "to_state": "awaiting_payment", "data": {"n": 1}, "delivery_id": None}


@pytest.mark.parametrize("command", ["show", "urls"])
def test_unknown_stub_exits_1(app: Flask, command: str) -> None:
    result = invoke(app, command, "2026-01-01-AAAA-BBBB")
    assert result.exit_code == 1
    assert "Error: No stub has the stubref '2026-01-01-AAAA-BBBB'." in result.output


def test_run_records_a_cli_post(app: Flask, stub: Any) -> None:
    result = invoke(app, "run", stub.stubref, "payment_received", "--data", '{"amount": "7"}')
    assert result.exit_code == 0, result.output
    post = assert_posted(stub, "payment_received", from_state="awaiting_payment", to_state="paid", source="cli",
                         payload={"amount": 7})
    assert result.output == f"Ran payment_received on {stub.stubref}: awaiting_payment -> paid (post {post.id}).\n"


def test_run_json_and_actions_without_webhooks(app: Flask, stub: Any) -> None:
    result = invoke(app, "run", stub.stubref.lower(), "cancel", "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert (info["success"], info["stubref"], info["action_name"], info["to_state"]) == (
        True, stub.stubref, "cancel", "cancelled")
    assert_posted(stub, "cancel", to_state="cancelled", source="cli")


@pytest.mark.parametrize(("args", "message"), [
    (["ship"], "Error: The action 'ship' is not available in the state 'awaiting_payment'"),
    (["payment_received", "--data", '{"amount": -1}'], 'errors: {"amount": ["Must be greater than or equal to 0.'),
    (["nope"], "no action 'nope'"),
])
def test_run_refusals_exit_1_and_write_nothing(app: Flask, stub: Any, args: list[str], message: str) -> None:
    result = invoke(app, "run", stub.stubref, *args)
    assert result.exit_code == 1
    assert message in result.output
    assert_not_posted(stub)


def test_not_in_state_lists_the_state_and_actions(app: Flask, stub: Any) -> None:
    output = invoke(app, "run", stub.stubref, "ship").output
    assert 'state: "awaiting_payment"' in output
    assert 'available_actions: ["payment_received", "cancel", "add_note"]' in output


def test_urls_of_the_webhook_actions_available_now(app: Flask, stub: Any) -> None:
    result = invoke(app, "urls", stub.stubref)
    assert result.exit_code == 0, result.output
    base = f"http://hooks.example.com/webhooks/im/{stub.stubref}"
    assert result.output.splitlines() == [
        "ACTION            METHODS   URL",
        f"payment_received  GET POST  {base}/payment_received",
        f"add_note          GET POST  {base}/add_note",
    ]


def test_urls_with_a_base_url(app: Flask, stub: Any) -> None:
    app.config["SERVER_NAME"] = None
    result = invoke(app, "urls", stub.stubref, "--base-url", "https://pay.example.org:8443", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)[0] == {
        "kind": "implicit", "action": "payment_received", "methods": ["GET", "POST"],
        "url": f"https://pay.example.org:8443/webhooks/im/{stub.stubref}/payment_received"}


def test_urls_need_a_server_name_or_base_url(app: Flask, stub: Any) -> None:
    app.config["SERVER_NAME"] = None
    result = invoke(app, "urls", stub.stubref)
    assert result.exit_code == 2
    assert "SERVER_NAME" in result.output and "--base-url" in result.output


def write(path: Path, source: dict[str, Any]) -> Path:
    path.write_text(json.dumps(source))
    return path


def broken_order() -> dict[str, Any]:
    source = copy.deepcopy(ORDER)
    source["actions"]["ship"]["to_state"] = {"delivered": {}}
    return source


def test_check_registered_templates(app: Flask) -> None:
    result = invoke(app, "check")
    assert result.exit_code == 0
    assert result.output == "ok     order: 4 states, 4 actions\n"


def test_check_files(app: Flask, tmp_path: Path) -> None:
    good = write(tmp_path / "good.json", ORDER)
    bad = write(tmp_path / "bad.json", broken_order())
    result = invoke(app, "check", str(good), str(bad))
    assert result.exit_code == 1
    assert f"ok     {good}: 4 states, 4 actions" in result.output
    assert f"error  {bad}" in result.output
    assert ("Error: Template 'order' at actions.ship.to_state: the target state 'delivered' is not defined."
            in result.output)


def test_check_json(app: Flask, tmp_path: Path) -> None:
    bad = write(tmp_path / "bad.json", broken_order())
    result = invoke(app, "check", "--json", str(bad), str(tmp_path / "missing.json"))
    assert result.exit_code == 1
    report = json.loads(result.output[: result.output.rindex("]") + 1])
    assert [r["ok"] for r in report] == [False, False]
    assert "cannot be read" in report[1]["error"]


def order_with_auth(auth: str | None) -> dict[str, Any]:
    source = copy.deepcopy(ORDER)
    source["actions"]["payment_received"]["action_meta"]["webhooks"]["auth"] = auth
    return source


def test_check_names_verifiers_that_are_not_configured(app: Flask, tmp_path: Path) -> None:
    path = write(tmp_path / "order.json", order_with_auth("payments"))
    result = invoke(app, "check", str(path))
    assert result.exit_code == 1
    assert ("Template 'order' at actions.payment_received.action_meta.webhooks.auth: "
            "no verifier named 'payments' is configured.") in result.output


@pytest.mark.parametrize("app_config", [{"STUBBER_VERIFIERS": {"payments": {"scheme": "bearer", "tokens": ["t"]}},
                                         "STUBBER_DEFAULT_AUTH": "payments"}])
@pytest.mark.parametrize("auth", ["payments", None])
def test_check_passes_with_configured_verifiers(app: Flask, stubber: StubberWebhooks, auth: str | None) -> None:
    stubber.register_template(order_with_auth(auth))
    assert invoke(app, "check").exit_code == 0


def test_check_with_nothing_to_check(database_url: str, db: SQLAlchemy) -> None:
    from .conftest import make_app

    result = invoke(make_app(database_url, db, StubberWebhooks()), "check")
    assert result.exit_code == 1
    assert "No templates to check" in result.output


def test_graph_of_a_registered_template(app: Flask) -> None:
    result = invoke(app, "graph", "order")
    assert result.exit_code == 0
    assert result.output.startswith("stateDiagram-v2\n")
    assert "awaiting_payment --> paid: payment_received (webhook)" in result.output


def test_graph_of_a_file_to_an_output_file(app: Flask, tmp_path: Path) -> None:
    source = write(tmp_path / "flow.json", dict(copy.deepcopy(ORDER), name="flow"))
    result = invoke(app, "graph", str(source), "--format", "dot", "--output", str(tmp_path / "flow.dot"))
    assert result.exit_code == 0 and result.output == ""
    assert (tmp_path / "flow.dot").read_text().startswith('digraph "flow" {')


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed (Debian package graphviz)")
def test_graph_svg_to_stdout(app: Flask) -> None:
    result = invoke(app, "graph", "order", "--format", "svg")
    assert result.exit_code == 0
    assert b"<svg" in result.stdout_bytes and b"payment_received (webhook)" in result.stdout_bytes


@pytest.mark.parametrize(("args", "code", "message"), [
    (["nope"], 1, "No template named 'nope' is registered (registered: order)."),
    (["order", "--format", "gif"], 2, "'gif' is not one of"),
])
def test_graph_refusals(app: Flask, args: list[str], code: int, message: str) -> None:
    result = invoke(app, "graph", *args)
    assert result.exit_code == code
    assert message in result.output


# -- explicit webhooks ---------------------------------------------------------------------


def hook_rows(app: Flask, db: SQLAlchemy) -> list[tuple[Any, ...]]:
    """Every explicit webhook, read in a fresh transaction."""
    model = app.extensions["stubber"].engine.models.webhook
    db.session.rollback()
    return [(h.uuid, h.action_name, h.single_use, h.expires_at is not None, h.used_at, h.revoked_at)
            for h in db.session.scalars(select(model).order_by(model.id))]


def test_webhook_create_prints_uuid_and_url(app: Flask, db: SQLAlchemy, stub: Any, client: FlaskClient) -> None:
    result = invoke(app, "webhook", "create", stub.stubref.lower(), "cancel", "--single-use")
    assert result.exit_code == 0, result.output
    [(uuid, action, single_use, expires, used, revoked)] = hook_rows(app, db)
    assert (action, single_use, expires, used, revoked) == ("cancel", True, False, None, None)
    url = f"http://hooks.example.com/webhooks/ex/{uuid}"
    assert result.output.splitlines() == [
        f"uuid        {uuid}", f"url         {url}", "action      cancel", "single use  yes", "expires     never"]
    assert client.post(url.removeprefix("http://hooks.example.com")).status_code == 200
    assert_posted(stub, "cancel", to_state="cancelled", source="explicit_webhook")


def test_webhook_create_json_with_own_uuid_expiry_and_base_url(app: Flask, db: SQLAlchemy, stub: Any) -> None:
    app.config["SERVER_NAME"] = None
    given = str(uuidlib.uuid4())
    args = ["webhook", "create", stub.stubref, "add_note", "--uuid", given.upper(), "--expires-in", "3600",
            "--base-url", "https://mail.example.org", "--json"]
    info = json.loads(invoke(app, *args).output)
    assert info["url"] == f"https://mail.example.org/webhooks/ex/{given}"
    assert (info["uuid"], info["action"], info["status"], info["stubref"], info["single_use"]) == (
        given, "add_note", "active", stub.stubref, False)
    expires = datetime.fromisoformat(info["expires_at"])
    assert timedelta(minutes=59) < expires - utcnow() <= timedelta(hours=1)
    again = invoke(app, *args[:-3], "--json")  # The same uuid, stub and action: updated, not duplicated.
    assert again.exit_code == 2 and "SERVER_NAME" in again.output  # ... but it needs a way to build the URL.
    assert invoke(app, *args).exit_code == 0
    assert [row[0] for row in hook_rows(app, db)] == [given]


@pytest.mark.parametrize(("args", "code", "message"), [
    (["2026-01-01-AAAA-BBBB", "cancel"], 1, "Error: No stub has the stubref '2026-01-01-AAAA-BBBB'."),
    (["{stubref}", "nope"], 1, "has no action 'nope'"),
    (["{stubref}", "cancel", "--uuid", "not-a-uuid"], 2, "not a uuid"),
    (["{stubref}", "cancel", "--expires-in", "0"], 2, "--expires-in"),
    (["{stubref}", "add_note", "--uuid", "{taken}"], 1, "is already bound to another stub or action"),
])
def test_webhook_create_refusals_write_nothing(app: Flask, db: SQLAlchemy, stub: Any, stubber: StubberWebhooks,
                                               args: list[str], code: int, message: str) -> None:
    taken = stubber.create_webhook(stub, "cancel").uuid
    before = hook_rows(app, db)
    result = invoke(app, "webhook", "create", *(a.format(stubref=stub.stubref, taken=taken) for a in args))
    assert result.exit_code == code
    assert message in result.output
    assert hook_rows(app, db) == before


def test_webhook_create_needs_a_way_to_build_the_url(app: Flask, db: SQLAlchemy, stub: Any) -> None:
    app.config["SERVER_NAME"] = None
    result = invoke(app, "webhook", "create", stub.stubref, "cancel")
    assert result.exit_code == 2
    assert "--base-url" in result.output
    assert hook_rows(app, db) == []


def test_webhook_revoke(app: Flask, db: SQLAlchemy, stub: Any, stubber: StubberWebhooks, client: FlaskClient) -> None:
    hook = stubber.create_webhook(stub, "cancel")
    result = invoke(app, "webhook", "revoke", hook.uuid.upper())
    assert result.exit_code == 0, result.output
    assert result.output == f"Revoked {hook.uuid}.\n"
    assert hook_rows(app, db)[0][5] is not None
    assert_problem(client.post(f"/webhooks/ex/{hook.uuid}"), 404, "webhook_not_found")
    again = invoke(app, "webhook", "revoke", hook.uuid, "--json")  # Revoking again does nothing.
    assert json.loads(again.output) == {"uuid": hook.uuid, "status": "revoked"}


@pytest.mark.parametrize("uuid", [str(uuidlib.uuid4()), "nope"])
def test_webhook_revoke_unknown_exits_1(app: Flask, db: SQLAlchemy, stub: Any, stubber: StubberWebhooks,
                                        uuid: str) -> None:
    stubber.create_webhook(stub, "cancel")
    before = hook_rows(app, db)
    result = invoke(app, "webhook", "revoke", uuid)
    assert result.exit_code == 1
    assert f"Error: No explicit webhook has the uuid '{uuid}'." in result.output
    assert hook_rows(app, db) == before


@pytest.fixture
def four_hooks(app: Flask, db: SQLAlchemy, stub: Any, stubber: StubberWebhooks, client: FlaskClient) -> list[Any]:
    """Webhooks of ``stub``: active, used (single-use, called), expired and revoked."""
    model = app.extensions["stubber"].engine.models.webhook
    made = [stubber.create_webhook(stub, "add_note", single_use=True, expires_in=7200) for _ in range(4)]
    uuids = [hook.uuid for hook in made]
    assert client.post(f"/webhooks/ex/{uuids[1]}", json={}).status_code == 200
    stubber.revoke_webhook(uuids[3])
    db.session.execute(update(model).where(model.uuid == uuids[2]).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    return uuids


def test_webhook_list(app: Flask, stub: Any, four_hooks: list[str]) -> None:
    result = invoke(app, "webhook", "list", stub.stubref)
    assert result.exit_code == 0, result.output
    header, *rows = result.output.splitlines()
    assert header.split() == ["UUID", "ACTION", "STATUS", "SINGLE", "USE", "EXPIRES"]
    assert [row.split()[:4] for row in rows] == [
        [uuid, "add_note", status, "yes"] for uuid, status in zip(four_hooks, ("active", "used", "expired", "revoked"),
                                                                 strict=True)]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", " ".join(rows[0].split()[4:]))
    info = json.loads(invoke(app, "webhook", "list", stub.stubref, "--json").output)
    assert [(h["uuid"], h["status"]) for h in info] == list(zip(four_hooks, ("active", "used", "expired", "revoked"),
                                                                 strict=True))
    assert info[1]["used_at"] is not None and info[3]["revoked_at"] is not None and info[0]["used_at"] is None


def test_webhook_list_of_a_stub_without_webhooks_and_unknown_stubs(app: Flask, stub: Any) -> None:
    assert invoke(app, "webhook", "list", stub.stubref).output == "UUID  ACTION  STATUS  SINGLE USE  EXPIRES\n"
    assert json.loads(invoke(app, "webhook", "list", stub.stubref, "--json").output) == []
    result = invoke(app, "webhook", "list", "nope")
    assert result.exit_code == 1 and "No stub has the stubref 'nope'." in result.output


def test_urls_list_the_active_explicit_webhooks(app: Flask, stub: Any, four_hooks: list[str]) -> None:
    result = invoke(app, "urls", stub.stubref)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[lines.index("explicit webhooks") + 1].split() == ["ACTION", "METHODS", "SINGLE", "USE", "EXPIRES",
                                                                   "URL"]
    [row] = lines[lines.index("explicit webhooks") + 2:]
    assert row.split()[:4] == ["add_note", "GET", "POST", "yes"]
    assert row.endswith(f"  http://hooks.example.com/webhooks/ex/{four_hooks[0]}")
    explicit = [r for r in json.loads(invoke(app, "urls", stub.stubref, "--json").output) if r["kind"] == "explicit"]
    assert [(r["uuid"], r["action"], r["methods"], r["url"], r["single_use"]) for r in explicit] == [
        (four_hooks[0], "add_note", ["GET", "POST"], f"http://hooks.example.com/webhooks/ex/{four_hooks[0]}", True)]
    assert explicit[0]["expires_at"] is not None


# -- deliveries ----------------------------------------------------------------------------


def deliver(client: FlaskClient, path: str, key: str, **kwargs: Any) -> Any:
    response = client.post(path, headers={"Idempotency-Key": key}, **kwargs)
    assert response.status_code in (200, 201), response.get_data(as_text=True)
    return response


def written(app: Flask, db: SQLAlchemy) -> tuple[int, int, int]:
    models = app.extensions["stubber"].engine.models
    return count_rows(db, models.stub), count_rows(db, models.post), count_rows(db, models.delivery)


@pytest.fixture
def deliveries(app: Flask, client: FlaskClient, stub: Any, stubber: StubberWebhooks) -> dict[str, Any]:
    """Three deliveries, oldest first: a payment and a note on ``stub``, and a create."""
    deliver(client, f"/webhooks/im/{stub.stubref}/payment_received", "pay-1", json={"amount": 5})
    deliver(client, f"/webhooks/im/{stub.stubref}/add_note?_synchronous=1", "note-1", json={"note": "hi"})
    created = deliver(client, "/webhooks/create/order", "create-1", json={"customer": "bo"}).get_json()["stubref"]
    return {"stub": stub, "created": created}


def test_deliveries_list(app: Flask, stub: Any, deliveries: dict[str, Any]) -> None:
    result = invoke(app, "deliveries", "list")
    assert result.exit_code == 0, result.output
    header, *rows = result.output.splitlines()
    assert header.split() == ["ID", "KEY", "SCOPE", "STATUS", "RESPONSE", "POST", "AGE"]
    assert [row.split()[1:5] for row in rows] == [
        ["create-1", "create/order", "active", "201"],
        ["note-1", f"{stub.stubref}/add_note", "active", "200"],
        ["pay-1", f"{stub.stubref}/payment_received", "active", "200"],
    ]
    assert all(re.fullmatch(r"\d+s", row.split()[-1]) for row in rows)
    info = json.loads(invoke(app, "deliveries", "list", "--json", "--limit", "2").output)
    assert [d["key"] for d in info] == ["create-1", "note-1"]
    assert (info[0]["stubref"], info[0]["action_name"], info[0]["response_status"], info[0]["status"]) == (
        deliveries["created"], "create", 201, "active")
    assert info[1]["response_type"] == "application/json" and "response_body" not in info[1]
    only = json.loads(invoke(app, "deliveries", "list", "--json", "--stub", stub.stubref.lower()).output)
    assert [d["key"] for d in only] == ["note-1", "pay-1"]


def test_deliveries_past_the_ttl_are_expired(app: Flask, db: SQLAlchemy, deliveries: dict[str, Any]) -> None:
    model = app.extensions["stubber"].engine.models.delivery
    db.session.execute(update(model).where(model.key == "pay-1").values(created_at=utcnow() - timedelta(days=2)))
    db.session.commit()
    info = {d["key"]: d for d in json.loads(invoke(app, "deliveries", "list", "--json").output)}
    assert (info["pay-1"]["status"], info["note-1"]["status"]) == ("expired", "active")
    assert 2 * 86400 <= info["pay-1"]["age_seconds"] < 2 * 86400 + 60
    assert invoke(app, "deliveries", "list").output.splitlines()[-1].split()[-1] == "2d"


@pytest.mark.parametrize(("args", "code", "message"), [
    (["--stub", "2026-01-01-AAAA-BBBB"], 1, "Error: No stub has the stubref '2026-01-01-AAAA-BBBB'."),
    (["--limit", "0"], 2, "--limit"),
])
def test_deliveries_list_misuse(app: Flask, deliveries: dict[str, Any], args: list[str], code: int,
                                message: str) -> None:
    result = invoke(app, "deliveries", "list", *args)
    assert result.exit_code == code
    assert message in result.output


def test_deliveries_show_prints_what_a_retry_gets(app: Flask, client: FlaskClient, stub: Any,
                                                   deliveries: dict[str, Any]) -> None:
    result = invoke(app, "deliveries", "show", "note-1")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    fields = dict(line.split(None, 1) for line in lines[:8])
    assert {k: fields[k] for k in ("key", "scope", "status", "response", "location")} == {
        "key": "note-1", "scope": f"{stub.stubref}/add_note", "status": "active", "response": "200 application/json",
        "location": "-"}
    retry = client.post(f"/webhooks/im/{stub.stubref}/add_note?_synchronous=1", json={"note": "hi"},
                        headers={"Idempotency-Key": "note-1"})
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert lines[8] == "" and json.loads(lines[9]) == retry.get_json()
    info = json.loads(invoke(app, "deliveries", "show", "--json", fields["id"]).output)
    assert (info["key"], info["response_status"], json.loads(info["response_body"])) == (
        "note-1", 200, retry.get_json())


def test_deliveries_replay_runs_the_recorded_payload_again(app: Flask, db: SQLAlchemy, stub: Any,
                                                           deliveries: dict[str, Any]) -> None:
    result = invoke(app, "deliveries", "replay", "note-1")
    assert result.exit_code == 0, result.output
    post = assert_posted(stub, "add_note", from_state="paid", to_state="paid", source="cli", payload={"note": "hi"})
    assert post.delivery_id is None
    assert result.output.startswith("Replayed delivery ")
    assert result.output.endswith(f"(add_note on {stub.stubref}): paid -> paid (post {post.id}).\n")
    info = json.loads(invoke(app, "deliveries", "replay", "note-1", "--json").output)
    assert (info["success"], info["stubref"], info["action_name"], info["source"]) == (
        True, stub.stubref, "add_note", "cli")


def test_deliveries_replay_of_an_explicit_webhook_unwraps_its_payload(
        app: Flask, client: FlaskClient, stubber: StubberWebhooks) -> None:
    ticket = Template("ticket", start_state="open")
    ticket.state("open", actions=["comment"])
    ticket.action("comment", fields={"text": {"fieldtype": "text", "validations": ["required"]}})
    stubber.register_template(ticket)
    stub = stubber.create_stub("ticket")
    hook = stubber.create_webhook(stub, "comment")
    deliver(client, f"/webhooks/ex/{hook.uuid}", "ex-1", json={"text": "hello"})
    assert_posted(stub, "comment", source="explicit_webhook", payload={"lid": hook.uuid, "payload": {"text": "hello"}})
    result = invoke(app, "deliveries", "replay", "ex-1")
    assert result.exit_code == 0, result.output
    assert_posted(stub, "comment", source="cli", payload={"text": "hello"})


@pytest.mark.parametrize(("key", "message"), [
    ("pay-1", "Error: The action 'payment_received' is not available in the state 'paid'"),
    ("create-1", "created the stub"),
    ("nope", "Error: No recorded delivery has the key or id 'nope'"),
    ("999999", "Error: No recorded delivery has the key or id '999999'"),
])
def test_deliveries_replay_refusals_write_nothing(app: Flask, db: SQLAlchemy, deliveries: dict[str, Any], key: str,
                                                  message: str) -> None:
    before = written(app, db)
    result = invoke(app, "deliveries", "replay", key)
    assert result.exit_code == 1
    assert message in result.output
    assert written(app, db) == before


@pytest.mark.parametrize("command", ["show", "replay"])
def test_a_key_delivered_to_several_targets_needs_its_id(app: Flask, client: FlaskClient, stubber: StubberWebhooks,
                                                         command: str) -> None:
    stubs = [stubber.create_stub("order") for _ in range(2)]
    for each in stubs:
        deliver(client, f"/webhooks/im/{each.stubref}/add_note", "same", json={})
    result = invoke(app, "deliveries", command, "same")
    assert result.exit_code == 1
    assert "The key 'same' was delivered to several targets; give one id of:" in result.output
    assert all(f"({each.stubref}/add_note)" in result.output for each in stubs)


def test_deliveries_prune(app: Flask, db: SQLAlchemy, deliveries: dict[str, Any]) -> None:
    model = app.extensions["stubber"].engine.models.delivery
    db.session.execute(update(model).where(model.key == "pay-1").values(created_at=utcnow() - timedelta(days=2)))
    db.session.commit()
    result = invoke(app, "deliveries", "prune")
    assert result.exit_code == 0, result.output
    assert result.output == "Deleted 1 deliveries older than 86400 seconds.\n"
    assert count_rows(db, model) == 2
    assert json.loads(invoke(app, "deliveries", "prune", "--older-than", "0", "--json").output) == {
        "deleted": 2, "older_than": 0}
    assert count_rows(db, model) == 0
    assert invoke(app, "deliveries", "prune", "--older-than", "-1").exit_code == 2
