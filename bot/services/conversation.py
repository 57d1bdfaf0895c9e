"""The buyer's Rasa conversation as seen from the app: pause it for a person, hand it back, speak into it."""

import requests

from bot.domain.errors import DomainError
from bot.identity import sender_id_of
from bot.settings import Settings


class RasaUnavailable(DomainError):
    """Rasa could not be reached or refused the call."""

    code = "rasa_unavailable"
    http_status = 502


def _call(settings: Settings, method: str, path: str, **kwargs: object) -> dict:
    try:
        response = requests.request(method, f"{settings.rasa_url}{path}", params={"token": settings.rasa_token,
                                    **kwargs.pop("params", {})}, timeout=20, **kwargs)  # type: ignore[arg-type]
    except requests.RequestException as exc:
        raise RasaUnavailable("暂时连不上对话服务，请稍后再试", error=type(exc).__name__) from None
    if response.status_code != 200:
        raise RasaUnavailable("对话服务拒绝了这次请求，请稍后再试", path=path, status=response.status_code)
    return response.json()


def tracker(settings: Settings, buyer_id: int) -> dict | None:
    """The buyer's tracker with all events, or None when Rasa cannot be reached (pages still show)."""
    try:
        return _call(settings, "GET", f"/conversations/{sender_id_of(buyer_id)}/tracker",
                     params={"include_events": "ALL"})
    except (RasaUnavailable, ValueError):
        return None


def append_events(settings: Settings, buyer_id: int, events: list[dict]) -> None:
    _call(settings, "POST", f"/conversations/{sender_id_of(buyer_id)}/tracker/events", json=events)


def pause(settings: Settings, buyer_id: int) -> None:
    """A person takes over: the bot stops answering this buyer."""
    append_events(settings, buyer_id, [{"event": "pause"}])


def speak(settings: Settings, buyer_id: int, intent: str, entities: dict | None = None) -> None:
    """Run an external intent in the buyer's conversation, even while it is paused.

    A paused conversation runs no actions, so it is resumed first; the listening step that follows
    lets the rules see the external intent as a fresh turn (messages the buyer sent while paused left
    no listening step behind). Actions that must keep the bot quiet pause it again themselves.
    """
    append_events(settings, buyer_id, [{"event": "resume"}, {"event": "action", "name": "action_listen"}])
    _call(settings, "POST", f"/conversations/{sender_id_of(buyer_id)}/trigger_intent",
          params={"output_channel": "latest"}, json={"name": intent, "entities": entities or {}})


def hand_back(settings: Settings, buyer_id: int) -> None:
    """The person is done: the bot greets the buyer again and answers from now on."""
    speak(settings, buyer_id, "EXTERNAL_handback")


def send_agent_message(settings: Settings, buyer_id: int, text: str) -> None:
    """An agent's words, shown in the buyer's chat as a message of the shop."""
    speak(settings, buyer_id, "EXTERNAL_agent_message", {"agent_text": text[:2000]})
