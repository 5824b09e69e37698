"""The ``flask stubber`` command group.

The commands call the same operations as the Python API. Library code raises
:class:`~flask_stubber.StubberError`; this module alone turns it into a message
and a non-zero exit code. Every command prints an aligned table for people and
takes ``--json`` for scripts.

To add a command, decorate a function with ``@stubber_cli.command()``, add
``@json_option`` and end with ``emit(value, json_output, human)``.

``flask stubber webhook ...`` manages explicit webhooks and ``flask stubber deliveries ...``
the recorded deliveries. ``deliveries show`` prints the response a retry of a delivery is
answered with; ``deliveries replay`` runs the delivery's action again with the payload it
recorded, as ``flask stubber run`` would (source ``cli``): the state gate applies, so an
action that moved the stub on is refused (exit 1, nothing written), while one that keeps the
state, such as a note, runs again.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from flask import current_app, url_for
from flask.cli import AppGroup
from sqlalchemy import select

from . import explicit, graph
from .deliveries import delivery_key
from .errors import StubberError, StubNotFound, TemplateError
from .extension import _state
from .models import normalize_stubref, utcnow
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


base_url_option: Callable[[F], F] = click.option(
    "--base-url", help="Scheme and host, such as https://hooks.example.com; default: SERVER_NAME."
)


def external_urls(base_url: str | None) -> Callable[..., str]:
    """Return ``build(endpoint, **values)`` making absolute URLs from ``base_url``, else ``SERVER_NAME``.

    Checked at once, so that a command fails before it writes anything.
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if base_url is None and not app.config.get("SERVER_NAME"):
        raise click.UsageError("Set SERVER_NAME in the app's config or pass --base-url to build absolute URLs.")

    def build(endpoint: str, **values: Any) -> str:
        with app.test_request_context(base_url=base_url) if base_url else app.app_context():
            return url_for(endpoint, _external=True, **values)

    return build


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


def _aware(value: datetime) -> datetime:
    """SQLite and MariaDB hand back naive datetimes; they are stored in UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _columns(row: Any, names: Iterable[str]) -> dict[str, Any]:
    values = {name: getattr(row, name) for name in names}
    return {name: _aware(v).isoformat() if isinstance(v, datetime) else v for name, v in values.items()}


def _when(value: str | None) -> str | None:
    """An ISO time from ``--json`` output, for a table: ``2026-12-04 10:00:00``, in UTC."""
    return None if value is None else value[:19].replace("T", " ")


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
@base_url_option
@json_option
def urls_command(stubref: str, base_url: str | None, json_output: bool) -> None:
    """Print the webhook URLs a stub has now: its webhook-enabled actions and active explicit webhooks."""
    build = external_urls(base_url)
    stub = find_stub(stubref)
    template = find_template(stub.template)
    rows: list[dict[str, Any]] = [
        {"kind": "implicit", "action": name, "methods": list(template.actions[name].webhooks.methods),
         "url": build("stubber.implicit", stubref=stub.stubref, action_name=name)}
        for name in template.webhook_actions(stub.state)
    ]
    rows += [
        {"kind": "explicit", "action": info["action"], "methods": _methods(template, info["action"]),
         "url": build("stubber.explicit", uuid=info["uuid"]), "uuid": info["uuid"],
         "single_use": info["single_use"], "expires_at": info["expires_at"]}
        for info in map(webhook_info, stub.webhooks) if info["status"] == "active"
    ]

    def human() -> None:
        implicit = [(r["action"], " ".join(r["methods"]), r["url"]) for r in rows if r["kind"] == "implicit"]
        click.echo(table(implicit, ("action", "methods", "url")))
        hooks = [(r["action"], " ".join(r["methods"]), "yes" if r["single_use"] else "no", _when(r["expires_at"]),
                  r["url"]) for r in rows if r["kind"] == "explicit"]
        if hooks:
            click.echo("\nexplicit webhooks\n" + table(hooks, ("action", "methods", "single use", "expires", "url")))

    emit(rows, json_output, human)


def _methods(template: CompiledTemplate, action: str) -> list[str]:
    compiled = template.actions.get(action)
    return list(compiled.webhooks.methods) if compiled is not None else []


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


# -- explicit webhooks ---------------------------------------------------------------------


_WEBHOOK_COLUMNS = ("uuid", "action_name", "single_use", "expires_at", "used_at", "revoked_at", "created_at")


def webhook_info(hook: Any) -> dict[str, Any]:
    """Describe an explicit webhook for ``--json``; ``status`` is active, used, expired or revoked."""
    info = _columns(hook, _WEBHOOK_COLUMNS)
    return {"uuid": info.pop("uuid"), "action": info.pop("action_name"), "status": hook.status(), **info}


def parse_uuid(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Read a ``--uuid`` option: a uuid in any case, returned canonical."""
    if value is None:
        return None
    key = explicit.normalize_uuid(value)
    if key is None:
        raise click.BadParameter("not a uuid; omit --uuid to get a fresh one.")
    return key


