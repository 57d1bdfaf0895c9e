"""Clocks: every use case takes one, so tests and demos can move time (tz-aware UTC throughout)."""

from datetime import datetime, timedelta, timezone
from typing import Protocol
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """Real time."""

    def now(self) -> datetime:
        return datetime.now(timezone.utc)


class FakeClock:
    """A clock that only moves when told to (tests)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 11, 20, 2, 0, tzinfo=timezone.utc)

    def now(self) -> datetime:
        return self._now

    def advance(self, **delta: float) -> None:
        self._now += timedelta(**delta)

    def set(self, at: datetime) -> None:
        self._now = at


def parse_duration(text: str) -> timedelta:
    """'72h', '3d', '90m', '30s' or combinations like '1d12h' -> timedelta."""
    units = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
    total = timedelta()
    number = ""
    for ch in text.strip().lower():
        if ch.isdigit() or ch == ".":
            number += ch
        elif ch in units and number:
            total += timedelta(**{units[ch]: float(number)})
            number = ""
        else:
            raise ValueError(f"bad duration {text!r}: use e.g. 72h, 3d, 1d12h")
    if number:
        raise ValueError(f"bad duration {text!r}: a number needs a unit (d, h, m, s)")
    return total


def local(at: datetime) -> datetime:
    """`at` in China time, for display and working-day arithmetic."""
    return at.astimezone(SHANGHAI)


def format_local(at: datetime) -> str:
    """'11月23日 10:00' in China time, the way buyers read dates."""
    t = local(at)
    return f"{t.month}月{t.day}日 {t:%H:%M}"
