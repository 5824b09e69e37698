"""The OpenAPI 3.1 document of an app's webhooks, served at ``/webhooks/openapi.json``.

Built with apispec and its marshmallow plugin (``pip install flask-stubber[openapi]``)
from the templates the app serves: one operation per method of each webhook-enabled
action, with its payload schema as query parameters (GET) and as JSON and form bodies
(POST); the create route of each template that enables it; the explicit route; every
error response with one shared problem+json schema; a security scheme per configured
verifier, and on each operation the verifier its action names (``action_meta.webhooks.auth``,
else ``STUBBER_DEFAULT_AUTH``). ``STUBBER_OPENAPI_INFO`` (a dict) is merged into the
document's ``info``.

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
        InvalidBody, Unauthorized, StubNotFound, ActionNotFound, WebhookNotFound, MethodNotAllowed,
        ActionNotInState, IdempotencyConflict, WebhookGone, PayloadTooLarge, UnsupportedMediaType,
        ValidationFailed, IdempotencyKeyReused, RateLimited, InternalError, Unavailable,
    )
}
_COMMON = ("unauthorized", "invalid_body", "payload_too_large", "unsupported_media_type", "idempotency_conflict",
           "validation_error", "idempotency_key_reused", "rate_limited", "internal_error", "unavailable")
_IMPLICIT = ("stub_not_found", "action_not_found", "method_not_allowed", "action_not_in_state", *_COMMON)
_EXPLICIT = ("webhook_not_found", "method_not_allowed", "action_not_in_state", "webhook_gone", *_COMMON)
_BODY_ERRORS = ("invalid_body", "payload_too_large", "unsupported_media_type")
_HANDLER_NOTE = "An action handler may also refuse with its own code."
_RETRY_AFTER = {"schema": {"type": "integer"}, "description": "Seconds to wait before trying again."}

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

    Schemas generated from template fields (named ``"<template>:actions.<action>.fields..."``)
    are named after the template, the action and the nested fields, such as
    ``order.payment_received`` and ``order.payment_received.items``; other schemas keep
    their class name.
    """
    cls = resolve_schema_cls(schema)
    name = (cls[0] if isinstance(cls, list) else cls).__name__
    template, sep, path = name.partition(":")
    if sep:
        parts = [p for p in path.split(".") if p not in ("fields", "params")]
        name = ".".join([template, *parts[1:]] if parts[:1] == ["actions"] else [template, *parts])
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
            if template.create_options.get("enable"):
                self.create_path(template)
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
            codes = [c for c in _IMPLICIT if c != "method_not_allowed" or len(allowed) < len(members)]
            operation: dict[str, Any] = {
                "operationId": _safe(f"im_{action_name}_{method.lower()}"),
                "summary": f"Run the action {action_name}",
                "description": "\n\n".join(_describe_action(t, a) for t, a in allowed),
                "tags": [t.name for t, _ in allowed],
                "parameters": [_SYNCHRONOUS],
                "responses": {"200": self.success(a for _, a in allowed)},
            }
            schemas = [a.schema for _, a in allowed]
            if method == "GET":
                operation["parameters"] = [*self.query_parameters(schemas), _SYNCHRONOUS]
            else:
                operation["requestBody"] = self.body(schemas)
            self.finish(operation, [a.webhooks.auth for _, a in allowed], codes, body=method == "POST")
            operations[method.lower()] = operation
        self.spec.path(path=f"{self.prefix}/im/{{stubref}}/{quote(action_name, safe='')}", operations=operations,
                       parameters=[_STUBREF])

    def create_path(self, template: CompiledTemplate) -> None:
        operation: dict[str, Any] = {
            "operationId": _safe(f"create_{template.name}"),
            "summary": f"Create a stub of {template.name}",
            "description": f"Creates a stub in `{template.start_state}`; the payload lands at `stub.data.payload`.",
            "tags": [template.name],
            "requestBody": self.body([None]),
            "responses": {"201": _json_response("The stub was created.", "StubCreated")},
        }
        self.finish(operation, [template.create_options.get("auth")], _COMMON, body=True)
        self.spec.path(path=f"{self.prefix}/create/{quote(template.name, safe='')}", operations={"post": operation})

    def explicit_path(self) -> None:
        operations = {}
        for method in ("get", "post"):
            operation: dict[str, Any] = {
                "operationId": f"ex_{method}",
                "summary": "Run the action bound to an explicit webhook",
                "description": "The action receives `{\"lid\": \"<uuid>\", \"payload\": {...}}`; the verifier "
                               "its action names applies.",
                "parameters": [_SYNCHRONOUS],
                "responses": {"200": _json_response("The action ran.", "WebhookSuccess")},
            }
            if method == "post":
                operation["requestBody"] = self.body([None])
            else:
                operation["parameters"] = [_ANY_QUERY, _SYNCHRONOUS]
            self.finish(operation, [], _EXPLICIT, body=method == "post")
            operations[method] = operation
        self.spec.path(path=f"{self.prefix}/ex/{{uuid}}", operations=operations, parameters=[_UUID])

    def finish(self, operation: dict[str, Any], auths: Sequence[str | None], codes: Sequence[str], *,
               body: bool) -> None:
        """Add the security and the error responses of an operation.

        :param auths: The verifiers its actions name; empty when not known (explicit webhooks).
        :param codes: The error codes it may answer.
        :param body: Whether it reads a body.
        """
        security = self.security(auths)
        if security is not None:
            operation["security"] = security
        by_status: dict[int, list[str]] = {}
        for code in codes:
            if (body or code not in _BODY_ERRORS) and (code != "unauthorized" or security or not auths):
                by_status.setdefault(ERRORS[code].status, []).append(code)
        for status, found in sorted(by_status.items()):
            operation["responses"][str(status)] = _problem_response(status, found)

    def success(self, actions: Iterable[CompiledAction]) -> dict[str, Any]:
        custom = any(a.webhooks.response is not None for a in actions)
        if custom:
            return {"description": "The action ran; the body is the action's `synchronous.response` template.",
                    "content": {"application/json": {"schema": {}}}}
        return _json_response("The action ran.", "WebhookSuccess")

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
    },
}
_CREATED: dict[str, Any] = {
    "type": "object",
    "required": ["success", "stubref"],
    "properties": {"success": {"const": True}, "stubref": {"type": "string"}},
    "additionalProperties": True,
}
