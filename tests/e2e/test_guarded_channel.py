"""The dev server has the production profile's guarded channels: what a buyer types cannot reset the
conversation, and a message without words is answered with a question, not acted on."""

import requests

from tests.e2e.chat import Buyer, texts
from tests.e2e.stack_tools import settings_of


def _events(stack, sender: str) -> list[dict]:
    response = requests.get(f"{stack.urls['rasa']}/conversations/{sender}/tracker",
                            params={"token": settings_of(stack).rasa_token}, timeout=10)
    response.raise_for_status()
    return response.json()["events"]


def test_typed_restart_and_wordless_messages_are_answered_and_change_nothing(stack):
    buyer = Buyer(stack.urls["rasa"], "buyer-3")
    assert texts(buyer.says("你好"))
    # "/restart" typed by a buyer is text, not Rasa's command: an answer, and the conversation is kept
    assert texts(buyer.says("/restart"))
    # 2,000 × "A" says nothing: the buyer is asked what they want (no scam warning, no hand-over)
    reply = texts(buyer.says("A" * 2000))
    assert "换个说法" in reply and "诈骗" not in reply
    events = _events(stack, "buyer-3")
    assert not any(e.get("event") in ("restart", "pause") for e in events)
    users = [e for e in events if e.get("event") == "user"]
    assert [u["text"][:2] for u in users[-3:]] == ["你好", "／r", "AA"]
    assert users[-1]["parse_data"]["intent"]["name"] == "nlu_fallback"
    # too long for one message: refused politely, nothing stored
    response = requests.post(f"{stack.urls['rasa']}/webhooks/rest/webhook",
                             json={"sender": "buyer-3", "message": "退" * 2001}, timeout=60)
    assert response.status_code == 413 and "太长" in response.json()[0]["text"]
    assert len([e for e in _events(stack, "buyer-3") if e.get("event") == "user"]) == len(users)
