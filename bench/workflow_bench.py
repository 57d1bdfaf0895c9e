"""Workflow benchmark: one full timer sweep over a big backlog, and transitions per second against a raw-SQL floor.

For each backend (PostgreSQL in a fresh database it creates and drops; SQLite in a temporary file):
  1. migrate, seed the demo shop, then bulk-insert N open after-sales requests (orders, order lines, requests,
     request lines and their submit events, with the real tables' columns), D of them already due;
  2. time ONE full `sweep_due` (target: under 3 s on PostgreSQL); if it misses, run it again on the same
     backlog under cProfile with an SQL statement census, and print where the time goes;
  3. transitions/second of C clients (processes by default, --client-mode threads for one process)
     calling `after_sales.act(..., "approve_return")` on distinct requests, next to a floor measured in
     the same run the same way: C clients each doing a bare
     `UPDATE after_sales SET status=..., version=version+1 WHERE id=...` + `INSERT INTO events ...`,
     committed per transition (target: service >= 1/3 of the floor).

Prints the figures and appends a section to bench/RESULTS.md.

    .venv/app/bin/python bench/workflow_bench.py                 # 100,000 requests, 10,000 due, both backends
    .venv/app/bin/python bench/workflow_bench.py --requests 20000 --due 2000 --backends sqlite
"""

import argparse
import cProfile
import io
import multiprocessing
import os
import platform
import statistics
import pstats
import random
import re
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sqlalchemy  # noqa: E402
from sqlalchemy import bindparam, create_engine, event, func, insert, select, text, update  # noqa: E402
from sqlalchemy.orm import selectinload  # noqa: E402

from bot.clock import FakeClock  # noqa: E402
from bot.domain.workflow import Role  # noqa: E402
from bot.persistence.db import make_engine, make_session_factory  # noqa: E402
from bot.persistence.migrate import upgrade  # noqa: E402
from bot.persistence.models import (  # noqa: E402
    AfterSale, AfterSaleItem, Buyer, Event, Order, OrderItem, Outbox, Shop,
)
from bot.policy.loader import load_policy  # noqa: E402
from bot.services import after_sales  # noqa: E402
from bot.services.adapters import LocalCourierTracking, LocalPaymentGateway, LocalWarehouse  # noqa: E402
from bot.services.after_sales import Actor  # noqa: E402
from bot.services.context import Services  # noqa: E402
from bot.services.seed import seed_demo  # noqa: E402
from bot.services.timers import sweep_due  # noqa: E402
from bot.services import timers  # noqa: E402

