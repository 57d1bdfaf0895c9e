"""Given-steps shared by the workflow tests: the demo team, preset policies, walking a request, snapshots."""

import dataclasses
from functools import lru_cache

import yaml
from sqlalchemy import func, inspect, select, table

from bot.domain.policy import Policy
from bot.domain.workflow import Role
from bot.persistence.models import AfterSale, Event, Order, Outbox, Payout
from bot.policy.loader import SHOPS_DIR, load_policy, parse_policy
from bot.services import after_sales
from bot.services.after_sales import Actor, RequestView, buyer_actor
from bot.services.context import Services

# The demo shop's team (bot/services/staff.py) and a platform arbitrator.
REVIEWER = Actor("staff:li", Role.REVIEWER)
OTHER_REVIEWER = Actor("staff:wang", Role.REVIEWER)
SUPERVISOR = Actor("staff:zhou", Role.SUPERVISOR)
FINANCE = Actor("staff:qian", Role.FINANCE)
CASHIER = Actor("staff:sun", Role.CASHIER)
ARBITRATOR = Actor("staff:xiaoer", Role.ARBITRATOR)

RETURN_TRACKING = "SF1234567890123"
COD_ACCOUNT = "alipay:13812345678"

# Demo orders (bot/services/seed.py): order number -> buyer.
DELIVERED = "202611200000000104"  # buyer 1, online, received: 针织开衫 ¥199 + 棉袜 2×¥19.90, discount ¥20, freight ¥10
COD_DELIVERED = "202611200000000106"  # buyer 1, cash on delivery, received, freight ¥12
HOME_GOODS = "202611200000000107"  # buyer 1, online, received, 居家馆 四件套
SHIPPED = "202611200000000103"  # buyer 1, online, shipped not received
UNSHIPPED = "202611200000000102"  # buyer 1, online, confirmed not shipped
COMPLETED = "202611200000000105"  # buyer 1, online, trade completed 3 days ago
BUYER2_DELIVERED = "202611200000000201"  # buyer 2, online, received
COD_UNSHIPPED = "202611200000000202"  # buyer 2, cash on delivery, confirmed, nothing collected
BUYER3_DELIVERED = "202611200000000301"  # buyer 3, online, received

# Reasons staff give; they must reach the buyer word for word.
REASONS = {
    "reject": "照片看不出质量问题，请补充清晰的实物照片",
    "refuse_refund": "退回的商品有明显穿着痕迹，影响二次销售",
    "arbitrate_for_buyer": "平台判定商品存在质量问题，支持买家退款",
    "arbitrate_for_seller": "平台判定商品无质量问题，支持卖家",
    "close_nothing_collected": "订单未发货，货款未收，无需退款",
}

# Who does each step in the demo team, so a path reads as a list of action names.
DOER: dict[str, Actor] = {
    "approve_return": REVIEWER, "approve_refund": REVIEWER, "reject": REVIEWER, "refuse_refund": REVIEWER,
    "confirm_receipt": REVIEWER, "confirm_receipt_exchange": REVIEWER, "check_online": REVIEWER,
    "check_offline": REVIEWER, "pay_original_route": SUPERVISOR, "confirm_money_received": FINANCE,
    "close_nothing_collected": FINANCE, "record_transfer": CASHIER, "arbitrate_for_buyer": ARBITRATOR,
    "arbitrate_for_seller": ARBITRATOR,
}
BUYER_STEPS = frozenset({"escalate", "modify", "cancel", "ship_back"})


@lru_cache(maxsize=None)
def demo_policy(preset: str) -> Policy:
    """The demo shop's YAML policy with its `preset:` replaced."""
    data = yaml.safe_load((SHOPS_DIR / "demo.yml").read_text(encoding="utf-8"))
    data["preset"] = preset
    return parse_policy(data, f"demo.yml (preset {preset})")


def with_preset(svc: Services, preset: str) -> Services:
    """The same database and clock, the demo shop on `preset`."""
    policy = demo_policy(preset)
    return dataclasses.replace(svc, policies=lambda code: policy if code == "demo" else load_policy(code))


def buyer_of(svc: Services, request_id: int) -> int:
    with svc.sessions() as session:
        buyer = session.scalar(select(AfterSale.buyer_id).where(AfterSale.id == request_id))
        assert buyer is not None
        return buyer


def step(svc: Services, request_id: int, action: str, *, actor: Actor | None = None,
         reason: str | None = None) -> RequestView:
    """One step as the person who does it in the demo team (buyer steps as the request's buyer)."""
    if action in BUYER_STEPS:
        buyer = buyer_of(svc, request_id)
        if action == "ship_back":
            return after_sales.ship_back(svc, request_id, buyer_id=buyer, tracking_no=RETURN_TRACKING)
        return after_sales.act(svc, request_id, action, actor=buyer_actor(buyer), buyer_id=buyer)
    return after_sales.act(svc, request_id, action, actor=actor or DOER[action],
                           reason=reason if reason is not None else REASONS.get(action))


def walk(svc: Services, request_id: int, *actions: str) -> RequestView:
    view = None
    for action in actions:
        view = step(svc, request_id, action)
    assert view is not None
    return view


def submit(svc: Services, order_no: str, *, buyer_id: int = 1, reason: str = "quality", **kw: object) -> RequestView:
    if order_no == COD_DELIVERED and "account" not in kw:
        kw["account"] = COD_ACCOUNT
    return after_sales.submit(svc, buyer_id=buyer_id, order_no=order_no, reason=reason, **kw)  # type: ignore[arg-type]


def outbox_of(svc: Services, request_id: int) -> list[Outbox]:
    with svc.sessions() as session:
        return list(session.scalars(select(Outbox).where(Outbox.after_sale_id == request_id).order_by(Outbox.id)))


def payouts_of(svc: Services, request_id: int) -> list[Payout]:
    with svc.sessions() as session:
        return list(session.scalars(select(Payout).where(Payout.after_sale_id == request_id).order_by(Payout.id)))


def system_events(svc: Services, request_id: int) -> list[Event]:
    with svc.sessions() as session:
        return list(session.scalars(select(Event).where(Event.after_sale_id == request_id, Event.role == "system")
                                    .order_by(Event.id)))


def paid_fen(svc: Services, order_no: str) -> int:
    with svc.sessions() as session:
        paid = session.scalar(select(Order.paid_fen).where(Order.order_no == order_no))
        assert paid is not None
        return paid


def snapshot(svc: Services, request_id: int) -> dict[str, object]:
    """Everything a refused call could have touched: the row, its events, and the size of every table."""
    with svc.sessions() as session:
        row = session.get(AfterSale, request_id)
        assert row is not None
        columns = {attr.key: getattr(row, attr.key) for attr in inspect(AfterSale).column_attrs}
        events = [(e.id, e.action, e.from_status, e.to_status, e.actor)
                  for e in session.scalars(select(Event).where(Event.after_sale_id == request_id).order_by(Event.id))]
        names = inspect(session.connection()).get_table_names()
        sizes = {name: session.scalar(select(func.count()).select_from(table(name))) for name in sorted(names)}
    return {"row": columns, "events": events, "tables": sizes, "gateway": list(getattr(svc.payments, "calls", []))}
