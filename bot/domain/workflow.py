"""The after-sales state machine: statuses, who may move a request where, and which timer starts.

Pure and table-driven: services look up a move here, apply it to a row and write the audit event.
"""

from dataclasses import dataclass
from enum import Enum

from bot.domain.errors import Forbidden, InvalidTransition


class Kind(str, Enum):
    REFUND_ONLY = "refund_only"
    RETURN_REFUND = "return_refund"
    EXCHANGE = "exchange"


class Status(str, Enum):
    REQUESTED = "requested"  # seller must review
    REJECTED = "rejected"  # seller (or a later step) said no; buyer may escalate
    AWAITING_RETURN = "awaiting_return"  # buyer must ship the goods back
    RETURN_SHIPPED = "return_shipped"  # seller must confirm receipt
    REFUND_REFUSED = "refund_refused"  # seller refused after receipt; buyer may escalate
    ESCALATED = "escalated"  # platform arbitrator decides, binding
    CHECKING = "checking"  # internal: reviewer checks order, amount and goods
    AWAITING_SUPERVISOR = "awaiting_supervisor"  # online: supervisor confirms, then original route
    AWAITING_FINANCE = "awaiting_finance"  # offline: finance confirms the money came in
    AWAITING_CASHIER = "awaiting_cashier"  # offline: cashier transfers and records it
    EXCHANGE_SHIPPING = "exchange_shipping"  # seller ships the replacement
    REFUNDED = "refunded"
    EXCHANGED = "exchanged"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class Role(str, Enum):
    BUYER = "buyer"
    REVIEWER = "reviewer"
    SUPERVISOR = "supervisor"
    FINANCE = "finance"
    CASHIER = "cashier"
    ARBITRATOR = "arbitrator"
    SYSTEM = "system"


FINAL: frozenset[Status] = frozenset({Status.REFUNDED, Status.EXCHANGED, Status.CLOSED, Status.CANCELLED})
# A request in any other status holds its items: a second request for them is refused.
OPEN: frozenset[Status] = frozenset(Status) - FINAL


@dataclass(frozen=True)
class Move:
    """One allowed transition: an action, by one of some roles, from a status to another."""

    action: str
    source: Status
    target: Status
    roles: frozenset[Role]
    needs_reason: bool = False


def _m(action: str, source: Status, target: Status, *roles: Role, reason: bool = False) -> Move:
    return Move(action, source, target, frozenset(roles), reason)


S, R = Status, Role
INTERNAL_REJECT_FROM = (S.CHECKING, S.AWAITING_SUPERVISOR, S.AWAITING_FINANCE, S.AWAITING_CASHIER)
MOVES: tuple[Move, ...] = (
    # seller review (72 h by default; the timer approves)
    _m("approve_return", S.REQUESTED, S.AWAITING_RETURN, R.REVIEWER, R.SYSTEM),
    _m("approve_refund", S.REQUESTED, S.CHECKING, R.REVIEWER, R.SYSTEM),
    _m("reject", S.REQUESTED, S.REJECTED, R.REVIEWER, reason=True),
    # taobao: seller ships an unshipped order within the review window -> refund closes
    _m("seller_shipped", S.REQUESTED, S.CLOSED, R.REVIEWER, R.SYSTEM),
    # after a rejection the buyer escalates, changes the request, or the window closes it
    _m("escalate", S.REJECTED, S.ESCALATED, R.BUYER),
    _m("modify", S.REJECTED, S.REQUESTED, R.BUYER),
    _m("expire", S.REJECTED, S.CLOSED, R.SYSTEM),
    # the goods come back
    _m("ship_back", S.AWAITING_RETURN, S.RETURN_SHIPPED, R.BUYER),
    _m("expire", S.AWAITING_RETURN, S.CLOSED, R.SYSTEM),
    _m("confirm_receipt", S.RETURN_SHIPPED, S.CHECKING, R.REVIEWER, R.SYSTEM),
    _m("confirm_receipt_exchange", S.RETURN_SHIPPED, S.EXCHANGE_SHIPPING, R.REVIEWER, R.SYSTEM),
    _m("refuse_refund", S.RETURN_SHIPPED, S.REFUND_REFUSED, R.REVIEWER, reason=True),
    _m("escalate", S.REFUND_REFUSED, S.ESCALATED, R.BUYER),
    _m("expire", S.REFUND_REFUSED, S.CLOSED, R.SYSTEM),
    # arbitration binds both sides
    _m("arbitrate_for_buyer", S.ESCALATED, S.CHECKING, R.ARBITRATOR, reason=True),
    _m("arbitrate_for_seller", S.ESCALATED, S.CLOSED, R.ARBITRATOR, reason=True),
    # internal processing: online reviewer -> supervisor -> original route
    _m("check_online", S.CHECKING, S.AWAITING_SUPERVISOR, R.REVIEWER),
    _m("pay_original_route", S.AWAITING_SUPERVISOR, S.REFUNDED, R.SUPERVISOR),
    # offline: reviewer -> finance -> cashier, or finance closes when nothing was shipped or paid
    _m("check_offline", S.CHECKING, S.AWAITING_FINANCE, R.REVIEWER),
    _m("confirm_money_received", S.AWAITING_FINANCE, S.AWAITING_CASHIER, R.FINANCE),
    _m("close_nothing_collected", S.AWAITING_FINANCE, S.CLOSED, R.FINANCE, reason=True),
    _m("record_transfer", S.AWAITING_CASHIER, S.REFUNDED, R.CASHIER),
    # exchange: the replacement ships and arrives
    _m("ship_replacement", S.EXCHANGE_SHIPPING, S.EXCHANGED, R.REVIEWER),
    # anyone in the internal chain may reject, with a reason that goes back to the buyer
    *(_m("reject", source, S.REJECTED, role, reason=True)
      for source, role in zip(INTERNAL_REJECT_FROM, (R.REVIEWER, R.SUPERVISOR, R.FINANCE, R.CASHIER))),
    # the buyer may withdraw while nothing has been paid
    *(_m("cancel", source, S.CANCELLED, R.BUYER)
      for source in (S.REQUESTED, S.REJECTED, S.AWAITING_RETURN, S.REFUND_REFUSED)),
)