RESULTS = ROOT / "bench" / "RESULTS.md"
PG_ADMIN_URL = os.environ.get("BOT_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SWEEP_TARGET_S = 3.0
RATIO_TARGET = 1 / 3
NOW = datetime(2026, 11, 20, 2, 0, tzinfo=timezone.utc)

CATALOG = [  # sku, name, spec, unit price fen, 居家馆
    ("TS-01", "纯棉短袖T恤", "白色 M", 5900, False), ("DR-07", "碎花连衣裙", "蓝色 S", 16900, False),
    ("SH-12", "帆布鞋", "黑色 38码", 12900, False), ("KN-03", "针织开衫", "米白 M", 19900, False),
    ("SK-05", "棉袜三双装", "混色 均码", 1990, False), ("JK-21", "牛仔外套", "浅蓝 L", 25900, False),
    ("PT-08", "休闲长裤", "卡其 L", 13900, False), ("HB-01", "纯棉四件套", "灰色 1.8m", 29900, True),
    ("CO-02", "羊毛大衣", "驼色 XL", 59900, False), ("BG-04", "帆布托特包", "黑色", 8900, False),
]
REASONS = ["quality", "size", "dislike", "wrong_item", "missing_item", "not_as_described", "color_difference", "other"]
WORDS = ["开线了，袖口有线头", "尺码偏小，穿不上", "不喜欢，七天无理由", "发错颜色了", "少发了一双袜子", "实物和图片不一样"]
# The due backlog cycles through every deadline kind the sweep knows: (status, deadline kind).
DUE_KINDS = [("requested", "review"), ("rejected", "escalate_after_rejection"), ("awaiting_return", "ship_back"),
             ("return_shipped", "confirm_receipt"), ("refund_refused", "escalate_after_refusal")]


# ---------------------------------------------------------------- backends


@contextmanager
def postgres(admin_url: str) -> Iterator[str]:
    name = f"bench_workflow_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def sqlite(directory: str | None = None) -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="bench_workflow_", dir=directory) as tmp:
        yield f"sqlite:///{Path(tmp) / 'bench.db'}"


def sync_cost_us(directory: Path, n: int = 200) -> float:
    """Median µs of a 4 KiB append + fsync in `directory`: what each SQLite commit waits for (synchronous=FULL).

    The floor's transaction is little more than that wait, so its rate, and the service/floor ratio, depend on
    the disk: on a disk that syncs fast the floor runs away from act()."""
    path = directory / "sync.probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        times = []
        for _ in range(n):
            started = time.perf_counter()
            os.write(fd, b"x" * 4096)
            os.fsync(fd)
            times.append(time.perf_counter() - started)
    finally:
        os.close(fd)
        path.unlink()
    return statistics.median(times) * 1e6


def services(url: str, clock: FakeClock) -> Services:
    return Services(sessions=make_session_factory(make_engine(url)), clock=clock, policies=load_policy,
                    payments=LocalPaymentGateway(), warehouse=LocalWarehouse(), couriers=LocalCourierTracking())


# ---------------------------------------------------------------- the backlog


def _with_defaults(table: sqlalchemy.Table, row: dict) -> dict:
    """Fill columns the generator did not name with the model's scalar or callable default."""
    for col in table.columns:
        if col.name not in row and col.default is not None:
            arg = col.default.arg
            row[col.name] = arg(None) if callable(arg) else arg
    return row


def backlog(n: int, due: int, shop_id: int, buyers: int, first_buyer: int, base: dict[str, int],
            seed: int = 7) -> dict[str, list[dict]]:
    """Rows for n open requests on n orders (a third with two lines), `due` of them with a deadline already past.

    Ids are given (past `base`, the seed's last ids) so that lines and events can point at their rows.
    """
    rng = random.Random(seed)
    rows: dict[str, list[dict]] = defaultdict(list)
    item_id = base["order_items"]
    due_ids = set(rng.sample(range(1, n + 1), due))
    for i in range(1, n + 1):
        oid, rid, eid = base["orders"] + i, base["after_sales"] + i, base["events"] + i
        buyer = first_buyer + rng.randrange(buyers)
        lines = [CATALOG[rng.randrange(len(CATALOG))] for _ in range(2 if i % 3 == 0 else 1)]
        goods = sum(price for _, _, _, price, _ in lines)
        discount = rng.choice([0, 0, 500, 1000]) if goods > 5000 else 0
        freight = rng.choice([0, 800, 1000])
        received = NOW - timedelta(days=rng.randint(1, 6), hours=rng.randint(0, 23))
        payment = "cod" if i % 10 == 0 else "online"
        order_no = f"2026{i:014d}"
        rows["orders"].append(dict(
            id=oid, order_no=order_no, shop_id=shop_id, buyer_id=buyer, state="received", payment=payment,
            goods_fen=goods, discount_fen=discount, freight_fen=freight, paid_fen=goods - discount + freight,
            cod_collected=payment == "cod", courier="SF", tracking_no=f"SF{i:013d}",
            created_at=received - timedelta(days=3), shipped_at=received - timedelta(days=2), received_at=received,
            completed_at=None))
        my_items = []
        for sku, name, spec, price, home in lines:
            item_id += 1
            rows["order_items"].append(dict(id=item_id, order_id=oid, sku=sku, name=name, spec=spec,
                                            unit_price_fen=price, quantity=1, home_goods=home))
            my_items.append((item_id, price))
        reason = rng.choice(REASONS)
        seller = reason in ("quality", "wrong_item", "missing_item", "not_as_described")
        kind = "return_refund" if i % 4 else "refund_only"
        if i in due_ids:
            status, deadline_kind = DUE_KINDS[i % len(DUE_KINDS)]
            deadline = NOW - timedelta(minutes=rng.randint(1, 600))
        else:
            status, deadline_kind = "requested", "review"
            deadline = NOW + timedelta(minutes=rng.randint(1, 72 * 60))
        if kind == "refund_only" and status in ("awaiting_return", "return_shipped", "refund_refused"):
            kind = "return_refund"
        created = min(deadline, NOW) - timedelta(hours=rng.randint(1, 48))
        share = [price - discount * price // goods for _, price in my_items]
        rows["after_sales"].append(dict(
            id=rid, order_id=oid, buyer_id=buyer, kind=kind, status=status, reason=reason,
            reason_confidence=round(rng.uniform(0.6, 0.99), 3), earlier_reasons=[], buyer_words=rng.choice(WORDS),
            refund_fen=sum(share), freight_refund_fen=freight if seller else 0,
            return_freight_payer="seller" if seller else "buyer", evidence_required=seller,
            rule_id=f"demo.reason.{reason}" if reason != "quality" else "law.art24.quality",
            refund_route="original" if payment == "online" else "alipay",
            refund_account=None if payment == "online" else "alipay:13812345678", preset="default",
            express_refund=False, phone_call_task=reason == "quality" and kind == "return_refund",
            last_reason_note="照片看不清" if status in ("rejected", "refund_refused") else None, approved_by=None,
            return_courier="SF" if status in ("return_shipped", "refund_refused") else None,
            return_tracking_no=f"SF9{i:012d}" if status in ("return_shipped", "refund_refused") else None,
            deadline_at=deadline, deadline_kind=deadline_kind,
            escalation_until=deadline if status in ("rejected", "refund_refused") else None,
            created_at=created, updated_at=created, version=1))
        for (line_id, _), fen in zip(my_items, share):
            rows["after_sale_items"].append(dict(id=base["after_sale_items"] + line_id - base["order_items"],
                                                 after_sale_id=rid, order_item_id=line_id, quantity=1,
                                                 refund_fen=fen))
        rows["events"].append(dict(
            id=eid, after_sale_id=rid, order_id=oid, at=created, actor=f"buyer:{buyer}", role="buyer", action="submit",
            from_status=None, to_status="requested", rule="workflow.submit", reason=reason,
            data={"kind": kind, "refund_fen": sum(share), "timer": "review"}))
    return rows


TABLES = {"orders": Order, "order_items": OrderItem, "after_sales": AfterSale, "after_sale_items": AfterSaleItem,
          "events": Event}


def bulk_insert(url: str, rows: dict[str, list[dict]]) -> float:
    """COPY into PostgreSQL, executemany into SQLite, every column of the real tables."""
    engine = make_engine(url)
    for name, model in TABLES.items():
        table = model.__table__
        rows[name] = [_with_defaults(table, r) for r in rows[name]]
    started = time.perf_counter()
    if engine.dialect.name == "postgresql":
        from psycopg.types.json import Json

        raw = engine.raw_connection()
        try:
            cur = raw.cursor()
            for name, model in TABLES.items():
                cols = [c.name for c in model.__table__.columns]
                json_cols = {c.name for c in model.__table__.columns if isinstance(c.type, sqlalchemy.JSON)}
                with cur.copy(f"COPY {name} ({', '.join(cols)}) FROM STDIN") as copy:
                    for r in rows[name]:
                        copy.write_row([Json(r[c]) if c in json_cols else r[c] for c in cols])
            for name in TABLES:
                cur.execute(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), (SELECT max(id) FROM {name}))")
            raw.commit()
            cur.execute("ANALYZE")
            raw.commit()
        finally:
            raw.close()
    else:
        with engine.begin() as conn:
            for name, model in TABLES.items():
                conn.execute(insert(model.__table__), rows[name])
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
    elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed


# ---------------------------------------------------------------- measurements


@contextmanager
def statement_census(engine: sqlalchemy.Engine) -> Iterator[Counter]:
    """Count statements by shape and the seconds spent in the driver for each shape."""
    census: Counter = Counter()
    started: dict[int, float] = {}

    def shape(statement: str) -> str:
        s = re.sub(r"\s+", " ", statement.strip())
        m = re.match(r"(SELECT .*? FROM (\w+)|UPDATE (\w+)|INSERT INTO (\w+)|DELETE FROM (\w+)|\w+)", s)
        if not m:
            return s[:40]
        if m.group(2):
            return f"SELECT … FROM {m.group(2)}" + (" FOR UPDATE" if "FOR UPDATE" in s else "")
        return m.group(0)

    def before(conn, cursor, statement, params, context, executemany):  # type: ignore[no-untyped-def]
        started[id(cursor)] = time.perf_counter()

    def after(conn, cursor, statement, params, context, executemany):  # type: ignore[no-untyped-def]
        key = shape(statement) + (" (executemany)" if executemany else "")
        census[(key, "n")] += 1
        census[(key, "s")] += time.perf_counter() - started.pop(id(cursor), time.perf_counter())

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        yield census
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)


