"""Wire the services for a process from the settings (called by each entry point, never at import)."""

from functools import lru_cache

from bot.clock import Clock, SystemClock
from bot.persistence.db import DbOffsetClock, make_engine, make_session_factory
from bot.policy.loader import load_policy
from bot.services.adapters import LocalCourierTracking, LocalPaymentGateway, LocalWarehouse
from bot.services.context import Services
from bot.settings import Settings, load_settings


def build_services(settings: Settings, clock: Clock | None = None) -> Services:
    """Services on the settings' database; dev and test read the movable database clock."""
    sessions = make_session_factory(make_engine(settings.database_url))
    if clock is None:
        clock = SystemClock() if settings.is_production else DbOffsetClock(sessions)
    return Services(
        sessions=sessions, clock=clock, policies=load_policy, payments=LocalPaymentGateway(),
        warehouse=LocalWarehouse(), couriers=LocalCourierTracking(),
    )


@lru_cache(maxsize=1)
def default_services() -> Services:
    """The process-wide services (action server, web), built on first use."""
    return build_services(load_settings())
