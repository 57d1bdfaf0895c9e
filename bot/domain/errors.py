"""Domain errors: each carries a stable code that actions and the API map to a reply or a status."""


class DomainError(Exception):
    """A request that the rules refuse; `code` is stable, `message` is for people."""

    code = "domain_error"
    http_status = 400

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFound(DomainError):
    code = "not_found"
    http_status = 404


class OrderNotFound(NotFound):
    code = "order_not_found"


class RequestNotFound(NotFound):
    code = "request_not_found"


class NotYourOrder(NotFound):
    """Someone else's order answers exactly like an unknown one: nothing tells that it exists."""

    code = "order_not_found"


class Forbidden(DomainError):
    code = "forbidden_role"
    http_status = 403


class SameActor(DomainError):
    code = "same_person_approve_and_pay"
    http_status = 403


class InvalidTransition(DomainError):
    code = "invalid_transition"
    http_status = 409


class Conflict(DomainError):
    code = "conflict"
    http_status = 409


class AlreadyInProgress(DomainError):
    code = "items_already_in_after_sale"
    http_status = 409


class InvalidInput(DomainError):
    code = "invalid_input"
    http_status = 422


class QuantityTooLarge(InvalidInput):
    code = "quantity_above_bought"


class AmountMismatch(InvalidInput):
    code = "amount_mismatch"


class BadTrackingNumber(InvalidInput):
    code = "bad_tracking_number"


class BadAccount(InvalidInput):
    code = "bad_refund_account"


class ReasonRequired(InvalidInput):
    code = "reason_required"


class NotEligible(DomainError):
    code = "not_eligible"
    http_status = 409


class ClockLocked(DomainError):
    code = "clock_locked_in_production"
    http_status = 403
