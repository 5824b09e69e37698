"""Templates: loading Stubber JSON, building in Python, checking and compiling.

Every template, whatever its source, goes through one path: it becomes a plain
Stubber-format ``dict`` and :func:`compile_template` checks it and turns it into
an immutable :class:`CompiledTemplate` with a marshmallow schema per action.
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from marshmallow import Schema

from .errors import TemplateError
from .fields import build_schema

HTTP_METHODS = ("GET", "POST")
#: The texts of a confirmation page and their defaults (``action_meta.webhooks.confirm``).
CONFIRM_TEXTS = {
    "title": "Please confirm",
    "message": "Press the button to confirm.",
    "button": "Confirm",
    "done": "Thank you, this is confirmed.",
}


@dataclass(frozen=True)
class WebhookOptions:
    """The ``action_meta.webhooks`` settings of one action."""

    #: Whether the implicit webhook may run the action.
    enable: bool = False
    #: The HTTP methods a webhook may use.
    methods: tuple[str, ...] = HTTP_METHODS
    #: Merge the payload into the root of ``stub.data`` instead of ``stub.data.payload``.
    post_data_on_root: bool = False
    #: Answer with the stub's state and data (``synchronous.enable``).
    synchronous: bool = False
    #: The custom response body template (``synchronous.response``).
    response: Any = None
    #: The name of the sender verifier.
    auth: str | None = None
    #: Where a browser is sent (``303``) after success; ``~~`` paths are substituted.
    redirect: str | None = None
    #: Texts of the confirmation page explicit webhook GETs show; ``None`` when off.
    confirm: Mapping[str, str] | None = None
    #: The ``action_meta.webhooks`` object as written in the template.
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskSpec:
    """One task run when an action executes."""

    name: str
    tasktype: str
    params: Mapping[str, Any]


@dataclass(frozen=True)
class CompiledAction:
    """An action, checked, with its payload schema built."""

    #: The action's name.
    name: str
    #: The states it may move to; empty when it keeps the state.
    targets: tuple[str, ...]
    #: The payload schema, built once; ``None`` when the action has no fields and no schema.
    schema: Schema | None
    #: Its ``action_meta.webhooks`` settings.
    webhooks: WebhookOptions
    #: Its tasks, in the order they run.
    tasks: tuple[TaskSpec, ...]

    def load(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Validate ``payload``; raises :class:`marshmallow.ValidationError`."""
        if self.schema is None:
            return dict(payload)
        return dict(self.schema.load(payload))


@dataclass(frozen=True)
class CompiledTemplate:
    """A template that holds together: states, actions and the start state."""

    #: The template's name.
    name: str
    #: The state new stubs start in.
    start_state: str
    #: The actions available in each state, by state.
    states: Mapping[str, tuple[str, ...]]
    #: The compiled actions, by name.
    actions: Mapping[str, CompiledAction]
    #: The template's ``details`` object.
    details: Mapping[str, Any]
    #: The template as it was given, unknown keys included.
    source: Mapping[str, Any]
    #: ``details.webhooks.create`` compiled like an action named ``create``; ``None`` when absent.
    create: CompiledAction | None = None

    @property
    def create_options(self) -> Mapping[str, Any]:
        """The ``details.webhooks.create`` settings (empty when absent)."""
        create = self.details.get("webhooks", {}).get("create", {})
        return create if isinstance(create, Mapping) else {}

    def webhook_actions(self, state: str) -> list[str]:
        """Return the webhook-enabled actions available in ``state``."""
        return [a for a in self.states.get(state, ()) if self.actions[a].webhooks.enable]


