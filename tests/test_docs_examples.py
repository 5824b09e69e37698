"""Every example the documentation shows runs here: the Python files it includes and
the HTTP exchanges it renders (``docs/examples/http/*.json``), on every database."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from flask import Flask

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "docs" / "examples"
STUBREF_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2}-[A-Z0-9]{4}-[A-Z0-9]{4}")
UNREACHABLE = "sqlite:////nonexistent/flask-stubber/app.db"


def import_file(qualified: str, path: Path) -> ModuleType:
    """Import the file at ``path`` once, as ``qualified``."""
    if qualified not in sys.modules:
        spec = importlib.util.spec_from_file_location(qualified, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[qualified] = module
        spec.loader.exec_module(module)
    return sys.modules[qualified]


def example_module(name: str) -> ModuleType:
    """Import ``docs/examples/<name>.py``, as the documentation shows it."""
    return import_file(f"docs_examples_{name}", EXAMPLES / f"{name}.py")


http_examples = import_file("docs_http_examples", ROOT / "docs" / "_ext" / "http_examples.py")


@pytest.fixture
def built(request: pytest.FixtureRequest, database_url: str) -> Iterator[Any]:
    """Build an example module's app on the test database: ``built(name, **config)``."""
    made: list[tuple[ModuleType, Flask, bool]] = []

    def build(name: str, *, unreachable: bool = False, **config: Any) -> Flask:
        module = example_module(name)
        url = UNREACHABLE if unreachable else database_url
        app: Flask = module.create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True, **config})
        if not unreachable:
            with app.app_context():
                module.db.drop_all()
                module.db.create_all()
        made.append((module, app, unreachable))
        return app

    yield build
    for module, app, unreachable in made:
        with app.app_context():
            module.db.session.remove()
            if not unreachable:
                module.db.drop_all()
            module.db.engine.dispose()


def replay(example: dict[str, Any], build: Any) -> list[tuple[int, str, dict[str, str | None], Any]]:
    """Send every request of an HTTP example; return each answer's status, type, headers shown and body."""
    module = example_module(example["app"])
    app = build(example["app"], unreachable=example.get("database") == "unreachable", **example.get("config", {}))
    stubref = None
    if "stub" in example:
        with app.app_context():
            stub = example["stub"]
            stubref = module.stubber.create_stub(stub["template"], stub.get("data")).stubref
            for action, data in example.get("setup", []):
                module.stubber.run_action(stubref, action, data)
    restore = None
    if "failing_handler" in example:
        key = tuple(example["failing_handler"])
        restore = (key, module.stubber.get_handler(*key))

        def failing(stub: Any, payload: Any, ctx: Any) -> None:
            raise ConnectionError("The warehouse system did not answer.")

        module.stubber.action_handler(*key)(failing)
    try:
        client = app.test_client()
        answers = []
        for step in example["steps"]:
            request = step["request"]
            kwargs: dict[str, Any] = {"method": request["method"], "headers": request.get("headers", {})}
            if "json" in request:
                kwargs["json"] = request["json"]
            elif "form" in request:
                kwargs["data"] = request["form"]
            elif "body" in request:
                kwargs.update(data=request["body"], content_type=request["content_type"])
            path = request["path"].replace(http_examples.STUBREF, stubref) if stubref else request["path"]
            response = client.open(path, base_url=http_examples.BASE_URL, **kwargs)
            text = response.get_data(as_text=True)
            if stubref is None and response.status_code < 400 and (found := STUBREF_PATTERN.search(text)):
                stubref = found.group()
            if stubref is not None:
                text = text.replace(stubref, http_examples.STUBREF)
            headers = {name: response.headers.get(name) for name in step.get("headers", {})}
            answers.append((response.status_code, response.mimetype, headers, json.loads(text) if text else None))
        return answers
    finally:
        if restore is not None:
            key, handler = restore
            if handler is None:
                module.stubber._handlers.pop(key)
            else:
                module.stubber.action_handler(*key)(handler)


HTTP_EXAMPLES = sorted((EXAMPLES / "http").glob("*.json"))


