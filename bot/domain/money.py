"""Refund arithmetic in integer fen: order discounts split pro rata, never more than was paid."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Line:
    """One order line as bought."""

    line_id: int
    unit_price_fen: int
    quantity: int


@dataclass(frozen=True)
class Pick:
    """How many of one line the buyer sends back."""

    line_id: int
    quantity: int


def paid_per_line(lines: list[Line], discount_fen: int) -> dict[int, int]:
    """What the buyer really paid for each line once the order discount is spread by value.

    Largest-remainder rounding, so the lines add up to exactly goods total minus discount.
    """
    gross = {line.line_id: line.unit_price_fen * line.quantity for line in lines}
    total = sum(gross.values())
    if total == 0:
        return {line_id: 0 for line_id in gross}
    discount_fen = min(max(discount_fen, 0), total)
    shares = {lid: discount_fen * value // total for lid, value in gross.items()}
    remainders = sorted(gross, key=lambda lid: (-(discount_fen * gross[lid] % total), lid))
    for lid in remainders[: discount_fen - sum(shares.values())]:
        shares[lid] += 1
    return {lid: gross[lid] - shares[lid] for lid in gross}


def refund_for_picks(
    lines: list[Line],
    discount_fen: int,
    picks: list[Pick],
    already: dict[int, tuple[int, int]] | None = None,
) -> dict[int, int]:
    """Refund per picked line: its paid share for the quantity returned, capped by what is left.

    `already` maps a line to (quantity, fen) refunded before. The pick that brings a line's quantity
    to the whole line refunds exactly what is left of it, so partial refunds add up to what was paid.
    """
    paid = paid_per_line(lines, discount_fen)
    by_id = {line.line_id: line for line in lines}
    done = already or {}
    result: dict[int, int] = {}
    for pick in picks:
        line = by_id[pick.line_id]
        done_qty, done_fen = done.get(line.line_id, (0, 0))
        left = paid[line.line_id] - done_fen
        if done_qty + pick.quantity >= line.quantity:
            result[pick.line_id] = max(0, left)
        else:
            share = paid[line.line_id] * pick.quantity // line.quantity
            result[pick.line_id] = max(0, min(share, left))
    return result


def yuan(fen: int) -> str:
    """'¥199.00' for display."""
    sign = "-" if fen < 0 else ""
    fen = abs(fen)
    return f"{sign}¥{fen // 100}.{fen % 100:02d}"
