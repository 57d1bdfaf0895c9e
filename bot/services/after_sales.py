"""Use cases of the after-sales workflow: quote, submit, act, ship back, pay out. One transaction each."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload, selectinload

from bot.domain import errors
from bot.domain.accounts import mask_account, parse_account
from bot.domain.couriers import BY_CODE, couriers_matching, is_valid_tracking_number
from bot.domain.money import Line, Pick, refund_for_picks
from bot.domain.policy import SELLER, Decision, Policy, kind_for
from bot.domain.workflow import FINAL, MOVES, OPEN, Kind, Move, Role, Status, find_move, kind_allows, route_allows
from bot.nlu.topics import REASON_CODES
from bot.persistence.bulk import insert_many, update_and_insert, update_many
from bot.persistence.direct import DirectConnection, in_read, in_transaction, keep_prepared
from bot.persistence.models import AfterSale, AfterSaleItem, Event, Order, OrderItem, Outbox, Payout, Shop, Task
from bot.services.context import Services
from bot.services.evidence import attach
from bot.services.follow_ups import queue_follow_up

SYSTEM_ACTOR = "system"
Db = Session | Connection | DirectConnection  # all run Core queries; transitions accept any


@dataclass(frozen=True)
class Actor:
    name: str
    role: Role


def buyer_actor(buyer_id: int) -> Actor:
    return Actor(f"buyer:{buyer_id}", Role.BUYER)


SYSTEM = Actor(SYSTEM_ACTOR, Role.SYSTEM)


@dataclass(frozen=True)
class QuoteLine:
    order_item_id: int
    name: str
    spec: str
    quantity: int
    refund_fen: int


@dataclass(frozen=True)
class Quote:
    """What a request would be, computed by the system before the buyer confirms."""

    order_no: str
    kind: Kind
    reason: str
    lines: tuple[QuoteLine, ...]
    items_fen: int
    freight_refund_fen: int
    decision: Decision
    needs_account: bool
    refund_route: str
    shop_code: str
    review_window: timedelta  # how long the seller has to review it

    @property
    def total_fen(self) -> int:
        return self.items_fen + self.freight_refund_fen


@dataclass(frozen=True)
class RequestView:
    id: int
    order_no: str
    kind: str
    status: str
    reason: str
    refund_fen: int
    deadline_at: datetime | None
    deadline_kind: str | None
    rule_id: str
    refund_route: str
    refund_account_masked: str
    last_reason_note: str | None
    version: int
    lines: tuple[QuoteLine, ...] = field(default_factory=tuple)

    @classmethod
    def of(cls, row: AfterSale) -> "RequestView":
        return cls(
            id=row.id, order_no=row.order.order_no, kind=row.kind, status=row.status, reason=row.reason,
            refund_fen=row.refund_fen + row.freight_refund_fen, deadline_at=row.deadline_at,
            deadline_kind=row.deadline_kind, rule_id=row.rule_id, refund_route=row.refund_route,
            refund_account_masked=mask_account(row.refund_account), last_reason_note=row.last_reason_note,
            version=row.version,
            lines=tuple(
                QuoteLine(i.order_item_id, i.order_item.name, i.order_item.spec, i.quantity, i.refund_fen)
                for i in row.items
            ),
        )


@dataclass(frozen=True)
class Subject:
    """What a transition reads of a request: its own columns, its order's number and state, its shop.

    Transitions, the timer sweep and payouts work on this plain record, read with one Core query,
    instead of ORM objects: loading a request with its order, shop and lines through the ORM cost
    several times the transition's own writes.
    """

    id: int
    order_id: int
    buyer_id: int
    kind: str
    status: str
    reason: str
    version: int
    refund_fen: int
    freight_refund_fen: int
    refund_route: str
    refund_account: str | None
    rule_id: str
    preset: str
    deadline_at: datetime | None
    deadline_kind: str | None
    last_reason_note: str | None
    order_no: str
    order_state: str
    shop_code: str

    @classmethod
    def of(cls, row: AfterSale) -> "Subject":
        """From an ORM row whose order and shop are loaded."""
        return cls(**{name: getattr(row, name) for name in _OWN_COLUMNS}, order_no=row.order.order_no,
                   order_state=row.order.state, shop_code=row.order.shop.code)


_OWN_COLUMNS = ("id", "order_id", "buyer_id", "kind", "status", "reason", "version", "refund_fen",
                "freight_refund_fen", "refund_route", "refund_account", "rule_id", "preset", "deadline_at",
                "deadline_kind", "last_reason_note")
_T = AfterSale.__table__
# Built once: SQLAlchemy then reuses the compiled SQL and its cache key on every transition.
SUBJECT_QUERY = (select(*(_T.c[name] for name in _OWN_COLUMNS), Order.order_no,
                        Order.state.label("order_state"), Shop.code.label("shop_code"))
                 .join_from(_T, Order.__table__, Order.id == _T.c.order_id)
                 .join(Shop.__table__, Shop.id == Order.shop_id))
_LINE_COLUMNS = (AfterSaleItem.order_item_id, OrderItem.name.label("item_name"), OrderItem.spec.label("item_spec"),
                 AfterSaleItem.quantity.label("item_quantity"), AfterSaleItem.refund_fen.label("item_refund_fen"))
# act(): the request and its lines in one round trip (one row per line), only the request's row locked.
_SUBJECT_WITH_LINES_FOR_UPDATE = keep_prepared(
    SUBJECT_QUERY.add_columns(*_LINE_COLUMNS)
    .outerjoin(AfterSaleItem.__table__, AfterSaleItem.after_sale_id == _T.c.id)
    .outerjoin(OrderItem.__table__, OrderItem.id == AfterSaleItem.order_item_id)
    .where(_T.c.id == bindparam("request_id")).order_by(AfterSaleItem.id).with_for_update(of=_T))
_LINE_NAMES = ("order_item_id", "item_name", "item_spec", "item_quantity", "item_refund_fen")


def subject_of(row: object) -> Subject:
    """From a row of SUBJECT_QUERY (extra columns ignored)."""
    mapping = row._mapping  # type: ignore[attr-defined]
    return Subject(**{name: mapping[name] for name in _SUBJECT_FIELDS})


_SUBJECT_FIELDS = (*_OWN_COLUMNS, "order_no", "order_state", "shop_code")


def view_after(change: "Change", lines: tuple[QuoteLine, ...]) -> RequestView:
    """The request as `change` leaves it (no second read)."""
    row, values = change.row, change.values
    return RequestView(
        id=row.id, order_no=row.order_no, kind=row.kind, status=change.target.value, reason=row.reason,
        refund_fen=row.refund_fen + row.freight_refund_fen, deadline_at=values["deadline_at"],  # type: ignore[arg-type]
        deadline_kind=values["deadline_kind"], rule_id=row.rule_id,  # type: ignore[arg-type]
        refund_route=row.refund_route, refund_account_masked=mask_account(row.refund_account),
        last_reason_note=values.get("last_reason_note", row.last_reason_note),  # type: ignore[arg-type]
        version=row.version + 1, lines=lines)


# ---------------------------------------------------------------- helpers


def audit(
    session: Session, *, at: datetime, actor: Actor, action: str, rule: str, request: AfterSale | None = None,
    order_id: int | None = None, from_status: str | None = None, to_status: str | None = None,
    reason: str | None = None, data: dict | None = None,
) -> None:
    """Append one audit event in the caller's transaction."""
    session.add(Event(**audit_row(
        at=at, actor=actor, action=action, rule=rule, request_id=request.id if request else None,
        order_id=order_id if order_id is not None else (request.order_id if request else None),
        from_status=from_status, to_status=to_status, reason=reason, data=data)))


