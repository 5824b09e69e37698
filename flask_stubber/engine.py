"""The execution engine: lock, check, validate, handle, record, commit, signal.

The engine knows nothing of HTTP requests. One execution is one database
transaction on the host's ``db.session``; every failure rolls all of it back.
Executions on one stub are serialized by a row lock (``SELECT ... FOR UPDATE``
on PostgreSQL and MySQL/MariaDB; on SQLite the first statement is a write, which
takes the database's write lock before the stub is read).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import marshmallow
from flask import current_app
from sqlalchemy import String, bindparam, inspect, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified

from . import signals
from .errors import (
    ActionNotFound,
    ActionNotInState,
    InternalError,
    MethodNotAllowed,
    StubberError,
    StubNotFound,
    Unavailable,
    ValidationFailed,
)
from .models import Models, new_stubref, normalize_stubref, utcnow
from .recording import Recorder
from .tasks import TaskContext, substitute
from .templates import CompiledAction, CompiledTemplate, WebhookOptions

if TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy

    from .extension import StubberWebhooks

logger = logging.getLogger("flask_stubber")

#: SQLSTATEs and MySQL error numbers after which a transaction is simply tried again.
_RETRYABLE = {"40001", "40P01", 1213, 1205}
#: Unique keys whose collision means "another transaction won a race": try again.
_RETRYABLE_UNIQUE = ("stubref", "deliveries")
_ATTEMPTS = 3
#: ``session.info`` key of the notifications waiting for the open execution's commit.
_PENDING = "flask_stubber.after_commit"


class EngineHooks(Protocol):
    """Checks the webhook pipeline runs around one engine call (see :meth:`Engine.bind`)."""

    @property
    def early(self) -> bool:
        """Whether :meth:`admit` should also be called before the transaction, from a plain read."""

    def admit(self, auth: str | None, scope: str | None) -> None:
        """Called once the target is known, before anything is checked or written.

        :param auth: The verifier the target names, or ``None``.
        :param scope: ``<stubref>/<action>`` or ``create/<template>``; ``None`` when the
            target does not exist.
        """

    def record(self, outcome: Outcome) -> None:
        """Called inside the transaction, just before the commit."""

    def delivery_id(self) -> str | None:
        """The request's delivery id, recorded on the post."""


@dataclass
class ActionContext:
    """What an action handler sees besides the stub and the payload.

    A handler may set :attr:`to_state` to one of :attr:`targets`.
    """

    #: The stub, locked for this transaction.
    stub: Any
    #: The stub's compiled template.
    template: CompiledTemplate
    #: The compiled action being executed.
    action: CompiledAction
    #: The validated payload.
    payload: dict[str, Any]
    #: Where the execution came from: ``webhook``, ``api``, ``cli``...
    source: str
    #: The stub's state before the action.
    from_state: str
    #: The state the action moves to; ``None`` until a handler picks one of several targets.
    to_state: str | None
    #: The delivery id of the request, where there is one.
    delivery_id: str | None = None
    #: The results of the action's tasks so far, by task name.
    results: dict[str, Any] = field(default_factory=dict)
    #: Callables run after the commit, such as the ``stub_created`` signals of created stubs.
    after_commit: list[Callable[[], None]] = field(default_factory=list)

    @property
    def targets(self) -> tuple[str, ...]:
        """The states this action may move to."""
        return self.action.targets


@dataclass
class Outcome:
    """The result of one execution, captured before the commit."""

    stubref: str
    action_name: str
    post_id: int | None
    state: str
    data: dict[str, Any]
    results: dict[str, Any]
    stub: Any
    post: Any
    #: The ``webhooks`` options of the action that ran, which shape the HTTP answer.
    webhooks: WebhookOptions = field(default_factory=WebhookOptions)

    def body(self, synchronous: bool = False) -> dict[str, Any]:
        """Return the success body: ``success``, ``stubref``, ``action_name``, ``post_id``,
        and with ``synchronous`` the stub's ``state`` and ``data``."""
        body: dict[str, Any] = {
            "success": True,
            "stubref": self.stubref,
            "action_name": self.action_name,
            "post_id": self.post_id,
        }
        if synchronous:
            body["state"] = self.state
            body["data"] = self.data
        return body

    def context(self) -> dict[str, Any]:
        """Return the ``~~`` substitution context: ``stub``, ``stubpost`` and ``tasks``."""
        return {
            "stub": {"stubref": self.stubref, "state": self.state, "data": self.data},
            "stubpost": {"data": self.post.data if self.post is not None else {}, "id": self.post_id},
            "tasks": self.results,
        }


