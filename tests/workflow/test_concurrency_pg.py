"""Sweeping workers and agents racing on the same requests: every deadline applied once, nothing half-done."""

import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from sqlalchemy import func, select

from bot.domain import errors
from bot.domain.workflow import Role
from bot.persistence.db import make_engine, make_session_factory
from bot.persistence.migrate import upgrade
from bot.persistence.models import AfterSale, Event, Order, OrderItem, Outbox, Shop
from bot.policy.loader import load_policy
from bot.services import after_sales
from bot.services.adapters import LocalCourierTracking, LocalPaymentGateway, LocalWarehouse
from bot.services.after_sales import Actor
from bot.services.context import Services
from bot.services.seed import seed_demo
from bot.services.timers import sweep_due
from tests.workflow.support import (
    BUYER2_DELIVERED, BUYER3_DELIVERED, COD_DELIVERED, COD_UNSHIPPED, COMPLETED, DELIVERED, HOME_GOODS, SHIPPED,
    UNSHIPPED, submit,
)

REQUESTS = 200
SWEEPERS = AGENTS = 4
AGENT_REJECT_REASON = "照片不清楚，请补充"


def own_services(url: str, clock) -> Services:
    """A worker of its own: its own engine and connection pool, like a separate process."""
    return Services(sessions=make_session_factory(make_engine(url)), clock=clock, policies=load_policy,
                    payments=LocalPaymentGateway(), warehouse=LocalWarehouse(), couriers=LocalCourierTracking())


def _received_orders(svc: Services, count: int) -> list[tuple[str, int]]:
    """`count` more received online orders of the demo shop, one dress each, spread over the three buyers."""
    now = svc.clock.now()
    made = []
    with svc.sessions() as session, session.begin():
        shop_id = session.scalar(select(Shop.id).where(Shop.code == "demo"))
        for n in range(count):
            order_no, buyer = f"2026112100{n:08d}", 1 + n % 3
            order = Order(order_no=order_no, shop_id=shop_id, buyer_id=buyer, state="received", payment="online",
                          goods_fen=16900, discount_fen=0, freight_fen=0, paid_fen=16900, cod_collected=False,
                          created_at=now - timedelta(days=5), shipped_at=now - timedelta(days=3),
                          received_at=now - timedelta(days=1), courier="SF", tracking_no=f"SF2{n:012d}")
            session.add(order)
            session.flush()
            session.add(OrderItem(order_id=order.id, sku="DR-07", name="碎花连衣裙", spec="蓝色 S",
                                  unit_price_fen=16900, quantity=1, home_goods=False))
            made.append((order_no, buyer))
    return made


def test_sweepers_and_agents_racing_apply_each_review_deadline_exactly_once(pg_url, clock):
    # given 200 requests whose 72 h review has run out
    upgrade(pg_url)
    setup = own_services(pg_url, clock)
    seed_demo(setup)
    ids = [after_sales.submit(setup, buyer_id=buyer, order_no=order_no, reason="quality").id
           for order_no, buyer in _received_orders(setup, REQUESTS)]
    clock.advance(hours=72)
    decided_at = clock.now()
    start, agents_done = threading.Barrier(SWEEPERS + AGENTS), threading.Event()

    def sweeper() -> int:
        svc, applied = own_services(pg_url, clock), 0
        start.wait()
        try:
            while True:  # a periodic worker: sweep, pause, sweep again, until the agents have gone home
                finished = agents_done.is_set()
                applied += sweep_due(svc, batch=10)
                if finished:
                    return applied + sweep_due(svc, batch=10)
                time.sleep(0.002)
        finally:
            svc.sessions.kw["bind"].dispose()

    def agent(n: int) -> list[tuple[str, int]]:
        svc, rng, outcomes = own_services(pg_url, clock), random.Random(n), []
        me = Actor(f"staff:agent{n}", Role.REVIEWER)
        mine = ids[:]
        rng.shuffle(mine)
        start.wait()
        try:
            for rid in mine:
                with svc.sessions() as session:  # read what the console shows, then act on that version
                    version = session.scalar(select(AfterSale.version).where(AfterSale.id == rid))
                action = rng.choice(["approve_return", "reject"])
                try:
                    after_sales.act(svc, rid, action, actor=me, expected_version=version,
                                    reason=AGENT_REJECT_REASON if action == "reject" else None)
                    outcomes.append(("ok", rid))
                except (errors.Conflict, errors.InvalidTransition) as exc:
                    outcomes.append((type(exc).__name__, rid))
            return outcomes
        finally:
            svc.sessions.kw["bind"].dispose()

    # when 4 sweepers and 4 agents run at once
    with ThreadPoolExecutor(SWEEPERS + AGENTS) as pool:
        sweeps = [pool.submit(sweeper) for _ in range(SWEEPERS)]
        agents = [pool.submit(agent, n) for n in range(AGENTS)]
        outcomes = [o for f in agents for o in f.result(timeout=120)]  # anything but Conflict/Invalid re-raises here
        agents_done.set()
        applied = sum(f.result(timeout=120) for f in sweeps)

    # then every agent call either won or was told Conflict / InvalidTransition
    assert len(outcomes) == AGENTS * REQUESTS
    assert {kind for kind, _ in outcomes} <= {"ok", "Conflict", "InvalidTransition"}
    agent_wins = Counter(rid for kind, rid in outcomes if kind == "ok")
    assert all(n == 1 for n in agent_wins.values()), "two agents both decided one request"
    with setup.sessions() as session:
        rows = {r.id: r for r in session.scalars(select(AfterSale).where(AfterSale.id.in_(ids)))}
        events = list(session.scalars(select(Event).where(Event.after_sale_id.in_(ids)).order_by(Event.id)))
        notices = Counter(session.scalars(select(Outbox.after_sale_id).where(Outbox.after_sale_id.in_(ids))))
        duplicate_events = session.execute(
            select(Event.after_sale_id, Event.action, Event.from_status, func.count())
            .group_by(Event.after_sale_id, Event.action, Event.from_status).having(func.count() > 1)).all()
    by_request: dict[int, list[Event]] = {rid: [] for rid in ids}
    for event in events:
        by_request[event.after_sale_id].append(event)
    system_decided = {rid for rid, evs in by_request.items() if any(e.role == "system" for e in evs)}
    # and each review was decided exactly once: by the timer or by one agent, never both
    assert duplicate_events == []
    for rid in ids:
        submit_event, *decisions = by_request[rid]
        assert submit_event.action == "submit"
        assert len(decisions) == 1, [(e.actor, e.action) for e in decisions]
        [decision] = decisions
        assert decision.from_status == "requested"
        if rid in system_decided:
            assert (decision.action, decision.rule) == ("approve_return", "timer.review.default")
            assert rid not in agent_wins
        else:
            assert decision.actor.startswith("staff:agent") and rid in agent_wins
        # and no request is in an impossible state: status, timer and version agree with its single decision
        stored = rows[rid]
        assert stored.status == decision.to_status
        assert stored.version == 2
        expected_timer = {"awaiting_return": ("ship_back", timedelta(days=7)),
                          "rejected": ("escalate_after_rejection", timedelta(days=3))}[stored.status]
        assert (stored.deadline_kind, stored.deadline_at) == (expected_timer[0], decided_at + expected_timer[1])
        assert notices[rid] == 1
    # and the sweepers' count matches the audit log: nothing applied twice, nothing left due
    assert applied == len(system_decided)
    assert applied + len(agent_wins) == REQUESTS
    assert all(r.deadline_at > decided_at for r in rows.values())
    setup.sessions.kw["bind"].dispose()


