"""When refunded money arrives: working days from the maintained calendar, per route."""

from datetime import date, datetime, timezone

import pytest

from bot.services.arrival import add_workdays, arrival_by


@pytest.mark.parametrize("start,days,expected", [
    (date(2026, 11, 23), 3, date(2026, 11, 26)),  # Monday + 3 working days = Thursday
    (date(2026, 11, 27), 1, date(2026, 11, 30)),  # Friday + 1 skips the weekend
    (date(2026, 2, 12), 3, date(2026, 2, 24)),  # Spring Festival 15–23 Feb is skipped; Sat 14 Feb is 调休
    (date(2026, 2, 13), 1, date(2026, 2, 14)),  # the make-up Saturday counts as a working day
    (date(2026, 2, 27), 1, date(2026, 2, 28)),  # and so does Saturday 28 Feb
])
def test_working_days_follow_holidays_and_make_up_days(start, days, expected):
    assert add_workdays(start, days) == expected


def test_original_route_three_and_bank_five_working_days_in_china_time():
    paid = datetime(2026, 11, 27, 17, 0, tzinfo=timezone.utc)  # already Saturday 01:00 in China
    assert arrival_by(paid, "original") == date(2026, 12, 2)
    assert arrival_by(paid, "bank") == date(2026, 12, 4)
