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
    :param create_webhook: Allow ``POST /webhooks/create/<name>``.
    """

    def __init__(self, name: str, *, start_state: str, create_webhook: bool = False) -> None:
        self.name = name
        details: dict[str, Any] = {"busy_start_state": start_state}
        if create_webhook:
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
        tasks: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> Template:
        """Add an action; returns the template.

        :param to_state: The target state, several targets (a handler picks one), or
            ``None`` to keep the state.
        :param fields: Stubber field specs for the payload.
        :param schema: The name of a schema registered with ``register_schema``.
        :param webhook: Allow implicit webhooks to run this action.
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

    def webhooks(self, meta: Mapping[str, Any], path: str) -> WebhookOptions:
        hooks = self.mapping(meta.get("webhooks"), f"{path}.webhooks", default={})
        methods = hooks.get("methods", list(HTTP_METHODS))
        if not isinstance(methods, list) or not methods:
            raise self.fail(f"{path}.webhooks.methods", "expected a list of HTTP methods.", 'Write ["GET", "POST"].')
        upper = tuple(str(m).upper() for m in methods)
        for method in upper:
            if method not in HTTP_METHODS:
                raise self.fail(
                    f"{path}.webhooks.methods", f"the method {method!r} is not supported.", "Use GET and/or POST."
                )
        sync = hooks.get("synchronous", {})
        if isinstance(sync, bool):
            sync = {"enable": sync}
        sync = self.mapping(sync, f"{path}.webhooks.synchronous")
        auth = hooks.get("auth")
        if auth is not None and not isinstance(auth, str):
            raise self.fail(f"{path}.webhooks.auth", "expected the name of a verifier.", 'Write e.g. "payments".')
        return WebhookOptions(
            enable=bool(hooks.get("enable", False)),
            methods=upper,
            post_data_on_root=bool(hooks.get("post_data_on_root", False)),
            synchronous=bool(sync.get("enable", False)),
            response=sync.get("response"),
            auth=auth,
            options=hooks,
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
        base = None
        schema_name = meta.get("schema")
        if schema_name is not None:
            if schema_name not in schemas:
                raise self.fail(
                    f"{path}.action_meta.schema",
                    f"no schema named {schema_name!r} is registered.",
                    f"Call stubber.register_schema({schema_name!r}, YourSchema) before registering the template.",
                )
            base = schemas[schema_name]
        fields = self.mapping(spec.get("fields"), f"{path}.fields", default={})
        schema_cls = build_schema(fields, template=self.name, path=f"{path}.fields", base=base) if (
            fields or base
        ) else None
        return CompiledAction(
            name=name,
            targets=self.targets(spec.get("to_state"), f"{path}.to_state", states),
            schema=schema_cls() if schema_cls is not None else None,
            webhooks=self.webhooks(meta, f"{path}.action_meta"),
            tasks=self.tasks(spec.get("tasks"), f"{path}.tasks", tasktypes),
        )


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
    )