def audit_row(*, at: datetime, actor: Actor, action: str, rule: str, request_id: int | None, order_id: int | None,
              from_status: str | None = None, to_status: str | None = None, reason: str | None = None,
              data: dict | None = None) -> dict:
    """The columns of one audit event, for the ORM (audit) or a Core insert."""
    return dict(after_sale_id=request_id, order_id=order_id, at=at, actor=actor.name, role=actor.role.value,
                action=action, from_status=from_status, to_status=to_status, rule=rule, reason=reason,
                data=data or {})


def notify(session: Session, request: AfterSale, kind: str, at: datetime, key: str, **data: object) -> None:
    """Queue a notice to the buyer (delivered through Rasa by the worker) once per key."""
    session.add(Outbox(
        buyer_id=request.buyer_id, after_sale_id=request.id, kind=kind, data=data, created_at=at, due_at=at,
        dedupe_key=f"{request.id}:{key}",
    ))


def own_order(session: Session, buyer_id: int, order_no: str) -> Order:
    # With its shop and lines: a quote reads both, and lazy loads would be two more round trips.
    order = session.scalar(select(Order).where(Order.order_no == order_no)
                           .options(joinedload(Order.shop), selectinload(Order.items)))
    if order is None:
        raise errors.OrderNotFound("找不到这个订单号，请核对一下", order_no=order_no)
    if order.buyer_id != buyer_id:
        # Same words as unknown: a buyer learns nothing about other people's orders.
        raise errors.NotYourOrder("找不到这个订单号，请核对一下", order_no=order_no)
    return order


@dataclass(frozen=True)
class OrderLine:
    id: int
    name: str
    spec: str
    unit_price_fen: int
    quantity: int
    home_goods: bool


@dataclass(frozen=True)
class OrderFacts:
    """What a quote and a buyer's view read of an order, its shop and its lines: one Core query, where the
    ORM's object with eager-loaded shop and lines took two queries and most of an action call's CPU."""

    id: int
    order_no: str
    buyer_id: int
    shop_code: str
    state: str
    payment: str
    discount_fen: int
    freight_fen: int
    paid_fen: int
    cod_collected: bool
    created_at: datetime
    shipped_at: datetime | None
    received_at: datetime | None
    completed_at: datetime | None
    items: tuple[OrderLine, ...]


_ORDER_FIELDS = ("id", "order_no", "buyer_id", "state", "payment", "discount_fen", "freight_fen", "paid_fen",
                 "cod_collected", "created_at", "shipped_at", "received_at", "completed_at")
_ORDER_WITH_LINES_QUERY = (
    select(*(Order.__table__.c[name] for name in _ORDER_FIELDS), Shop.code.label("shop_code"),
           OrderItem.id.label("line_id"), OrderItem.name.label("line_name"), OrderItem.spec.label("line_spec"),
           OrderItem.unit_price_fen.label("line_unit_price_fen"), OrderItem.quantity.label("line_quantity"),
           OrderItem.home_goods.label("line_home_goods"))
    .join_from(Order.__table__, Shop.__table__, Shop.id == Order.shop_id)
    .outerjoin(OrderItem.__table__, OrderItem.order_id == Order.id)
    .where(Order.order_no == bindparam("order_no")).order_by(OrderItem.id))
