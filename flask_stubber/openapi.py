"""The OpenAPI 3.1 document of an app's webhooks, served at ``/webhooks/openapi.json``.

Built with apispec and its marshmallow plugin (``pip install flask-stubber[openapi]``)
from the templates the app serves: one operation per method of each webhook-enabled
action, with its payload schema as query parameters (GET) and as JSON and form bodies
(POST); the create route of each template that enables it, with its create schema; the
explicit route; every error response an operation can give, with one shared problem+json
schema; a security scheme per configured verifier, and on each operation the verifier its
action names (``action_meta.webhooks.auth``, else ``STUBBER_DEFAULT_AUTH``). Every operation
takes an ``Idempotency-Key`` header, and its successes may carry ``Idempotent-Replayed``;
``303`` redirects and the HTML confirmation pages of explicit webhooks are documented where
a template asks for them. ``STUBBER_OPENAPI_INFO`` (a dict) is merged into the document's
``info``.

The document is built once per app and rebuilt after a template is registered.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.common import resolve_schema_cls
from flask import Flask, current_app
from marshmallow import Schema

from .errors import (
    ActionNotFound,
    ActionNotInState,
    ConfirmationRequired,
    IdempotencyConflict,
    IdempotencyKeyReused,
    InternalError,
    InvalidBody,
    MethodNotAllowed,
    PayloadTooLarge,
    RateLimited,
    StubberError,
    StubNotFound,
    Unauthorized,
    Unavailable,
    UnsupportedMediaType,
    ValidationFailed,
    WebhookConflict,
    WebhookGone,
    WebhookNotFound,
)
from .fields import _Number, _Select
from .templates import CompiledAction, CompiledTemplate

if TYPE_CHECKING:
    from .extension import StubberState

__all__ = ["openapi_document"]

OPENAPI_VERSION = "3.1.0"
STUBREF_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}-[A-Za-z0-9]{4}-[A-Za-z0-9]{4}$"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")

#: The error classes of SPEC section 6, by code; each gives its status, title and description.
ERRORS: dict[str, type[StubberError]] = {
    cls.code: cls
    for cls in (
        InvalidBody, Unauthorized, ConfirmationRequired, StubNotFound, ActionNotFound, WebhookNotFound,
        MethodNotAllowed, ActionNotInState, IdempotencyConflict, WebhookConflict, WebhookGone, PayloadTooLarge,
        UnsupportedMediaType, ValidationFailed, IdempotencyKeyReused, RateLimited, InternalError, Unavailable,
    )
}
#: Codes every operation may answer; ``finish`` drops those that cannot apply to one.
_COMMON = ("unauthorized", "invalid_body", "payload_too_large", "unsupported_media_type", "idempotency_conflict",
           "validation_error", "idempotency_key_reused", "rate_limited", "internal_error", "unavailable")
_IMPLICIT = ("stub_not_found", "action_not_found", "method_not_allowed", "action_not_in_state", "webhook_conflict",
             *_COMMON)
_EXPLICIT = ("confirmation_required", "webhook_not_found", "method_not_allowed", "action_not_in_state",
             "webhook_conflict", "webhook_gone", *_COMMON)
_BODY_ERRORS = ("invalid_body", "payload_too_large", "unsupported_media_type")
_HANDLER_NOTE = "An action handler may also refuse with its own code."
_RETRY_AFTER = {"schema": {"type": "integer"}, "description": "Seconds to wait before trying again."}
_REPLAYED = {"schema": {"type": "string", "enum": ["true"]},
             "description": "Present on the stored response sent again to a repeated delivery id; the action did "
                            "not run again."}

_cache: weakref.WeakKeyDictionary[Flask, tuple[int, dict[str, Any]]] = weakref.WeakKeyDictionary()


def openapi_document(app: Flask | None = None) -> dict[str, Any]:
    """Return the OpenAPI document of an app's webhooks, built once per app and template revision.

    :param app: The application; the current one by default.
    """
    if app is None:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
    state: StubberState = app.extensions["stubber"]
    cached = _cache.get(app)
    if cached is not None and cached[0] == state.ext.revision:
        return cached[1]
    revision = state.ext.revision
    with app.app_context():  # The templates the app serves are looked up in its context.
        document = _Builder(app, state).build()
    _cache[app] = (revision, document)
    return document


def component_name(schema: type[Schema] | Schema) -> str:
    """Return a stable component name for a schema.

    Schemas generated from template fields (named ``"<template>:actions.<action>.fields..."``,
    or ``"<template>:details.webhooks.create.fields..."`` for the create route) are named
    after the template, the action (``create``) and the nested fields, such as
    ``order.payment_received``, ``order.payment_received.items`` and ``order.create``;
    other schemas keep their class name.
    """
    cls = resolve_schema_cls(schema)
    name = (cls[0] if isinstance(cls, list) else cls).__name__
    template, sep, path = name.partition(":")
    if sep:
        parts = [p for p in path.split(".") if p not in ("fields", "params")]
        if parts[:1] == ["actions"]:
            parts = parts[1:]
        elif parts[:3] == ["details", "webhooks", "create"]:
            parts = parts[2:]
        name = ".".join([template, *parts])
    return _UNSAFE.sub("_", name).strip("._") or "Schema"


class _Builder:
    """Builds one document; the schema names it hands out are unique within it."""

    def __init__(self, app: Flask, state: StubberState) -> None:
        self.state = state
        self.prefix = state.config.url_prefix
        self.templates = sorted(state.ext.templates().values(), key=lambda t: t.name)
        self.names: dict[str, type[Schema]] = {}
        self.plugin = MarshmallowPlugin(schema_name_resolver=self.resolve)
        info = {"description": f"Webhooks served by flask-stubber for {app.name}.",
                **app.config.get("STUBBER_OPENAPI_INFO", {})}
        self.spec = APISpec(
            title=info.pop("title", f"{app.name} webhooks"),
            version=str(info.pop("version", "1")),
            openapi_version=OPENAPI_VERSION,
            plugins=[self.plugin],
            info=info,
        )
        self.converter = cast(Any, self.plugin.converter)  # apispec's converter is not typed.
        self.converter.add_attribute_function(_stubber_field)

    def resolve(self, schema: type[Schema] | Schema) -> str:
        """The apispec ``schema_name_resolver``: a stable name, unique in this document."""
        cls = resolve_schema_cls(schema)
        cls = cls[0] if isinstance(cls, list) else cls
        base = name = component_name(cls)
        counter = 1
        while self.names.setdefault(name, cls) is not cls:
            counter += 1
            name = f"{base}-{counter}"
        return name

    def build(self) -> dict[str, Any]:
        self.components()
        for action_name, members in self.implicit_actions().items():
            self.implicit_path(action_name, members)
        for template in self.templates:
            if template.create is not None and template.create.webhooks.enable:
                self.create_path(template, template.create)
        self.explicit_path()
        for template in self.templates:
            self.spec.tag({"name": template.name, "description": _describe(template)})
        return self.spec.to_dict()

    # -- components -----------------------------------------------------------------

    def components(self) -> None:
        self.spec.components.schema("Problem", _PROBLEM)
        self.spec.components.schema("Payload", {"type": "object", "additionalProperties": True,
                                                "description": "Any JSON object, or form fields."})
        self.spec.components.schema("WebhookSuccess", _SUCCESS)
        self.spec.components.schema("StubCreated", _CREATED)
        for code in ERRORS:
            self.spec.components.example(code, {"value": _example(code)})
        for name, settings in sorted(self.state.config.verifiers.items()):
            self.spec.components.security_scheme(_safe(name), _security_scheme(name, settings))

    def security(self, auths: Iterable[str | None]) -> list[dict[str, list[str]]] | None:
        """Each operation's security: the verifiers its actions name; ``{}`` when one names none."""
        requirements: list[dict[str, list[str]]] = []
        for name in auths:
            auth = name or self.state.config.default_auth
            requirement: dict[str, list[str]] = {}
            if auth is not None and auth in self.state.config.verifiers:
                requirement[_safe(auth)] = []
            if requirement not in requirements:
                requirements.append(requirement)
        return None if requirements in ([], [{}]) else requirements

    # -- paths ----------------------------------------------------------------------

    def implicit_actions(self) -> dict[str, list[tuple[CompiledTemplate, CompiledAction]]]:
        """Webhook-enabled actions by name; templates sharing a name share the path."""
        found: dict[str, list[tuple[CompiledTemplate, CompiledAction]]] = {}
        for template in self.templates:
            for action in template.actions.values():
                if action.webhooks.enable:
                    found.setdefault(action.name, []).append((template, action))
        return dict(sorted(found.items()))

    def implicit_path(self, action_name: str, members: list[tuple[CompiledTemplate, CompiledAction]]) -> None:
        operations = {}
        for method in ("GET", "POST"):
            allowed = [(t, a) for t, a in members if method in a.webhooks.methods]
            if not allowed:
                continue
            actions = [a for _, a in allowed]
            skip = {"method_not_allowed"} if len(allowed) == len(members) else set()
            operation: dict[str, Any] = {
                "operationId": _safe(f"im_{action_name}_{method.lower()}"),
                "summary": f"Run the action {action_name}",
                "description": "\n\n".join(_describe_action(t, a) for t, a in allowed),
                "tags": [t.name for t, _ in allowed],
                "parameters": [_SYNCHRONOUS],
                "responses": self.successes(actions, "The action ran."),
            }
            if method == "GET":
                operation["parameters"] = [*self.query_parameters([a.schema for a in actions]), _SYNCHRONOUS]
            else:
                operation["requestBody"] = self.body([a.schema for a in actions])
            self.finish(operation, [a.webhooks.auth for a in actions], _IMPLICIT, actions, body=method == "POST",
                        skip=skip)
            operations[method.lower()] = operation
        self.spec.path(path=f"{self.prefix}/im/{{stubref}}/{quote(action_name, safe='')}", operations=operations,
                       parameters=[_STUBREF])

    def create_path(self, template: CompiledTemplate, create: CompiledAction) -> None:
        where = "the root of `stub.data`" if create.webhooks.post_data_on_root else "`stub.data.payload`"
        operation: dict[str, Any] = {
            "operationId": _safe(f"create_{template.name}"),
            "summary": f"Create a stub of {template.name}",
            "description": f"Creates a stub of `{template.name}` in `{template.start_state}`; the payload lands "
                           f"at {where}. Its history starts with a `create` post.",
            "tags": [template.name],
            "parameters": [_SYNCHRONOUS],
            "requestBody": self.body([create.schema]),
            "responses": self.successes([create], "The stub was created.", status="201", schema="StubCreated"),
        }
        self.finish(operation, [create.webhooks.auth], _COMMON, [create], body=True)
        self.spec.path(path=f"{self.prefix}/create/{quote(template.name, safe='')}", operations={"post": operation})

    def explicit_path(self) -> None:
        """``/ex/{uuid}``: any action of any template can be bound to an explicit webhook."""
        every = [a for t in self.templates for a in t.actions.values()]
        auths = [a.webhooks.auth for a in every] or [None]
        operations = {}
        for method in ("GET", "POST"):
            actions = [a for a in every if method in a.webhooks.methods or (method == "GET" and a.webhooks.confirm)]
            confirm = [a for a in actions if a.webhooks.confirm]
            page = None
            if method == "GET" and confirm:
                page = "the confirmation page of an action with `confirm`"
            elif method == "POST" and any(not a.webhooks.redirect for a in confirm):
                page = "the \"done\" page after a confirmation"
            operation: dict[str, Any] = {
                "operationId": f"ex_{method.lower()}",
                "summary": "Run the action bound to an explicit webhook",
                "description": _EXPLICIT_ABOUT[method],
                "parameters": [_ANY_QUERY, _SYNCHRONOUS] if method == "GET" else [_SYNCHRONOUS],
                "responses": self.successes(actions, "The action ran.", page=page),
            }
            if method == "POST":
                operation["requestBody"] = self.body([None])
            skip = set() if len(actions) < len(every) else {"method_not_allowed"}
            if method == "GET" or not confirm:
                skip.add("confirmation_required")
            self.finish(operation, auths, _EXPLICIT, actions or every, body=method == "POST", skip=skip)
            operations[method.lower()] = operation
        self.spec.path(path=f"{self.prefix}/ex/{{uuid}}", operations=operations, parameters=[_UUID])

    def finish(self, operation: dict[str, Any], auths: Sequence[str | None], codes: Sequence[str],
               actions: Sequence[CompiledAction], *, body: bool, skip: Iterable[str] = ()) -> None:
        """Add the security, the ``Idempotency-Key`` header and the error responses of an operation.

        :param auths: The verifiers its actions name.
        :param codes: The error codes it may answer; those that cannot apply are dropped.
        :param actions: The actions it may run.
        :param body: Whether it reads a body.
        :param skip: Codes the caller knows do not apply.
        """
        security = self.security(auths)
        if security is not None:
            operation["security"] = security
        operation["parameters"] = [*operation.get("parameters", []), _IDEMPOTENCY_KEY]
        dropped = {*skip, *(() if body else _BODY_ERRORS)}
        if security is None:
            dropped.add("unauthorized")
        if self.state.config.rate_limit is None:
            dropped.add("rate_limited")
        if not any(_binds_own_uuid(a) for a in actions):
            dropped.add("webhook_conflict")
        by_status: dict[int, list[str]] = {}
        for code in codes:
            if code not in dropped:
                by_status.setdefault(ERRORS[code].status, []).append(code)
        for status, found in sorted(by_status.items()):
            operation["responses"][str(status)] = _problem_response(status, found)

    def successes(self, actions: Sequence[CompiledAction], description: str, *, status: str = "200",
                  schema: str = "WebhookSuccess", page: str | None = None) -> dict[str, Any]:
        """The success response, and the ``303`` when an action sends browsers to its ``redirect``.

        :param page: What the HTML page answered with ``200 text/html`` is, when there is one.
        """
        custom = any(a.webhooks.response is not None for a in actions)
        if custom:
            description += " In synchronous mode a `synchronous.response` template may replace the body."
        content: dict[str, Any] = {"application/json": {"schema": {} if custom else {
            "$ref": f"#/components/schemas/{schema}"}}}
        if page is not None:
            description += f" A browser gets {page} as HTML."
            content["text/html"] = {"schema": {"type": "string"}}
        responses = {status: {"description": description, "headers": {"Idempotent-Replayed": _REPLAYED},
                              "content": content}}
        if any(a.webhooks.redirect for a in actions):
            responses["303"] = {
                "description": "A browser (a form post or a GET whose `Accept` prefers text/html to JSON) "
                               "is sent to the `redirect` URL of the action.",
                "headers": {"Location": _LOCATION, "Idempotent-Replayed": _REPLAYED},
            }
        return responses

    def body(self, schemas: Sequence[Schema | None]) -> dict[str, Any]:
        refs: list[dict[str, Any]] = []
        for schema in schemas:
            ref = self.ref(schema)
            if ref not in refs:
                refs.append(ref)
        body = refs[0] if len(refs) == 1 else {"anyOf": refs}
        return {"required": False, "content": {m: {"schema": body} for m in ("application/json", *_FORMS)}}

    def ref(self, schema: Schema | None) -> dict[str, Any]:
        if schema is None:
            return {"$ref": "#/components/schemas/Payload"}
        ref: dict[str, Any] = self.converter.resolve_nested_schema(type(schema))
        return ref

    def query_parameters(self, schemas: Sequence[Schema | None]) -> list[dict[str, Any]]:
        """The query parameters of the schemas; required only when every schema requires it."""
        merged: dict[str, dict[str, Any]] = {}
        per_schema = [self.converter.schema2parameters(type(s), location="query") if s else [] for s in schemas]
        for params in per_schema:
            for param in params:
                merged.setdefault(param["name"], param)
        for name, param in merged.items():
            param["required"] = all(any(p["name"] == name and p.get("required") for p in ps) for ps in per_schema)
        if any(s is None for s in schemas):
            merged.setdefault("payload", _ANY_QUERY)
        return list(merged.values())


