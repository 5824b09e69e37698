"""The ``flask stubber`` commands: output for people and scripts, exit codes, what they write."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_stubber import StubberWebhooks
from flask_stubber.testing import assert_not_posted, assert_posted, capture_signals

from .conftest import ORDER, count_rows


def invoke(app: Flask, *args: str) -> Result:
    return app.test_cli_runner().invoke(args=["stubber", *args])


def stubs(app: Flask, db: SQLAlchemy) -> int:
    return count_rows(db, app.extensions["stubber"].engine.stub_model)


def test_group_is_registered_with_every_command(app: Flask) -> None:
    result = invoke(app, "--help")
    assert result.exit_code == 0
    for command in ("templates", "show", "create", "run", "urls", "check", "graph"):
        assert f"  {command} " in result.output


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
        "action": "payment_received", "methods": ["GET", "POST"],
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
