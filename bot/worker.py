"""The worker: sweeps due deadlines and delivers queued notices into buyers' conversations."""

import logging
import time

import requests
from sqlalchemy import select

from bot.identity import sender_id_of
from bot.persistence.models import Outbox
from bot.services.context import Services
from bot.services.follow_ups import claim_due_visit
from bot.services.timers import sweep_due
from bot.settings import Settings

log = logging.getLogger(__name__)

UPDATE_INTENT = "EXTERNAL_request_update"
FOLLOW_UP_INTENT = "EXTERNAL_follow_up"


def deliver_outbox(svc: Services, settings: Settings, *, batch: int = 50) -> int:
    """Send due notices through Rasa (rendered there from domain.yml); unsent ones are retried later.

    Each notice is claimed with FOR UPDATE SKIP LOCKED for as long as it is being sent, so two workers
    never send the same notice; it is marked sent in the same transaction, only once Rasa took it.
    """
    sent = 0
    for _ in range(batch):
        with svc.sessions() as session, session.begin():
            notice = session.scalar(select(Outbox).where(Outbox.sent_at.is_(None), Outbox.due_at <= svc.clock.now())
                                    .order_by(Outbox.id).limit(1).with_for_update(skip_locked=True))
            if notice is None:
                return sent
            entities = {"update_kind": notice.kind, "request_id": notice.after_sale_id or 0, "notice_id": notice.id}
            if not _trigger(settings, notice.buyer_id, UPDATE_INTENT, entities):
                return sent  # Rasa is away: the notice stays queued
            notice.sent_at = svc.clock.now()
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
    """Send due visits, each claimed while it is sent (a restart or a second worker loses or doubles nothing)."""
    sent = 0
    for _ in range(50):
        with svc.sessions() as session, session.begin():
            visit = claim_due_visit(session, svc.clock.now())
            if visit is None:
                return sent
            if not _trigger(settings, visit.buyer_id, FOLLOW_UP_INTENT, {"follow_up_id": visit.id}):
                return sent
            visit.sent_at = svc.clock.now()
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