def snapshot_due(svc: Services) -> tuple[list[dict], int, int]:
    with svc.sessions() as session:
        t = AfterSale.__table__
        due = [dict(r._mapping) for r in session.execute(select(t).where(t.c.deadline_at <= NOW))]
        max_event = session.scalar(select(func.max(Event.id))) or 0
        max_outbox = session.scalar(select(func.coalesce(func.max(Outbox.id), 0)))
    return due, max_event, max_outbox


def restore_due(svc: Services, due: list[dict], max_event: int, max_outbox: int) -> None:
    """Put the swept backlog back exactly as it was, so the profiled sweep does the same work."""
    t = AfterSale.__table__
    cols = [c.name for c in t.columns if c.name != "id"]
    with svc.sessions() as session, session.begin():
        session.execute(
            update(t).where(t.c.id == bindparam("_id")).values({c: bindparam(c) for c in cols}),
            [{"_id": r["id"], **{c: r[c] for c in cols}} for r in due])
        session.execute(Event.__table__.delete().where(Event.id > max_event))
        session.execute(Outbox.__table__.delete().where(Outbox.id > max_outbox))


def profile_sweep(svc: Services, top: int = 18) -> tuple[float, int, str, list[tuple[str, int, float]]]:
    engine = svc.sessions.kw["bind"]
    profiler = cProfile.Profile()
    with statement_census(engine) as census:
        started = time.perf_counter()
        profiler.enable()
        applied = sweep_due(svc)
        profiler.disable()
        elapsed = time.perf_counter() - started
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    shapes = sorted({k for k, _ in census}, key=lambda k: -census[(k, "s")])
    table = [(k, census[(k, "n")], census[(k, "s")]) for k in shapes]
    return elapsed, applied, out.getvalue(), table


