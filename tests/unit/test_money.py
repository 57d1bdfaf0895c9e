"""Refund arithmetic: discounts split pro rata, integer fen, never more than paid."""

from hypothesis import given
from hypothesis import strategies as st

from bot.domain.money import Line, Pick, paid_per_line, refund_for_picks, yuan


def test_discount_is_split_by_value_and_adds_up():
    lines = [Line(1, 19900, 1), Line(2, 1990, 2)]
    paid = paid_per_line(lines, 2000)
    assert paid == {1: 18233, 2: 3647}
    assert sum(paid.values()) == 19900 + 3980 - 2000


def test_partial_then_rest_refunds_exactly_what_was_paid():
    lines = [Line(1, 1000, 3)]
    first = refund_for_picks(lines, 100, [Pick(1, 1)])
    rest = refund_for_picks(lines, 100, [Pick(1, 2)], already={1: (1, first[1])})
    assert first[1] + rest[1] == 2900


def test_yuan_formats_fen():
    assert yuan(22880) == "¥228.80"
    assert yuan(5) == "¥0.05"


lines_strategy = st.lists(
    st.tuples(st.integers(1, 100_000), st.integers(1, 9)), min_size=1, max_size=6
)


@given(lines_strategy, st.integers(0, 2_000_000))
def test_refunds_never_exceed_paid_and_whole_order_adds_up(raw, discount):
    lines = [Line(i, price, qty) for i, (price, qty) in enumerate(raw)]
    gross = sum(price * qty for price, qty in raw)
    paid = paid_per_line(lines, discount)
    assert sum(paid.values()) == gross - min(discount, gross)
    refunds = refund_for_picks(lines, discount, [Pick(line.line_id, line.quantity) for line in lines])
    assert refunds == paid
    assert all(v >= 0 for v in refunds.values())


@given(lines_strategy, st.integers(0, 200_000), st.data())
def test_one_by_one_refunds_add_up_to_line_paid(raw, discount, data):
    lines = [Line(i, price, qty) for i, (price, qty) in enumerate(raw)]
    paid = paid_per_line(lines, discount)
    for line in lines:
        done_qty, done_fen = 0, 0
        while done_qty < line.quantity:
            qty = data.draw(st.integers(1, line.quantity - done_qty))
            fen = refund_for_picks(lines, discount, [Pick(line.line_id, qty)], already={line.line_id: (done_qty, done_fen)})
            assert 0 <= fen[line.line_id] <= paid[line.line_id] - done_fen
            done_qty, done_fen = done_qty + qty, done_fen + fen[line.line_id]
        assert done_fen == paid[line.line_id]
