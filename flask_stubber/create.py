"""Creating stubs from outside: the engine call behind ``/webhooks/create/<template_name>``.

A template opts in with ``details.webhooks.create``, which reads like an action's
``action_meta.webhooks`` plus the payload schema, compiled at registration into
:attr:`CompiledTemplate.create <flask_stubber.templates.CompiledTemplate.create>`::

    "details": {"busy_start_state": "new", "webhooks": {"create": {
        "enable": true,
        "fields": {"email": {"fieldtype": "email", "validations": [{"validationtype": "required"}]}},
        "schema": "RequestSchema",
        "post_data_on_root": false,
        "subject": "Request from ~~stubpost.data.email",
        "synchronous": {"enable": false, "response": {"ref": "~~stub.stubref"}},
        "redirect": "https://example.com/thanks?ref=~~stub.stubref"
    }}}

The validated payload lands at ``stub.data.payload`` (or is the root of
``stub.data`` with ``post_data_on_root``); the history starts with a ``create``
post (``from_state`` null, source ``create_webhook``), and ``stub_created`` is
sent after the commit.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .engine import Outcome, place_payload, validate_payload
from .errors import ActionNotFound, MethodNotAllowed
from .tasks import substitute

if TYPE_CHECKING:
    from .engine import Engine

#: The ``source`` recorded on stubs and posts made through ``/webhooks/create/<template_name>``.
SOURCE = "create_webhook"


def create_from_webhook(engine: Engine, template_name: str, payload: dict[str, Any], *, method: str) -> Outcome:
    """Validate ``payload`` and create a stub of ``template_name`` with its ``create`` post, in one transaction.

    :raises ActionNotFound: when no such template allows creation by webhook (one answer, no probing).
    :raises MethodNotAllowed: for methods other than POST.
    :raises ValidationFailed: when the payload fails the create schema.
    """
    template = engine.ext.get_template(template_name)
    create = template.create if template is not None else None
    enabled = template is not None and create is not None and create.webhooks.enable
    hooks = engine.hooks
    auth = create.webhooks.auth if enabled and create is not None else None
    scope = f"create/{template_name}" if enabled else None
    if hooks is not None:
        # The sender is verified (and a known delivery replayed) before anything else is said.
        hooks.admit(auth, scope)
    if template is None or create is None or not enabled:
        raise ActionNotFound(f"No template named {template_name!r} accepts stubs created by webhook.")
    if method not in create.webhooks.methods:
        raise MethodNotAllowed(f"Stubs are created with POST, not {method}.")
    validated = validate_payload(create, payload)
    data = place_payload(None, validated, on_root=create.webhooks.post_data_on_root)
    subject = substitute(template.create_options.get("subject"), {"stubpost": {"data": validated}})
    notify: list[Callable[[], None]] = []

    def work() -> Outcome:
        notify.clear()
        delivery_id = None
        if hooks is not None:
            hooks.admit(auth, scope)
            delivery_id = hooks.delivery_id()
        stub = engine.insert_stub(
            template.name, data, subject=None if subject is None else str(subject), source=SOURCE, notify=notify
        )
        post = engine.record_creation(stub, validated, source=SOURCE, delivery_id=delivery_id)
        outcome = Outcome(
            stubref=stub.stubref, action_name="create", post_id=post.id, state=stub.state,
            data=copy.deepcopy(stub.data), results={}, stub=stub, post=post,
            webhooks=create.webhooks,
        )
        if hooks is not None:
            hooks.record(outcome)
        return outcome

    outcome: Outcome = engine.transaction(work)
    engine.notify(notify)
    return outcome