@stubber_cli.group("webhook")
def webhook_group() -> None:
    """Create, list and revoke explicit webhooks (/webhooks/ex/<uuid>)."""


@webhook_group.command("create")
@click.argument("stubref")
@click.argument("action")
@click.option("--uuid", callback=parse_uuid, help="Your own uuid; again for the same stub and action updates it.")
@click.option("--expires-in", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="Seconds until calls answer 410 webhook_gone; default: never.")
@click.option("--single-use", is_flag=True, help="The webhook runs its action once.")
@base_url_option
@json_option
def webhook_create_command(stubref: str, action: str, uuid: str | None, expires_in: float | None, single_use: bool,
                           base_url: str | None, json_output: bool) -> None:
    """Bind an explicit webhook to ACTION on a stub; print its uuid and URL."""
    build = external_urls(base_url)
    hook = _state().ext.create_webhook(stubref, action, uuid=uuid, expires_in=expires_in, single_use=single_use)
    info = {**webhook_info(hook), "stubref": hook.stub.stubref}
    info["url"] = build("stubber.explicit", uuid=info["uuid"])

    def human() -> None:
        expires = _when(info["expires_at"]) or "never"
        click.echo(table([("uuid", info["uuid"]), ("url", info["url"]), ("action", action),
                          ("single use", "yes" if single_use else "no"), ("expires", expires)]))

    emit(info, json_output, human)


@webhook_group.command("revoke")
@click.argument("uuid")
@json_option
def webhook_revoke_command(uuid: str, json_output: bool) -> None:
    """Revoke the explicit webhook UUID for good: calls answer 404 webhook_not_found."""
    _state().ext.revoke_webhook(uuid)
    key = explicit.normalize_uuid(uuid)
    emit({"uuid": key, "status": "revoked"}, json_output, lambda: click.echo(f"Revoked {key}."))


@webhook_group.command("list")
@click.argument("stubref")
@json_option
def webhook_list_command(stubref: str, json_output: bool) -> None:
    """List a stub's explicit webhooks, whatever their status."""
    hooks = [webhook_info(hook) for hook in find_stub(stubref).webhooks]

    def human() -> None:
        rows = [(h["uuid"], h["action"], h["status"], "yes" if h["single_use"] else "no",
                 _when(h["expires_at"]) or "never") for h in hooks]
        click.echo(table(rows, ("uuid", "action", "status", "single use", "expires")))

    emit(hooks, json_output, human)


# -- deliveries ----------------------------------------------------------------------------


_DELIVERY_COLUMNS = ("id", "key", "scope", "stubref", "action_name", "post_id", "created_at")


def delivery_info(delivery: Any) -> dict[str, Any]:
    """Describe a recorded delivery for ``--json``.

    ``status`` is ``active`` while a repeat is answered with the stored response, ``expired``
    once ``STUBBER_IDEMPOTENCY_TTL`` has passed (a repeat runs afresh; pruning deletes it).
    """
    store = _state().deliveries
    created = _aware(delivery.created_at)
    return {
        **_columns(delivery, _DELIVERY_COLUMNS),
        "status": "active" if created >= store.cutoff() else "expired",
        "age_seconds": max(0, int((utcnow() - created).total_seconds())),
        "response_status": delivery.status,
        "response_type": delivery.response_type,
        "response_location": delivery.response_location,
        "response_body": delivery.response_body,
    }


def find_delivery(key_or_id: str) -> Any:
    """Return the delivery with this id, else the one with this delivery id (key).

    A key that several targets (stubs' actions, create routes) received is ambiguous: the
    message lists their ids. Keys made only of digits are reached by their id.
    """
    state = _state()
    model, session = state.deliveries.model, state.engine.session
    if key_or_id.isascii() and key_or_id.isdigit() and len(key_or_id) < 16:
        found = session.get(model, int(key_or_id))
        if found is not None:
            return found
    rows = session.scalars(select(model).where(model.key == delivery_key(key_or_id)).order_by(model.id)).all()
    if not rows:
        raise click.ClickException(
            f"No recorded delivery has the key or id {key_or_id!r}; 'flask stubber deliveries list' shows them."
        )
    if len(rows) > 1:
        ids = ", ".join(f"{row.id} ({row.scope})" for row in rows)
        raise click.ClickException(f"The key {key_or_id!r} was delivered to several targets; give one id of: {ids}.")
    return rows[0]


