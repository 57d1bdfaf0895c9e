"""The worker: sweeps due deadlines and delivers queued notices into buyers' conversations."""

import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import requests
from sqlalchemy import select, update

from bot.identity import sender_id_of
from bot.persistence.models import FollowUp, Outbox
from bot.services.context import Services
from bot.services.follow_ups import due_visits_query
from bot.services.timers import sweep_due
from bot.settings import Settings

log = logging.getLogger(__name__)

UPDATE_INTENT = "EXTERNAL_request_update"
FOLLOW_UP_INTENT = "EXTERNAL_follow_up"


def _holds_locks_while_sending(svc: Services) -> bool:
    """On PostgreSQL a row lock held while Rasa runs the notice blocks no reader; on SQLite any write
    transaction locks the whole file, so the action server (which reads the database to render the
    notice) would wait for the worker that waits for it. SQLite runs one worker, so it needs no claim."""
    return svc.sessions.kw["bind"].dialect.name != "sqlite"


def _deliver(svc: Services, settings: Settings, model: type, due: Any, send: Callable[[Any], bool],
             batch: int) -> int:
    """Send due rows of `model` one by one; each is marked sent only once Rasa took it."""
    sent = 0
    for _ in range(batch):
        if _holds_locks_while_sending(svc):
            with svc.sessions() as session, session.begin():
                row = session.scalar(due(svc.clock.now()).limit(1).with_for_update(skip_locked=True))
                if row is None or not send(row):
                    return sent
                row.sent_at = svc.clock.now()
        else:
            with svc.sessions() as session:
                row = session.scalar(due(svc.clock.now()).limit(1).execution_options(read_only=True))
                session.expunge_all()
            if row is None or not send(row):
                return sent
            with svc.sessions() as session, session.begin():
                session.execute(update(model).where(model.id == row.id, model.sent_at.is_(None))
                                .values(sent_at=svc.clock.now()))
        sent += 1
    return sent


def deliver_outbox(svc: Services, settings: Settings, *, batch: int = 50) -> int:
    """Send due notices through Rasa (rendered there from domain.yml); unsent ones are retried later.

    On PostgreSQL each notice is claimed with FOR UPDATE SKIP LOCKED while it is sent, so two workers
    never send the same notice.
    """
    def due(now: datetime) -> Any:
        return select(Outbox).where(Outbox.sent_at.is_(None), Outbox.due_at <= now).order_by(Outbox.id)

    def send(notice: Outbox) -> bool:
        entities = {"update_kind": notice.kind, "request_id": notice.after_sale_id or 0, "notice_id": notice.id}
        return _trigger(settings, notice.buyer_id, UPDATE_INTENT, entities)

    return _deliver(svc, settings, Outbox, due, send, batch)


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
    """Send due visits, each marked sent only once Rasa took it (a restart loses nothing)."""
    def send(visit: FollowUp) -> bool:
        return _trigger(settings, visit.buyer_id, FOLLOW_UP_INTENT, {"follow_up_id": visit.id})

    return _deliver(svc, settings, FollowUp, due_visits_query, send, 50)


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
