"""A pooled PostgreSQL connection that the server dropped is replaced on checkout, not handed out dead."""

from sqlalchemy import func, select, text

from bot.persistence.db import make_engine


def _drop_pooled_connection(engine, pg_url) -> int:  # type: ignore[no-untyped-def]
    """Pool one connection of `engine`, then have the server end it, as a restart or an outage would;
    returns its backend pid."""
    with engine.connect() as conn:
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
    admin = make_engine(pg_url)
    with admin.connect() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar() is True
    admin.dispose()
    return pid


def test_a_connection_killed_by_the_server_is_replaced_before_use(pg_url):
    engine = make_engine(pg_url)
    try:
        first_pid = _drop_pooled_connection(engine, pg_url)
        # the next checkout gets a live connection and the statement succeeds
        with engine.connect() as conn:
            second_pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        assert second_pid != first_pid
    finally:
        engine.dispose()


def test_a_transition_on_a_dropped_connection_runs_again_on_a_live_one(pg_url, monkeypatch):
    # in_transaction skips the checkout ping (a round trip per transition): a dropped connection fails the
    # first statement before anything is written, and the work runs once more on a checked connection.
    from bot.persistence import direct
    from bot.persistence.direct import in_transaction

    attempts: list[bool] = []
    original = direct.direct_transaction

    def counted(engine, **kw):  # type: ignore[no-untyped-def]
        attempts.append(kw.get("_ping", True))
        return original(engine, **kw)

    monkeypatch.setattr(direct, "direct_transaction", counted)

    engine = make_engine(pg_url)
    try:
        first_pid = _drop_pooled_connection(engine, pg_url)
        runs: list[int] = []

        def work(connection):  # type: ignore[no-untyped-def]
            pid = connection.scalar(select(func.pg_backend_pid()))
            runs.append(pid)
            return pid

        second_pid = in_transaction(engine, work)
        assert second_pid != first_pid
        assert attempts == [False, True]  # unpinged first, dropped; then on a connection the pool checked
        assert len(runs) == 1  # the first attempt failed on its first statement, before work() got a pid
        assert engine.pool.checkedout() == 0  # the dead connection was not kept
    finally:
        engine.dispose()


def test_a_read_on_a_dropped_connection_runs_again_on_a_live_one(pg_url, monkeypatch):
    from bot.persistence import direct
    from bot.persistence.direct import in_read

    attempts: list[bool] = []
    original = direct.direct_transaction
    monkeypatch.setattr(direct, "direct_transaction",
                        lambda engine, **kw: attempts.append(kw.get("_ping", True)) or original(engine, **kw))
    engine = make_engine(pg_url)
    try:
        first_pid = _drop_pooled_connection(engine, pg_url)
        assert in_read(engine, lambda connection: connection.scalar(select(func.pg_backend_pid()))) != first_pid
        assert attempts == [False, True] and engine.pool.checkedout() == 0
    finally:
        engine.dispose()


def test_reads_run_outside_a_transaction_and_leave_the_pooled_connection_transactional(pg_url):
    """No BEGIN and no ROLLBACK for a read (two of its three round trips); the next writer on the same pooled
    connection still gets a transaction."""
    from bot.persistence.direct import in_read, in_transaction

    def two_nows(connection):  # type: ignore[no-untyped-def]
        # now() is the transaction's start: it moves between statements only outside a transaction.
        first = connection.scalar(select(func.now()))
        connection.execute(select(func.pg_sleep(0.02)))
        return first, connection.scalar(select(func.now())), connection.scalar(select(func.pg_backend_pid()))

    engine = make_engine(pg_url)
    try:
        first, later, read_pid = in_read(engine, two_nows)
        assert later > first
        start, same, write_pid = in_transaction(engine, two_nows)
        assert same == start and write_pid == read_pid  # the same pooled connection, in a transaction again
        with engine.connect() as conn:
            assert conn.connection.dbapi_connection.autocommit is False
    finally:
        engine.dispose()
