"""The worker: sweeps due deadlines and delivers queued notices into buyers' conversations."""

import logging
import time

import requests
from sqlalchemy import select

from bot.identity import sender_id_of
from bot.persistence.models import Outbox
from bot.services.context import Services
from bot.services.follow_ups import due_visits, mark_sent
from bot.services.timers import sweep_due
from bot.settings import Settings

log = logging.getLogger(__name__)

UPDATE_INTENT = "EXTERNAL_request_update"
FOLLOW_UP_INTENT = "EXTERNAL_follow_up"


def deliver_outbox(svc: Services, settings: Settings, *, batch: int = 50) -> int:
    """Send due notices through Rasa (rendered there from domain.yml); unsent ones are retried later."""
    sent = 0
    now = svc.clock.now()
    with svc.sessions() as session:
        due = session.scalars(select(Outbox).where(Outbox.sent_at.is_(None), Outbox.due_at <= now)
                              .order_by(Outbox.id).limit(batch)).all()
    for notice in due:
        entities = {"update_kind": notice.kind, "request_id": notice.after_sale_id or 0, "notice_id": notice.id}
        if not _trigger(settings, notice.buyer_id, UPDATE_INTENT, entities):
            return sent
        with svc.sessions() as session, session.begin():
            row = session.get(Outbox, notice.id)
            if row is not None and row.sent_at is None:
                row.sent_at = svc.clock.now()
        sent += 1
    return sent


def _trigger(settings: Settings, buyer_id: int, intent: str, entities: dict) -> bool:
    """Run an external intent in the buyer's conversation; False if Rasa could not take it now."""
    try:
        response = requests.post(
            f"{settings.rasa_url}/conversations/{sender_id_of(buyer_id)}/trigger_intent",
            params={"output_channel": "latest", "token": settings.rasa_token},
            json={"name": intent, "entities": entities}, timeout=10,
        )
    except requests.RequestException as exc:
        log.warning("rasa unreachable for %s (%s)", intent, type(exc).__name__)
        return False
    if response.status_code != 200:
        log.warning("rasa refused %s (%s)", intent, response.status_code)
        return False
    return True


def deliver_follow_ups(svc: Services, settings: Settings) -> int:
    """Send due visits; a visit stays queued until Rasa took it (a restart loses nothing)."""
    sent = 0
    for follow_up_id, buyer_id in due_visits(svc):
        if not _trigger(settings, buyer_id, FOLLOW_UP_INTENT, {"follow_up_id": follow_up_id}):
            break
        mark_sent(svc, follow_up_id)
        sent += 1
    return sent


def sweep_once(svc: Services, settings: Settings) -> dict[str, int]:
    return {"deadlines": sweep_due(svc), "notices": deliver_outbox(svc, settings),
            "follow_ups": deliver_follow_ups(svc, settings)}


def run_forever(svc: Services, settings: Settings) -> None:
    log.info("worker started, every %.1fs", settings.worker_interval_s)
    while True:
        try:
            result = sweep_once(svc, settings)
            if any(result.values()):
                log.info("sweep: %s", result)
        except Exception:  # a bad sweep must not kill the worker; the next one retries
            log.exception("sweep failed")
        time.sleep(settings.worker_interval_s)
