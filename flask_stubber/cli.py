"""The ``flask stubber`` command group.

The commands call the same operations as the Python API. Library code raises
:class:`~flask_stubber.StubberError`; this module alone turns it into a message
and a non-zero exit code. Every command prints an aligned table for people and
takes ``--json`` for scripts.

To add a command, decorate a function with ``@stubber_cli.command()``, add
``@json_option`` and end with ``emit(value, json_output, human)``.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from flask import current_app, url_for
from flask.cli import AppGroup

from . import graph
from .errors import StubberError, StubNotFound, TemplateError
from .extension import _state
from .models import normalize_stubref
from .templates import CompiledTemplate, load_source

F = TypeVar("F", bound=Callable[..., Any])

#: Marks webhook-enabled actions in tables.
WEBHOOK_MARK = "*"


class StubberGroup(AppGroup):
    """A command group that reports :class:`~flask_stubber.StubberError` as a click error (exit code 1)."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; a :class:`~flask_stubber.StubberError` becomes a :class:`click.ClickException`.

        The message is the error's sentence, then its extra members (such as the
        validation ``errors``) one per line.
        """
        try:
            return super().invoke(ctx)
        except StubberError as exc:
            lines = [exc.message, *(f"{key}: {json.dumps(value, default=str)}" for key, value in exc.extra.items())]
            raise click.ClickException("\n".join(lines)) from exc


stubber_cli = StubberGroup("stubber", help="Inspect templates and stubs, run actions, draw diagrams.")

json_option: Callable[[F], F] = click.option(
    "--json", "json_output", is_flag=True, help="Print JSON for scripts instead of a table."
)


def emit(value: Any, json_output: bool, human: Callable[[], None]) -> None:
    """Print ``value`` as JSON with ``--json``, else call ``human`` to print it for people."""
    if json_output:
        click.echo(json.dumps(value, indent=2, default=str))
    else:
        human()


def table(rows: Iterable[Sequence[Any]], headers: Sequence[str] = ()) -> str:
    """Return rows as aligned columns, under upper-case ``headers`` when given; ``None`` reads ``-``."""
    cells = [[str(h).upper() for h in headers]] if headers else []
    cells += [["-" if v is None else str(v) for v in row] for row in rows]
    if not cells:
        return ""
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells)


def parse_data(ctx: click.Context, param: click.Parameter, value: str | None) -> dict[str, Any] | None:
    """Read a ``--data`` option: a JSON object, or ``@path`` to a file holding one."""
    if value is None:
        return None
    text = value
    if value.startswith("@"):
        try:
            text = Path(value[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise click.BadParameter(f"cannot read {value[1:]!r} ({exc.strerror}).") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(f"not valid JSON ({exc}).") from None
    if not isinstance(data, dict):
        raise click.BadParameter('must be a JSON object, such as {"amount": 10}.')
    return data


data_option: Callable[[F], F] = click.option(
    "--data", callback=parse_data, metavar="JSON", help="A JSON object, or @file.json."
)


def find_stub(stubref: str) -> Any:
    """Return the stub ``stubref``; raises :class:`~flask_stubber.errors.StubNotFound`."""
    stub = _state().ext.get_stub(stubref)
    if stub is None:
        raise StubNotFound(f"No stub has the stubref {stubref!r}.")
    return stub


def find_template(name_or_path: str) -> CompiledTemplate:
    """Return a registered template, or check and compile the template file at that path."""
    state = _state()
    template = state.ext.get_template(name_or_path)
    if template is not None:
        return template
    if Path(name_or_path).is_file():
        return state.ext._compile(load_source(name_or_path))
    known = ", ".join(sorted(state.ext.templates())) or "none"
    raise TemplateError(f"No template named {name_or_path!r} is registered (registered: {known}).")


def _actions(template: CompiledTemplate, names: Iterable[str]) -> str:
    return ", ".join(f"{n}{WEBHOOK_MARK}" if template.actions[n].webhooks.enable else n for n in names)


def template_info(template: CompiledTemplate) -> dict[str, Any]:
    """Describe a template for ``--json``."""
    return {
        "name": template.name,
        "start_state": template.start_state,
        "create_webhook": bool(template.create_options.get("enable")),
        "states": {state: list(actions) for state, actions in template.states.items()},
        "actions": {
            name: {
                "to_state": list(action.targets),
                "webhook": action.webhooks.enable,
                "methods": list(action.webhooks.methods),
                "auth": action.webhooks.auth,
            }
            for name, action in template.actions.items()
        },
    }


_STUB_COLUMNS = ("stubref", "template", "state", "subject", "data", "created_at", "updated_at")
_POST_COLUMNS = ("id", "action_name", "source", "from_state", "to_state", "data", "delivery_id", "created_at")


def _columns(row: Any, names: Iterable[str]) -> dict[str, Any]:
    values = {name: getattr(row, name) for name in names}
    return {name: v.isoformat() if isinstance(v, datetime) else v for name, v in values.items()}


def stub_info(stub: Any) -> dict[str, Any]:
    """Describe a stub and its history for ``--json``."""
    return {
        **_columns(stub, _STUB_COLUMNS),
        "available_actions": _state().ext.available_actions(stub),
        "posts": [post_info(post) for post in stub.posts],
    }


def post_info(post: Any) -> dict[str, Any]:
    """Describe one history entry for ``--json``."""
    return _columns(post, _POST_COLUMNS)


@stubber_cli.command("templates")
@json_option
def templates_command(json_output: bool) -> None:
    """List the templates with their states and actions (* = webhook-enabled)."""
    templates = sorted(_state().ext.templates().values(), key=lambda t: t.name)

    def human() -> None:
        rows = []
        for template in templates:
            name = f"{template.name} (create)" if template.create_options.get("enable") else template.name
            for state, actions in template.states.items():
                start = " (start)" if state == template.start_state else ""
                rows.append((name, state + start, _actions(template, actions)))
                name = ""
        click.echo(table(rows, ("template", "state", "actions")))
        click.echo(f"\n{WEBHOOK_MARK} webhook-enabled")

    emit([template_info(t) for t in templates], json_output, human)


@stubber_cli.command("show")
@click.argument("stubref")
@json_option
def show_command(stubref: str, json_output: bool) -> None:
    """Show a stub: state, data and history."""
    info = stub_info(find_stub(stubref))

    def human() -> None:
        template = _state().ext.get_template(info["template"])
        available = _actions(template, info["available_actions"]) if template else ""
        fields = [(key, info[key]) for key in ("stubref", "template", "state", "subject", "created_at", "updated_at")]
        click.echo(table([*fields, ("available", available or None)]))
        click.echo("\ndata\n" + json.dumps(info["data"], indent=2, default=str))
        rows = [(p["id"], p["created_at"], p["action_name"], p["source"], p["from_state"], p["to_state"])
                for p in info["posts"]]
        click.echo("\nhistory\n" + table(rows, ("id", "when", "action", "source", "from", "to")))

    emit(info, json_output, human)


@stubber_cli.command("create")
@click.argument("template")
@data_option
@click.option("--subject", help="The stub's subject.")
@json_option
def create_command(template: str, data: dict[str, Any] | None, subject: str | None, json_output: bool) -> None:
    """Create a stub of TEMPLATE in its start state."""
    stub = _state().engine.create_stub(template, data, subject=subject, source="cli")
    emit(stub_info(stub), json_output, lambda: click.echo(f"Created {stub.stubref} ({stub.template}: {stub.state})."))


@stubber_cli.command("run")
@click.argument("stubref")
@click.argument("action")
@data_option
@json_option
def run_command(stubref: str, action: str, data: dict[str, Any] | None, json_output: bool) -> None:
    """Run ACTION on a stub, as a webhook would but without webhooks.enable (source "cli")."""
    post = _state().ext.run_action(stubref, action, data, source="cli")
    info = {"success": True, "stubref": normalize_stubref(stubref), **post_info(post)}

    def human() -> None:
        click.echo(f"Ran {action} on {info['stubref']}: {post.from_state} -> {post.to_state} (post {post.id}).")

    emit(info, json_output, human)


@stubber_cli.command("urls")
@click.argument("stubref")
@click.option("--base-url", help="Scheme and host, such as https://hooks.example.com; default: SERVER_NAME.")
@json_option
def urls_command(stubref: str, base_url: str | None, json_output: bool) -> None:
    """Print the webhook URLs of the webhook-enabled actions a stub has now."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if base_url is None and not app.config.get("SERVER_NAME"):
        raise click.UsageError("Set SERVER_NAME in the app's config or pass --base-url to build absolute URLs.")
    stub = find_stub(stubref)
    template = find_template(stub.template)
    with app.test_request_context(base_url=base_url) if base_url else app.app_context():
        rows = [
            {"action": name, "methods": list(template.actions[name].webhooks.methods),
             "url": url_for("stubber.implicit", stubref=stub.stubref, action_name=name, _external=True)}
            for name in template.webhook_actions(stub.state)
        ]

    def human() -> None:
        click.echo(table([(r["action"], " ".join(r["methods"]), r["url"]) for r in rows], ("action", "methods", "url")))

    emit(rows, json_output, human)


