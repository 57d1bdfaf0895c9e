"""Core statements run straight on the DBAPI cursor, for the workflow's hot path (a transition).

A transition is a handful of small statements. Through a SQLAlchemy Connection each one costs about
40 µs of Python (execution context, events, result set-up) and the transaction another 150 µs (pool,
begin, reset), several times what SQLite needs for the statement itself. SQLite lets one writer in
at a time, so that Python time is everyone's wait. Here a statement is compiled by SQLAlchemy once per
dialect and then run on the driver's cursor with SQLAlchemy's own type conversions (UTC datetimes,
JSON), and driver errors are raised as SQLAlchemy's. `DirectConnection` offers the slice of
Connection's interface the workflow's helpers use (execute, scalar, scalars, dialect).
"""

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement

from bot.persistence.db import skip_checkout_ping

T = TypeVar("T")


class _Prepared:
    """One statement compiled for one dialect, with the bind and result conversions of its types."""

    def __init__(self, statement: ClauseElement, dialect: Dialect, keys: tuple[str, ...] | None) -> None:
        # An INSERT's columns are the ones its rows name, as with Connection.execute; an IN list is
        # spelled out (only statements built per call carry one, see prepared_for).
        self.compiled = statement.compile(dialect=dialect, column_keys=list(keys) if keys is not None else None,
                                          compile_kwargs={"render_postcompile": True})
        self.sql = self.compiled.string
        binds = self.compiled.binds
        everything = self.compiled.construct_params(_check=False)
        self.order = self.compiled.positiontup if dialect.positional else None
        self.required = {bind.key for bind in binds.values() if bind.required}
        # The statement's own values (`version + 1`, `.values(note=None)`, an IN list's items); every
        # other parameter comes from the caller.
        self.constants = {name: value for name, value in everything.items() if name not in self.required}
        # Column defaults an INSERT's row may leave out (`text=""`, `data=dict`), filled per row.
        table = getattr(statement, "table", None)
        self.defaults = {column.key: column.default for column in (table.columns if statement.is_insert else ())
                         if column.default is not None and column.key in everything}
        for name in self.defaults:
            self.constants.pop(name, None)

        def processor(name: str):  # type: ignore[no-untyped-def]
            bind = binds.get(name)
            if bind is None:
                bind = binds.get(name.rsplit("_", 1)[0])  # an item of an IN list: the list's type
            return bind.type.dialect_impl(dialect).bind_processor(dialect) if bind is not None else None

        self.binds = {name: proc for name in everything if (proc := processor(name)) is not None}
        selected = getattr(statement, "selected_columns", None)
        if selected is None and getattr(statement, "_returning", None):
            selected = statement._returning  # type: ignore[attr-defined]
        self.columns = [(column.key, column.type.dialect_impl(dialect).result_processor(dialect, None))
                        for column in (selected or ())]

    def parameters(self, params: dict[str, Any] | None) -> Sequence[Any] | dict[str, Any]:
        params = params or {}
        if not self.required <= params.keys():
            self.compiled.construct_params(params)  # raises SQLAlchemy's error naming the missing value
        values = {**self.constants, **params}
        for name, default in self.defaults.items():
            if name not in params:
                values[name] = default.arg(None) if default.is_callable else default.arg
        for name, proc in self.binds.items():
            if name in values:
                values[name] = proc(values[name])
        return values if self.order is None else tuple(values[name] for name in self.order)

    def row(self, raw: Sequence[Any]) -> dict[str, Any]:
        return {key: (proc(value) if proc else value) for (key, proc), value in zip(self.columns, raw)}


