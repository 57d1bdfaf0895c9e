"""Read models the assistant needs to explain things to one buyer."""

from dataclasses import dataclass

from sqlalchemy import select

from bot.clock import format_local
from bot.domain.couriers import BY_CODE
from bot.domain.workflow import Status
from bot.persistence.models import AfterSale, Event, Order
from bot.services.context import Services

# Why the system closed a request, by the rule recorded on the closing event (seed: 售后退款关闭).
CLOSE_EXPLANATIONS = {
    "timer.escalate_after_rejection": "商家拒绝后，在规定时间内没有申请平台介入或修改申请，系统自动关闭",
    "timer.ship_back": "商家同意退货后，在7天内没有填写退货单号，系统自动关闭",
    "timer.escalate_after_refusal": "商家拒绝退款后，在规定时间内没有申请平台介入，系统自动关闭",
    "taobao.system_close.shipped_within_review": "申请退款后商家在审核期内发了货，退款关闭，交易继续",
    "workflow.arbitrate_for_seller": "平台判定不支持退款",
    "workflow.close_nothing_collected": "商品未发出且没有收款，无需退款，财务已关闭",
}


@dataclass(frozen=True)
class RequestSummary:
    id: int
    status: str
    items: str
    explanation: str
    trade_open: bool
    escalation_expired: bool
    escalation_open: bool
    escalation_deadline: str


def latest_request(svc: Services, buyer_id: int, statuses: set[str] | None) -> RequestSummary | None:
    """The buyer's newest request (in one of `statuses`, if given)."""
    now = svc.clock.now()
    with svc.sessions() as session:
        query = select(AfterSale).where(AfterSale.buyer_id == buyer_id).order_by(AfterSale.id.desc()).limit(1)
        if statuses:
            query = query.where(AfterSale.status.in_(statuses))
        row = session.scalar(query)
        if row is None:
            return None
        last = session.scalar(select(Event).where(Event.after_sale_id == row.id).order_by(Event.id.desc()).limit(1))
        rule = (last.rule if last else "").rsplit(".", 1)[0] if last and last.rule.startswith("timer.") else (
            last.rule if last else "")
        explanation = row.last_reason_note or CLOSE_EXPLANATIONS.get(rule, "") or "您撤销了申请"
        order = row.order
        policy = svc.policies(order.shop.code)
        trade_open = order.state != "completed" or (
            order.completed_at is not None and now <= order.completed_at + policy.timer("complaint_window"))
        return RequestSummary(
            id=row.id, status=row.status,
            items="、".join(f"{i.order_item.name}×{i.quantity}" for i in row.items),
            explanation=explanation, trade_open=trade_open and order.state != "completed",
            escalation_expired=rule in ("timer.escalate_after_rejection", "timer.escalate_after_refusal"),
            escalation_open=row.status in (Status.REJECTED.value, Status.REFUND_REFUSED.value)
            and row.deadline_at is not None and now < row.deadline_at,
            escalation_deadline=format_local(row.deadline_at) if row.deadline_at else "",
        )


@dataclass(frozen=True)
class OrderTiming:
    order_no: str
    state: str
    courier_name: str
    tracking_no: str
    received_days: float | None
    no_reason_days: float


def order_timing(svc: Services, buyer_id: int) -> list[OrderTiming]:
    """The buyer's orders with delivery facts, newest first."""
    now = svc.clock.now()
    with svc.sessions() as session:
        orders = session.scalars(select(Order).where(Order.buyer_id == buyer_id)
                                 .order_by(Order.created_at.desc(), Order.id.desc())).all()
        out = []
        for order in orders:
            policy = svc.policies(order.shop.code)
            received_days = (now - order.received_at).total_seconds() / 86400 if order.received_at else None
            courier = BY_CODE.get(order.courier or "")
            out.append(OrderTiming(order.order_no, order.state, courier.name if courier else "快递",
                                   order.tracking_no or "", received_days,
                                   policy.timer("no_reason_return").total_seconds() / 86400))
        return out