def audit_counts(svc: Services, since_event: int) -> Counter:
    """System events written after `since_event`, per request: each deadline must appear once."""
    with svc.sessions() as session:
        return Counter(session.scalars(select(Event.after_sale_id).where(Event.id > since_event,
                                                                          Event.role == "system")))


def _split(ids: list[int], parts: int) -> list[list[int]]:
    return [ids[i::parts] for i in range(parts)]


Client = Callable[[int], None]  # applies one transition to the request with this id


def clients_rate(make_client: Callable[[int], Client], ids: list[int], warm: list[int], clients: int,
                 mode: str) -> float:
    """Transitions/second of `clients` concurrent clients, each on its own share of `ids`.

    Each client connects and warms up (statement caches, prepared statements) on its share of `warm`
    before a common start. mode "processes": every client is a process of its own, like the API's
    worker processes or separate programs; "threads": all clients share this process and its GIL.
    """
    ctx = multiprocessing.get_context("fork")
    processes = mode == "processes"
    start = ctx.Barrier(clients + 1) if processes else threading.Barrier(clients + 1)
    failures = ctx.Queue()

    def body(n: int, warm_part: list[int], part: list[int]) -> None:
        try:
            apply = make_client(n)
            for rid in warm_part:
                apply(rid)
        except Exception as exc:  # noqa: BLE001 - reported; the others must not wait for this one forever
            failures.put(f"warm-up: {exc!r}")
            start.wait()
            return
        start.wait()
        for rid in part:
            try:
                apply(rid)
            except Exception as exc:  # noqa: BLE001 - counted and reported
                failures.put(repr(exc))

    def process_body(n: int, warm_part: list[int], part: list[int]) -> None:
        try:
            body(n, warm_part, part)
        finally:
            os._exit(0)  # no clean-up of what the fork copied from the parent (its pooled connections)

    kind = ctx.Process if processes else threading.Thread
    runners = [kind(target=process_body if processes else body, args=(n, w, p))
               for n, (w, p) in enumerate(zip(_split(warm, clients), _split(ids, clients)))]
    for r in runners:
        r.start()
    start.wait()
    started = time.perf_counter()
    for r in runners:
        r.join()
    elapsed = time.perf_counter() - started
    errors = []
    while not failures.empty():
        errors.append(failures.get())
    if errors:
        raise RuntimeError(f"{len(errors)} transitions failed, first: {errors[0]}")
    return len(ids) / elapsed


