"""The worker: sweeps due deadlines and delivers queued notices into buyers' conversations."""

import logging
import time

import requests
from sqlalchemy import select

from bot.identity import sender_id_of
from bot.persistence.models import Outbox
from bot.services.context import Services
from bot.services.timers import sweep_due
from bot.settings import Settings

log = logging.getLogger(__name__)

UPDATE_INTENT = "EXTERNAL_request_update"


def deliver_outbox(svc: Services, settings: Settings, *, batch: int = 50) -> int:
    """Send due notices through Rasa (rendered there from domain.yml); unsent ones are retried later."""
    sent = 0
    now = svc.clock.now()
    with svc.sessions() as session:
        due = session.scalars(select(Outbox).where(Outbox.sent_at.is_(None), Outbox.due_at <= now)
                              .order_by(Outbox.id).limit(batch)).all()
    for notice in due:
        entities = {"update_kind": notice.kind, "request_id": notice.after_sale_id or 0, "notice_id": notice.id}
        try:
            response = requests.post(
                f"{settings.rasa_url}/conversations/{sender_id_of(notice.buyer_id)}/trigger_intent",
                params={"output_channel": "latest", "token": settings.rasa_token},
                json={"name": UPDATE_INTENT, "entities": entities}, timeout=10,
            )
        except requests.RequestException as exc:
            log.warning("rasa unreachable, notice %s stays queued (%s)", notice.id, type(exc).__name__)
            return sent
        if response.status_code != 200:
            log.warning("rasa refused notice %s (%s): %s", notice.id, response.status_code, response.text[:200])
            continue
        with svc.sessions() as session, session.begin():
            row = session.get(Outbox, notice.id)
            if row is not None and row.sent_at is None:
                row.sent_at = svc.clock.now()
        sent += 1
    return sent


def sweep_once(svc: Services, settings: Settings) -> dict[str, int]:
    return {"deadlines": sweep_due(svc), "notices": deliver_outbox(svc, settings)}


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
