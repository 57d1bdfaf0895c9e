"""A pooled PostgreSQL connection that the server dropped is replaced on checkout, not handed out dead."""

from sqlalchemy import text

from bot.persistence.db import make_engine


def test_a_connection_killed_by_the_server_is_replaced_before_use(pg_url):
    engine = make_engine(pg_url)
    try:
        with engine.connect() as conn:
            first_pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        # the server ends that (now idle, pooled) connection, as a restart or an outage would
        admin = make_engine(pg_url)
        with admin.connect() as conn:
            assert conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": first_pid}).scalar() is True
        admin.dispose()
        # the next checkout gets a live connection and the statement succeeds
        with engine.connect() as conn:
            second_pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        assert second_pid != first_pid
    finally:
        engine.dispose()