_ORDER_WITH_LINES = keep_prepared(_ORDER_WITH_LINES_QUERY)
# A submission locks the order until it commits: on PostgreSQL two submissions of the same items at once had
# both seen them free and both been accepted. (SQLite's writers take turns already: BEGIN IMMEDIATE.)
_ORDER_WITH_LINES_LOCKED = keep_prepared(_ORDER_WITH_LINES_QUERY.with_for_update(of=Order.__table__))


def own_order_facts(db: Db, buyer_id: int, order_no: str, *, lock: bool = False) -> OrderFacts:
    """The buyer's order with its shop and lines, or the same error as own_order; `lock`: locked until the
    transaction ends."""
    rows = db.execute(_ORDER_WITH_LINES_LOCKED if lock else _ORDER_WITH_LINES,
                      {"order_no": order_no}).mappings().all()
    if not rows:
        raise errors.OrderNotFound("找不到这个订单号，请核对一下", order_no=order_no)
    if rows[0]["buyer_id"] != buyer_id:
        raise errors.NotYourOrder("找不到这个订单号，请核对一下", order_no=order_no)
    return OrderFacts(**{name: rows[0][name] for name in _ORDER_FIELDS}, shop_code=rows[0]["shop_code"],
                      items=order_lines(rows))


def order_lines(rows: Sequence[Mapping[str, Any]]) -> tuple[OrderLine, ...]:
    """An order's lines from its rows joined with its items (columns line_id, line_name, …; an order without
    items has one row whose line_id is None)."""
    return tuple(OrderLine(r["line_id"], r["line_name"], r["line_spec"], r["line_unit_price_fen"],
                           r["line_quantity"], r["line_home_goods"]) for r in rows if r["line_id"] is not None)


@dataclass(frozen=True)
class Taken:
    """What other requests of an order already hold or got, per order line."""

    held: dict[int, int]  # quantity in open requests
    refunded: dict[int, tuple[int, int]]  # (quantity, fen) refunded
    spoken_for: dict[int, tuple[int, int]]  # (quantity, fen) held or refunded
    freight_taken: bool  # an open or refunded request already carries the order's freight


# One query: every request has at least one line, so its freight comes along with its lines.
_TAKEN = keep_prepared(
    select(AfterSaleItem.order_item_id, AfterSale.status, AfterSaleItem.quantity, AfterSaleItem.refund_fen,
           AfterSale.freight_refund_fen)
    .join(AfterSale, AfterSale.id == AfterSaleItem.after_sale_id)
    .where(AfterSale.order_id == bindparam("order_id")))


def _quantities_taken(db: Db, order: Order | OrderFacts) -> Taken:
    rows = [(r["order_item_id"], r["status"], r["quantity"], r["refund_fen"], r["freight_refund_fen"])
            for r in db.execute(_TAKEN, {"order_id": order.id}).mappings().all()]
    open_values = {s.value for s in OPEN}
    held: dict[int, int] = {}
    refunded: dict[int, tuple[int, int]] = {}
    spoken_for: dict[int, tuple[int, int]] = {}
    freight_taken = False
    for item_id, status, qty, fen, freight in rows:
        if status in open_values:
            held[item_id] = held.get(item_id, 0) + qty
        elif status == Status.REFUNDED.value:
            q, f = refunded.get(item_id, (0, 0))
            refunded[item_id] = (q + qty, f + fen)
        else:
            continue
        freight_taken = freight_taken or freight > 0
        q, f = spoken_for.get(item_id, (0, 0))
        spoken_for[item_id] = (q + qty, f + fen)
    return Taken(held, refunded, spoken_for, freight_taken)


def _left_per_line(order: Order | OrderFacts, taken: Taken) -> dict[int, int]:
    """What a new request can still take of each line: bought, less what open requests hold and what was
    refunded."""
    return {i.id: i.quantity - taken.held.get(i.id, 0) - taken.refunded.get(i.id, (0, 0))[0] for i in order.items}


def free_quantities(svc: Services, buyer_id: int, order_no: str) -> dict[int, int]:
    """How many of each line of the buyer's order a new request can still take: bought, less what requests
    still being worked hold and what was refunded."""
    def read(db: Db) -> dict[int, int]:
        order = own_order_facts(db, buyer_id, order_no)
        return _left_per_line(order, _quantities_taken(db, order))

    return in_read(svc.sessions.kw["bind"], read)


def kind_for_order(order: Order | OrderFacts, resolution: str | None, decision: Decision, at: datetime, policy: Policy) -> Kind:
    """The order's state decides the path; the buyer's wish only chooses among what it allows."""
    state = order.state
    if state == "unconfirmed":
        raise errors.NotEligible("这笔订单还没确认，可以直接取消，不需要申请售后", order_state=state,
                                 suggestion="cancel_order")
    if state == "cancelled":
        raise errors.NotEligible("这笔订单已经取消了", order_state=state)
    if state in ("confirmed", "shipped"):
        return Kind.REFUND_ONLY
    if state == "completed" and order.completed_at and at > order.completed_at + policy.timer("complaint_window"):
        raise errors.NotEligible("交易成功已超过15天，售后期已过；如有严重质量问题可申请平台介入",
                                 order_state=state, suggestion="escalate")
    if resolution:
        return kind_for(resolution)
    return kind_for(decision.resolutions[0]) if decision.resolutions else Kind.RETURN_REFUND


def review_timer_for(order: Order | OrderFacts) -> str:
    return review_timer_for_state(order.state)


