"""The ``http-example`` and ``cli-example`` directives: show a recorded HTTP exchange as curl
and its answer, or a recorded ``flask`` command and its output.

Each example is a JSON file under ``docs/examples/http/`` (or ``docs/examples/cli/``);
``tests/test_docs_examples.py`` replays every one of them against the app it names and checks
each status, content type, header shown and body (or exit code and output), so what the
documentation shows is what the code does.

File format::

    {
      "app": "quickstart",                        # a module of docs/examples with create_app(config),
                                                  # or "example_app", the repository's example app
      "stub": {"template": "order", "data": {}},  # optional: created first, shown as STUBREFS[0]
      "setup": [["add_note", {"x": 1}]],          # optional: actions run on it from Python first
      "webhooks": [["cancel", {"uuid": "...", "single_use": true, "revoked": true}]],
                                                  # optional: explicit webhooks bound to it, then
      "config": {},                               # optional: app configuration
      "database": "unreachable",                  # optional: point the app at no database at all
      "failing_handler": ["order", "ship"],       # optional: a handler that raises during the example
      "without": ["apispec"],                     # optional: modules that seem not installed
      "steps": [
        {"request": {"method": "POST", "path": "/webhooks/im/<STUBREF>/ship",
                     "json": {...} | "form": {...} | "body": "...", "content_type": "...",
                     "headers": {...},
                     "sign": {"verifier": "stripe", "timestamp": 1796376600}},
         "sent_during": 1,                        # optional: sent while step 1's action runs
         "status": 200, "content_type": "application/json", "headers": {"Retry-After": "5"},
         "between": {"Retry-After": [1, 60]},     # optional: headers whose value varies in a range
         "response": {...} | "html": "<main>...</main>"},
        {"command": ["stubber", "show", "<STUBREF>"], "exit_code": 0, "output": "..."}
      ]
    }

``headers`` lists the answer's headers to show and check. ``content_type`` defaults to
``text/html`` for steps with ``html`` (the ``<main>`` element of the page), to
``application/problem+json`` for statuses from 400 up and ``application/json`` below.

A request with ``sign`` is signed for the verifier of that name in the app's
``STUBBER_VERIFIERS``, with :func:`flask_stubber.testing.sign`: the headers shown are the
signature of the body shown at the ``timestamp`` shown (:data:`SHOWN_TIME` by default), and the
replay signs the body it sends, dated as far from now as the shown timestamp is from
:data:`SHOWN_TIME`. ``sign`` may also give ``secrets`` to sign with (a forger's, or an old one
during a rotation) and ``msg_id`` (Standard Webhooks).

Values that are random on every run are shown as fixed placeholders: each stubref,
explicit webhook uuid and confirmation token an answer hands out is shown as the next
of :data:`STUBREFS`, :data:`UUIDS` or :data:`TOKENS`, and a placeholder in a later
request stands for the value it replaced. The times a command prints are shown as
:data:`TIMES`, in order.
"""

from __future__ import annotations

import json
import shlex
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

#: The stubrefs the examples show, in the order the stubs appear.
STUBREFS = ("2026-12-04-7QK2-M9XD", "2026-12-04-R4TW-8HNC", "2026-12-04-Q2ZL-5VJE")
#: The stubref the examples show for the stub they work on.
STUBREF = STUBREFS[0]
#: The explicit webhook uuids the examples show.
UUIDS = (
    "5f0c8a2e-3b1d-4c7e-9a64-2d8b1e7f3c90",
    "c3a9e6d1-7f24-4b8a-8e15-6a0d9b2c4f71",
    "0e7d2b6c-91a4-4f3e-b8d2-7c5a1e9f6b03",
)
#: The confirmation tokens the examples show.
TOKENS = ("3f87a0f4c2b19e8d7a6c5b4e3d2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f",)
#: The times the commands print, in the order they appear.
TIMES = (
    "2026-12-04T09:30:00.104233+00:00",
    "2026-12-04T09:31:12.527905+00:00",
    "2026-12-04T09:31:12.530871+00:00",
    "2026-12-04T09:32:40.918154+00:00",
    "2026-12-04T09:32:40.921377+00:00",
    "2026-12-04T09:33:05.310482+00:00",
)
#: Where the examples' server listens.
BASE_URL = "http://127.0.0.1:5000"
#: The time the examples are shown at (2026-12-04 09:30 UTC): signed timestamps are shown near it.
SHOWN_TIME = 1796376600


