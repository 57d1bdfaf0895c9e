"""bot.persistence.direct: statements on the driver's cursor behave as through a SQLAlchemy Connection."""

import sqlite3
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import ArgumentError, IntegrityError, InvalidRequestError, StatementError
from sqlalchemy.orm import Session

from bot.persistence import bulk, direct
from bot.persistence.db import make_engine
from bot.persistence.direct import direct_transaction, keep_prepared, prepared_for
from bot.persistence.migrate import upgrade
from bot.persistence.models import AfterSale, Buyer, Event, Order, Outbox, Shop

AT = datetime(2026, 11, 20, 10, 30, 15, 123456, tzinfo=timezone(timedelta(hours=8)))  # China time: stored as UTC
DATA = {"词": "开线了，尺码'偏小\"", "nested": {"list": [1, None, {"深": None}], "none": None}, "n": 1.5}
_T = AfterSale.__table__


@pytest.fixture
def engine(db_url):
    """A migrated database with one shop, buyer, order and open request (id 1, version 1)."""
    upgrade(db_url)
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(insert(Shop.__table__), dict(id=1, code="demo", name="店"))
        conn.execute(insert(Buyer.__table__), dict(id=1, name="买家", phone="13800000000"))
        conn.execute(insert(Order.__table__), dict(id=1, order_no="202611200000000104", shop_id=1, buyer_id=1,
                                                   state="received", payment="online", goods_fen=100, paid_fen=100,
                                                   created_at=AT))
        conn.execute(insert(_T), dict(id=1, order_id=1, buyer_id=1, kind="refund_only", status="requested",
                                      reason="quality", refund_fen=100, return_freight_payer="seller",
                                      rule_id="r", refund_route="original", preset="p", created_at=AT,
                                      updated_at=AT, version=1))
    yield engine
    engine.dispose()


def _event(**kw):
    return dict(after_sale_id=1, order_id=1, at=AT, actor="staff:1", role="reviewer", action="note",
                from_status=None, to_status=None, rule="test.direct", reason=None, data=DATA) | kw


def _notice(key):
    return dict(buyer_id=1, after_sale_id=1, kind="k", text="", data={}, created_at=AT, due_at=AT, dedupe_key=key)


def test_values_written_directly_read_back_identical_through_sqlalchemy(engine):
    # UTC conversion and JSON encoding are done by the column types' own processors; if direct.py
    # skipped them, SQLite would store China time as if UTC (8 hours off) or fail on a dict.
    with direct_transaction(engine) as conn:
        bulk.insert_many(conn, Event.__table__, [_event(actor="a"), _event(actor="b", at=AT + timedelta(days=1))])
        conn.execute(insert(Event.__table__), _event(actor="c", data={"空": None}))
        assert bulk.update_many(conn, _T, [dict(id=1, version=1, deadline_at=AT + timedelta(hours=2))]) == 1
    with Session(engine) as session:
        events = session.scalars(select(Event).order_by(Event.actor)).all()
        request = session.get(AfterSale, 1)
    assert [(e.actor, e.at, e.data) for e in events] == \
        [("a", AT, DATA), ("b", AT + timedelta(days=1), DATA), ("c", AT, {"空": None})]
    assert all(e.at.tzinfo is not None and e.at.utcoffset() == timedelta(0) for e in events)
    assert request.deadline_at == AT + timedelta(hours=2) and request.deadline_at.tzinfo is not None


