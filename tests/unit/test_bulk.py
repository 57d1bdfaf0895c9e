"""bot.persistence.bulk: many rows in one statement on PostgreSQL, executemany elsewhere, same result."""

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from bot.persistence import bulk
from bot.persistence.models import AfterSale, Event, Outbox
from bot.services import after_sales
from bot.services.seed import seed_demo

AT = datetime(2026, 11, 20, 10, 30, tzinfo=timezone(timedelta(hours=8)))  # China time: stored as UTC


def _requests(svc, n: int) -> list[int]:
    """Up to four open requests of the demo shop (delivered orders of its three buyers)."""
    seed_demo(svc)
    orders = [("202611200000000104", 1), ("202611200000000107", 1), ("202611200000000201", 2),
              ("202611200000000301", 3)]
    return [after_sales.submit(svc, buyer_id=buyer, order_no=order_no, reason="quality").id
            for order_no, buyer in orders[:n]]


@pytest.mark.parametrize("n", [1, bulk.SMALL + 3])
def test_insert_many_writes_every_row_with_json_times_nulls_and_defaults(svc, n):
    rows = [dict(after_sale_id=None, order_id=None, at=AT + timedelta(seconds=i), actor=f"staff:{i}",
                 role="reviewer", action="note", from_status=None, to_status="requested" if i % 2 else None,
                 rule="test.bulk", reason=None if i % 3 else "原因：尺码'偏小\"", data={"i": i, "词": ["开线", None]})
            for i in range(n)]
    engine = svc.sessions.kw["bind"]
    with engine.begin() as conn:
        bulk.insert_many(conn, Event.__table__, rows)
    with svc.sessions() as session:
        got = session.scalars(select(Event).where(Event.rule == "test.bulk").order_by(Event.at)).all()
    assert [(e.actor, e.at, e.to_status, e.reason, e.data) for e in got] == \
        [(r["actor"], r["at"].astimezone(timezone.utc), r["to_status"], r["reason"], r["data"]) for r in rows]
    assert all(e.at.tzinfo is not None for e in got)


def test_insert_many_fills_scalar_defaults_the_rows_leave_out(svc):
    ids = _requests(svc, 1)
    rows = [dict(buyer_id=1, after_sale_id=ids[0], kind="agent_message", data={}, created_at=AT,
                 due_at=AT, dedupe_key=f"bulk:{i}") for i in range(bulk.SMALL + 1)]  # no "text": default ""
    with svc.sessions.kw["bind"].begin() as conn:
        bulk.insert_many(conn, Outbox.__table__, rows)
    with svc.sessions() as session:
        texts = session.scalars(select(Outbox.text).where(Outbox.dedupe_key.like("bulk:%"))).all()
    assert texts == [""] * (bulk.SMALL + 1)


def test_update_many_sets_values_bumps_versions_and_skips_rows_whose_version_moved(svc):
    ids = _requests(svc, 3)
    with svc.sessions() as session:
        versions = dict(session.execute(select(AfterSale.id, AfterSale.version).where(AfterSale.id.in_(ids))).all())
    # more rows than SMALL so that PostgreSQL takes the array statement: repeat the ids with stale versions
    rows = [dict(id=rid, version=versions[rid], status="awaiting_return", deadline_at=AT, last_reason_note="好")
            for rid in ids]
    stale = [dict(id=rid, version=versions[rid] + 7, status="closed", deadline_at=None, last_reason_note=None)
             for rid in ids for _ in range(3)]
    with svc.sessions.kw["bind"].begin() as conn:
        matched = bulk.update_many(conn, AfterSale.__table__, rows + stale)
    assert matched == len(ids)
    with svc.sessions() as session:
        got = session.scalars(select(AfterSale).where(AfterSale.id.in_(ids))).all()
    assert {(r.status, r.deadline_at, r.last_reason_note, r.version - versions[r.id]) for r in got} == \
        {("awaiting_return", AT.astimezone(timezone.utc), "好", 1)}