def service_client(url: str, kinds: dict[int, str]) -> Callable[[int], Client]:
    """A reviewer approving requests through `after_sales.act`, with its own engine."""
    def make(n: int) -> Client:
        svc = services(url, FakeClock(NOW))
        actor = Actor(f"staff:bench{n}", Role.REVIEWER)

        def apply(rid: int) -> None:
            # The review decision that fits the request: a refund-only request is approved as a refund.
            action = "approve_refund" if kinds[rid] == "refund_only" else "approve_return"
            after_sales.act(svc, rid, action, actor=actor)
        return apply
    return make


def raw_client(url: str) -> Callable[[int], Client]:
    """The floor: a bare UPDATE + INSERT INTO events per transition, committed each time, no ORM."""
    def make(n: int) -> Client:
        engine = make_engine(url)
        pg = engine.dialect.name == "postgresql"
        p = "%s" if pg else "?"
        upd = f"UPDATE after_sales SET status = {p}, version = version + 1 WHERE id = {p}"
        ins = (f"INSERT INTO events (after_sale_id, order_id, at, actor, role, action, from_status, to_status, "
               f"rule, reason, data) VALUES ({p}, NULL, {p}, {p}, 'reviewer', 'approve_return', 'requested', "
               f"'awaiting_return', 'workflow.approve_return', NULL, '{{}}')")
        at = NOW if pg else NOW.strftime("%Y-%m-%d %H:%M:%S.%f")
        raw = engine.raw_connection()
        cur = raw.cursor()

        def apply(rid: int) -> None:
            if not pg:
                cur.execute("BEGIN IMMEDIATE")
            cur.execute(upd, ("awaiting_return", rid))
            cur.execute(ins, (rid, at, f"staff:raw{n}"))
            if pg:
                raw.commit()
            else:
                cur.execute("COMMIT")
        return apply
    return make


# ---------------------------------------------------------------- one backend