def test_rows_read_directly_equal_sqlalchemys_rows(engine):
    # Workflow code reads rows by name (row["deadline_at"]) on either kind of connection: same keys,
    # same Python values (aware datetimes, dicts), labels included.
    with Session(engine) as session, session.begin():
        session.add(Event(**_event(at=AT - timedelta(minutes=5))))
        session.get(AfterSale, 1).deadline_at = AT + timedelta(hours=3)
    query = (select(Event.id, Event.at, Event.data, Event.at.label("when"), _T.c.deadline_at, _T.c.version)
             .join_from(Event.__table__, _T, _T.c.id == Event.after_sale_id).where(Event.actor == bindparam("actor")))
    with engine.connect() as conn:
        expected = [dict(row._mapping) for row in conn.execute(query, {"actor": "staff:1"})]
    with direct_transaction(engine, read_only=True) as conn:
        got = conn.execute(query, {"actor": "staff:1"}).all()
        at = conn.scalar(select(Event.at))
        deadlines = conn.scalars(select(_T.c.deadline_at))
    assert got == expected
    assert got[0]["at"] == got[0]["when"] == AT - timedelta(minutes=5) and got[0]["at"].utcoffset() == timedelta(0)
    assert got[0]["data"] == DATA and got[0]["deadline_at"] == AT + timedelta(hours=3)
    assert at.tzinfo is not None and deadlines == [AT + timedelta(hours=3)]


def test_update_applies_the_statements_own_version_bump_and_counts_no_match_as_zero(engine):
    # `version + 1` is a constant of the statement, not a caller's parameter; a stale version must match
    # nothing (rowcount 0), or two agents could both move the same request.
    with direct_transaction(engine) as conn:
        assert bulk.update_many(conn, _T, [dict(id=1, version=1, status="awaiting_return")]) == 1
        assert bulk.update_many(conn, _T, [dict(id=1, version=1, status="closed")]) == 0  # stale now
        assert bulk.update_and_insert(conn, _T, dict(id=1, version=1, status="closed"),
                                      [(Event.__table__, _event(actor="stale"))]) == 0
        assert bulk.update_and_insert(conn, _T, dict(id=1, version=2, status="refunding"),
                                      [(Event.__table__, _event(actor="fresh")), (Outbox.__table__, _notice("n"))]) == 1
    with Session(engine) as session:
        request = session.get(AfterSale, 1)
        actors = session.scalars(select(Event.actor)).all()
        notices = session.scalars(select(Outbox.dedupe_key)).all()
    assert (request.status, request.version) == ("refunding", 3)
    assert actors == ["fresh"] and notices == ["n"]  # the stale move inserted nothing


def test_unique_violation_is_sqlalchemys_integrity_error_and_rolls_the_block_back(engine):
    # Callers catch IntegrityError (a duplicate notice, a retried payout); a raw sqlite3/psycopg error
    # would escape them. And nothing of the failed transaction may stay, even what came before.
    with pytest.raises(IntegrityError) as caught, direct_transaction(engine) as conn:
        conn.execute(insert(Event.__table__), _event(actor="before"))
        conn.execute(insert(Outbox.__table__), _notice("same"))
        conn.execute(insert(Outbox.__table__), _notice("same"))
    assert "dedupe_key" in str(caught.value.orig)  # the driver's own error, kept as .orig
    with Session(engine) as session:
        assert session.scalars(select(Event.actor)).all() == []
        assert session.scalars(select(Outbox.dedupe_key)).all() == []
    with direct_transaction(engine) as conn:  # the pooled connection is clean for the next transaction
        conn.execute(insert(Outbox.__table__), _notice("same"))
    with Session(engine) as session:
        assert session.scalars(select(Outbox.dedupe_key)).all() == ["same"]


def _message(exc):
    """The error's own words, without the SQL text that a DBAPIError appends (which names every column)."""
    return str(getattr(exc, "orig", None) or exc)


def test_missing_parameter_is_an_error_naming_it_not_a_null(engine):
    # A forgotten value must not be written as NULL (or match NULL): the error has to say which one.
    errors = (StatementError, InvalidRequestError, ArgumentError)
    with pytest.raises(errors) as caught, direct_transaction(engine) as conn:
        conn.execute(select(Event.id).where(Event.id == bindparam("event_id")))
    assert "event_id" in _message(caught.value)
    with pytest.raises(errors) as caught, direct_transaction(engine) as conn:
        conn.execute(insert(Outbox.__table__), [_notice("a"), {k: v for k, v in _notice("b").items() if k != "kind"}])
    assert "kind" in _message(caught.value)
    with Session(engine) as session:
        assert session.scalars(select(Outbox.dedupe_key)).all() == []