def review_timer_for_state(order_state: str) -> str:
    """Taobao gives the seller less time to review a refund of an unshipped order."""
    return "review_unshipped" if order_state == "confirmed" else "review"


def within_no_reason_days(order: Order | OrderFacts, at: datetime, policy: Policy) -> bool:
    return order.received_at is None or at <= order.received_at + policy.timer("no_reason_return")


# ---------------------------------------------------------------- quote & submit


def _quote(session: Db, svc: Services, *, buyer_id: int, order_no: str, picks: list[Pick] | None,
           reason: str, resolution: str | None, lock: bool = False) -> tuple[OrderFacts, Quote]:
    if reason not in REASON_CODES:
        raise errors.ReasonRequired("请告诉我退换的原因", reason=reason)
    order = own_order_facts(session, buyer_id, order_no, lock=lock)
    policy = svc.policies(order.shop_code)
    now = svc.clock.now()
    decision = policy.decide(reason, within_no_reason_days=within_no_reason_days(order, now, policy))
    kind = kind_for_order(order, resolution, decision, now, policy)
    taken = _quantities_taken(session, order)
    held, refunded = taken.held, taken.refunded
    lines = [Line(i.id, i.unit_price_fen, i.quantity) for i in order.items]
    if not picks:
        picks = [Pick(line_id, left) for line_id, left in _left_per_line(order, taken).items() if left > 0]
        if not picks:
            raise errors.AlreadyInProgress("这笔订单的商品都已经在售后中或已退款了", order_no=order_no)
    by_id = {i.id: i for i in order.items}
    for pick in picks:
        item = by_id.get(pick.line_id)
        if item is None:
            raise errors.InvalidInput("这件商品不在这笔订单里", order_item_id=pick.line_id)
        if pick.quantity <= 0:
            raise errors.InvalidInput("数量至少是1件", order_item_id=pick.line_id)
        free = item.quantity - refunded.get(item.id, (0, 0))[0]
        if pick.quantity > free:
            raise errors.QuantityTooLarge(f"{item.name}最多可以退{max(free, 0)}件", order_item_id=item.id,
                                          bought=item.quantity, available=max(free, 0))
        if pick.quantity > free - held.get(item.id, 0):
            raise errors.AlreadyInProgress(f"{item.name}已经在售后处理中了，不能重复申请", order_item_id=item.id)
    # Counting what open requests hold too, the request that completes a line gets its exact remainder.
    fen = refund_for_picks(lines, order.discount_fen, picks, taken.spoken_for)
    quote_lines = tuple(
        QuoteLine(p.line_id, by_id[p.line_id].name, by_id[p.line_id].spec, p.quantity, fen[p.line_id]) for p in picks
    )
    # The original freight comes back when the seller is responsible and the whole order returns.
    whole_order = all(
        sum(p.quantity for p in picks if p.line_id == i.id) + refunded.get(i.id, (0, 0))[0] + held.get(i.id, 0)
        >= i.quantity for i in order.items
    )
    freight = order.freight_fen if (decision.outbound_freight == SELLER and whole_order and kind != Kind.EXCHANGE
                                    and not taken.freight_taken) else 0
    nothing_collected = order.payment == "cod" and not order.cod_collected and order.shipped_at is None
    route = "original" if order.payment == "online" else ("none" if nothing_collected else "account")
    if kind == Kind.EXCHANGE:
        route = "none"
    items_fen = sum(line.refund_fen for line in quote_lines) if kind != Kind.EXCHANGE else 0
    quote = Quote(order.order_no, kind, reason, quote_lines, items_fen, freight, decision,
                  needs_account=route == "account", refund_route=route, shop_code=order.shop_code,
                  review_window=policy.timer(review_timer_for(order)))
    return order, quote


def quote(svc: Services, *, buyer_id: int, order_no: str, reason: str, picks: list[Pick] | None = None,
          resolution: str | None = None) -> Quote:
    """What the buyer would get back, item by item, and on what terms; writes nothing. Two Core queries run
    straight on the driver, outside a transaction on PostgreSQL (in_read): the chat quotes on most turns of an
    application, and submit() works the quote out again in its own transaction."""
    return in_read(svc.sessions.kw["bind"], lambda db: _quote(
        db, svc, buyer_id=buyer_id, order_no=order_no, picks=picks, reason=reason, resolution=resolution)[1])


def submit(
    svc: Services, *, buyer_id: int, order_no: str, reason: str, picks: list[Pick] | None = None,
    resolution: str | None = None, words: str = "", confidence: float | None = None,
    account: str | None = None, expected_total_fen: int | None = None, earlier_reasons: list[str] | None = None,
    evidence_ids: list[int] | None = None,
) -> RequestView:
    """Create the after-sales request and start the seller's review timer."""
    return submit_with_quote(
        svc, buyer_id=buyer_id, order_no=order_no, reason=reason, picks=picks, resolution=resolution, words=words,
        confidence=confidence, account=account, expected_total_fen=expected_total_fen,
        earlier_reasons=earlier_reasons, evidence_ids=evidence_ids)[0]


