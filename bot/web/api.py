"""JSON API over the services, for the shop window, the console and other systems."""

from collections.abc import Callable

import requests

from fastapi import APIRouter, Depends, UploadFile
from pydantic import BaseModel, Field
from sqlalchemy import select

from bot.domain.errors import InvalidInput
from bot.domain.money import Pick
from bot.identity import buyer_token, sender_id_of
from bot.persistence.models import Buyer
from bot.services import after_sales
from bot.services.context import Services
from bot.services.evidence import MAX_BYTES, save_evidence
from bot.services.orders import orders_of_buyer
from bot.settings import Settings


def demo_buyers(svc: Services) -> list[dict]:
    with svc.sessions() as session:
        return [{"id": b.id, "name": b.name} for b in session.scalars(select(Buyer).order_by(Buyer.id))]


def orders_payload(svc: Services, buyer_id: int) -> list[dict]:
    return [{
        "order_no": o.order_no, "state": o.state, "state_label": o.state_label, "payment": o.payment,
        "paid_fen": o.paid_fen, "summary": o.summary, "after_sale_possible": o.after_sale_possible,
        "lines": [line.__dict__ for line in o.lines],
    } for o in orders_of_buyer(svc, buyer_id)]


class PickIn(BaseModel):
    order_item_id: int
    quantity: int = Field(gt=0, le=999)


class AfterSaleIn(BaseModel):
    order_no: str = Field(min_length=1, max_length=30)
    reason: str = Field(min_length=1, max_length=30)
    items: list[PickIn] | None = None
    resolution: str | None = Field(default=None, pattern="^(refund|return|exchange|resend)$")
    words: str = Field(default="", max_length=2000)
    refund_account: str | None = Field(default=None, max_length=80)
    expected_total_fen: int | None = Field(default=None, ge=0)


def router(svc: Services, settings: Settings, require_buyer: Callable[..., int]) -> APIRouter:
    r = APIRouter()
    Buyer_ = Depends(require_buyer)

    @r.get("/me/orders", tags=["buyer"])
    def my_orders(buyer_id: int = Buyer_) -> list[dict]:
        """The signed-in buyer's orders with their state."""
        return orders_payload(svc, buyer_id)

    @r.get("/me/chat", tags=["buyer"])
    def chat_config(buyer_id: int = Buyer_) -> dict:
        """Where the chat widget connects and how it proves who the buyer is."""
        return {"rasa_url": settings.rasa_url, "session_id": sender_id_of(buyer_id),
                "buyer_token": buyer_token(buyer_id, settings.secret_key)}

    @r.post("/me/evidence", tags=["buyer"], status_code=201)
    async def upload_evidence(file: UploadFile, buyer_id: int = Buyer_) -> dict:
        """Upload one evidence photo (JPG/PNG/WEBP by content, at most 5 MB); the chat then sends its id."""
        data = await file.read(MAX_BYTES + 1)
        evidence_id = save_evidence(svc, buyer_id=buyer_id, data=data)
        return {"id": evidence_id, "payload": f'/inform{{"evidence_id":"{evidence_id}"}}'}

    @r.get("/me/chat/history", tags=["buyer"])
    def chat_history(buyer_id: int = Buyer_) -> list[dict]:
        """The buyer's conversation so far, from Rasa's tracker store (messages that came while away)."""
        return conversation_messages(settings, sender_id_of(buyer_id))

    @r.get("/me/after-sales", tags=["buyer"])
    def my_requests(buyer_id: int = Buyer_) -> list[dict]:
        return [view_payload(v) for v in after_sales.requests_of_buyer(svc, buyer_id)]

    @r.post("/me/after-sales", tags=["buyer"], status_code=201)
    def create_request(body: AfterSaleIn, buyer_id: int = Buyer_) -> dict:
        """Apply for after-sales by item and quantity; the amount is computed by the system."""
        view = after_sales.submit(
            svc, buyer_id=buyer_id, order_no=body.order_no, reason=body.reason,
            picks=[Pick(p.order_item_id, p.quantity) for p in body.items] if body.items else None,
            resolution=body.resolution, words=body.words, account=body.refund_account,
            expected_total_fen=body.expected_total_fen,
        )
        return view_payload(view)

    @r.get("/me/after-sales/{request_id}/timeline", tags=["buyer"])
    def my_timeline(request_id: int, buyer_id: int = Buyer_) -> list[dict]:
        """What happened to one of the buyer's requests, oldest first (who acted by role, never by name)."""
        return buyer_timeline(svc, buyer_id, request_id)

    @r.post("/me/after-sales/{request_id}/ship-back", tags=["buyer"])
    def ship_back(request_id: int, body: ShipBackIn, buyer_id: int = Buyer_) -> dict:
        """Enter the return parcel's tracking number (format checked per courier)."""
        return view_payload(after_sales.ship_back(svc, request_id, buyer_id=buyer_id, tracking_no=body.tracking_no,
                                                  courier=body.courier))

    @r.post("/me/after-sales/{request_id}/{action}", tags=["buyer"])
    def buyer_action(request_id: int, action: str, buyer_id: int = Buyer_) -> dict:
        """Escalate (维权), modify after a rejection, or withdraw (cancel) one's own request."""
        if action not in BUYER_ACTIONS:
            raise InvalidInput("不支持的操作", action=action, allowed=sorted(BUYER_ACTIONS))
        return view_payload(after_sales.act(svc, request_id, action, actor=after_sales.buyer_actor(buyer_id),
                                            buyer_id=buyer_id))

    @r.post("/me/orders/{order_no}/cancel", tags=["buyer"])
    def cancel_order(order_no: str, buyer_id: int = Buyer_) -> dict:
        """Cancel an unconfirmed order at once, or ask for a refund of a paid, unshipped one."""
        outcome, view = after_sales.cancel_order(svc, buyer_id=buyer_id, order_no=order_no)
        return {"outcome": outcome, "request": view_payload(view) if view else None}

    return r


