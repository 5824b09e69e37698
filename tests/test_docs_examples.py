"""Every example the documentation shows runs here: the Python files it includes, the HTTP
exchanges (``docs/examples/http/*.json``) and commands (``docs/examples/cli/*.json``) it
renders, on every database."""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
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
TIME_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[+-]\d{2}:\d{2})?")
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
        self.times = iter(http_examples.TIMES)

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
        """Replace the values in ``text`` with their placeholders, and each time with the next of ``TIMES``."""
        for value, shown in self.placeholder.items():
            text = text.replace(value, shown)
        return TIME_PATTERN.sub(lambda _: next(self.times), text)

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
def built(request: pytest.FixtureRequest, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Build an example module's app on the test database: ``built(name, **config)``."""
    made: list[tuple[ModuleType, Flask, bool]] = []
    # The example app's payment secret is the demo one the documentation signs with.
    monkeypatch.delenv("STRIPE_WEBHOOK_SECRET", raising=False)

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


@contextmanager
def handler_replaced(module: ModuleType, key: tuple[str, str], make: Any) -> Iterator[None]:
    """Register ``make(original_handler)`` as the handler of ``key`` for the duration."""
    original = module.stubber.get_handler(*key)
    module.stubber.action_handler(*key)(make(original))
    try:
        yield
    finally:
        if original is None:
            module.stubber._handlers.pop(key)
        else:
            module.stubber.action_handler(*key)(original)


#: The module of flask-stubber that imports each optional dependency.
NEEDED_BY = {"apispec": "flask_stubber.openapi"}


@contextmanager
def not_installed(names: list[str]) -> Iterator[None]:
    """Make the optional modules ``names`` look uninstalled for the duration."""
    with pytest.MonkeyPatch.context() as patch:
        for name in names:
            patch.setitem(sys.modules, name, None)
            patch.delitem(sys.modules, NEEDED_BY[name], raising=False)
        yield


def signature(app: Flask, request: dict[str, Any], now: int) -> dict[str, str]:
    """Sign a request's body for its ``sign`` verifier with the testing kit, dated relative to ``now``."""
    from flask_stubber import testing

    spec = dict(request["sign"])
    settings = dict(app.config["STUBBER_VERIFIERS"][spec.pop("verifier")])
    if "secrets" in spec:
        settings["tokens" if settings["scheme"] == "bearer" else "secrets"] = spec.pop("secrets")
    timestamp = spec.pop("timestamp", http_examples.SHOWN_TIME) - http_examples.SHOWN_TIME + now
    body = http_examples.body_of(request)[0] or ""
    if "timestamp_header" in settings:
        # A generic HMAC over more than the body, such as Slack's "v0:{timestamp}:{body}".
        before, _, after = settings.get("signed_payload", "{body}").partition("{body}")
        signed = before.format(timestamp=timestamp) + body + after.format(timestamp=timestamp)
        options = {k: settings[k] for k in ("header", "algorithm", "encoding", "prefix") if k in settings}
        return {**testing.hmac_headers(signed, settings["secrets"][0], **options),
                settings["timestamp_header"]: str(timestamp)}
    if settings["scheme"] in ("stripe", "standard-webhooks"):
        spec["timestamp"] = timestamp
    return testing.sign(settings, body, **spec)


def send(client: Any, request: dict[str, Any], headers: dict[str, str]) -> Any:
    """Send one request of an example, its body exactly as curl sends it."""
    body, content_type = http_examples.body_of(request)
    return client.open(request["path"], base_url=http_examples.BASE_URL, method=request["method"], headers=headers,
                       data=body, content_type=content_type)


def replay(example: dict[str, Any], build: Any) -> list[dict[str, Any]]:
    """Run every step of an example; return each answer as the example file describes it."""
    module = example_module(example["app"])
    app = build(example["app"], unreachable=example.get("database") == "unreachable", **example.get("config", {}))
    shown = Shown()
    template = None
    if "stub" in example:
        with app.app_context():
            stub = example["stub"]
            template = stub["template"]
            stubref = module.stubber.create_stub(template, stub.get("data")).stubref
            shown.learn(stubref)
            for action, data in example.get("setup", []):
                module.stubber.run_action(stubref, action, data)
            for action, options in example.get("webhooks", []):
                options = dict(options)
                revoked = options.pop("revoked", False)
                hook = module.stubber.create_webhook(stubref, action, **options)
                if revoked:
                    module.stubber.revoke_webhook(hook.uuid)
    steps = example["steps"]
    answers: dict[int, dict[str, Any]] = {}

    def http(index: int) -> dict[str, Any]:
        step = steps[index]
        request = shown.reveal(step["request"])
        headers = dict(request.get("headers", {}))
        if "sign" in request:
            shown_request = step["request"]
            expected = signature(app, shown_request, http_examples.SHOWN_TIME)
            assert {k: shown_request["headers"].get(k) for k in expected} == expected, "the signature shown is wrong"
            headers.update(signature(app, request, int(time.time())))
        response = send(app.test_client(), request, headers)
        text = response.get_data(as_text=True)
        got = {name: response.headers.get(name) or "" for name in step.get("headers", {})}
        for name, (low, high) in step.get("between", {}).items():
            if got[name].isdigit() and low <= int(got[name]) <= high:
                got[name] = step["headers"][name]
        if response.status_code < 400:
            shown.learn(text + "".join(got.values()))
        answer: dict[str, Any] = {
            "status": response.status_code,
            "content_type": response.mimetype,
            "headers": {name: shown.hide(value) for name, value in got.items()},
        }
        if text and response.mimetype == "text/html":
            main = MAIN_PATTERN.search(text)
            answer["html"] = shown.hide(main.group() if main else text)
        elif text:
            answer["response"] = json.loads(shown.hide(text))
        return answer

    def cli(index: int) -> dict[str, Any]:
        step = steps[index]
        result = app.test_cli_runner().invoke(args=shown.reveal(step["command"]))
        if result.exit_code == 0:
            shown.learn(result.output)
        return {"exit_code": result.exit_code, "output": shown.hide(result.output)}

    def run(index: int) -> dict[str, Any]:
        return cli(index) if "command" in steps[index] else http(index)

    def sending(index: int) -> Any:
        """Send the steps that arrive while step ``index``'s action runs, from inside its handler."""
        later = [i for i, step in enumerate(steps) if step.get("sent_during") == index + 1]
        action = steps[index]["request"]["path"].rsplit("/", 1)[-1].split("?")[0] if later else None
        if action is None:
            return nullcontext()
        assert template is not None, "sent_during needs the example's stub"

        def make(original: Any) -> Any:
            def handler(stub: Any, payload: Any, ctx: Any) -> None:
                for i in later:
                    if i not in answers:
                        # Another thread, as another worker's request: it has a session of its own.
                        worker = threading.Thread(target=lambda i=i: answers.__setitem__(i, run(i)))
                        worker.start()
                        worker.join(60)
                if original is not None:
                    original(stub, payload, ctx)
            return handler

        return handler_replaced(module, (template, action), make)

    failing = nullcontext()
    if "failing_handler" in example:
        def make_failing(original: Any) -> Any:
            def failing(stub: Any, payload: Any, ctx: Any) -> None:
                raise ConnectionError("The warehouse system did not answer.")
            return failing

        failing = handler_replaced(module, tuple(example["failing_handler"]), make_failing)
    with failing, not_installed(example.get("without", [])):
        for index, step in enumerate(steps):
            if "sent_during" not in step:
                with sending(index):
                    answers[index] = run(index)
    return [answers[index] for index in range(len(steps))]


def same_spacing(text: str) -> str:
    """Return ``text`` with each line's runs of spaces as one: times take more or fewer columns per database."""
    return "\n".join(" ".join(line.split()) for line in text.strip("\n").splitlines())


def expected(step: dict[str, Any]) -> dict[str, Any]:
    """What the replay of ``step`` must answer."""
    if "command" in step:
        return {"exit_code": step["exit_code"], "output": step["output"]}
    kept = ("status", "content_type", "headers", "response", "html")
    return {"headers": {}, **{key: step[key] for key in kept if key in step}}


def comparable(answer: dict[str, Any]) -> dict[str, Any]:
    """An answer with the spacing of a command's output made even."""
    return {**answer, "output": same_spacing(answer["output"])} if "output" in answer else answer


EXAMPLE_FILES = sorted((EXAMPLES / "http").glob("*.json")) + sorted((EXAMPLES / "cli").glob("*.json"))


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=[f"{p.parent.name}-{p.stem}" for p in EXAMPLE_FILES])
def test_example(path: Path, built: Any) -> None:
    example = http_examples.load(path)
    got = [comparable(answer) for answer in replay(example, built)]
    assert got == [comparable(expected(step)) for step in example["steps"]]


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
    signed = http_examples.curl(http_examples.load(EXAMPLES / "http" / "senders.json")["steps"][5]["request"])
    assert signed.startswith("$ curl -s \\\n    -H 'Content-Type: application/json' \\\n    -H 'X-GitHub-Event: push'")
    assert signed.endswith(f" \\\n    {http_examples.BASE_URL}/webhooks/im/{http_examples.STUBREF}/push")
    shown = http_examples.load(EXAMPLES / "cli" / "quickstart.json")["steps"][1]
    assert http_examples.cli_line("quickstart", shown) == (
        "$ flask --app quickstart stubber create order --data '{\"customer\": \"ada\", \"total\": 25}' "
        f"--subject 'Order 7'\nCreated {http_examples.STUBREF} (order: awaiting_payment).")


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


