"""Signals sent by flask-stubber.

They live in a :class:`blinker.Namespace` of their own. The sender is always
the application object (``current_app._get_current_object()``); everything
else is passed as keyword arguments. Connect with ``signal.connect(receiver, app)``
to hear one application only.
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

#: Sent after the commit that created a stub. Keyword arguments: ``stub``, ``source``.
stub_created = _signals.signal("stub-created")

#: Sent when a webhook request arrives, before anything else is done with it.
#: Keyword arguments: ``request``, ``kind`` (``"implicit"``, ``"explicit"`` or ``"create"``).
webhook_received = _signals.signal("webhook-received")

#: Sent when a webhook request is refused with any 4xx or 5xx answer.
#: Keyword arguments: ``error`` (the machine code), ``status``, ``stubref``, ``action_name``
#: (``None`` where not known).
webhook_rejected = _signals.signal("webhook-rejected")

#: Sent inside the transaction, before the commit. A receiver may raise
#: :class:`~flask_stubber.ActionRejected` to veto the action; everything is rolled back.
#: Keyword arguments: ``stub``, ``action_name``, ``payload``, ``from_state``, ``to_state``, ``source``.
action_executing = _signals.signal("action-executing")

#: Sent after the commit only, never for rolled-back work. A receiver that raises is
#: logged; the work stays committed. Keyword arguments: ``stub``, ``action_name``,
#: ``payload``, ``from_state``, ``to_state``, ``post``, ``source``.
action_executed = _signals.signal("action-executed")
