"""Tasks run by actions, and the ``~~path`` substitution they and responses use."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import StubNotFound, ValidationFailed
from .explicit import WebhookSpec, bind_webhook
from .models import normalize_stubref

if TYPE_CHECKING:
    from .engine import ActionContext, Engine

_TOKEN = re.compile(r"~~([A-Za-z_][\w.\-]*[\w])")

#: A task handler: receives the run context and the substituted params, returns its result.
TaskHandler = Callable[["TaskContext", dict[str, Any]], "Mapping[str, Any] | None"]


@dataclass
class TaskContext:
    """What a task sees: the engine, the action's context and the earlier tasks' results."""

    #: The engine running the action, for tasks that create or change stubs.
    engine: Engine
    #: The action's context: the stub, the payload, the states.
    action: ActionContext
    #: The results of the earlier tasks, by task name.
    results: dict[str, Any] = field(default_factory=dict)


def lookup(context: Mapping[str, Any], path: str) -> Any:
    """Return the value at dotted ``path`` in ``context``, or ``None`` when it does not exist."""
    value: Any = context
    for part in path.split("."):
        if isinstance(value, Mapping):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
        if value is None:
            return None
    return value


def substitute(value: Any, context: Mapping[str, Any]) -> Any:
    """Replace ``~~path`` strings in ``value`` with the value found at that path.

    A string that is exactly ``~~path`` takes the value itself (any JSON type); a
    ``~~path`` inside a longer string is replaced by its text. A path that does not
    exist gives ``None`` (or an empty string inside text), never an error.
    """
    if isinstance(value, str):
        if "~~" not in value:
            return value
        whole = _TOKEN.fullmatch(value)
        if whole:
            return lookup(context, whole.group(1))
        return substitute_text(value, context)
    if isinstance(value, Mapping):
        return {k: substitute(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, context) for v in value]
    return value


def substitute_text(text: str, context: Mapping[str, Any], escape: Callable[[str], str] = str) -> str:
    """Replace every ``~~path`` in ``text`` with the text of its value passed through ``escape``.

    A path that does not exist gives an empty string.

    :param escape: Applied to each substituted value, such as a URL quoting or HTML escaping function.
    """
    return _TOKEN.sub(lambda m: escape(_text(lookup(context, m.group(1)))), text)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def savedata(ctx: TaskContext, params: dict[str, Any]) -> Mapping[str, Any]:
    """Merge ``params`` into the root of the stub's data."""
    ctx.action.stub.data.update(params)
    return params


def create_stub(ctx: TaskContext, params: dict[str, Any]) -> Mapping[str, Any]:
    """Create a stub of ``params["template"]`` in the same transaction; result ``stubref``."""
    data = params.get("data")
    stub = ctx.engine.insert_stub(
        str(params.get("template")),
        data if isinstance(data, dict) else {},
        subject=params.get("subject"),
        source=ctx.action.source,
        notify=ctx.action.after_commit,
    )
    return {"stubref": stub.stubref}


def create_webhook(ctx: TaskContext, params: dict[str, Any]) -> Mapping[str, Any]:
    """Bind an explicit webhook in the same transaction; results ``webhookuuid`` and ``url``.

    Params: ``action_name``; ``stubref`` (default: the stub running the action); and
    optionally ``webhookuuid``, ``expires_in`` (seconds) and ``single_use``. ``url`` is
    ``None`` when the app cannot build external URLs (no request and no ``SERVER_NAME``).
    A ``webhookuuid`` that is not a uuid, or an ``expires_in`` that is not a positive number,
    refuses the action with ``422 validation_error``.
    """
    action_name = params.get("action_name")
    if not isinstance(action_name, str):
        raise ValueError("The create_webhook task needs the param 'action_name'.")
    stub = ctx.action.stub
    stubref = params.get("stubref")
    if stubref and normalize_stubref(str(stubref)) != stub.stubref:
        stub = ctx.engine.get_stub(str(stubref))
        if stub is None:
            raise StubNotFound(f"The create_webhook task names the stubref {stubref!r}, which no stub has.")
    try:
        spec = WebhookSpec.check(
            action_name, uuid=params.get("webhookuuid") or None, expires_in=params.get("expires_in"),
            single_use=bool(params.get("single_use", False)),
        )
    except (TypeError, ValueError, OverflowError) as exc:
        # The params are often ~~ values from the payload: a sender's mistake, not a server error.
        raise ValidationFailed(
            "The create_webhook task cannot bind a webhook with these params; see 'errors'.",
            errors={"create_webhook": [str(exc)]},
        ) from None
    hook = bind_webhook(ctx.engine, stub, spec)
    try:
        url: str | None = hook.url
    except RuntimeError:
        url = None
    return {"webhookuuid": hook.uuid, "url": url}


BUILTIN_TASKS: dict[str, TaskHandler] = {
    "savedata": savedata,
    "create_stub": create_stub,
    "create_webhook": create_webhook,
}