_BY_KEY: dict[tuple[str, Status], Move] = {(m.action, m.source): m for m in MOVES}


def find_move(action: str, source: Status, role: Role) -> Move:
    """The move `action` from `source` for `role`, or raise naming what is wrong."""
    move = _BY_KEY.get((action, source))
    if move is None:
        allowed = sorted(m.action for m in MOVES if m.source == source)
        raise InvalidTransition(
            f"cannot {action} a request that is {source.value}",
            action=action, status=source.value, allowed=allowed,
        )
    if role not in move.roles:
        raise Forbidden(
            f"role {role.value} may not {action}", action=action, role=role.value,
            roles=sorted(r.value for r in move.roles),
        )
    return move


# Internal steps that belong to one payment route: online refunds go back by the original route
# through a supervisor; cash-on-delivery refunds go through finance and a cashier's transfer; when
# nothing was shipped or collected, finance closes the request without a payout.
ROUTE_ACTIONS: dict[str, frozenset[str]] = {
    "check_online": frozenset({"original"}),
    "pay_original_route": frozenset({"original"}),
    "check_offline": frozenset({"alipay", "bank", "none"}),
    "confirm_money_received": frozenset({"alipay", "bank"}),
    "record_transfer": frozenset({"alipay", "bank"}),
    "close_nothing_collected": frozenset({"none"}),
}


# Review outcomes that belong to kinds of request: a refund-only request is approved as a refund (and
# closed if the seller ships it within the window); a return may also be refunded without the goods
# (the seller waives the return); returns and exchanges otherwise wait for the goods.
KIND_ACTIONS: dict[str, frozenset[str]] = {
    "approve_refund": frozenset({"refund_only", "return_refund"}),
    "seller_shipped": frozenset({"refund_only"}),
    "approve_return": frozenset({"return_refund", "exchange"}),
    "confirm_receipt": frozenset({"return_refund"}),
    "confirm_receipt_exchange": frozenset({"exchange"}),
}


def kind_allows(action: str, kind: str | None) -> bool:
    allowed = KIND_ACTIONS.get(action)
    return allowed is None or kind is None or kind in allowed


def route_allows(action: str, route: str | None) -> bool:
    allowed = ROUTE_ACTIONS.get(action)
    return allowed is None or route is None or route in allowed


def actions_for(source: Status, role: Role, route: str | None = None, kind: str | None = None) -> list[str]:
    """What `role` may do to a request in `source` (for the console's buttons)."""
    return sorted({m.action for m in MOVES if m.source == source and role in m.roles
                   and route_allows(m.action, route) and kind_allows(m.action, kind)})
