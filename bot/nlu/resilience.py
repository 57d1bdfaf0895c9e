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
