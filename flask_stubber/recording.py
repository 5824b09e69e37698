"""Recording an execution: the stub's new state and data and its post, in as few round trips as possible.

The session's unit of work would send the stub's ``UPDATE`` and the post's ``INSERT`` as two
statements and spend more time deciding what to send than sending them. The recorder sends
statements built once instead: on PostgreSQL a single ``WITH ... UPDATE ... INSERT`` statement
(one round trip), elsewhere an ``UPDATE`` and an ``INSERT``. It then tells the session that
the values are stored, so the stub stays persistent and unchanged and the post becomes a
persistent object; anything else a handler changed is flushed by the session as usual, in
the same transaction.

Where those statements cannot stand in for a flush (a version counter on the stub model,
mapper events on either model, or session flush events, which Flask-SQLAlchemy's
``SQLALCHEMY_TRACK_MODIFICATIONS`` adds) the engine records through the unit of work.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, inspect, update
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

_STUB_COLUMNS = ("state", "data", "updated_at")
_POST_COLUMNS = ("stub_id", "action_name", "source", "from_state", "to_state", "data", "delivery_id", "created_at")
# Parameter names that match no column: Core adds parameters named like a column to the SET clause.
_STUB_PARAM = "stubber_stub_{}"
_POST_PARAM = "stubber_post_{}"


class Recorder:
    """Writes one execution's stub change and post for one pair of models.

    :param stub_model: The stub model.
    :param post_model: The post model.
    :param dialect: The database's dialect; PostgreSQL gets the single statement.
    """

    def __init__(self, stub_model: Any, post_model: Any, dialect: Dialect) -> None:
        self.stub_mapper = inspect(stub_model)
        self.post_mapper = inspect(post_model)
        self.post_model = post_model
        stubs = stub_model.__table__
        posts = post_model.__table__
        self.change = update(stubs).where(stubs.c.id == bindparam(_STUB_PARAM.format("pk"))).values(
            {name: bindparam(_STUB_PARAM.format(name)) for name in _STUB_COLUMNS}
        )
        self.add = insert(posts).values({name: bindparam(_POST_PARAM.format(name)) for name in _POST_COLUMNS})
        self.returning = dialect.insert_returning
        if self.returning:
            self.add = self.add.returning(posts.c.id)
        self.combined = dialect.name == "postgresql"
        if self.combined:
            self.add = self.add.add_cte(self.change.cte("stubber_stub_change"))

    def usable(self, session: Session) -> bool:
        """Return whether the statements can stand in for a flush of the stub and post in ``session``."""
        stub, post, flush = self.stub_mapper.dispatch, self.post_mapper.dispatch, session.dispatch
        return not (
            self.stub_mapper.version_id_col is not None
            or stub.before_update or stub.after_update or post.before_insert or post.after_insert
            or flush.before_flush or flush.after_flush or flush.after_flush_postexec
        )

    def record(self, session: Session, stub: Any, values: dict[str, Any], now: datetime) -> Any:
        """Store ``stub``'s state and data with ``updated_at = now``, insert its post; return the post.

        :param values: The post's columns except ``created_at``, which is ``now``.
        """
        post_values = {**values, "created_at": now}
        stub_values = {"state": stub.state, "data": stub.data, "updated_at": now}
        params = {_POST_PARAM.format(name): value for name, value in post_values.items()}
        params.update({_STUB_PARAM.format(name): value for name, value in stub_values.items()})
        params[_STUB_PARAM.format("pk")] = stub.id
        connection = session.connection(bind_arguments={"mapper": self.stub_mapper})
        if not self.combined:
            connection.execute(self.change, params)
        result = connection.execute(self.add, params)
        post_id = result.scalar_one() if self.returning else result.inserted_primary_key[0]  # type: ignore[index]
        for name, value in stub_values.items():
            set_committed_value(stub, name, value)
        post = self.post_model(id=post_id, **post_values)
        make_transient_to_detached(post)
        session.add(post)
        return post
