"""Engine and sessions: one place that knows how to connect (SQLite in WAL mode, or PostgreSQL)."""

from collections.abc import Callable
from contextvars import ContextVar
from datetime import datetime, timedelta, timezone

from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

from bot.domain.errors import ClockLocked
from bot.persistence.models import AppClock


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets WAL, a busy timeout and foreign keys."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            # Let SQLAlchemy issue BEGIN so that "BEGIN IMMEDIATE" serialises writers.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin_immediate(conn):  # type: ignore[no-untyped-def]
            # Take the write lock at the start: read-then-write races turn into waits, not errors.
            # Pure reads (read_only=True) stay deferred so they never wait for a writer under WAL.
            read_only = conn.get_execution_options().get("read_only", False)
            conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    engine = create_engine(url, pool_size=10, max_overflow=20)
    if engine.dialect.driver == "psycopg":
        event.listen(engine, "checkout", _ping_on_checkout)
    return engine


# Set by a caller that handles a dropped connection itself (bot.persistence.direct.in_transaction).
skip_checkout_ping: ContextVar[bool] = ContextVar("skip_checkout_ping", default=False)


def _ping_on_checkout(dbapi_connection, _record, _proxy) -> None:  # type: ignore[no-untyped-def]
    """Pessimistic disconnect handling: a pooled connection that PostgreSQL dropped (restart, outage)
    is replaced before use instead of failing the request. This is pool_pre_ping with libpq's empty
    query instead of a cursor's SELECT 1, which cost a sixth of a workflow transition's client CPU."""
    if skip_checkout_ping.get():
        return
    from psycopg.pq import ConnStatus, ExecStatus

    pgconn = dbapi_connection.pgconn
    try:
        alive = pgconn.status == ConnStatus.OK and pgconn.exec_(b"").status == ExecStatus.EMPTY_QUERY
    except Exception:  # noqa: BLE001 - any failure of the probe means the connection is gone
        alive = False
    if not alive:
        raise DisconnectionError("connection to PostgreSQL lost; the pool replaces it")


SessionFactory = Callable[[], Session]


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


class DbOffsetClock:
    """Real time plus an offset kept in the database, so `bot clock advance` moves every process."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._engine: Engine = sessions.kw["bind"]

    def offset(self) -> timedelta:
        # Its own read-only connection: now() is called inside writers' transactions.
        with self._engine.connect() as conn:
            conn = conn.execution_options(read_only=True)
            seconds = conn.execute(select(AppClock.offset_seconds).where(AppClock.id == 1)).scalar()
            return timedelta(seconds=seconds or 0.0)

    def now(self) -> datetime:
        return datetime.now(timezone.utc) + self.offset()

    def advance(self, delta: timedelta, *, production: bool) -> datetime:
        """Move the application's clock forward; refused in the production profile."""
        if production:
            raise ClockLocked("the production profile keeps real time; the clock cannot be moved")
        with self._sessions() as session, session.begin():
            row = session.get(AppClock, 1)
            if row is None:
                row = AppClock(id=1, offset_seconds=0.0)
                session.add(row)
            row.offset_seconds += delta.total_seconds()
        return self.now()