class DirectResult:
    def __init__(self, rows: list[dict[str, Any]], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def all(self) -> list[dict[str, Any]]:
        return self._rows

    def mappings(self) -> "DirectResult":
        return self  # the rows are dicts already, as Core's mappings() are dict-like

    def scalar(self) -> Any:
        return next(iter(self._rows[0].values())) if self._rows else None

    def scalars(self) -> list[Any]:
        return [next(iter(row.values())) for row in self._rows]


class DirectConnection:
    """Statements of one transaction on a DBAPI cursor; rows come back as dicts keyed like Core's."""

    def __init__(self, cursor: Any, dialect: Dialect) -> None:
        self._cursor = cursor
        self.dialect = dialect

    def execute(self, statement: ClauseElement, params: dict[str, Any] | list[dict[str, Any]] | None = None
                ) -> DirectResult:
        first = params[0] if isinstance(params, list) else params
        prepared = prepared_for(statement, self.dialect, tuple(first) if first and statement.is_dml else None)
        try:
            if isinstance(params, list):
                self._cursor.executemany(prepared.sql, [prepared.parameters(p) for p in params])
            else:
                self._cursor.execute(prepared.sql, prepared.parameters(params))
            rows = [prepared.row(r) for r in self._cursor.fetchall()] if self._cursor.description else []
        except self.dialect.loaded_dbapi.Error as exc:
            error = DBAPIError.instance(prepared.sql, params, exc, self.dialect.loaded_dbapi.Error,
                                        connection_invalidated=self.dialect.is_disconnect(exc, self._cursor.connection, self._cursor))
            raise error from exc
        return DirectResult(rows, self._cursor.rowcount)

    def scalar(self, statement: ClauseElement) -> Any:
        return self.execute(statement).scalar()

    def scalars(self, statement: ClauseElement) -> list[Any]:
        return self.execute(statement).scalars()


# The hot statements are module-level objects, built once: their compiled forms are kept here by
# identity. A statement built per call (a rare check) is compiled per call and not kept.
_PREPARED: dict[tuple[int, str, tuple[str, ...] | None], tuple[ClauseElement, _Prepared]] = {}


def prepared_for(statement: ClauseElement, dialect: Dialect, keys: tuple[str, ...] | None = None) -> _Prepared:
    key = (id(statement), dialect.name, keys)
    hit = _PREPARED.get(key)
    if hit is not None and hit[0] is statement:
        return hit[1]
    prepared = _Prepared(statement, dialect, keys)
    if getattr(statement, "_direct_keep", False):
        _PREPARED[key] = (statement, prepared)
    return prepared


def keep_prepared(statement: ClauseElement) -> ClauseElement:
    """Mark a long-lived statement so its compiled form is kept (by identity) after first use.

    Its values must all come as parameters: a kept statement with an IN list would keep that list."""
    statement._direct_keep = True  # type: ignore[attr-defined]
    return statement


@contextmanager
def direct_transaction(engine: Engine, *, read_only: bool = False, _ping: bool = True
                       ) -> Iterator[DirectConnection]:
    """One transaction on a pooled DBAPI connection: committed at the end, rolled back on error.

    On SQLite a writing transaction begins IMMEDIATE (the write lock at once, as the engine's own write
    transactions do); a read-only one reads a snapshot and never waits for a writer."""
    token = skip_checkout_ping.set(not _ping)
    try:
        raw = engine.raw_connection()
    finally:
        skip_checkout_ping.reset(token)
    # PostgreSQL reads without a transaction: no BEGIN and no ROLLBACK, two of a read's three round trips.
    autocommit = read_only and engine.dialect.name == "postgresql"
    try:
        cursor = raw.cursor()
        if engine.dialect.name == "sqlite":
            cursor.execute("BEGIN" if read_only else "BEGIN IMMEDIATE")
        elif autocommit:
            raw.dbapi_connection.autocommit = True
        yield DirectConnection(cursor, engine.dialect)
        raw.commit()  # a failure here is not retried by in_transaction: the transaction may have committed
    except BaseException as exc:
        if _is_disconnect(engine, exc, raw.dbapi_connection):
            raw.invalidate()  # never back into the pool
            autocommit = False
        else:
            raw.rollback()
        raise
    finally:
        if autocommit:
            raw.dbapi_connection.autocommit = False  # the pool's connections are transactional
        raw.close()


def in_transaction(engine: Engine, work: Callable[[DirectConnection], T], *, read_only: bool = False) -> T:
    """`work` in one transaction (a write transaction unless `read_only`, see in_read); returns its result.

    A pooled connection is not pinged before use (a round trip per transition, a sixth of one on
    PostgreSQL): if the server dropped it, the first statement fails before anything is written, and the
    work runs once more on a connection the pool checks first."""
    for ping in (False, True):
        try:
            with direct_transaction(engine, read_only=read_only, _ping=ping) as connection:
                return work(connection)
        except DBAPIError as exc:
            if ping or not exc.connection_invalidated:
                raise
    raise AssertionError("unreachable")


def in_read(engine: Engine, work: Callable[[DirectConnection], T]) -> T:
    """`work`'s reads: on PostgreSQL each statement sees what is committed when it runs (no transaction), on
    SQLite one snapshot that never waits for a writer. For what is shown or checked again before anything is
    written (a quote, the buyer's orders). A dropped connection is handled as in in_transaction."""
    return in_transaction(engine, work, read_only=True)


def _is_disconnect(engine: Engine, exc: BaseException, dbapi_connection: Any) -> bool:
    orig = getattr(exc, "orig", exc)
    dbapi_error = engine.dialect.loaded_dbapi.Error
    return isinstance(orig, dbapi_error) and engine.dialect.is_disconnect(orig, dbapi_connection, None)
