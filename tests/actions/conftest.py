"""Actions run on real Tracker objects against a real (SQLite) database with a fake clock."""

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.common import use_services
from bot.services.context import Services

DOMAIN = yaml.safe_load((Path(__file__).resolve().parents[2] / "domain.yml").read_text(encoding="utf-8"))


@pytest.fixture
def services(sqlite_svc: Services) -> Iterator[Services]:
    use_services(sqlite_svc)
    yield sqlite_svc
    use_services(None)


def tracker(buyer: int = 3, *, text: str = "", intent: str = "inform", confidence: float = 0.99,
            entities: list[dict] | None = None, slots: dict[str, Any] | None = None,
            active_loop: str | None = None, metadata: dict | None = None, sender: str | None = None) -> Tracker:
    message = {"text": text, "intent": {"name": intent, "confidence": confidence},
               "intent_ranking": [{"name": intent, "confidence": confidence}], "entities": entities or [],
               "metadata": metadata or {}}
    return Tracker(sender or f"buyer-{buyer}", slots or {}, message, [], False, None,
                   {"name": active_loop} if active_loop else {}, "action_listen")


def run(action, t: Tracker) -> tuple[list[dict], list[dict]]:
    """(messages the buyer sees, events) of one action run."""
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, t, DOMAIN))
    return dispatcher.messages, events


def responses(messages: list[dict]) -> list[str]:
    return [m.get("response") for m in messages]


def slot_events(events: list[dict]) -> dict[str, Any]:
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}