RACE_ORDERS = [(DELIVERED, 1), (HOME_GOODS, 1), (COMPLETED, 1), (COD_DELIVERED, 1), (SHIPPED, 1), (UNSHIPPED, 1),
               (BUYER2_DELIVERED, 2), (COD_UNSHIPPED, 2), (BUYER3_DELIVERED, 3)]


def test_two_agents_deciding_the_same_request_at_once_exactly_one_wins(svc, clock):
    # given nine new requests and two agents, each with their own connection, who both loaded version 1
    url = svc.sessions.kw["bind"].url.render_as_string(hide_password=False)
    views = [submit(svc, order_no, buyer_id=buyer, reason="other") for order_no, buyer in RACE_ORDERS]
    agents = [(own_services(url, clock), Actor("staff:li", Role.REVIEWER), "approve_refund", None),
              (own_services(url, clock), Actor("staff:wang", Role.REVIEWER), "reject", AGENT_REJECT_REASON)]
    for view in views:
        together = threading.Barrier(2)

        def decide(agent, view=view, together=together):
            svc_, actor, action, reason = agent
            together.wait()
            try:
                after_sales.act(svc_, view.id, action, actor=actor, reason=reason, expected_version=view.version)
                return "ok"
            except errors.Conflict:
                return "conflict"

        # when both submit their decision at the same moment
        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(decide, agents))
        # then exactly one wins, the other is told to refresh, and the log holds one decision
        assert sorted(results) == ["conflict", "ok"]
        winner = agents[results.index("ok")]
        with svc.sessions() as session:
            stored = session.get(AfterSale, view.id)
            decisions = session.scalars(select(Event).where(Event.after_sale_id == view.id,
                                                            Event.action != "submit")).all()
            assert [(e.actor, e.action) for e in decisions] == [(winner[1].name, winner[2])]
            assert stored.status == decisions[0].to_status and stored.version == view.version + 1
    for agent in agents:
        agent[0].sessions.kw["bind"].dispose()


def test_the_same_items_submitted_twice_at_once_make_one_request(svc, clock, monkeypatch):
    """A buyer confirming in two windows at the same moment: both submissions work out the quote while the other
    is still open (a pause after the quote makes sure of it); one request is made, the other hears it is in
    progress. Without the order's lock, PostgreSQL accepted both."""
    url = svc.sessions.kw["bind"].url.render_as_string(hide_password=False)
    windows = [own_services(url, clock), own_services(url, clock)]
    real_quote = after_sales._quote

    def slow_quote(*args, **kwargs):  # type: ignore[no-untyped-def]
        found = real_quote(*args, **kwargs)
        time.sleep(0.3)  # the other submission starts meanwhile
        return found

    monkeypatch.setattr(after_sales, "_quote", slow_quote)

    def confirm(window: Services) -> str:
        try:
            return str(after_sales.submit(window, buyer_id=3, order_no=BUYER3_DELIVERED, reason="quality").id)
        except errors.AlreadyInProgress:
            return "in progress"

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(confirm, windows))
    assert results.count("in progress") == 1 and sum(r.isdigit() for r in results) == 1
    with svc.sessions() as session:
        order = session.scalar(select(Order).where(Order.order_no == BUYER3_DELIVERED))
        assert session.scalar(select(func.count()).select_from(AfterSale).where(AfterSale.order_id == order.id)) == 1
    for window in windows:
        window.sessions.kw["bind"].dispose()
