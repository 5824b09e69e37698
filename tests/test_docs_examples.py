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
UUID_PATTERN = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TOKEN_PATTERN = re.compile(r"\b[0-9a-f]{64}\b")
MAIN_PATTERN = re.compile(r"<main>.*</main>", re.DOTALL)
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
    """Import ``docs/examples/<name>.py``, as the documentation shows it, or the example app."""
    if name == "example_app":
        import example_app

        return example_app
    return import_file(f"docs_examples_{name}", EXAMPLES / f"{name}.py")


http_examples = import_file("docs_http_examples", ROOT / "docs" / "_ext" / "http_examples.py")


class Shown:
    """The random values an example meets, and the placeholders the documentation shows for them."""

    KINDS = (
        (STUBREF_PATTERN, http_examples.STUBREFS),
        (UUID_PATTERN, http_examples.UUIDS),
        (TOKEN_PATTERN, http_examples.TOKENS),
    )

    def __init__(self) -> None:
        self.placeholder: dict[str, str] = {}

    def learn(self, text: str) -> None:
        """Give each value ``text`` hands out for the first time the next placeholder of its kind."""
        for pattern, placeholders in self.KINDS:
            for value in pattern.findall(text):
                if value in self.placeholder or value in placeholders:
                    continue
                taken = sum(shown in placeholders for shown in self.placeholder.values())
                assert taken < len(placeholders), f"add a placeholder for {value!r} to docs/_ext/http_examples.py"
                self.placeholder[value] = placeholders[taken]

    def hide(self, text: str) -> str:
        """Replace the values in ``text`` with their placeholders."""
        for value, shown in self.placeholder.items():
            text = text.replace(value, shown)
        return text

    def reveal(self, value: Any) -> Any:
        """Replace the placeholders in a request (text, or JSON data) with the values they stand for."""
        if isinstance(value, str):
            for real, shown in self.placeholder.items():
                value = value.replace(shown, real)
            return value
        if isinstance(value, dict):
            return {k: self.reveal(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.reveal(v) for v in value]
        return value


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


def replay(example: dict[str, Any], build: Any) -> list[dict[str, Any]]:
    """Send every request of an HTTP example; return each answer as the example file describes it."""
    module = example_module(example["app"])
    app = build(example["app"], unreachable=example.get("database") == "unreachable", **example.get("config", {}))
    shown = Shown()
    if "stub" in example:
        with app.app_context():
            stub = example["stub"]
            stubref = module.stubber.create_stub(stub["template"], stub.get("data")).stubref
            shown.learn(stubref)
            for action, data in example.get("setup", []):
                module.stubber.run_action(stubref, action, data)
            for action, options in example.get("webhooks", []):
                options = dict(options)
                revoked = options.pop("revoked", False)
                hook = module.stubber.create_webhook(stubref, action, **options)
                if revoked:
                    module.stubber.revoke_webhook(hook.uuid)
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
            request = shown.reveal(step["request"])
            kwargs: dict[str, Any] = {"method": request["method"], "headers": request.get("headers", {})}
            if "json" in request:
                kwargs["json"] = request["json"]
            elif "form" in request:
                kwargs["data"] = request["form"]
            elif "body" in request:
                kwargs.update(data=request["body"], content_type=request["content_type"])
            response = client.open(request["path"], base_url=http_examples.BASE_URL, **kwargs)
            text = response.get_data(as_text=True)
            headers = {name: response.headers.get(name) or "" for name in step.get("headers", {})}
            if response.status_code < 400:
                shown.learn(text + "".join(headers.values()))
            answer: dict[str, Any] = {
                "status": response.status_code,
                "content_type": response.mimetype,
                "headers": {name: shown.hide(value) for name, value in headers.items()},
            }
            if text and response.mimetype == "text/html":
                main = MAIN_PATTERN.search(text)
                answer["html"] = shown.hide(main.group() if main else text)
            elif text:
                answer["response"] = json.loads(shown.hide(text))
            answers.append(answer)
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
    kept = ("status", "content_type", "headers", "response", "html")
    expected = [{"headers": {}, **{key: s[key] for key in kept if key in s}} for s in example["steps"]]
    assert answers == expected


def test_http_examples_render_as_curl_and_answer() -> None:
    example = http_examples.load(EXAMPLES / "http" / "quickstart.json")
    assert http_examples.curl(example["steps"][0]["request"]) == "$ curl -s -X POST http://127.0.0.1:5000/orders"
    rendered = [http_examples.curl(s["request"]) for s in example["steps"]]
    assert any("-H 'Content-Type: application/json' -d '{\"amount\": 25}'" in line for line in rendered)
    assert http_examples.answer(example["steps"][0]).startswith("HTTP/1.1 201 Created\nContent-Type: application/json")
    access = http_examples.load(EXAMPLES / "http" / "access.json")["steps"]
    token, uuid = http_examples.TOKENS[0], http_examples.UUIDS[0]
    assert http_examples.curl(access[3]["request"]) == (
        f"$ curl -s -H 'Accept: text/html' -d _confirm={token} \\\n    {http_examples.BASE_URL}/webhooks/ex/{uuid}")
    page = http_examples.answer(access[1])
    assert page.startswith("HTTP/1.1 200 OK\nContent-Type: text/html\nCache-Control: no-store\n\n<main>\n")
    assert page.endswith("</main>")
    assert [len(access[http_examples.steps_of(spec)]) for spec in ("2", "2-4", "6")] == [1, 3, 1]


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
    assert response.get_json() == {"success": True, "quote": ref, "order": order.stubref, "total": 115.0}


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