def _age(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@stubber_cli.group("deliveries")
def deliveries_group() -> None:
    """List, show, replay and prune the recorded deliveries (requests that carried a delivery id)."""


@deliveries_group.command("list")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="How many, newest first.")
@click.option("--stub", "stubref", metavar="STUBREF", help="Only the deliveries that acted on (or created) this stub.")
@json_option
def deliveries_list_command(limit: int, stubref: str | None, json_output: bool) -> None:
    """List the recent deliveries, newest first."""
    state = _state()
    model = state.deliveries.model
    stmt = select(model).order_by(model.created_at.desc(), model.id.desc()).limit(limit)
    if stubref is not None:
        stmt = stmt.where(model.stubref == find_stub(stubref).stubref)
    rows = [delivery_info(d) for d in state.engine.session.scalars(stmt)]

    def human() -> None:
        click.echo(table([(d["id"], d["key"], d["scope"], d["status"], d["response_status"], d["post_id"],
                           _age(d["age_seconds"])) for d in rows],
                         ("id", "key", "scope", "status", "response", "post", "age")))

    emit([{k: v for k, v in d.items() if k != "response_body"} for d in rows], json_output, human)


@deliveries_group.command("show")
@click.argument("key_or_id")
@json_option
def deliveries_show_command(key_or_id: str, json_output: bool) -> None:
    """Show a delivery and the response a retry of it is answered with (while it is active)."""
    info = delivery_info(find_delivery(key_or_id))

    def human() -> None:
        fields = [(k, info[k]) for k in ("id", "key", "scope", "status")]
        response = f"{info['response_status']} {info['response_type']}"
        click.echo(table([*fields, ("post", info["post_id"]), ("received", _when(info["created_at"])),
                          ("response", response), ("location", info["response_location"])]))
        click.echo("\n" + info["response_body"])

    emit(info, json_output, human)


@deliveries_group.command("replay")
@click.argument("key_or_id")
@json_option
def deliveries_replay_command(key_or_id: str, json_output: bool) -> None:
    """Run a delivery's action again with the payload it recorded (source "cli").

    The action must be available in the stub's current state, as for 'flask stubber run':
    an action that moved the stub on is refused with exit code 1 and nothing is written.
    Deliveries that created a stub are not replayed.
    """
    state = _state()
    delivery = find_delivery(key_or_id)
    if delivery.scope.startswith("create/"):
        raise click.ClickException(
            f"Delivery {delivery.id} created the stub {delivery.stubref}; replaying it would create a second stub. "
            "Use 'flask stubber create' if that is what you mean."
        )
    post = state.engine.session.get(state.engine.post_model, delivery.post_id) if delivery.post_id else None
    if post is None:
        raise click.ClickException(f"The history entry of delivery {delivery.id} is gone; there is nothing to replay.")
    payload = dict(post.data)
    if post.source == explicit.SOURCE and set(payload) == {"lid", "payload"}:
        payload = payload["payload"]  # An explicit webhook's action received {"lid", "payload"}.
    new = state.ext.run_action(delivery.stubref, delivery.action_name, payload, source="cli")
    info = {"success": True, "delivery_id": delivery.id, "stubref": delivery.stubref, **post_info(new)}

    def human() -> None:
        click.echo(f"Replayed delivery {delivery.id} ({delivery.action_name} on {delivery.stubref}): "
                   f"{new.from_state} -> {new.to_state} (post {new.id}).")

    emit(info, json_output, human)


@deliveries_group.command("prune")
@click.option("--older-than", type=click.IntRange(min=0), metavar="SECONDS",
              help="Delete deliveries older than this; default: STUBBER_IDEMPOTENCY_TTL.")
@json_option
def deliveries_prune_command(older_than: int | None, json_output: bool) -> None:
    """Delete old deliveries (after which a repeat of one runs afresh)."""
    state = _state()
    seconds = state.config.idempotency_ttl if older_than is None else older_than
    deleted = state.ext.prune_deliveries(seconds)
    emit({"deleted": deleted, "older_than": seconds}, json_output,
         lambda: click.echo(f"Deleted {deleted} deliveries older than {seconds} seconds."))