def submit_with_quote(
    svc: Services, *, buyer_id: int, order_no: str, reason: str, picks: list[Pick] | None = None,
    resolution: str | None = None, words: str = "", confidence: float | None = None,
    account: str | None = None, expected_total_fen: int | None = None, earlier_reasons: list[str] | None = None,
    evidence_ids: list[int] | None = None,
) -> tuple[RequestView, Quote]:
    """submit(), also returning the quote the request was made from (the chat tells the buyer what follows
    from it without working it out once more). A few Core statements on the driver's cursor, as a transition's
    (bot.persistence.direct): through the ORM, its objects and flushes cost more than the statements."""
    def work(db: DirectConnection) -> tuple[RequestView, Quote]:
        order, q = _quote(db, svc, buyer_id=buyer_id, order_no=order_no, picks=picks, reason=reason,
                          resolution=resolution, lock=True)
        if not q.decision.accepted:
            raise errors.NotEligible(q.decision.explanation, reason=reason, rule=q.decision.rule_id)
        if expected_total_fen is not None and expected_total_fen != q.total_fen:
            raise errors.AmountMismatch("金额和系统计算的不一致", expected=q.total_fen, given=expected_total_fen)
        route, stored_account = q.refund_route, None
        if q.needs_account:
            if not account:
                raise errors.BadAccount("货到付款的订单需要提供支付宝账号或银行卡号用于退款")
            route, ident = parse_account(account)
            stored_account = f"{route}:{ident}"
        policy = svc.policies(order.shop_code)
        now = svc.clock.now()
        # A buyer who switched reason after hearing who pays keeps both on record and owes photos.
        earlier = [r for r in (earlier_reasons or []) if r in REASON_CODES and r != reason]
        timer = review_timer_for(order)
        row = dict(
            order_id=order.id, buyer_id=buyer_id, kind=q.kind.value, status=Status.REQUESTED.value, reason=reason,
            reason_confidence=confidence, earlier_reasons=earlier, buyer_words=words[:2000],
            refund_fen=q.items_fen, freight_refund_fen=q.freight_refund_fen,
            return_freight_payer=q.decision.return_freight,
            evidence_required=q.decision.evidence.value == "required" or bool(earlier),
            rule_id=q.decision.rule_id, refund_route=route, refund_account=stored_account, preset=policy.preset,
            express_refund=policy.express_refund,
            phone_call_task=q.decision.phone_call and q.kind == Kind.RETURN_REFUND,
            deadline_at=now + policy.timer(timer), deadline_kind="review", created_at=now, updated_at=now, version=1,
        )
        request_id = db.execute(_INSERT_REQUEST, row).scalar()
        insert_many(db, AfterSaleItem.__table__, [  # type: ignore[arg-type]
            dict(after_sale_id=request_id, order_item_id=line.order_item_id, quantity=line.quantity,
                 refund_fen=line.refund_fen) for line in q.lines])
        if evidence_ids:
            attach(db, buyer_id=buyer_id, evidence_ids=evidence_ids, after_sale_id=request_id)
        if row["phone_call_task"]:
            # Seed: a quality return-and-refund is talked through on the phone by an agent.
            insert_many(db, Task.__table__, [dict(  # type: ignore[arg-type]
                kind="phone_call", buyer_id=buyer_id, after_sale_id=request_id, status="open",
                note="质量问题退货退款：请电话联系买家确认情况", created_at=now)])
        insert_many(db, Event.__table__, [audit_row(  # type: ignore[arg-type]
            at=now, actor=buyer_actor(buyer_id), action="submit", rule=q.decision.rule_id, request_id=request_id,
            order_id=order.id, to_status=row["status"], reason=reason,
            data={"kind": q.kind.value, "refund_fen": q.total_fen, "earlier_reasons": earlier, "timer": timer,
                  "deadline_at": row["deadline_at"].isoformat()})])
        return RequestView(
            id=request_id, order_no=order.order_no, kind=row["kind"], status=row["status"], reason=reason,
            refund_fen=q.items_fen + q.freight_refund_fen, deadline_at=row["deadline_at"],
            deadline_kind=row["deadline_kind"], rule_id=q.decision.rule_id, refund_route=route,
            refund_account_masked=mask_account(stored_account), last_reason_note=None, version=1, lines=q.lines), q

    return in_transaction(svc.sessions.kw["bind"], work)


_INSERT_REQUEST = keep_prepared(insert(AfterSale.__table__).returning(AfterSale.__table__.c.id))


# ---------------------------------------------------------------- transitions

# The timer each target status starts (policy timer name, deadline kind); others clear the deadline.
TIMER_ON_ENTRY: dict[Status, str] = {
    Status.REQUESTED: "review",
    Status.REJECTED: "escalate_after_rejection",
    Status.AWAITING_RETURN: "ship_back",
    Status.RETURN_SHIPPED: "confirm_receipt",
    Status.REFUND_REFUSED: "escalate_after_refusal",
}
APPROVING_ACTIONS = frozenset({"approve_return", "approve_refund", "check_online", "check_offline",
                               "confirm_money_received", "arbitrate_for_buyer"})
PAYOUT_ACTIONS = frozenset({"pay_original_route", "record_transfer"})
FOLLOWED_UP = frozenset({Status.REFUNDED, Status.EXCHANGED})  # a visit is queued on entering these
# act() writes these through the ORM (a payout row, a follow-up visit); all others on the cursor.
_WRITES_THROUGH_SESSION = PAYOUT_ACTIONS | {m.action for m in MOVES if m.target in FOLLOWED_UP}


def _load_for_update(session: Session, request_id: int) -> AfterSale:
    """The request, locked, with what a transition and its view read (no lazy loads afterwards)."""
    row = session.scalar(
        select(AfterSale).where(AfterSale.id == request_id)
        .options(joinedload(AfterSale.order, innerjoin=True).joinedload(Order.shop, innerjoin=True),
                 selectinload(AfterSale.items).selectinload(AfterSaleItem.order_item))
        .with_for_update(of=AfterSale))
    if row is None:
        raise errors.RequestNotFound("找不到这个售后单", request_id=request_id)
    return row