def mailgun(event: dict[str, Any], key: str, timestamp: int, token: str) -> dict[str, Any]:
    """A Mailgun-style event, signed in its body."""
    signature = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    return {"signature": {"timestamp": str(timestamp), "token": token, "signature": signature}, "event-data": event}


def test_a_scheme_of_your_own(built: Any) -> None:
    from flask_stubber.testing import assert_problem

    module = example_module("senders")
    app = built("senders")
    key = module.VERIFIERS["mail"]["secrets"][0]
    with app.app_context():
        ref = module.stubber.create_stub("inbox").stubref
    client = app.test_client()
    url = f"/webhooks/im/{ref}/mail_event"
    event = {"event": "delivered", "recipient": "ada@example.com"}
    now = int(time.time())
    forged = mailgun(event, key, now, "5f1c")
    forged["signature"]["token"] = "6a2d"
    for refused in (mailgun(event, "key-guessed", now, "9b0e"), mailgun(event, key, now - 600, "2c7a"), forged,
                    {"event-data": event}, {**mailgun(event, key, now, "77ad"), "signature": "v1"}):
        assert_problem(client.post(url, json=refused), 401, "unauthorized")
    with app.app_context():
        assert module.stubber.get_stub(ref).posts == []
    signed = mailgun(event, key, now, "c6bd6a5d")
    first = client.post(url, json=signed)
    again = client.post(url, json=signed)
    assert (first.status_code, again.status_code, again.headers.get("Idempotent-Replayed")) == (200, 200, "true")
    assert again.get_json() == first.get_json()
    with app.app_context():
        posts = module.stubber.get_stub(ref).posts
        assert [(p.action_name, p.delivery_id) for p in posts] == [("mail_event", "c6bd6a5d")]


