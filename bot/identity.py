"""Who a chat message comes from: a signed buyer token, or (dev only) a 'buyer-<id>' sender id."""

import re

from itsdangerous import BadSignature, URLSafeSerializer

_SALT = "buyer-chat"
_SENDER = re.compile(r"buyer-(\d+)(?:-.*)?")


def buyer_token(buyer_id: int, secret_key: str) -> str:
    """The signed token a chat client sends in metadata (`buyer_token`) to say which buyer it is."""
    return URLSafeSerializer(secret_key, salt=_SALT).dumps({"buyer": buyer_id})


def buyer_from_token(token: str, secret_key: str) -> int | None:
    try:
        return int(URLSafeSerializer(secret_key, salt=_SALT).loads(token)["buyer"])
    except (BadSignature, KeyError, TypeError, ValueError):
        return None


def buyer_from_sender(sender_id: str) -> int | None:
    match = _SENDER.fullmatch(sender_id or "")
    return int(match.group(1)) if match else None


def sender_id_of(buyer_id: int) -> str:
    """The conversation id of a buyer in every channel."""
    return f"buyer-{buyer_id}"