def _subject_for_update(db: "Connection | DirectConnection", request_id: int, expected_version: int | None,
                        buyer_id: int | None) -> tuple[Subject, tuple[QuoteLine, ...]]:
    """The request's facts and lines, its row locked until the transaction ends; raises if it is not
    the buyer's (when `buyer_id` is given) or not the version the agent saw."""
    rows = [r if isinstance(r, dict) else r._mapping
            for r in db.execute(_SUBJECT_WITH_LINES_FOR_UPDATE, {"request_id": request_id}).all()]
    if not rows or (buyer_id is not None and rows[0]["buyer_id"] != buyer_id):
        raise errors.RequestNotFound("找不到这个售后单", request_id=request_id)
    row = Subject(**{name: rows[0][name] for name in _SUBJECT_FIELDS})
    if expected_version is not None and row.version != expected_version:
        raise errors.Conflict("这个售后单刚被别人处理过，请刷新后再操作",
                              expected=expected_version, current=row.version)
    lines = tuple(QuoteLine(*(r[name] for name in _LINE_NAMES)) for r in rows if r["order_item_id"] is not None)
    return row, lines


def _authorise(db: Db, row: Subject, action: str, actor: Actor, reason: str | None) -> Move:
    """The move, if `actor` may take `action` now; raises before anything happens otherwise."""
    move = find_move(action, Status(row.status), actor.role)
    if move.needs_reason and not (reason and reason.strip()):
        raise errors.ReasonRequired("这一步必须填写原因", action=action)
    if not kind_allows(action, row.kind):
        raise errors.InvalidTransition(f"cannot {action} a {row.kind} request", action=action, kind=row.kind)
    if not route_allows(action, row.refund_route):
        raise errors.InvalidTransition(
            f"cannot {action} a refund whose route is {row.refund_route}", action=action, route=row.refund_route)
    if action == "reject" and db.scalar(select(Event.id).where(
            Event.after_sale_id == row.id, Event.action == "arbitrate_for_buyer").limit(1)) is not None:
        raise errors.InvalidTransition("平台的判定对双方都有约束力，不能再拒绝", action=action)
    if action in PAYOUT_ACTIONS:
        approvers = set(db.scalars(select(Event.actor).where(
            Event.after_sale_id == row.id, Event.action.in_(APPROVING_ACTIONS))))
        if actor.name in approvers:
            raise errors.SameActor("同一个人不能既审核又打款", actor=actor.name)
    return move


@dataclass
class Change:
    """One transition worked out but not yet written: the row's new values, its event, its notice."""

    row: Subject
    target: Status
    values: dict[str, object]
    event: dict[str, object]
    notice: dict[str, object] | None


def _plan(db: Db, svc: Services, row: Subject, action: str, actor: Actor, *, reason: str | None,
          rule: str | None = None, data: dict | None = None, now: datetime | None = None) -> Change:
    """Work out a move by `action` (status, timer, audit event, buyer notice); raises if not allowed."""
    source = Status(row.status)
    move = _authorise(db, row, action, actor, reason)
    now = now or svc.clock.now()
    policy = svc.policies(row.shop_code)
    target = move.target
    values: dict[str, object] = {"status": target.value, "updated_at": now}
    timer = TIMER_ON_ENTRY.get(target)
    if timer:
        if timer == "review":
            timer = review_timer_for_state(row.order_state)
        deadline: datetime | None = now + policy.timer(timer)
        values.update(deadline_at=deadline, deadline_kind=TIMER_ON_ENTRY[target])
    else:
        deadline = None
        values.update(deadline_at=None, deadline_kind=None)
    if target in (Status.REJECTED, Status.REFUND_REFUSED):
        values["escalation_until"] = deadline
    if move.needs_reason:
        values["last_reason_note"] = reason
    if action in APPROVING_ACTIONS:
        values["approved_by"] = actor.name
    deadline_iso = deadline.isoformat() if deadline else None
    event = dict(after_sale_id=row.id, order_id=row.order_id, at=now, actor=actor.name, role=actor.role.value,
                 action=action, from_status=source.value, to_status=target.value, rule=rule or f"workflow.{action}",
                 reason=reason, data={**(data or {}), "deadline_at": deadline_iso,
                                      "deadline_kind": values["deadline_kind"]})
    notice = None
    if actor.role != Role.BUYER:
        notice = dict(buyer_id=row.buyer_id, after_sale_id=row.id, kind=target.value, text="",
                      data={"reason": reason or "", "deadline_at": deadline_iso or ""}, created_at=now, due_at=now,
                      dedupe_key=f"{row.id}:{row.version}:{action}")
    return Change(row, target, values, event, notice)


def _apply(session: Session, svc: Services, row: AfterSale, action: str, actor: Actor, *, reason: str | None,
           rule: str | None = None, data: dict | None = None) -> None:
    """Move the ORM `row` by `action` in the open transaction: status, timer, audit, buyer notice.

    For use cases that also change other columns of the row (ship back, seller shipped, replacement).
    """
    change = _plan(session, svc, Subject.of(row), action, actor, reason=reason, rule=rule, data=data)
    for column, value in change.values.items():
        setattr(row, column, value)
    session.add(Event(**change.event))
    if change.notice:
        session.add(Outbox(**change.notice))
    if change.target in FOLLOWED_UP:
        queue_follow_up(session, svc, change.row, change.values["updated_at"])  # type: ignore[arg-type]