@pytest.mark.parametrize("path", HTTP_EXAMPLES, ids=[p.stem for p in HTTP_EXAMPLES])
def test_http_example(path: Path, built: Any) -> None:
    example = http_examples.load(path)
    answers = replay(example, built)
    expected = [(s["status"], s["content_type"], s.get("headers", {}), s.get("response")) for s in example["steps"]]
    assert answers == expected


def test_http_examples_render_as_curl_and_answer() -> None:
    example = http_examples.load(EXAMPLES / "http" / "quickstart.json")
    assert http_examples.curl(example["steps"][0]["request"]) == "$ curl -s -X POST http://127.0.0.1:5000/orders"
    rendered = [http_examples.curl(s["request"]) for s in example["steps"]]
    assert any("-H 'Content-Type: application/json' -d '{\"amount\": 25}'" in line for line in rendered)
    assert http_examples.answer(example["steps"][0]).startswith("HTTP/1.1 201 Created\nContent-Type: application/json")


def test_readme_quickstart_is_the_documented_one() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    code = (EXAMPLES / "quickstart.py").read_text(encoding="utf-8")
    assert f"```python\n{code}```" in readme


def test_quickstart_init_db_command(built: Any) -> None:
    from sqlalchemy import inspect

    app = built("quickstart")
    module = example_module("quickstart")
    with app.app_context():
        module.db.drop_all()
        result = app.test_cli_runner().invoke(args=["init-db"])
        assert result.exit_code == 0, result.output
        assert {"stubber_stubs", "stubber_posts"} <= set(inspect(module.db.engine).get_table_names())


def test_builder_and_json_give_the_same_template() -> None:
    from flask_stubber import StubberWebhooks

    built_in_python = StubberWebhooks().register_template(example_module("builder").order)
    from_json = StubberWebhooks().register_template(EXAMPLES / "order.json")

    def shape(template: Any) -> Any:
        return (template.name, template.start_state, template.states, template.create_options, {
            name: (a.targets, a.webhooks.enable, a.webhooks.methods, a.webhooks.post_data_on_root,
                   None if a.schema is None else sorted(a.schema.fields))
            for name, a in template.actions.items()})

    assert shape(built_in_python) == shape(from_json)
    payment = {"amount": "12.5", "currency": "ZAR"}
    assert built_in_python.actions["payment_received"].load(payment) == {"amount": 12.5, "currency": "ZAR"}
    assert from_json.actions["payment_received"].load(payment) == {"amount": 12.5, "currency": "ZAR"}


def test_tasks_example(built: Any) -> None:
    app = built("tasks")
    module = example_module("tasks")
    with app.app_context():
        quote = module.stubber.create_stub("quote", {"price": 100})
        ref = quote.stubref
    response = app.test_client().post(f"/webhooks/im/{ref}/accept", json={"customer": "Ada"})
    assert response.status_code == 200, response.get_json()
    with app.app_context():
        quote = module.stubber.get_stub(ref)
        order = module.stubber.get_stub(quote.data["order"])
        assert (quote.state, order.template, order.state) == ("accepted", "order", "awaiting_payment")
        assert (order.subject, order.data) == ("Order for Ada", {"quote": ref, "total": 115.0})


def test_signals_example(built: Any, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    receivers = example_module("signals")
    app = built("quickstart", PAYMENTS_PAUSED=True)
    receivers.init_app(app)
    module = example_module("quickstart")
    with app.app_context():
        ref = module.stubber.create_stub("order", {"total": 25}).stubref
    client = app.test_client()
    before = receivers.rejections["payments_paused"]
    response = client.post(f"/webhooks/im/{ref}/payment_received", json={"amount": 25})
    assert (response.status_code, response.get_json()["error"]) == (409, "payments_paused")
    assert receivers.rejections["payments_paused"] == before + 1
    with app.app_context():
        stub = module.stubber.get_stub(ref)
        assert (stub.state, stub.posts) == ("awaiting_payment", [])
    app.config["PAYMENTS_PAUSED"] = False
    with caplog.at_level(logging.INFO, logger="shop.audit"):
        assert client.post(f"/webhooks/im/{ref}/payment_received", json={"amount": 25}).status_code == 200
    assert f"order {ref}: payment_received (awaiting_payment -> paid) by webhook" in caplog.text