def load(path: str | Path) -> dict[str, Any]:
    """Read an example file and fill in the defaults."""
    example: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
    for step in example["steps"]:
        if "command" in step:
            step.setdefault("exit_code", 0)
            step.setdefault("output", "")
            continue
        step["request"].setdefault("method", "GET")
        default = "application/problem+json" if step["status"] >= 400 else "application/json"
        step.setdefault("content_type", "text/html" if "html" in step else default)
    return example


def body_of(request: dict[str, Any]) -> tuple[str | None, str | None]:
    """Return the body a request sends, exactly as curl sends it, and its content type."""
    if "json" in request:
        return json.dumps(request["json"]), "application/json"
    if "form" in request:
        return urlencode(request["form"]), "application/x-www-form-urlencoded"
    if "body" in request:
        return request["body"], request["content_type"]
    return None, None


def curl(request: dict[str, Any]) -> str:
    """Return the curl command line that sends ``request``."""
    options: list[list[str]] = []
    method = request["method"]
    body, content_type = body_of(request)
    if body is not None and "form" not in request:
        options.append(["-H", f"Content-Type: {content_type}"])
    for name, value in request.get("headers", {}).items():
        options.append(["-H", f"{name}: {value}"])
    if method != ("POST" if body is not None else "GET"):
        options.append(["-X", method])
    if body is not None:
        options.append(["-d", body])
    quoted = [" ".join(shlex.quote(arg) for arg in option) for option in options]
    command = " ".join(["$ curl -s", *quoted])
    url = shlex.quote(BASE_URL + request["path"])
    # Long commands go on several lines, as one would type them: the URL on a line of its own,
    # and each option too when there are many.
    if len(command) + len(url) < 80:
        return f"{command} {url}"
    if len(command) <= 120:
        return f"{command} \\\n    {url}"
    return " \\\n    ".join(["$ curl -s", *quoted, url])


def cli_line(app: str, step: dict[str, Any]) -> str:
    """Return the shell line that runs a command step, and what it prints."""
    line = "$ " + " ".join(shlex.quote(arg) for arg in ["flask", "--app", app, *step["command"]])
    return f"{line}\n{step['output']}".rstrip("\n")


def answer(step: dict[str, Any]) -> str:
    """Return the HTTP answer of a step as text."""
    status = HTTPStatus(step["status"])
    head = f"HTTP/1.1 {status.value} {status.phrase}\nContent-Type: {step['content_type']}\n"
    head += "".join(f"{name}: {value}\n" for name, value in step.get("headers", {}).items())
    if "html" in step:
        return f"{head}\n{step['html']}"
    if "response" not in step:
        return head
    return f"{head}\n{json.dumps(step['response'], indent=2)}"


def steps_of(spec: str) -> slice:
    """Read the ``:steps:`` option, ``2`` or ``2-4`` (1-based, inclusive), as a slice."""
    first, _, last = spec.partition("-")
    return slice(int(first) - 1, int(last or first))


def setup(app: Any) -> dict[str, Any]:
    """Register the directive with Sphinx."""
    from docutils import nodes
    from docutils.parsers.rst import directives
    from sphinx.util.docutils import SphinxDirective

    class HttpExample(SphinxDirective):
        """``.. http-example:: http/name.json`` (or ``.. cli-example:: cli/name.json``), with
        ``:steps: 2`` or ``:steps: 2-4`` to show some steps."""

        required_arguments = 1
        option_spec = {"steps": directives.unchanged_required}

        def run(self) -> list[nodes.Node]:
            rel, path = self.env.relfn2path("examples/" + self.arguments[0], self.env.docname)
            self.env.note_dependency(rel)
            example = load(path)
            steps = example["steps"]
            if "steps" in self.options:
                steps = steps[steps_of(self.options["steps"])]
            result: list[nodes.Node] = []
            for step in steps:
                if "command" in step:
                    blocks = [(cli_line(example["app"], step), "console")]
                else:
                    blocks = [(curl(step["request"]), "console"), (answer(step), "http")]
                for text, language in blocks:
                    block = nodes.literal_block(text, text, language=language)
                    self.set_source_info(block)
                    result.append(block)
            return result

    app.add_directive("http-example", HttpExample)
    app.add_directive("cli-example", HttpExample)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
