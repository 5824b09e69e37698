"""The ``http-example`` directive: show a recorded HTTP exchange as curl and its answer.

Each example is a JSON file under ``docs/examples/http/``; ``tests/test_docs_examples.py``
replays every one of them against the app it names and checks each status,
content type and body, so what the documentation shows is what the code does.

File format::

    {
      "app": "quickstart",                        # a module of docs/examples with create_app(config)
      "stub": {"template": "order", "data": {}},  # optional: created first, shown as STUBREF
      "setup": [["add_note", {"x": 1}]],          # optional: actions run on it from Python first
      "config": {},                               # optional: app configuration
      "database": "unreachable",                  # optional: point the app at no database at all
      "failing_handler": ["order", "ship"],       # optional: a handler that raises during the example
      "steps": [
        {"request": {"method": "POST", "path": "/webhooks/im/<STUBREF>/ship",
                     "json": {...} | "form": {...} | "body": "...", "content_type": "...",
                     "headers": {...}},
         "status": 200, "content_type": "application/json", "headers": {"Retry-After": "5"},
         "response": {...}}
      ]
    }

``headers`` lists the answer's headers to show and check. ``content_type`` defaults to
``application/problem+json`` for statuses from 400 up and ``application/json`` below.
Stubrefs created while replaying are shown as :data:`STUBREF`.
"""

from __future__ import annotations

import json
import shlex
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

#: The stubref the examples show for the stub they work on.
STUBREF = "2026-12-04-7QK2-M9XD"
#: Where the examples' server listens.
BASE_URL = "http://127.0.0.1:5000"


def load(path: str | Path) -> dict[str, Any]:
    """Read an example file and fill in the defaults."""
    example: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
    for step in example["steps"]:
        step["request"].setdefault("method", "GET")
        step.setdefault("content_type", "application/problem+json" if step["status"] >= 400 else "application/json")
    return example


def curl(request: dict[str, Any]) -> str:
    """Return the curl command line that sends ``request``."""
    args = ["curl", "-s"]
    method = request["method"]
    body = None
    if "json" in request:
        args += ["-H", "Content-Type: application/json"]
        body = json.dumps(request["json"])
    elif "form" in request:
        body = urlencode(request["form"])
    elif "body" in request:
        args += ["-H", f"Content-Type: {request['content_type']}"]
        body = request["body"]
    for name, value in request.get("headers", {}).items():
        args += ["-H", f"{name}: {value}"]
    if method != ("POST" if body is not None else "GET"):
        args += ["-X", method]
    if body is not None:
        args += ["-d", body]
    command = "$ " + " ".join(shlex.quote(arg) for arg in args)
    url = shlex.quote(BASE_URL + request["path"])
    # Long commands put the URL on a line of its own, as one would type them.
    return f"{command} {url}" if len(command) + len(url) < 80 else f"{command} \\\n    {url}"


def answer(step: dict[str, Any]) -> str:
    """Return the HTTP answer of a step as text."""
    status = HTTPStatus(step["status"])
    head = f"HTTP/1.1 {status.value} {status.phrase}\nContent-Type: {step['content_type']}\n"
    head += "".join(f"{name}: {value}\n" for name, value in step.get("headers", {}).items())
    if "response" not in step:
        return head
    return f"{head}\n{json.dumps(step['response'], indent=2)}"


def setup(app: Any) -> dict[str, Any]:
    """Register the directive with Sphinx."""
    from docutils import nodes
    from docutils.parsers.rst import directives
    from sphinx.util.docutils import SphinxDirective

    class HttpExample(SphinxDirective):
        """``.. http-example:: http/name.json`` with an optional ``:step:`` (1-based) to show one step."""

        required_arguments = 1
        option_spec = {"step": directives.positive_int}

        def run(self) -> list[nodes.Node]:
            rel, path = self.env.relfn2path("examples/" + self.arguments[0], self.env.docname)
            self.env.note_dependency(rel)
            steps = load(path)["steps"]
            if "step" in self.options:
                steps = [steps[self.options["step"] - 1]]
            result: list[nodes.Node] = []
            for step in steps:
                for text, language in ((curl(step["request"]), "console"), (answer(step), "http")):
                    block = nodes.literal_block(text, text, language=language)
                    self.set_source_info(block)
                    result.append(block)
            return result

    app.add_directive("http-example", HttpExample)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