def run_backend(name: str, url: str, args: argparse.Namespace) -> dict:
    print(f"\n== {name}: {args.requests:,} open requests, {args.due:,} due", flush=True)
    upgrade(url)
    clock = FakeClock(NOW)
    svc = services(url, clock)
    seed_demo(svc)
    with svc.sessions() as session, session.begin():
        shop_id = session.scalar(select(Shop.id).where(Shop.code == "demo"))
        first_buyer = (session.scalar(select(func.max(Buyer.id))) or 0) + 1
        session.execute(insert(Buyer.__table__), [
            {"id": first_buyer + k, "name": f"买家{k:05d}", "phone": f"139{k:08d}", "follow_up_opt_out": False}
            for k in range(args.buyers)])
        base = {"orders": session.scalar(select(func.max(Order.id))) or 0,
                   "order_items": session.scalar(select(func.max(OrderItem.id))) or 0,
                   "after_sales": session.scalar(select(func.max(AfterSale.id))) or 0,
                   "after_sale_items": session.scalar(select(func.max(AfterSaleItem.id))) or 0,
                   "events": session.scalar(select(func.max(Event.id))) or 0}
    if svc.sessions.kw["bind"].dialect.name == "postgresql":
        with svc.sessions.kw["bind"].begin() as conn:
            conn.execute(text("SELECT setval(pg_get_serial_sequence('buyers', 'id'), (SELECT max(id) FROM buyers))"))
    rows = backlog(args.requests, args.due, shop_id, args.buyers, first_buyer, base)
    insert_s = bulk_insert(url, rows)
    total_rows = sum(len(v) for v in rows.values())
    print(f"bulk insert: {total_rows:,} rows in {insert_s:.1f} s", flush=True)

    due_rows, max_event, max_outbox = snapshot_due(svc)
    assert len(due_rows) == args.due, (len(due_rows), args.due)
    started = time.perf_counter()
    applied = sweep_due(svc)
    sweep_s = time.perf_counter() - started
    assert applied == args.due, (applied, args.due)
    target = SWEEP_TARGET_S if name == "PostgreSQL" else None
    verdict = "" if target is None else (" (target < 3 s: met)" if sweep_s < target else " (target < 3 s: MISSED)")
    print(f"one full sweep: {applied:,} deadlines in {sweep_s:.2f} s = {applied / sweep_s:,.0f}/s{verdict}",
          flush=True)

    sweep_audit = audit_counts(svc, max_event)
    assert len(sweep_audit) == args.due and set(sweep_audit.values()) == {1}, "a deadline was not applied once"
    profile = None
    if args.profile or (target is not None and sweep_s >= target):
        sample = due_rows[: args.profile_rows] if args.profile_rows else due_rows
        restore_due(svc, sample, max_event, max_outbox)
        prof_s, prof_applied, text_stats, census = profile_sweep(svc)
        assert prof_applied == len(sample)
        sql_s = sum(s for _, _, s in census)
        print(f"profiled sweep ({len(sample):,} of the due rows restored): {prof_s:.2f} s under cProfile; "
              f"{sum(n for _, n, _ in census):,} statements, {sql_s:.2f} s inside the driver", flush=True)
        for shape, n, s in census[:12]:
            print(f"  {n:>7,} × {shape[:90]:<90} {s:6.2f} s", flush=True)
        if args.verbose_profile:
            print(text_stats)
        profile = {"seconds": prof_s, "census": census, "stats": text_stats, "sql_s": sql_s, "rows": len(sample)}


    with svc.sessions() as session:
        idle = list(session.scalars(select(AfterSale.id).where(AfterSale.status == "requested",
                                                               AfterSale.deadline_at > NOW)
                                    .order_by(AfterSale.id)
                                    .limit(2 * args.rounds * (args.transitions + 8 * args.clients))))
        kinds = dict(session.execute(select(AfterSale.id, AfterSale.kind).where(AfterSale.id.in_(idle))).all())
    svc.sessions.kw["bind"].dispose()  # the clients open their own connections
    n = args.transitions
    # act() and the floor take turns, `rounds` times each, on fresh requests: a single short measurement
    # of the floor swung between 4,200 and 7,300/s from run to run (WAL checkpoints land in one or not).
    svc_runs, raw_runs = [], []
    fresh = iter(idle)
    take = lambda count: [next(fresh) for _ in range(count)]  # noqa: E731 - requests never acted on yet
    for _ in range(args.rounds):
        for runs, client in ((svc_runs, service_client(url, kinds)), (raw_runs, raw_client(url))):
            warm = take(4 * args.clients)
            runs.append(clients_rate(client, take(n), warm, args.clients, args.client_mode))
    svc_tps, raw_tps = statistics.median(svc_runs), statistics.median(raw_runs)
    ratio = svc_tps / raw_tps
    who = f"{args.clients} client {args.client_mode}"
    each = lambda runs: ", ".join(f"{r:,.0f}" for r in runs)  # noqa: E731
    print(f"{who}, act(approve_return): median {svc_tps:,.0f} transitions/s of {args.rounds} rounds of {n:,} "
          f"({each(svc_runs)})", flush=True)
    print(f"{who}, raw UPDATE+INSERT floor: median {raw_tps:,.0f} transitions/s ({each(raw_runs)})", flush=True)
    print(f"service / floor = {ratio:.2f} (target >= 0.33: {'met' if ratio >= RATIO_TARGET else 'MISSED'})",
          flush=True)
    sync_us = None
    if url.startswith("sqlite:///"):
        sync_us = sync_cost_us(Path(url.removeprefix("sqlite:///")).parent)
        print(f"this disk: a 4 KiB append + fsync takes {sync_us:.0f} µs at the median (each commit waits for one)",
              flush=True)
    svc.sessions.kw["bind"].dispose()
    return {"backend": name, "rows": total_rows, "insert_s": insert_s, "sweep_s": sweep_s, "applied": applied,
            "svc_tps": svc_tps, "raw_tps": raw_tps, "ratio": ratio, "svc_runs": svc_runs, "raw_runs": raw_runs,
            "profile": profile, "sweep_target": target, "sync_us": sync_us}