def write_changes(db: Connection, changes: list[Change]) -> None:
    """Write planned changes with a few statements (bot.persistence.bulk): act() and the timer sweep.

    The rows are locked by the caller; the version check still guards against a writer that did
    not lock. Follow-up visits are the caller's (see act()).
    """
    if len(changes) == 1:  # act(): the update and its audit event and notice in one statement
        change = changes[0]
        inserts = [(Event.__table__, change.event)] + ([(Outbox.__table__, change.notice)] if change.notice else [])
        if not update_and_insert(db, _T, {**change.values, "id": change.row.id, "version": change.row.version},
                                 inserts):
            raise errors.Conflict("售后单在处理中被改动，请重试", request_id=change.row.id)
        return
    groups: dict[tuple[str, ...], list[dict[str, object]]] = {}
    for change in changes:
        groups.setdefault(tuple(sorted(change.values)), []).append(
            {**change.values, "id": change.row.id, "version": change.row.version})
    for rows in groups.values():
        updated = update_many(db, _T, rows)
        if updated != len(rows):
            raise errors.Conflict("售后单在处理中被改动，请重试", expected=len(rows), updated=updated)
    insert_many(db, Event.__table__, [c.event for c in changes])
    insert_many(db, Outbox.__table__, [c.notice for c in changes if c.notice])


def act(svc: Services, request_id: int, action: str, *, actor: Actor, reason: str | None = None,
        expected_version: int | None = None, buyer_id: int | None = None) -> RequestView:
    """Take `action` on a request as `actor`; exactly one of two simultaneous agents wins.

    The row is locked while the move is checked and written; `expected_version` (what the agent saw)
    turns a late second click into a conflict instead of a second move.
    """
    engine = svc.sessions.kw["bind"]
    if action in _WRITES_THROUGH_SESSION:
        # Payouts and follow-up visits, rarer, go through a Session on the locked connection.
        with engine.begin() as connection:
            row, lines = _subject_for_update(connection, request_id, expected_version, buyer_id)
            if action in PAYOUT_ACTIONS:
                _authorise(connection, row, action, actor, reason)  # never pay for a refused action
                with Session(bind=connection) as session:
                    _pay(session, svc, row, actor)
            change = _plan(connection, svc, row, action, actor, reason=reason)
            write_changes(connection, [change])
            if change.target in FOLLOWED_UP:
                with Session(bind=connection) as session:
                    queue_follow_up(session, svc, row, change.values["updated_at"])  # type: ignore[arg-type]
                    session.flush()
            return view_after(change, lines)
    # Every other move is a few Core statements on the driver's cursor (bot.persistence.direct): on
    # SQLite, one writer at a time, SQLAlchemy's per-statement work was most of a transition's time.
    def move(connection: DirectConnection) -> RequestView:
        row, lines = _subject_for_update(connection, request_id, expected_version, buyer_id)
        change = _plan(connection, svc, row, action, actor, reason=reason)
        write_changes(connection, [change])
        return view_after(change, lines)
    return in_transaction(engine, move)


def _pay(session: Session, svc: Services, row: AfterSale | Subject, actor: Actor) -> None:
    """Pay the refund once: the idempotency key is the request, so a retry finds the first payout."""
    key = f"after_sale:{row.id}:refund"
    if session.scalar(select(func.count()).select_from(Payout).where(Payout.idempotency_key == key)):
        return
    route = row.refund_route
    if route == "none":
        raise errors.InvalidTransition("这个售后单无需退款", request_id=row.id, route=route)
    account = row.refund_account.partition(":")[2] if row.refund_account else None
    receipt = svc.payments.refund(idempotency_key=key, route=route, account=account,
                                  amount_fen=row.refund_fen + row.freight_refund_fen)
    session.add(Payout(after_sale_id=row.id, idempotency_key=key, route=route, amount_fen=receipt.amount_fen,
                       external_ref=receipt.external_ref, paid_at=svc.clock.now(), paid_by=actor.name))
    try:
        session.flush()
    except IntegrityError:
        raise errors.Conflict("这笔退款已经在处理", request_id=row.id) from None


def ship_back(svc: Services, request_id: int, *, buyer_id: int, tracking_no: str, courier: str | None = None) -> RequestView:
    """The buyer enters the return tracking number; the seller's receipt timer starts."""
    number = tracking_no.strip().upper()
    if courier is None:
        matches = couriers_matching(number)
        if len(matches) != 1:
            raise errors.BadTrackingNumber("请告诉我是哪家快递，并核对单号", tracking_no=number)
        courier = matches[0].code
    if courier not in BY_CODE or not is_valid_tracking_number(courier, number):
        raise errors.BadTrackingNumber(
            f"{BY_CODE[courier].name if courier in BY_CODE else '这家快递'}的单号格式不对，请核对一下",
            tracking_no=number, courier=courier)
    with svc.sessions() as session, session.begin():
        row = _load_for_update(session, request_id)
        if row.buyer_id != buyer_id:
            raise errors.RequestNotFound("找不到这个售后单", request_id=request_id)
        row.return_courier, row.return_tracking_no = courier, number
        _apply(session, svc, row, "ship_back", buyer_actor(buyer_id), reason=None,
               data={"courier": courier, "tracking_no": number})
        if row.express_refund and row.kind == Kind.RETURN_REFUND.value and row.refund_route == "original":
            # 极速退款: the platform refunds as soon as the parcel is on its way; the later payout
            # step finds this payout by its idempotency key and pays nothing more.
            _pay(session, svc, row, SYSTEM)
            audit(session, at=svc.clock.now(), actor=SYSTEM, action="express_refund", rule="policy.express_refund",
                  request=row, from_status=row.status, to_status=row.status,
                  data={"amount_fen": row.refund_fen + row.freight_refund_fen})
        session.flush()
        return RequestView.of(row)


