"""What staff read: the queue by nearest deadline, one request in full, and finance's refund ledger."""

import csv
import io
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from bot.clock import SHANGHAI
from bot.domain.accounts import mask_account
from bot.domain.workflow import FINAL, Role, Status, actions_for
from bot.logging_setup import mask_pii
from bot.persistence.models import AfterSale, AfterSaleItem, Event, Evidence, Order, Payout, Shop
from bot.services.after_sales import RequestView
from bot.services.context import Services

# Roles that need the full refund account to pay it out; everyone else sees it masked.
ACCOUNT_ROLES = frozenset({Role.CASHIER, Role.FINANCE})
# Roles that talk to the buyer and so may read contact details in the buyer's own words.
CONTACT_ROLES = frozenset({Role.REVIEWER, Role.SUPERVISOR})


@dataclass(frozen=True)
class QueueFilter:
    status: str | None = None
    reason: str | None = None
    shop: str | None = None
    overdue: bool | None = None
    include_final: bool = False
    limit: int = 100


@dataclass(frozen=True)
class RequestDetail:
    view: RequestView
    buyer_id: int
    buyer_name: str
    shop_code: str
    payment: str
    reason_confidence: float | None
    earlier_reasons: list[str]
    buyer_words: str
    evidence_required: bool
    phone_call_task: bool
    refund_account: str  # masked unless the role needs it
    return_tracking: str
    created_at: datetime
    allowed_actions: list[str]
    events: list[dict] = field(default_factory=list)
    evidence: list[dict] = field(default_factory=list)


def queue(svc: Services, flt: QueueFilter) -> list[RequestView]:
    """Open requests, nearest deadline first (requests without a deadline last)."""
    now = svc.clock.now()
    query = select(AfterSale).options(selectinload(AfterSale.items).selectinload(AfterSaleItem.order_item),
                                      selectinload(AfterSale.order))
    if not flt.include_final:
        query = query.where(AfterSale.status.not_in([s.value for s in FINAL]))
    if flt.status:
        query = query.where(AfterSale.status == flt.status)
    if flt.reason:
        query = query.where(AfterSale.reason == flt.reason)
    if flt.shop:
        query = query.join(Order, Order.id == AfterSale.order_id).join(Shop, Shop.id == Order.shop_id).where(
            Shop.code == flt.shop)
    if flt.overdue is True:
        query = query.where(AfterSale.deadline_at.is_not(None), AfterSale.deadline_at <= now)
    elif flt.overdue is False:
        query = query.where((AfterSale.deadline_at.is_(None)) | (AfterSale.deadline_at > now))
    query = query.order_by(AfterSale.deadline_at.is_(None), AfterSale.deadline_at, AfterSale.id).limit(
        min(max(flt.limit, 1), 500))
    with svc.sessions() as session:
        return [RequestView.of(row) for row in session.scalars(query)]


def detail(svc: Services, request_id: int, role: Role) -> RequestDetail:
    from bot.domain.errors import RequestNotFound

    with svc.sessions() as session:
        row = session.get(AfterSale, request_id)
        if row is None:
            raise RequestNotFound("找不到这个售后单", request_id=request_id)
        events = session.scalars(select(Event).where(Event.after_sale_id == row.id).order_by(Event.id)).all()
        photos = session.scalars(select(Evidence).where(Evidence.after_sale_id == row.id).order_by(Evidence.id)).all()
        account = row.refund_account or ""
        return RequestDetail(
            view=RequestView.of(row), buyer_id=row.buyer_id, buyer_name=row.order.buyer.name,
            shop_code=row.order.shop.code, payment=row.order.payment, reason_confidence=row.reason_confidence,
            earlier_reasons=list(row.earlier_reasons or []),
            buyer_words=row.buyer_words if role in CONTACT_ROLES else mask_pii(row.buyer_words),
            evidence_required=row.evidence_required, phone_call_task=row.phone_call_task,
            refund_account=account.partition(":")[2] if role in ACCOUNT_ROLES else mask_account(account),
            return_tracking=f"{row.return_courier or ''} {row.return_tracking_no or ''}".strip(),
            created_at=row.created_at, allowed_actions=actions_for(Status(row.status), role, row.refund_route, row.kind),
            events=[{"at": e.at.isoformat(), "actor": e.actor, "role": e.role, "action": e.action,
                     "from": e.from_status, "to": e.to_status, "rule": e.rule, "reason": e.reason} for e in events],
            evidence=[{"id": p.id, "content_type": p.content_type, "size": p.size,
                       "uploaded_at": p.uploaded_at.isoformat()} for p in photos],
        )


def ledger_csv(svc: Services, start: date, end: date) -> str:
    """The refund-success ledger (退款成功表) for China-time dates start..end inclusive, as CSV."""
    lo = datetime.combine(start, time.min, SHANGHAI)
    hi = datetime.combine(end + timedelta(days=1), time.min, SHANGHAI)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["paid_at", "request_id", "order_no", "route", "amount_yuan", "external_ref", "paid_by",
                     "reason", "kind"])
    with svc.sessions() as session:
        rows = session.execute(
            select(Payout, AfterSale, Order).join(AfterSale, AfterSale.id == Payout.after_sale_id)
            .join(Order, Order.id == AfterSale.order_id)
            .where(Payout.paid_at >= lo, Payout.paid_at < hi).order_by(Payout.paid_at, Payout.id)
        ).all()
        for payout, request, order in rows:
            writer.writerow([payout.paid_at.astimezone(SHANGHAI).isoformat(timespec="seconds"), request.id,
                             order.order_no, payout.route, f"{payout.amount_fen / 100:.2f}", payout.external_ref,
                             payout.paid_by, request.reason, request.kind])
    return out.getvalue()