def write_results(args: argparse.Namespace, results: list[dict], started: float) -> None:
    lines = [
        f"\n## Run {datetime.now().astimezone().isoformat(timespec='seconds')}",
        "",
        f"`{' '.join(sys.argv)}` — {args.requests:,} open requests, {args.due:,} due, {args.clients} client "
        f"{args.client_mode}, "
        f"{args.rounds} alternating rounds of {args.transitions:,} transitions per measurement; Python {platform.python_version()}, SQLAlchemy "
        f"{sqlalchemy.__version__}, {os.cpu_count()} CPUs, load average {args.load_before:.1f} before and "
        f"{os.getloadavg()[0]:.1f} after (other work on the host skews the figures); "
        f"total {time.perf_counter() - started:.0f} s.",
        "",
        "| backend | bulk insert | one full sweep | sweep target (< 3 s, PostgreSQL) "
        "| act() transitions/s, median (rounds) | raw floor transitions/s, median (rounds) "
        "| service / floor (target ≥ 0.33) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        target = "–" if r["sweep_target"] is None else ("met" if r["sweep_s"] < r["sweep_target"] else "**missed**")
        lines.append(
            f"| {r['backend']} | {r['rows']:,} rows in {r['insert_s']:.1f} s | {r['applied']:,} deadlines in "
            f"{r['sweep_s']:.2f} s ({r['applied'] / r['sweep_s']:,.0f}/s) | {target} | "
            f"{r['svc_tps']:,.0f} ({', '.join(f'{x:,.0f}' for x in r['svc_runs'])}) | "
            f"{r['raw_tps']:,.0f} ({', '.join(f'{x:,.0f}' for x in r['raw_runs'])}) | {r['ratio']:.2f} ({'met' if r['ratio'] >= RATIO_TARGET else '**missed**'}) |")
    for r in results:
        if r["sync_us"] is not None:
            lines += ["", f"{r['backend']}'s disk in this run: a 4 KiB append + fsync takes {r['sync_us']:.0f} µs at the "
                          "median. Every commit waits for one (synchronous=FULL), and the floor's transaction is "
                          "little more than that wait, so the ratio is higher on a disk that syncs slowly."]
    for r in results:
        if r["profile"]:
            p = r["profile"]
            lines += ["", f"Profiled sweep on {r['backend']} ({p['rows']:,} of the due rows restored, under cProfile): "
                          f"{p['seconds']:.2f} s, {sum(n for _, n, _ in p['census']):,} statements, "
                          f"{p['sql_s']:.2f} s inside the driver; "
                          f"{sum(n for _, n, _ in p['census']) / p['rows']:.1f} statements per due row.", "",
                      "| statements | shape | seconds in driver |", "| ---: | --- | ---: |"]
            lines += [f"| {n:,} | `{shape[:100]}` | {s:.2f} |" for shape, n, s in p["census"][:12]]
    with RESULTS.open("a", encoding="utf-8") as f:
        if RESULTS.stat().st_size == 0:
            f.write("# Workflow benchmark results\n\nWritten by `bench/workflow_bench.py`, one section per run.\n")
        f.write("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=100_000, help="open requests to insert (100,000)")
    parser.add_argument("--due", type=int, default=10_000, help="of which already due (10,000)")
    parser.add_argument("--buyers", type=int, default=5_000, help="buyers the orders are spread over")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (8)")
    parser.add_argument("--client-mode", choices=("processes", "threads"), default="processes",
                        help="clients as separate processes (default, like API workers) or threads of this one")
    parser.add_argument("--transitions", type=int, default=6_000, help="transitions per throughput measurement")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds of act() and the floor (5)")
    parser.add_argument("--backends", default="postgresql,sqlite", help="postgresql,sqlite (both by default)")
    parser.add_argument("--sqlite-dir", help="where the SQLite file goes (default: the system's temporary "
                        "directory); e.g. /dev/shm, where fsync costs nothing, to see the ratio on a fast disk")
    parser.add_argument("--pg-admin-url", default=PG_ADMIN_URL, help="where to create the scratch database")
    parser.add_argument("--profile", action="store_true", help="profile the sweep even when it meets the target")
    parser.add_argument("--profile-rows", type=int, default=2_000,
                        help="how many of the swept rows to restore and sweep again under the profiler (0 = all)")
    parser.add_argument("--verbose-profile", action="store_true", help="print the cProfile tables too")
    parser.add_argument("--no-results", action="store_true", help="do not append to bench/RESULTS.md")
    args = parser.parse_args()
    if not 0 < args.due <= args.requests:
        parser.error("--due must be between 1 and --requests")
    started = time.perf_counter()
    args.load_before = os.getloadavg()[0]
    results = []
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        if backend == "postgresql":
            with postgres(args.pg_admin_url) as url:
                results.append(run_backend("PostgreSQL", url, args))
        elif backend == "sqlite":
            with sqlite(args.sqlite_dir) as url:
                results.append(run_backend("SQLite", url, args))
        else:
            parser.error(f"unknown backend {backend!r}")
    print(f"\ntotal {time.perf_counter() - started:.0f} s", flush=True)
    if not args.no_results:
        RESULTS.touch()
        write_results(args, results, started)
        print(f"appended to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