BUYER_ACTIONS = frozenset({"escalate", "modify", "cancel"})


class ShipBackIn(BaseModel):
    tracking_no: str = Field(min_length=5, max_length=30)
    courier: str | None = Field(default=None, max_length=10)


def conversation_messages(settings: Settings, sender_id: str, limit: int = 200) -> list[dict]:
    """User and bot messages of one conversation, oldest first (empty if Rasa is unreachable)."""
    try:
        response = requests.get(f"{settings.rasa_url}/conversations/{sender_id}/tracker",
                                params={"token": settings.rasa_token, "include_events": "ALL"}, timeout=5)
        response.raise_for_status()
    except requests.RequestException:
        return []
    messages = []
    for event in response.json().get("events", []):
        text = event.get("text") or ""
        # Button payloads ("/affirm") and intents the app triggers ("EXTERNAL: …") are not the buyer's words.
        if event.get("event") == "user" and not text.startswith("/") and not text.startswith("EXTERNAL"):
            messages.append({"from": "buyer", "text": text, "at": event.get("timestamp")})
        elif event.get("event") == "user":
            continue
        elif event.get("event") == "bot":
            data = event.get("data") or {}
            messages.append({"from": "bot", "text": event.get("text") or "", "at": event.get("timestamp"),
                             "buttons": data.get("buttons") or []})
    return messages[-limit:]


def buyer_timeline(svc: Services, buyer_id: int, request_id: int) -> list[dict]:
    from bot.domain.errors import RequestNotFound
    from bot.persistence.models import AfterSale, Event

    with svc.sessions() as session:
        row = session.get(AfterSale, request_id)
        if row is None or row.buyer_id != buyer_id:
            raise RequestNotFound("找不到这个售后单", request_id=request_id)
        events = session.scalars(select(Event).where(Event.after_sale_id == request_id).order_by(Event.id)).all()
        return [{"at": e.at.isoformat(), "role": e.role, "action": e.action, "status": e.to_status,
                 "reason": e.reason if e.action in ("reject", "refuse_refund") or e.role == "arbitrator" else None}
                for e in events]


def view_payload(view: after_sales.RequestView) -> dict:
    return {
        "id": view.id, "order_no": view.order_no, "kind": view.kind, "status": view.status, "reason": view.reason,
        "refund_fen": view.refund_fen, "deadline_at": view.deadline_at.isoformat() if view.deadline_at else None,
        "deadline_kind": view.deadline_kind, "rule_id": view.rule_id, "refund_route": view.refund_route,
        "refund_account": view.refund_account_masked, "note": view.last_reason_note, "version": view.version,
        "items": [line.__dict__ for line in view.lines],
    }
