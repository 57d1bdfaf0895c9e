"""What every use case is handed: sessions, a clock, the shop policies and the outside systems."""

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from bot.clock import Clock
from bot.domain.policy import Policy
from bot.services.adapters import CourierTracking, PaymentGateway, Warehouse


@dataclass
class Services:
    sessions: sessionmaker[Session]
    clock: Clock
    policies: Callable[[str], Policy]
    payments: PaymentGateway
    warehouse: Warehouse
    couriers: CourierTracking