class Engine:
    """Runs actions and creates stubs for one application.

    :param ext: The extension, which holds templates, schemas, handlers and tasks.
    :param db: The host's Flask-SQLAlchemy extension.
    :param models: The model classes, from :func:`~flask_stubber.models.get_models`.
    """

    def __init__(self, ext: StubberWebhooks, db: SQLAlchemy, models: Models) -> None:
        self.ext = ext
        self.db = db
        self.models = models
        self.stub_model = models.stub
        self.post_model = models.post
        self.hooks: EngineHooks | None = None
        #: Built once and shared with the bound copies: the dialect name, the lock statement, the recorder.
        self._cache: dict[str, Any] = {}

    def bind(self, hooks: EngineHooks) -> Engine:
        """Return a copy of this engine whose operations call ``hooks``; for one request."""
        bound = copy.copy(self)
        bound.hooks = hooks
        return bound

    @property
    def session(self) -> Session:
        session: Session = self.db.session()
        return session

    def dialect(self) -> str:
        """Return the dialect name of the stub table's database, looked up once."""
        if "dialect" not in self._cache:
            self._cache["dialect"] = self.session.get_bind(mapper=inspect(self.stub_model)).dialect.name
        name: str = self._cache["dialect"]
        return name

    # -- reading -----------------------------------------------------------------

    def get_stub(self, stubref: str) -> Any:
        """Return the stub with ``stubref`` (any case), or ``None``."""
        ref = normalize_stubref(stubref)
        if ref is None:
            return None
        return self.session.scalars(select(self.stub_model).where(self.stub_model.stubref == ref)).first()

    def _lock(self, stubref: str) -> Any:
        ref = normalize_stubref(stubref)
        if ref is None:
            raise StubNotFound(f"No stub has the stubref {stubref!r}.")
        stub = self.session.scalars(self._lock_statement(), {"stubref": ref}).first()
        if stub is None:
            raise StubNotFound(f"No stub has the stubref {stubref!r}.")
        return stub

    @property
    def recorder(self) -> Recorder:
        """The :class:`~flask_stubber.recording.Recorder` of this engine's models, built once."""
        if "recorder" not in self._cache:
            bind = self.session.get_bind(mapper=inspect(self.stub_model))
            self._cache["recorder"] = Recorder(self.stub_model, self.post_model, bind.dialect)
        recorder: Recorder = self._cache["recorder"]
        return recorder

    def _lock_statement(self) -> Any:
        """Return the statement that locks and reads one stub, built once.

        Building a statement costs more than running a cached one, so it is built with a
        bound ``stubref`` parameter on first use and reused for every execution.
        """
        if "lock" not in self._cache:
            model = self.stub_model
            ref = bindparam("stubref", type_=String)
            if self.dialect() == "sqlite":
                stmt: Any = update(model).where(model.stubref == ref).values(stubref=model.stubref).returning(model)
            else:
                stmt = select(model).where(model.stubref == ref).with_for_update()
            self._cache["lock"] = stmt.execution_options(populate_existing=True)
        return self._cache["lock"]

    # -- running ------------------------------------------------------------------

    def run_action(
        self,
        stubref: str,
        action_name: str,
        payload: Mapping[str, Any] | None,
        *,
        source: str,
        webhook: bool = False,
        method: str | None = None,
        delivery_id: str | None = None,
        before_commit: Callable[[Outcome], None] | None = None,
        lid: str | None = None,
        before_execute: Callable[[Any], None] | None = None,
    ) -> Outcome:
        """Execute ``action_name`` on the stub ``stubref`` in one transaction.

        :param payload: The unvalidated payload.
        :param source: Recorded on the post: ``webhook``, ``api``, ``cli``...
        :param webhook: Require ``webhooks.enable`` (implicit webhooks).
        :param method: The HTTP method, checked against the action's ``methods``.
        :param delivery_id: The delivery id recorded on the post.
        :param before_commit: Called with the outcome inside the transaction, to record
            more rows (such as a delivery) atomically with the action.
        :param lid: The uuid of the explicit webhook that runs the action: the action then
            receives ``{"lid": lid, "payload": <validated payload>}``.
        :param before_execute: Called with the locked stub inside the transaction, before
            anything is checked; it may raise to refuse (explicit webhooks consume themselves here).
        """
        def attempt() -> tuple[Outcome, ActionContext]:
            return self._execute(
                stubref, action_name, dict(payload or {}), source=source, webhook=webhook,
                method=method, delivery_id=delivery_id, before_commit=before_commit,
                lid=lid, before_execute=before_execute,
            )

        outcome: Outcome
        ctx: ActionContext
        if self.hooks is not None and self.hooks.early:
            self.transaction(lambda: self._admit_early(stubref, action_name))
        outcome, ctx = self.transaction(attempt)
        app = current_app._get_current_object()  # type: ignore[attr-defined]

        def executed() -> None:
            try:
                signals.action_executed.send(
                    app, stub=outcome.stub, action_name=action_name, payload=ctx.payload,
                    from_state=ctx.from_state, to_state=outcome.state, post=outcome.post, source=source,
                )
            except Exception:
                logger.exception("A receiver of action_executed failed; the action stays committed.")

        self.notify([*ctx.after_commit, executed])
        return outcome

    def _admit_early(self, stubref: str, action_name: str) -> None:
        """Run the hooks' checks from a plain read, before the row lock is taken."""
        assert self.hooks is not None
        ref = normalize_stubref(stubref)
        model = self.stub_model
        found = self.session.execute(
            select(model.stubref, model.template).where(model.stubref == ref)
        ).first() if ref is not None else None
        template = self.ext.get_template(found.template) if found is not None else None
        action = template.actions.get(action_name) if template is not None else None
        if found is None or action is None:
            self.hooks.admit(None, None)
        else:
            self.hooks.admit(action.webhooks.auth, f"{found.stubref}/{action_name}")

    def _execute(
        self,
        stubref: str,
        action_name: str,
        payload: dict[str, Any],
        *,
        source: str,
        webhook: bool,
        method: str | None,
        delivery_id: str | None,
        before_commit: Callable[[Outcome], None] | None,
        lid: str | None,
        before_execute: Callable[[Any], None] | None,
    ) -> tuple[Outcome, ActionContext]:
        try:
            stub = self._lock(stubref)
        except StubNotFound:
            if self.hooks is not None:
                self.hooks.admit(None, None)
            raise
        template = self.ext.get_template(stub.template)
        action = template.actions.get(action_name) if template is not None else None
        if self.hooks is not None:
            self.hooks.admit(*((action.webhooks.auth, f"{stub.stubref}/{action_name}") if action else (None, None)))
            delivery_id = delivery_id or self.hooks.delivery_id()
        if before_execute is not None:
            before_execute(stub)
        if template is None or action is None or (webhook and not action.webhooks.enable):
            raise ActionNotFound(f"The stub {stub.stubref} has no action {action_name!r} that a webhook can run.")
        if method is not None and method not in action.webhooks.methods:
            raise MethodNotAllowed(
                f"The action {action_name!r} accepts {' and '.join(action.webhooks.methods)}, not {method}."
            )
        if action_name not in template.states.get(stub.state, ()):
            available = (
                template.webhook_actions(stub.state) if webhook or lid is not None
                else list(template.states.get(stub.state, ()))
            )
            raise ActionNotInState(
                f"The action {action_name!r} is not available in the state {stub.state!r} of stub {stub.stubref}.",
                state=stub.state,
                available_actions=available,
            )
        inner = validate_payload(action, payload)
        validated = inner if lid is None else {"lid": lid, "payload": inner}
        on_root = action.webhooks.post_data_on_root
        stub.data = place_payload(stub.data, inner if on_root else validated, on_root=on_root)
        ctx = ActionContext(
            stub=stub, template=template, action=action, payload=validated, source=source,
            from_state=stub.state, to_state=action.targets[0] if len(action.targets) == 1 else None,
            delivery_id=delivery_id,
        )
        handler = self.ext.get_handler(template.name, action_name)
        if handler is not None:
            handler(stub, validated, ctx)
        if ctx.to_state is None and action.targets:
            raise InternalError(
                f"The action {action_name!r} of template {template.name!r} has several target states and no "
                "handler chose one; set ctx.to_state in an @stubber.action_handler."
            )
        if ctx.to_state is not None and ctx.to_state not in template.states:
            raise InternalError(f"The handler chose {ctx.to_state!r}, which is not a state of {template.name!r}.")
        self._run_tasks(ctx)
        to_state = ctx.to_state or ctx.from_state
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        signals.action_executing.send(
            app, stub=stub, action_name=action_name, payload=validated,
            from_state=ctx.from_state, to_state=to_state, source=source,
        )
        stub.state = to_state
        values = dict(
            stub_id=stub.id, action_name=action_name, source=source, from_state=ctx.from_state,
            to_state=to_state, data=validated, delivery_id=delivery_id,
        )
        if self.recorder.usable(self.session):
            post = self.recorder.record(self.session, stub, values, utcnow())
        else:
            stub.updated_at = utcnow()
            flag_modified(stub, "data")
            post = self.post_model(**values)
            self.session.add(post)
            self.session.flush()
        outcome = Outcome(
            stubref=stub.stubref, action_name=action_name, post_id=post.id, state=to_state,
            data=copy.deepcopy(stub.data), results=ctx.results, stub=stub, post=post,
            webhooks=action.webhooks,
        )
        if before_commit is not None:
            before_commit(outcome)
        if self.hooks is not None:
            self.hooks.record(outcome)
        return outcome, ctx

    def _run_tasks(self, ctx: ActionContext) -> None:
        task_ctx = TaskContext(engine=self, action=ctx, results=ctx.results)
        for task in ctx.action.tasks:
            context = {
                "stub": {"stubref": ctx.stub.stubref, "state": ctx.from_state, "data": ctx.stub.data},
                "stubpost": {"data": ctx.payload},
                "tasks": ctx.results,
            }
            params = substitute(dict(task.params), context)
            result = self.ext.get_task(task.tasktype)(task_ctx, params)
            ctx.results[task.name] = dict(result) if result is not None else {}

    # -- creating -----------------------------------------------------------------

    def insert_stub(
        self,
        template_name: str,
        data: Mapping[str, Any] | None,
        *,
        subject: str | None,
        source: str,
        notify: list[Callable[[], None]],
    ) -> Any:
        """Add a new stub to the session without committing; ``stub_created`` is queued on ``notify``."""
        template = self.ext.get_template(template_name)
        if template is None:
            raise ActionNotFound(f"No template named {template_name!r} is registered.")
        stub = self.stub_model(
            stubref=new_stubref(), template=template.name, state=template.start_state,
            data=copy.deepcopy(dict(data or {})), subject=subject,
        )
        self.session.add(stub)
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        notify.append(lambda: _send_created(app, stub, source))
        return stub

    def create_stub(
        self,
        template_name: str,
        data: Mapping[str, Any] | None = None,
        *,
        subject: str | None = None,
        source: str = "api",
        record: Mapping[str, Any] | None = None,
        delivery_id: str | None = None,
    ) -> Any:
        """Create a stub in its own transaction and return it.

        :param record: When given, a ``create`` post holding it is added to the history.
        """
        notify: list[Callable[[], None]] = []

        def attempt() -> Any:
            notify.clear()
            stub = self.insert_stub(template_name, data, subject=subject, source=source, notify=notify)
            if record is not None:
                self.record_creation(stub, record, source=source, delivery_id=delivery_id)
            self.session.flush()
            return stub

        stub = self.transaction(attempt)
        self.notify(notify)
        return stub

    def record_creation(
        self, stub: Any, record: Mapping[str, Any], *, source: str, delivery_id: str | None = None
    ) -> Any:
        """Add the ``create`` post (``from_state`` null) of a stub just inserted; returns the post, flushed."""
        self.session.flush()
        post = self.post_model(
            stub_id=stub.id, action_name="create", source=source, from_state=None,
            to_state=stub.state, data=dict(record), delivery_id=delivery_id,
        )
        self.session.add(post)
        self.session.flush()
        return post

    # -- transactions -------------------------------------------------------------

    def transaction(self, work: Callable[[], Any]) -> Any:
        """Run ``work`` and commit; roll back on any failure and map database errors.

        Deadlocks, serialization failures and stubref collisions are tried again. Called
        while another execution's transaction is open (a handler, task or receiver using the
        Python API), ``work`` joins that transaction: it commits or rolls back with it, and
        what it notifies is sent after that commit (see :meth:`notify`).
        """
        session = self.session
        if _PENDING in session.info:
            return work()
        for attempt in range(1, _ATTEMPTS + 1):
            session.info[_PENDING] = []
            try:
                result = work()
                session.commit()
            except StubberError:
                session.rollback()
                raise
            except IntegrityError as exc:
                session.rollback()
                if attempt == _ATTEMPTS or not any(key in str(exc.orig) for key in _RETRYABLE_UNIQUE):
                    logger.exception("A database integrity error rolled back the action.")
                    raise InternalError("The action could not be recorded; nothing was written.") from None
            except DBAPIError as exc:
                session.rollback()
                if attempt < _ATTEMPTS and _retryable(exc):
                    continue
                if isinstance(exc, OperationalError) or exc.connection_invalidated:
                    logger.exception("The database is unavailable.")
                    raise Unavailable("The database is unavailable; nothing was written. Try again later.") from None
                logger.exception("A database error rolled back the action.")
                raise InternalError("The action failed; nothing was written.") from None
            except Exception:
                session.rollback()
                logger.exception("A handler or receiver failed; the action was rolled back.")
                raise InternalError("The action failed; nothing was written.") from None
            else:
                for callback in session.info.pop(_PENDING):
                    callback()
                return result
            finally:
                session.info.pop(_PENDING, None)
        raise Unavailable("The database stayed busy; nothing was written. Try again later.")

    def notify(self, callbacks: list[Callable[[], None]]) -> None:
        """Send after-commit notifications now, or after the enclosing execution commits."""
        pending = self.session.info.get(_PENDING)
        if pending is not None:
            pending.extend(callbacks)
            return
        for callback in callbacks:
            callback()