@stubber_cli.command("check")
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@json_option
def check_command(files: tuple[Path, ...], json_output: bool) -> None:
    """Check template FILES, or every registered template; exit 1 when one does not hold together."""
    state = _state()
    sources: list[tuple[str, Path | Mapping[str, Any]]] = [(str(path), path) for path in files] or [
        (name, template.source) for name, template in sorted(state.ext.templates().items())
    ]
    results: list[dict[str, Any]] = []
    for label, source in sources:
        try:
            template = state.ext._compile(load_source(source))
            state.check_template(template)
        except TemplateError as exc:
            results.append({"source": label, "ok": False, "error": exc.message})
        else:
            results.append({"source": label, "ok": True, "template": template.name,
                            "states": len(template.states), "actions": len(template.actions)})

    def human() -> None:
        for r in results:
            click.echo(f"ok     {r['source']}: {r['states']} states, {r['actions']} actions" if r["ok"]
                       else f"error  {r['source']}", err=not r["ok"])

    emit(results, json_output, human)
    errors = [r["error"] for r in results if not r["ok"]]
    if errors:
        raise click.ClickException("\n".join(errors))
    if not results:
        raise click.ClickException("No templates to check: register templates or name template files.")


@stubber_cli.command("graph")
@click.argument("template")
@click.option("--format", "format_", type=click.Choice(graph.FORMATS), default="mermaid", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write to a file.")
def graph_command(template: str, format_: str, output: Path | None) -> None:
    """Draw TEMPLATE (a registered name or a template file) as a state diagram."""
    drawing = graph.render(find_template(template), format_)
    if output is not None:
        output.write_bytes(drawing)
    else:
        click.echo(drawing if format_ in ("svg", "png") else drawing.decode(), nl=False)
