"""The facts a buyer needs about a request: state, who acts next, by when, and when money arrives."""

from dataclasses import dataclass

from sqlalchemy import bindparam, select

from bot.clock import format_local
from bot.domain.money import yuan
from bot.domain.workflow import OPEN, Status
from bot.persistence.direct import DirectConnection, in_read, keep_prepared
from bot.persistence.models import AfterSale, AfterSaleItem, Order, OrderItem, Payout, Shop
from bot.services.arrival import arrival_by
from bot.services.context import Services

ROUTE_LABELS = {"original": "原路退回", "alipay": "支付宝", "bank": "银行卡", "none": "无需退款"}


@dataclass(frozen=True)
class StatusFacts:
    request_id: int
    status: str
    items: str
    deadline: str
    note: str
    address: str
    amount: str
    route: str
    arrival: str

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


# A request's facts in three Core queries run straight on the driver (in_read): the requests with their shop's
# return address, their lines, their payouts. Through the ORM (objects, lazy or eager loads) reading them cost
# more than the rest of a status answer.
_REQUESTS = (
    select(AfterSale.id, AfterSale.status, AfterSale.deadline_at, AfterSale.last_reason_note,
           AfterSale.refund_fen, AfterSale.freight_refund_fen, AfterSale.refund_route, Shop.return_address)
    .join(Order, Order.id == AfterSale.order_id).join(Shop, Shop.id == Order.shop_id))
_LINES = (select(AfterSaleItem.after_sale_id, OrderItem.name, AfterSaleItem.quantity)
          .join(OrderItem, OrderItem.id == AfterSaleItem.order_item_id).order_by(AfterSaleItem.id))
_PAYOUTS = select(Payout.after_sale_id, Payout.paid_at, Payout.route).order_by(Payout.id)
_RECENT_IDS = (select(AfterSale.id).where(AfterSale.buyer_id == bindparam("buyer_id"))
               .order_by(AfterSale.id.desc()).limit(bindparam("limit")).scalar_subquery())
OF_BUYER = tuple(keep_prepared(statement) for statement in (
    _REQUESTS.where(AfterSale.id.in_(_RECENT_IDS)).order_by(AfterSale.id.desc()),
    _LINES.where(AfterSaleItem.after_sale_id.in_(_RECENT_IDS)),
    _PAYOUTS.where(Payout.after_sale_id.in_(_RECENT_IDS))))
OF_REQUEST = tuple(keep_prepared(statement) for statement in (
    _REQUESTS.where(AfterSale.id == bindparam("request_id"), AfterSale.buyer_id == bindparam("buyer_id")),
    _LINES.where(AfterSaleItem.after_sale_id == bindparam("request_id")),
    _PAYOUTS.where(Payout.after_sale_id == bindparam("request_id"))))
_ON_ORDER_IDS = (select(AfterSale.id).join(Order, Order.id == AfterSale.order_id)
                 .where(AfterSale.buyer_id == bindparam("buyer_id"), Order.order_no == bindparam("order_no"))
                 .scalar_subquery())
ON_ORDER = tuple(keep_prepared(statement) for statement in (
    _REQUESTS.where(AfterSale.id.in_(_ON_ORDER_IDS)).order_by(AfterSale.id),
    _LINES.where(AfterSaleItem.after_sale_id.in_(_ON_ORDER_IDS)),
    _PAYOUTS.where(Payout.after_sale_id.in_(_ON_ORDER_IDS))))


def _read(db: DirectConnection, statements: tuple, params: dict) -> list[StatusFacts]:
    requests, lines, payouts = (db.execute(statement, params).all() for statement in statements)
    items: dict[int, list[str]] = {}
    for line in lines:
        items.setdefault(line["after_sale_id"], []).append(f"{line['name']}×{line['quantity']}")
    first_payout: dict[int, dict] = {}
    for payout in payouts:
        first_payout.setdefault(payout["after_sale_id"], payout)  # the first, as a single lookup found it
    return [_facts(row, items.get(row["id"], []), first_payout.get(row["id"])) for row in requests]


def _facts(row: dict, items: list[str], payout: dict | None) -> StatusFacts:
    arrival = ""
    if payout is not None:
        day = arrival_by(payout["paid_at"], payout["route"])
        arrival = f"{day.month}月{day.day}日"
    return StatusFacts(
        request_id=row["id"], status=row["status"], items="、".join(items),
        deadline=format_local(row["deadline_at"]) if row["deadline_at"] else "",
        note=row["last_reason_note"] or "", address=row["return_address"],
        amount=yuan(row["refund_fen"] + row["freight_refund_fen"]), route=ROUTE_LABELS.get(row["refund_route"], ""),
        arrival=arrival,
    )


def facts_of_buyer(svc: Services, buyer_id: int, *, limit: int = 5) -> list[StatusFacts]:
    """The buyer's most recent requests, newest first."""
    return in_read(svc.sessions.kw["bind"], lambda db: _read(db, OF_BUYER, {"buyer_id": buyer_id, "limit": limit}))


def facts_of_request(svc: Services, request_id: int, buyer_id: int) -> StatusFacts | None:
    """One request of the buyer's (someone else's reads as none)."""
    found = in_read(svc.sessions.kw["bind"], lambda db: _read(
        db, OF_REQUEST, {"request_id": request_id, "buyer_id": buyer_id}))
    return found[0] if found else None


def open_facts_on_order(svc: Services, buyer_id: int, order_no: str) -> list[StatusFacts]:
    """The buyer's requests on one order that are still being worked, oldest first. An order has few requests:
    the closed ones are dropped here (a kept statement cannot hold an IN list of statuses)."""
    found = in_read(svc.sessions.kw["bind"], lambda db: _read(
        db, ON_ORDER, {"buyer_id": buyer_id, "order_no": order_no}))
    return [facts for facts in found if Status(facts.status) in OPEN]
