"""Fuzzing the chat through the REST channel of the running production profile (LB → Rasa → actions → app).

Every message gets an answer in words (or, for a body that is not a chat message, a 400; for an over-long one a
polite 413): never silence, never a trace, never another buyer's data. Afterwards the conversation holds every
message that was answered, each once, and the database only consistent requests.
"""

import json
import os
import re
from pathlib import Path

import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text

from bot.identity import buyer_token
from tests.hostile.conftest import TRIED
from tests.hostile.strategies import FIXED_HOSTILE, hostile_text
from tests.prod.support import APOLOGY_MESSAGE, lost_and_duplicated, new_buyers, stored_user_events

NO_ANSWER = "抱歉亲，这句我没接上。可以换个说法再说一次吗？也可以回复“转人工”。"  # bot/ops/rasa_guard.py

TRACE = re.compile(r"Traceback|File \"|sqlalchemy|psycopg|Exception|Internal Server Error|\{\{|\{%|undefined", re.I)
OTHERS = ("202611200000000201", "202611200000000202", "羊毛大衣", "王先生", "13900002222", "林小姐", "0104")
ARTIFACTS = Path(os.environ.get("BOT_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "tests" / "artifacts"))
ARTIFACTS.mkdir(parents=True, exist_ok=True)
CHAT = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])


def post(prod_stack, body, *, raw: bytes | None = None, ctype: str = "application/json"):  # type: ignore[no-untyped-def]
    url = prod_stack.urls["rasa"] + "/webhooks/rest/webhook"
    if raw is not None:
        return requests.post(url, data=raw, headers={"Content-Type": ctype}, timeout=150)
    return requests.post(url, json=body, timeout=150)


def check_reply(r, paused: bool = False) -> list[str]:  # type: ignore[no-untyped-def]
    assert r.status_code in (200, 400, 413, 503), (r.status_code, r.text[:300])
    assert not TRACE.search(r.text), r.text[:500]
    for secret in OTHERS:
        assert secret not in r.text, f"another buyer's {secret} in {r.text[:300]}"
    payload = r.json()
    if r.status_code == 400:
        assert payload["error"] == "bad_request"
        return []
    texts = [m.get("text") or "" for m in payload]
    if not paused:
        assert texts and any(t.strip() for t in texts), f"silence for a chat message ({r.status_code})"
    if r.status_code == 503:
        assert texts == [APOLOGY_MESSAGE]
    if r.status_code == 413:
        assert "太长" in texts[0]
    if texts == [NO_ANSWER]:
        TRIED["chat turn the dialogue left unanswered (guard answered)"] += 1
    return texts