def _stubber_field(self: Any, field: Any, **kwargs: Any) -> dict[str, Any]:
    """apispec attribute function: options of selects as ``enum``, integer number fields as ``integer``."""
    ret: dict[str, Any] = kwargs["ret"]
    if isinstance(field, _Select) and field.choices is not None:
        values = list(field.choices.values())
        return {"enum": [*values, None] if field.allow_none else values}
    if isinstance(field, _Number) and field.integral:
        types = ret.get("type", "number")
        return {"type": [("integer" if t == "number" else t) for t in types] if isinstance(types, list)
                else "integer"}
    return {}


def _safe(name: str) -> str:
    return _UNSAFE.sub("_", name)


def _binds_own_uuid(action: CompiledAction) -> bool:
    """Whether the action runs a ``create_webhook`` task with a ``webhookuuid`` (``409 webhook_conflict``)."""
    return any(task.tasktype == "create_webhook" and task.params.get("webhookuuid") for task in action.tasks)


def _describe(template: CompiledTemplate) -> str:
    states = ", ".join(f"`{s}`" for s in template.states)
    return f"Template `{template.name}`: starts in `{template.start_state}`; states {states}."


def _describe_action(template: CompiledTemplate, action: CompiledAction) -> str:
    states = [s for s, names in template.states.items() if action.name in names]
    targets = " or ".join(f"`{t}`" for t in action.targets) or "the same state"
    where = "the root of `stub.data`" if action.webhooks.post_data_on_root else "`stub.data.payload`"
    available = ", ".join(f"`{s}`" for s in states) or "no state"
    return (f"`{template.name}`: available in {available}; moves the stub to {targets}. "
            f"The payload lands at {where}.")


