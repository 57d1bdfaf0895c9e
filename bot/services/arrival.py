"""When refunded money arrives: working days in China (holidays and 调休 from chinesecalendar)."""

from datetime import date, datetime, timedelta

import chinese_calendar

from bot.clock import local

# Per route, the latest working day the money should be there (seed: 和信通).
ARRIVAL_WORKDAYS = {"original": 3, "alipay": 3, "bank": 5}


def add_workdays(start: date, days: int) -> date:
    """The date `days` working days after `start` (weekends and holidays skipped, 调休 counted)."""
    current = start
    left = days
    while left > 0:
        current += timedelta(days=1)
        if _is_workday(current):
            left -= 1
    return current


def _is_workday(day: date) -> bool:
    try:
        return chinese_calendar.is_workday(day)
    except NotImplementedError:  # a year the calendar does not know yet: weekdays only
        return day.weekday() < 5


def arrival_by(paid_at: datetime, route: str) -> date:
    """The latest date a refund paid at `paid_at` should arrive by its route."""
    return add_workdays(local(paid_at).date(), ARRIVAL_WORKDAYS.get(route, 5))