def requests_of_buyer(svc: Services, buyer_id: int) -> list[RequestView]:
    with svc.sessions() as session:
        rows = session.scalars(select(AfterSale).where(AfterSale.buyer_id == buyer_id)
                               .order_by(AfterSale.id.desc())).all()
        return [RequestView.of(r) for r in rows]


def is_final(status: str) -> bool:
    return Status(status) in FINAL


__all__ = ["Actor", "SYSTEM", "Quote", "QuoteLine", "RequestView", "act", "quote", "submit", "ship_back",
           "requests_of_buyer", "buyer_actor", "OrderItem"]


# ---------------------------------------------------------------- order events and exchanges


def cancel_order(svc: Services, *, buyer_id: int, order_no: str, words: str = "") -> tuple[str, RequestView | None]:
    """Cancel at once while unconfirmed (nothing reached the warehouse); a paid unshipped order
    becomes a refund-only request for all its items. Returns ("cancelled" | "refund_requested", view)."""
    with svc.sessions() as session, session.begin():
        order = own_order(session, buyer_id, order_no)
        order = session.scalar(select(Order).where(Order.id == order.id).with_for_update()) or order
        now = svc.clock.now()
        if order.state == "unconfirmed":
            order.state = "cancelled"
            audit(session, at=now, actor=buyer_actor(buyer_id), action="cancel_order", rule="order.unconfirmed_cancel",
                  order_id=order.id, from_status="unconfirmed", to_status="cancelled")
            return "cancelled", None
        if order.state == "cancelled":
            raise errors.NotEligible("这笔订单已经取消了", order_state=order.state)
        if order.state != "confirmed":
            raise errors.NotEligible("订单已经发货，不能直接取消；可以拒收或收货后申请退货退款",
                                     order_state=order.state, suggestion="refund_or_return")
    return "refund_requested", submit(svc, buyer_id=buyer_id, order_no=order_no, reason="other",
                                      resolution="refund", words=words or "取消订单")


def order_shipped(svc: Services, *, order_no: str, courier: str, tracking_no: str) -> dict[str, object]:
    """Warehouse webhook: the order left the warehouse. Idempotent (the same call twice changes nothing).

    Seed rule (淘宝 system close 1): a refund requested on a paid order closes if the seller ships
    within the review window; the trade goes on.
    """
    number = tracking_no.strip().upper()
    if not is_valid_tracking_number(courier, number):
        raise errors.BadTrackingNumber("快递单号格式不对", courier=courier, tracking_no=number)
    with svc.sessions() as session, session.begin():
        order = session.scalar(select(Order).where(Order.order_no == order_no).with_for_update())
        if order is None:
            raise errors.OrderNotFound("找不到这个订单号", order_no=order_no)
        if order.state in ("shipped", "received", "completed") and order.tracking_no == number:
            return {"order_no": order_no, "changed": False, "closed_requests": []}
        if order.state != "confirmed":
            raise errors.InvalidTransition(f"cannot ship an order that is {order.state}", order_state=order.state)
        now = svc.clock.now()
        order.state, order.shipped_at, order.courier, order.tracking_no = "shipped", now, courier, number
        audit(session, at=now, actor=SYSTEM, action="order_shipped", rule="warehouse.shipped", order_id=order.id,
              from_status="confirmed", to_status="shipped", data={"courier": courier, "tracking_no": number})
        closed = []
        for row in session.scalars(select(AfterSale).where(AfterSale.order_id == order.id,
                                                           AfterSale.status == Status.REQUESTED.value)
                                   .with_for_update()):
            # Only a shipment inside the review window closes the refund; a late one leaves it to the timer.
            in_window = row.deadline_kind == "review" and row.deadline_at is not None and now < row.deadline_at
            if row.kind == Kind.REFUND_ONLY.value and row.preset == "taobao" and in_window:
                _apply(session, svc, row, "seller_shipped", SYSTEM, reason="卖家在审核期内发货，退款关闭，交易继续",
                       rule="taobao.system_close.shipped_within_review")
                closed.append(row.id)
        return {"order_no": order_no, "changed": True, "closed_requests": closed}


def ship_replacement(svc: Services, request_id: int, *, actor: Actor, courier: str, tracking_no: str,
                     expected_version: int | None = None) -> RequestView:
    """The seller sends the replacement of an exchange."""
    number = tracking_no.strip().upper()
    if not is_valid_tracking_number(courier, number):
        raise errors.BadTrackingNumber("快递单号格式不对", courier=courier, tracking_no=number)
    with svc.sessions() as session, session.begin():
        row = _load_for_update(session, request_id)
        if expected_version is not None and row.version != expected_version:
            raise errors.Conflict("这个售后单刚被别人处理过，请刷新后再操作", expected=expected_version, current=row.version)
        _apply(session, svc, row, "ship_replacement", actor, reason=None,
               data={"courier": courier, "tracking_no": number})
        session.flush()
        return RequestView.of(row)