def test_every_setting_the_code_reads_is_documented_with_its_default() -> None:
    import ast

    from flask_stubber.extension import _DEFAULTS

    code = "".join(path.read_text(encoding="utf-8") for path in (ROOT / "flask_stubber").glob("*.py"))
    page = (ROOT / "docs" / "configuration.rst").read_text(encoding="utf-8")
    documented = dict(re.findall(r"\* - ``(STUBBER_[A-Z_]+)``\n\s+- ``([^`]+)``", page))
    assert set(documented) == set(re.findall(r"STUBBER_[A-Z_]+", code))
    assert {key: ast.literal_eval(documented[key]) for key in _DEFAULTS} == _DEFAULTS


@pytest.mark.slow
def test_the_testing_guides_tests_pass() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error", str(EXAMPLES / "testing")],
        cwd=EXAMPLES / "testing", env={**os.environ, "PYTHONPATH": str(EXAMPLES)},
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 passed" in done.stdout


def transcript(path: Path) -> list[tuple[str, list[str]]]:
    """Read a console transcript: each ``$`` command with the lines it shows (``...`` is left out)."""
    commands: list[tuple[str, list[str]]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("$ "):
            commands.append((line[2:], []))
        elif line.strip() != "...":
            commands[-1][1].append(line)
    return commands


def shows(output: str, lines: list[str]) -> bool:
    """Whether ``output`` has ``lines`` in that order (others between), ``...`` standing for any text."""
    actual = iter(" ".join(line.split()) for line in output.splitlines())
    for line in lines:
        pattern = re.compile(".*".join(map(re.escape, " ".join(line.split()).split("..."))))
        if not any(pattern.fullmatch(candidate) for candidate in actual):
            return False
    return True


@pytest.mark.slow
def test_the_migration_workflow_shown(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(EXAMPLES), "DATABASE_URL": f"sqlite:///{tmp_path / 'shop.db'}"}
    for command, lines in transcript(EXAMPLES / "migrations.console"):
        done = subprocess.run(shlex.split(command), cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=120, check=False)
        assert done.returncode == 0, f"{command}\n{done.stdout}"
        assert shows(done.stdout, lines), f"{command} did not print what the page shows:\n{done.stdout}"


def test_a_handler_creating_a_stub_and_a_link(built: Any) -> None:
    from flask_stubber.testing import assert_problem, capture_signals

    module = example_module("returns")
    app = built("returns")
    with app.app_context():
        ref = module.stubber.create_stub("order").stubref
        final = module.stubber.create_stub("order", {"final_sale": True}).stubref
    client = app.test_client()
    assert_problem(client.post(f"/webhooks/im/{final}/request_return", json={"reason": "Too small"}), 409, "final_sale")
    with capture_signals(app, "stub_created", "action_executed") as recorded:
        response = client.post(f"/webhooks/im/{ref}/request_return?_synchronous=true", json={"reason": "Too small"})
    assert response.status_code == 200, response.get_json()
    opened = response.get_json()["data"]["return"]
    # The parcel's stub_created is sent after the order's commit (source "api": created from Python).
    assert [(name, kwargs["source"]) for name, kwargs in recorded.events] == [
        ("stub_created", "api"), ("action_executed", "webhook")]
    assert opened["scan"].startswith("http://localhost/webhooks/ex/")
    assert client.post(opened["scan"], json={}).status_code == 200
    with app.app_context():
        parcel = module.stubber.get_stub(opened["parcel"])
        assert (parcel.template, parcel.state, parcel.data["order"], parcel.data["reason"]) == (
            "return_parcel", "received", ref, "Too small")
        assert module.stubber.get_stub(final).posts == []
        model = app.extensions["stubber"].engine.stub_model
        assert len(module.db.session.scalars(module.db.select(model)).all()) == 3
