"""Outside systems behind small interfaces, each with a local implementation for dev and tests."""

import hashlib
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.persistence.models import Order


@dataclass(frozen=True)
class PayoutReceipt:
    external_ref: str
    route: str
    amount_fen: int


class PaymentGateway(Protocol):
    def refund(self, *, idempotency_key: str, route: str, account: str | None, amount_fen: int) -> PayoutReceipt: ...


class Warehouse(Protocol):
    def shipped(self, session: Session, order_no: str) -> bool: ...


class CourierTracking(Protocol):
    def delivered(self, courier: str, tracking_no: str) -> bool: ...


class LocalPaymentGateway:
    """Local stand-in for WeChat Pay / bank transfer: the same key always gives the same receipt."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def refund(self, *, idempotency_key: str, route: str, account: str | None, amount_fen: int) -> PayoutReceipt:
        self.calls.append(idempotency_key)
        ref = "LOCAL-" + hashlib.sha1(idempotency_key.encode()).hexdigest()[:16].upper()
        return PayoutReceipt(ref, route, amount_fen)


class LocalWarehouse:
    """Local stand-in for the ERP: reads the order's own shipping fields."""

    def shipped(self, session: Session, order_no: str) -> bool:
        order = session.scalar(select(Order).where(Order.order_no == order_no))
        return bool(order and order.shipped_at)


class LocalCourierTracking:
    """Local stand-in for courier tracking: every well-formed number counts as delivered."""

    def delivered(self, courier: str, tracking_no: str) -> bool:
        from bot.domain.couriers import is_valid_tracking_number

        return is_valid_tracking_number(courier, tracking_no)