def validate_payload(action: CompiledAction, payload: Mapping[str, Any]) -> dict[str, Any]:
    """Load ``payload`` with the action's schema.

    :raises ValidationFailed: with marshmallow's messages per field.
    """
    try:
        return action.load(payload)
    except marshmallow.ValidationError as exc:
        raise ValidationFailed(
            f"The payload for {action.name!r} is not valid; see 'errors'.", errors=exc.messages
        ) from None


def place_payload(data: Mapping[str, Any] | None, payload: Mapping[str, Any], *, on_root: bool) -> dict[str, Any]:
    """Return a copy of ``data`` with ``payload`` at ``payload``, or merged into the root when ``on_root``."""
    placed = copy.deepcopy(dict(data)) if data else {}
    if on_root:
        placed.update(payload)
    else:
        placed["payload"] = dict(payload)
    return placed


def _retryable(exc: DBAPIError) -> bool:
    orig = exc.orig
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if code in _RETRYABLE:
        return True
    args = getattr(orig, "args", ())
    if args and args[0] in _RETRYABLE:
        return True
    return "database is locked" in str(orig)


def _send_created(app: Any, stub: Any, source: str) -> None:
    try:
        signals.stub_created.send(app, stub=stub, source=source)
    except Exception:
        logger.exception("A receiver of stub_created failed; the stub stays committed.")