def _security_scheme(name: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    scheme = str(settings.get("scheme", ""))
    if scheme == "bearer":
        return {"type": "http", "scheme": "bearer", "description": f"Verifier `{name}`: a static bearer token."}
    header, about = {
        "standard-webhooks": ("webhook-signature", "Standard Webhooks: `webhook-id`, `webhook-timestamp` and "
                              "`webhook-signature` (`v1,<base64 HMAC-SHA256 of id.timestamp.body>`)"),
        "stripe": ("Stripe-Signature", "Stripe: `t=<timestamp>,v1=<hex HMAC-SHA256 of timestamp.body>`"),
        "github": ("X-Hub-Signature-256", "GitHub: `sha256=<hex HMAC-SHA256 of the body>`"),
        "hmac": (str(settings.get("header", "X-Signature")),
                 f"an HMAC-{str(settings.get('algorithm', 'sha256')).upper()} of the body, "
                 f"{settings.get('encoding', 'hex')}-encoded"),
    }.get(scheme, (str(settings.get("header", "Authorization")), f"the `{scheme}` scheme"))
    return {"type": "apiKey", "in": "header", "name": header,
            "description": f"Verifier `{name}`: {about}, checked on the raw body."}


def _json_response(description: str, schema: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}


def _explain(code: str) -> str:
    return (ERRORS[code].__doc__ or ERRORS[code].title).strip().split("\n")[0].replace("``", "`")


def _example(code: str) -> dict[str, Any]:
    cls = ERRORS[code]
    error = StubberError(_explain(code))
    error.status, error.code, error.title = cls.status, cls.code, cls.title
    return error.to_problem()


def _problem_response(status: int, codes: Sequence[str]) -> dict[str, Any]:
    lines = [f"`{code}`: {_explain(code)}" for code in codes]
    if status in (409, 422):
        lines.append(_HANDLER_NOTE)
    response: dict[str, Any] = {
        "description": "\n\n".join(lines),
        "content": {"application/problem+json": {
            "schema": {"$ref": "#/components/schemas/Problem"},
            "examples": {code: {"$ref": f"#/components/examples/{code}"} for code in codes},
        }},
    }
    if status in (429, 503):
        response["headers"] = {"Retry-After": _RETRY_AFTER}
    return response


_STUBREF = {"name": "stubref", "in": "path", "required": True, "description": "The stub's stubref (any case).",
            "schema": {"type": "string", "pattern": STUBREF_PATTERN}}
_UUID = {"name": "uuid", "in": "path", "required": True, "description": "The explicit webhook's uuid.",
         "schema": {"type": "string"}}
_SYNCHRONOUS = {"name": "_synchronous", "in": "query", "required": False,
                "description": "A control flag, never part of the payload: answer with the stub's state and data.",
                "schema": {"type": "boolean"}}
_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key", "in": "header", "required": False, "schema": {"type": "string"},
    "description": "A delivery id (else a `webhook-id` or `svix-id` header, or the id a verifier vouches for): a "
                   "repeat of a finished delivery gets its stored response, marked `Idempotent-Replayed: true`, "
                   "without running the action again.",
}
_LOCATION = {"schema": {"type": "string"}, "required": True,
             "description": "The `redirect` URL, its `~~` values filled in."}