class Template:
    """Build a template in Python; the result is the same as the Stubber JSON.

    ::

        order = Template("order", start_state="awaiting_payment")
        order.state("awaiting_payment", actions=["payment_received", "cancel"])
        order.state("paid").state("cancelled")
        order.action("payment_received", to_state="paid", webhook=True, auth="payments",
                     fields={"amount": {"fieldtype": "number"}})
        order.action("cancel", to_state="cancelled")

    :param name: The template's name, used in ``/webhooks/create/<name>`` and stored on stubs.
    :param start_state: The state new stubs start in (``details.busy_start_state``).
    :param create_webhook: Allow ``POST /webhooks/create/<name>``: ``True``, or the
        ``details.webhooks.create`` options (``fields``, ``schema``, ``post_data_on_root``,
        ``synchronous``, ``redirect``, ``subject``), which enable it unless ``enable`` is false.
    """

    def __init__(
        self, name: str, *, start_state: str, create_webhook: bool | Mapping[str, Any] = False
    ) -> None:
        self.name = name
        details: dict[str, Any] = {"busy_start_state": start_state}
        if isinstance(create_webhook, Mapping):
            details["webhooks"] = {"create": {"enable": True, **create_webhook}}
        elif create_webhook:
            details["webhooks"] = {"create": {"enable": True}}
        self._source: dict[str, Any] = {"name": name, "details": details, "states": {}, "actions": {}}

    def state(self, name: str, *, actions: Iterable[str] = ()) -> Template:
        """Add a state with the actions available in it; returns the template."""
        self._source["states"][name] = {"actions": list(actions)}
        return self

    def action(
        self,
        name: str,
        *,
        to_state: str | Iterable[str] | None = None,
        fields: Mapping[str, Any] | None = None,
        schema: str | None = None,
        webhook: bool = False,
        methods: Iterable[str] = HTTP_METHODS,
        post_data_on_root: bool = False,
        synchronous: bool = False,
        response: Any = None,
        auth: str | None = None,
        redirect: str | None = None,
        confirm: bool | Mapping[str, str] = False,
        tasks: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> Template:
        """Add an action; returns the template.

        :param to_state: The target state, several targets (a handler picks one), or
            ``None`` to keep the state.
        :param fields: Stubber field specs for the payload.
        :param schema: The name of a schema registered with ``register_schema``.
        :param webhook: Allow implicit webhooks to run this action.
        :param redirect: Answer browser requests with a ``303`` to this URL (``~~`` substituted).
        :param confirm: Explicit webhook GETs show a confirmation page; ``True`` or its texts.
        :param tasks: Tasks keyed by name, each ``{"tasktype": ..., "params": {...}}``.
        """
        targets = [to_state] if isinstance(to_state, str) else list(to_state or ())
        webhooks: dict[str, Any] = {
            "enable": webhook,
            "methods": list(methods),
            "post_data_on_root": post_data_on_root,
        }
        if synchronous or response is not None:
            webhooks["synchronous"] = {"enable": synchronous, "response": response}
        if auth is not None:
            webhooks["auth"] = auth
        if redirect is not None:
            webhooks["redirect"] = redirect
        if confirm:
            webhooks["confirm"] = confirm if isinstance(confirm, Mapping) else True
        meta: dict[str, Any] = {"webhooks": webhooks}
        if schema is not None:
            meta["schema"] = schema
        spec: dict[str, Any] = {"to_state": {t: {} for t in targets}, "action_meta": meta}
        if fields:
            spec["fields"] = dict(fields)
        if tasks:
            spec["tasks"] = {k: dict(v) for k, v in tasks.items()}
        self._source["actions"][name] = spec
        return self

    def to_dict(self) -> dict[str, Any]:
        """Return the template as Stubber-format JSON data."""
        return json.loads(json.dumps(self._source))  # type: ignore[no-any-return]


def load_source(source: str | os.PathLike[str] | Mapping[str, Any] | Template) -> dict[str, Any]:
    """Turn a path, a mapping or a :class:`Template` into a Stubber-format dict."""
    if isinstance(source, Template):
        return source.to_dict()
    if isinstance(source, Mapping):
        return dict(source)
    path = Path(source)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TemplateError(f"The file {str(path)!r} cannot be read ({exc.strerror}).") from exc
    except json.JSONDecodeError as exc:
        raise TemplateError(
            f"The file {str(path)!r} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})."
        ) from exc
    if not isinstance(data, dict):
        raise TemplateError(f"The file {str(path)!r} must hold a JSON object.")
    data.setdefault("name", path.stem)
    return data


class _Checker:
    """Reads one template source and raises :class:`TemplateError` at the first flaw."""

    def __init__(self, source: Mapping[str, Any]) -> None:
        self.source = source
        name = source.get("name")
        if not isinstance(name, str) or not name.strip() or "/" in name:
            raise TemplateError(
                "The template has no usable 'name'.",
                path="name",
                fix="Add a top-level \"name\" string without slashes, such as \"order\".",
            )
        self.name = name

    def fail(self, path: str, message: str, fix: str) -> TemplateError:
        return TemplateError(message, template=self.name, path=path, fix=fix)

    def mapping(self, value: Any, path: str, *, default: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
        if value is None and default is not None:
            return default
        if not isinstance(value, Mapping):
            raise self.fail(path, f"expected a JSON object, found {type(value).__name__}.", "Make it an object.")
        return value

    def states(self) -> dict[str, tuple[str, ...]]:
        states = self.mapping(self.source.get("states"), "states")
        if not states:
            raise self.fail("states", "the template has no states.", "Add at least one state.")
        result: dict[str, tuple[str, ...]] = {}
        for name, spec in states.items():
            spec = self.mapping(spec, f"states.{name}", default={})
            actions = spec.get("actions", [])
            if not isinstance(actions, list) or not all(isinstance(a, str) for a in actions):
                raise self.fail(
                    f"states.{name}.actions", "expected a list of action names.", 'Write e.g. ["approve", "reject"].'
                )
            result[name] = tuple(actions)
        return result

    def targets(self, value: Any, path: str, states: Collection[str]) -> tuple[str, ...]:
        if value is None:
            return ()
        targets = (value,) if isinstance(value, str) else tuple(self.mapping(value, path))
        for target in targets:
            if target not in states:
                raise self.fail(
                    path,
                    f"the target state {target!r} is not defined.",
                    f"Add it under \"states\" or use one of: {', '.join(sorted(states))}.",
                )
        return targets

    def webhooks(self, value: Any, path: str) -> WebhookOptions:
        """Read the webhook options object at ``path``."""
        hooks = self.mapping(value, path, default={})
        methods = hooks.get("methods", list(HTTP_METHODS))
        if not isinstance(methods, list) or not methods:
            raise self.fail(f"{path}.methods", "expected a list of HTTP methods.", 'Write ["GET", "POST"].')
        upper = tuple(str(m).upper() for m in methods)
        for method in upper:
            if method not in HTTP_METHODS:
                raise self.fail(
                    f"{path}.methods", f"the method {method!r} is not supported.", "Use GET and/or POST."
                )
        sync = hooks.get("synchronous", {})
        if isinstance(sync, bool):
            sync = {"enable": sync}
        sync = self.mapping(sync, f"{path}.synchronous")
        auth = hooks.get("auth")
        if auth is not None and not isinstance(auth, str):
            raise self.fail(f"{path}.auth", "expected the name of a verifier.", 'Write e.g. "payments".')
        redirect = hooks.get("redirect")
        if redirect is not None and not (isinstance(redirect, str) and redirect.strip()):
            raise self.fail(
                f"{path}.redirect", "expected a URL.", 'Write e.g. "https://example.com/thanks/~~stub.stubref".'
            )
        return WebhookOptions(
            enable=bool(hooks.get("enable", False)),
            methods=upper,
            post_data_on_root=bool(hooks.get("post_data_on_root", False)),
            synchronous=bool(sync.get("enable", False)),
            response=sync.get("response"),
            auth=auth,
            redirect=redirect,
            confirm=self.confirm(hooks.get("confirm"), path, upper),
            options=hooks,
        )

    def confirm(self, value: Any, path: str, methods: tuple[str, ...]) -> dict[str, str] | None:
        if not value:
            return None
        texts = {} if value is True else self.mapping(value, f"{path}.confirm")
        for key, text in texts.items():
            if key not in CONFIRM_TEXTS or not isinstance(text, str):
                raise self.fail(
                    f"{path}.confirm.{key}",
                    "expected one of the page texts.",
                    f"Use true, or an object with strings for {', '.join(CONFIRM_TEXTS)}.",
                )
        if "POST" not in methods:
            raise self.fail(
                f"{path}.confirm", "the confirmation page posts, but POST is not allowed.", 'Add "POST" to methods.'
            )
        return {**CONFIRM_TEXTS, **texts}

    def create(self, details: Mapping[str, Any], schemas: Mapping[str, type[Schema]]) -> CompiledAction | None:
        hooks = self.mapping(details.get("webhooks"), "details.webhooks", default={})
        path = "details.webhooks.create"
        create = self.mapping(hooks.get("create"), path, default={})
        if not create:
            return None
        for key in ("to_state", "tasks", "confirm"):
            if key in create:
                raise self.fail(
                    f"{path}.{key}", f"creating a stub has no {key!r} option.",
                    "Remove it: new stubs start in details.busy_start_state; for more, let a creator stub's "
                    "action create the stub with a create_stub task.",
                )
        subject = create.get("subject")
        if subject is not None and not isinstance(subject, str):
            raise self.fail(f"{path}.subject", "expected a string.", 'Write e.g. "~~stubpost.data.name".')
        webhooks = {k: v for k, v in create.items() if k not in ("fields", "schema", "subject")}
        return CompiledAction(
            name="create",
            targets=(),
            schema=self.schema(create.get("fields"), create.get("schema"), path, path, schemas),
            webhooks=self.webhooks({**webhooks, "methods": ["POST"]}, path),
            tasks=(),
        )

    def tasks(self, value: Any, path: str, tasktypes: Collection[str]) -> tuple[TaskSpec, ...]:
        if value is None:
            return ()
        items: list[tuple[str, Any]]
        if isinstance(value, list):
            items = [(str(t.get("name", i)) if isinstance(t, Mapping) else str(i), t) for i, t in enumerate(value)]
        else:
            entries = self.mapping(value, path)
            items = sorted(entries.items(), key=lambda kv: _sequence(kv[1]))
        result = []
        for key, spec in items:
            spec = self.mapping(spec, f"{path}.{key}")
            tasktype = spec.get("tasktype")
            if tasktype not in tasktypes:
                raise self.fail(
                    f"{path}.{key}.tasktype",
                    f"the tasktype {tasktype!r} is not registered.",
                    "Register a handler with @stubber.task(\"<tasktype>\") before the template, "
                    f"or use one of: {', '.join(sorted(tasktypes))}.",
                )
            params = self.mapping(spec.get("params"), f"{path}.{key}.params", default={})
            result.append(TaskSpec(name=key, tasktype=str(tasktype), params=params))
        return tuple(result)

    def action(
        self,
        name: str,
        spec: Any,
        states: Collection[str],
        schemas: Mapping[str, type[Schema]],
        tasktypes: Collection[str],
    ) -> CompiledAction:
        path = f"actions.{name}"
        spec = self.mapping(spec, path, default={})
        meta = self.mapping(spec.get("action_meta"), f"{path}.action_meta", default={})
        return CompiledAction(
            name=name,
            targets=self.targets(spec.get("to_state"), f"{path}.to_state", states),
            schema=self.schema(spec.get("fields"), meta.get("schema"), path, f"{path}.action_meta", schemas),
            webhooks=self.webhooks(meta.get("webhooks"), f"{path}.action_meta.webhooks"),
            tasks=self.tasks(spec.get("tasks"), f"{path}.tasks", tasktypes),
        )

    def schema(
        self, fields: Any, name: Any, fields_at: str, name_at: str, schemas: Mapping[str, type[Schema]]
    ) -> Schema | None:
        """Build the payload schema: the field specs ``fields`` on top of the registered schema ``name``.

        ``fields_at`` and ``name_at`` are the paths of the objects holding them, for error messages.
        """
        base = None
        if name is not None:
            if name not in schemas:
                raise self.fail(
                    f"{name_at}.schema",
                    f"no schema named {name!r} is registered.",
                    f"Call stubber.register_schema({name!r}, YourSchema) before registering the template.",
                )
            base = schemas[name]
        specs = self.mapping(fields, f"{fields_at}.fields", default={})
        if not (specs or base):
            return None
        return build_schema(specs, template=self.name, path=f"{fields_at}.fields", base=base)()


def _sequence(spec: Any) -> float:
    if isinstance(spec, Mapping) and isinstance(spec.get("sequence"), (int, float)):
        return float(spec["sequence"])
    return 0.0


def compile_template(
    source: Mapping[str, Any],
    *,
    schemas: Mapping[str, type[Schema]],
    tasktypes: Collection[str],
) -> CompiledTemplate:
    """Check a Stubber-format template and compile it.

    :param source: The template as loaded by :func:`load_source`.
    :param schemas: Schemas registered by name, for ``action_meta.schema``.
    :param tasktypes: The tasktypes that have handlers.
    :raises TemplateError: naming the template, the JSON path and the fix.
    """
    check = _Checker(source)
    details = check.mapping(source.get("details"), "details", default={})
    states = check.states()
    raw_actions = check.mapping(source.get("actions"), "actions", default={})
    actions = {
        name: check.action(name, spec, states, schemas, tasktypes) for name, spec in raw_actions.items()
    }
    for state, names in states.items():
        for index, action in enumerate(names):
            if action not in actions:
                raise check.fail(
                    f"states.{state}.actions[{index}]",
                    f"the action {action!r} is listed but not defined.",
                    'Define it under "actions" or remove it from the state.',
                )
    start = details.get("busy_start_state")
    if not isinstance(start, str) or start not in states:
        raise check.fail(
            "details.busy_start_state",
            f"the start state {start!r} is not a defined state.",
            f"Set it to one of: {', '.join(sorted(states))}.",
        )
    return CompiledTemplate(
        name=check.name,
        start_state=start,
        states=states,
        actions=actions,
        details=details,
        source=source,
        create=check.create(details, schemas),
    )
