"""Rasa-side safety net: when the action server cannot be reached or fails, the buyer gets the
domain's apology (utter_error_backend) once per turn instead of silence.

Rasa 3.6 has no hook for this; `install()` wraps `RemoteAction.run`, and `bot.nlu.serve` calls it
before starting Rasa. Rejections (a form slot not filled) pass through untouched.
"""

import logging
from typing import Any

log = logging.getLogger(__name__)
APOLOGY = "utter_error_backend"
_installed = False


def _apologised_this_turn(tracker: Any, text: str) -> bool:
    for event in reversed(tracker.events):
        if event.type_name == "user":
            return False
        if event.type_name == "bot" and event.text == text:
            return True
    return False


def install() -> None:
    """Wrap RemoteAction.run once per process."""
    global _installed
    if _installed:
        return
    from rasa.core.actions.action import ActionExecutionRejection, RemoteAction
    from rasa.shared.core.events import BotUttered
    from rasa.shared.exceptions import RasaException

    original = RemoteAction.run

    async def run(self: RemoteAction, output_channel: Any, nlg: Any, tracker: Any, domain: Any) -> list:
        try:
            return await original(self, output_channel, nlg, tracker, domain)
        except ActionExecutionRejection:
            raise
        except RasaException:
            log.exception("custom action %s failed; apologising to the buyer", self.name())
            message = await nlg.generate(APOLOGY, tracker, output_channel.name())
            if not message or _apologised_this_turn(tracker, message.get("text")):
                return []
            return [BotUttered(message.get("text"), data={}, metadata={"utter_action": APOLOGY})]

    RemoteAction.run = run  # type: ignore[method-assign]
    _installed = True


def fix_socketio_rooms() -> None:
    """Rasa 3.6 calls `AsyncServer.enter_room` without awaiting it, and python-socketio 5.x made it a
    coroutine: the buyer's socket never joins its conversation's room, so messages the bot sends on
    its own (agent replies, timer outcomes, follow-ups) would never reach an open page. Schedule it."""
    import asyncio

    import socketio

    enter = socketio.AsyncServer.enter_room
    if not asyncio.iscoroutinefunction(enter) or getattr(enter, "_scheduled", False):
        return

    def enter_room(self: socketio.AsyncServer, sid: str, room: str, namespace: str | None = None) -> object:
        return asyncio.ensure_future(enter(self, sid, room, namespace))

    enter_room._scheduled = True  # type: ignore[attr-defined]
    socketio.AsyncServer.enter_room = enter_room  # type: ignore[method-assign]