_EXPLICIT_ABOUT = {
    "GET": "The query string is the payload; the action receives `{\"lid\": \"<uuid>\", \"payload\": {...}}`. "
           "The verifier its action names applies. An action with `confirm` shows a confirmation page instead "
           "of running: only the POST of its button runs it.",
    "POST": "The body is the payload; the action receives `{\"lid\": \"<uuid>\", \"payload\": {...}}`. "
            "The verifier its action names applies. An action with `confirm` runs only from the POST of its "
            "confirmation page, which carries the page's `_confirm` token.",
}
_ANY_QUERY = {"name": "payload", "in": "query", "required": False, "style": "form", "explode": True,
              "description": "Any query parameters: they are the payload.",
              "schema": {"type": "object", "additionalProperties": True}}
_PROBLEM: dict[str, Any] = {
    "type": "object",
    "description": "An RFC 9457 problem; every error of the webhooks has this shape.",
    "required": ["type", "title", "status", "detail", "success", "error"],
    "properties": {
        "type": {"type": "string", "format": "uri-reference"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "success": {"const": False},
        "error": {"type": "string", "description": "The machine code; an action handler may choose its own.",
                  "examples": list(ERRORS)},
        "errors": {"type": "object", "description": "validation_error: the messages per field."},
        "state": {"type": "string", "description": "action_not_in_state: the stub's current state."},
        "available_actions": {"type": "array", "items": {"type": "string"},
                              "description": "action_not_in_state: the webhook actions of that state."},
    },
    "additionalProperties": True,
}
_SUCCESS: dict[str, Any] = {
    "type": "object",
    "required": ["success", "stubref", "action_name", "post_id"],
    "properties": {
        "success": {"const": True},
        "stubref": {"type": "string"},
        "action_name": {"type": "string"},
        "post_id": {"type": ["integer", "null"]},
        "state": {"type": "string", "description": "Synchronous answers only."},
        "data": {"type": "object", "description": "Synchronous answers only: the stub's data."},
        "tasks": {"type": "object", "description": "Synchronous answers of actions that ran tasks: their results, "
                                                   "by task name."},
    },
}
_CREATED: dict[str, Any] = {
    **_SUCCESS,
    "description": "The stub was created; `action_name` is `create` and `post_id` its first history entry.",
}