def test_prepared_for_keeps_marked_statements_only(engine):
    # Hot statements are compiled once; a statement built per call must not be kept (the cache
    # would grow without bound and hold every one of them alive).
    dialect = engine.dialect
    hot = keep_prepared(select(Event.id).where(Event.after_sale_id == bindparam("request_id")))
    assert prepared_for(hot, dialect) is prepared_for(hot, dialect)
    per_call = select(Event.id).where(Event.after_sale_id == 1)
    first = prepared_for(per_call, dialect)
    assert prepared_for(per_call, dialect) is not first
    assert all(kept is not per_call for kept, _ in direct._PREPARED.values())
    # The same kept INSERT names different columns for different row shapes, and compiles per dialect.
    ins = keep_prepared(insert(Outbox.__table__))
    assert prepared_for(ins, dialect, ("buyer_id", "kind")) is not prepared_for(ins, dialect, ("buyer_id",))
    assert prepared_for(hot, sqlite.dialect()).sql != prepared_for(hot, postgresql.psycopg.dialect()).sql


def _other_writer(path):
    return sqlite3.connect(path, timeout=0.05, isolation_level=None)


def test_sqlite_writing_transaction_takes_the_write_lock_at_once(sqlite_url):
    # A deferred BEGIN would let two transitions read the same version and fail late with "locked";
    # a read-only one must not hold writers off, nor wait for them.
    upgrade(sqlite_url)
    engine = make_engine(sqlite_url)
    path = sqlite_url.removeprefix("sqlite:///")
    other = _other_writer(path)
    try:
        with direct_transaction(engine):
            with pytest.raises(sqlite3.OperationalError, match="database is locked"):
                other.execute("BEGIN IMMEDIATE")
        with direct_transaction(engine, read_only=True) as conn:
            other.execute("BEGIN IMMEDIATE")  # no error: the read-only transaction holds no write lock
            assert conn.scalars(select(Shop.code)) == []  # and it reads while the other one writes
            other.execute("ROLLBACK")
    finally:
        other.close()
        engine.dispose()


# ---- divergences from Connection.execute found while writing these tests (bugs in direct.py)


def test_insert_fills_column_defaults_the_row_leaves_out(engine):
    # Connection.execute fills Outbox.text="" and Event.data={} (bulk.insert_many documents this); the
    # compiled INSERT has binds for them with value None, which _Prepared neither fills nor reports.
    row = {k: v for k, v in _notice("d").items() if k != "text"}
    with direct_transaction(engine) as conn:
        conn.execute(insert(Outbox.__table__), row)
    with Session(engine) as session:
        assert session.scalars(select(Outbox.text)).all() == [""]


def test_update_applies_a_constant_none(engine):
    # `.values(last_reason_note=None)` binds None as a constant; _Prepared keeps only constants that are
    # not None, so the parameter goes missing (KeyError on SQLite, ProgrammingError on PostgreSQL).
    with engine.begin() as conn:
        conn.execute(update(_T).values(last_reason_note="旧"))
    with direct_transaction(engine) as conn:
        conn.execute(update(_T).where(_T.c.id == bindparam("rid")).values(last_reason_note=None), {"rid": 1})
    with Session(engine) as session:
        assert session.get(AfterSale, 1).last_reason_note is None


def test_in_list_of_a_statement_built_per_call(engine):
    # A rare check builds its statement per call, IN lists included (e.g. who approved a request);
    # the list must reach the database as its items, not as SQLAlchemy's placeholder.
    with direct_transaction(engine) as conn:
        bulk.insert_many(conn, Event.__table__, [_event(actor=a, action=x) for a, x in
                                                 (("r1", "approve_return"), ("r2", "check_online"), ("c", "note"))])
        approvers = conn.scalars(select(Event.actor).where(
            Event.after_sale_id == 1, Event.action.in_(["approve_return", "check_online"])).order_by(Event.actor))
        at = conn.scalars(select(Event.actor).where(Event.at.in_([AT, AT + timedelta(days=9)])))
    assert approvers == ["r1", "r2"]
    assert sorted(at) == ["c", "r1", "r2"]  # datetimes in the list are converted like any other (UTC)