def stored_form(m: str) -> str:
    """A message as Rasa stores it behind the guarded channel: control characters blanked, ends trimmed,
    internal intents defused."""
    m = re.sub(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", " ", m).strip()
    return "／" + m[1:] if re.match(r"/(restart|session_start|back|EXTERNAL_\w*)\b", m) else m


class Conversation:
    """One hostile buyer. A conversation handed to a person (paused: the bot is silent on purpose) is
    checked and replaced by a fresh buyer."""

    def __init__(self, prod_stack, log) -> None:  # type: ignore[no-untyped-def]
        self.prod_stack, self.log = prod_stack, log
        self.buyers: list[tuple[int, list[str]]] = []
        self.fresh()

    def fresh(self) -> None:
        buyer_id = new_buyers(self.prod_stack)[0]
        self.buyers.append((buyer_id, []))
        self.sender, self.token = f"buyer-{buyer_id}", buyer_token(buyer_id, self.prod_stack.secret_key)

    def paused(self) -> bool:
        r = requests.get(f"{self.prod_stack.urls['rasa']}/conversations/{self.sender}/tracker",
                         params={"token": self.prod_stack.token, "include_events": "NONE"}, timeout=30)
        return bool(r.json().get("paused"))

    def say(self, message: str) -> None:
        r = post(self.prod_stack, {"sender": self.sender, "message": message, "metadata": {"buyer_token": self.token}})
        TRIED["chat message"] += 1
        self.log.write(json.dumps({"sender": self.sender, "message": message[:300], "status": r.status_code,
                                   "reply": r.text[:300]}, ensure_ascii=False) + "\n")
        paused = self.paused()
        check_reply(r, paused=paused)
        if r.status_code == 200:
            self.buyers[-1][1].append(message)
        if paused:
            TRIED["chat conversation handed to a person (scam report, handoff)"] += 1
            self.fresh()


def test_hostile_chat_messages(prod_stack):
    with open(ARTIFACTS / "hostile-chat-turns.jsonl", "w", encoding="utf-8") as log:
        chat = Conversation(prod_stack, log)
        for message in FIXED_HOSTILE + ["衣服穿了一次就开线了，我要退货", "<b>确认</b>", "确认\x00", "/deny", "/affirm",
                                        '/inform{"picks":"99999:1"}', '/inform{"evidence_id":"1"}', "A" * 2000,
                                        "退" * 2001, "A" * 100_000]:
            chat.say(message)

        @CHAT
        @given(hostile_text())
        def one(message: str) -> None:
            chat.say(message)

        one()
    # Nothing lost or doubled: every answered message is in its conversation, and a message is stored twice
    # only where a rewind (two-stage fallback) took it back first.
    for buyer_id, answered in chat.buyers:
        stored, rewinds = stored_user_events(prod_stack, buyer_id)
        assert lost_and_duplicated([stored_form(m) for m in answered], stored, rewinds) == (0, 0), buyer_id


def test_malformed_chat_bodies(prod_stack):
    buyer_id = new_buyers(prod_stack)[0]
    token = buyer_token(buyer_id, prod_stack.secret_key)
    bodies = [
        {}, {"sender": f"buyer-{buyer_id}"}, {"message": "你好"}, {"sender": None, "message": "你好"},
        {"sender": 12, "message": "你好"}, {"sender": f"buyer-{buyer_id}", "message": None},
        {"sender": f"buyer-{buyer_id}", "message": ["你好"]}, {"sender": f"buyer-{buyer_id}", "message": {"a": 1}},
        {"sender": "", "message": "你好"}, {"sender": "x" * 10_000, "message": "你好"},
        {"sender": "buyer-1\x00", "message": "你好"}, {"sender": "../../etc", "message": "你好"},
        {"sender": f"buyer-{buyer_id}", "message": "你好", "metadata": "not an object"},
        {"sender": f"buyer-{buyer_id}", "message": "你好", "metadata": [token]},
        {"sender": f"buyer-{buyer_id}", "message": "你好", "metadata": {"buyer_token": {"$ne": None}}},
        {"sender": f"buyer-{buyer_id}", "message": "你好", "metadata": {"buyer_token": "x" * 100_000}},
        {"sender": f"buyer-{buyer_id}", "message": "你好", "metadata": {"shop": "<script>", "buyer_token": token}},
    ]
    for body in bodies:
        TRIED["chat malformed body"] += 1
        check_reply(post(prod_stack, body))
    for raw, ctype in ((b"", "application/json"), (b"{", "application/json"), (b"\xff\xfe", "application/json"),
                       (b"sender=a&message=b", "application/x-www-form-urlencoded"), (b"null", "application/json"),
                       (b"[]", "application/json"), (json.dumps({"sender": "a", "message": "b"}).encode(), "text/plain")):
        TRIED["chat malformed body"] += 1
        r = post(prod_stack, None, raw=raw, ctype=ctype)
        assert r.status_code in (200, 400), (raw, r.status_code)
        assert not TRACE.search(r.text)


def test_chat_fuzz_left_the_books_consistent(prod_stack):
    engine = create_engine(prod_stack.cfg.app_database_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        wrong_owner = conn.execute(text("SELECT count(*) FROM after_sales a JOIN orders o ON o.id = a.order_id "
                                        "WHERE a.buyer_id <> o.buyer_id")).scalar()
        # The synthetic buyers' orders have one line each: more than one open request on one is a duplicate.
        twice = conn.execute(text(
            "SELECT count(*) FROM (SELECT a.order_id FROM after_sales a JOIN orders o ON o.id = a.order_id "
            "WHERE o.order_no LIKE '9%' AND a.status NOT IN ('cancelled', 'closed') GROUP BY a.order_id "
            "HAVING count(*) > 1) x")).scalar()
        unaudited = conn.execute(text("SELECT count(*) FROM after_sales a WHERE NOT EXISTS "
                                      "(SELECT 1 FROM events e WHERE e.after_sale_id = a.id)")).scalar()
    engine.dispose()
    assert (wrong_owner, twice, unaudited) == (0, 0, 0)
