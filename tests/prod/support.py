"""Buyers talking to the production profile over REST, and checks on its databases."""

import itertools
import json
import os
import re
import threading
from collections import Counter

import requests
from sqlalchemy import create_engine, text

from bot.clock import SystemClock
from bot.identity import buyer_token, sender_id_of
from bot.ops.prod import APOLOGY_MESSAGE, ProdStack, add_load_buyers
from bot.persistence.db import make_engine, make_session_factory
from bot.policy.loader import load_policy
from bot.services.adapters import LocalCourierTracking, LocalPaymentGateway, LocalWarehouse
from bot.services.context import Services

PG_SERVER = os.environ.get("BOT_TEST_PG_SERVER", "postgresql://postgres@127.0.0.1:5432")
TRACE_WORDS = re.compile(r"Traceback|Exception|Error|File \"|sqlalchemy|psycopg|Internal Server", re.I)
SHARED: ProdStack | None = None  # the running profile of this test session (see conftest.py)
_ids = itertools.count(5000, 10)
_ids_lock = threading.Lock()


def new_buyers(stack: ProdStack, count: int = 1) -> list[int]:
    """Fresh synthetic buyers, each with one delivered order of one 针织开衫 (¥199)."""
    with _ids_lock:
        first = next(_ids)
        for _ in range((count - 1) // 10):
            next(_ids)
    return add_load_buyers(stack.cfg.app_database_url, count, first_id=first)


def order_no_of(buyer_id: int) -> str:
    return f"9{buyer_id:017d}"


class Buyer:
    """A signed-in buyer on the REST channel (the production profile wants the signed token)."""

    def __init__(self, stack: ProdStack, buyer_id: int) -> None:
        self.url = f"{stack.urls['rasa']}/webhooks/rest/webhook"
        self.buyer_id = buyer_id
        self.sender = sender_id_of(buyer_id)
        self.token = buyer_token(buyer_id, stack.secret_key)
        self.log: list[tuple[str, int, list[str]]] = []

    def send(self, message: str, timeout: float = 150) -> tuple[int, list[str]]:
        response = requests.post(self.url, json={"sender": self.sender, "message": message,
                                                 "metadata": {"buyer_token": self.token}}, timeout=timeout)
        try:
            texts = [m.get("text") or "" for m in response.json()]
        except ValueError:
            texts = [response.text]
        self.log.append((message, response.status_code, texts))
        assert_polite(response.status_code, texts)
        return response.status_code, texts

    def says(self, message: str) -> str:
        """Send until answered (an apology means: send again), as a person would; returns the answer."""
        for _ in range(40):
            status, texts = self.send(message)
            if status == 200:
                return "\n".join(texts)
            threading.Event().wait(2)
        raise AssertionError(f"{message!r} never answered: {self.log[-3:]}")


def assert_polite(status: int, texts: list[str]) -> None:
    """Never silence, never a trace: either an answer, or (503) the apology."""
    assert status in (200, 503), (status, texts)
    assert texts and all(t.strip() for t in texts), f"silence ({status})"
    for t in texts:
        assert not TRACE_WORDS.search(t), f"a trace reached the buyer: {t[:200]}"
    if status == 503:
        assert texts == [APOLOGY_MESSAGE], texts


def services(stack: ProdStack) -> Services:
    return Services(sessions=make_session_factory(make_engine(stack.cfg.app_database_url)), clock=SystemClock(),
                    policies=load_policy, payments=LocalPaymentGateway(), warehouse=LocalWarehouse(),
                    couriers=LocalCourierTracking())


def app_db(stack: ProdStack):  # type: ignore[no-untyped-def]
    return create_engine(stack.cfg.app_database_url.replace("postgresql://", "postgresql+psycopg://"))


def tracker_db(stack: ProdStack):  # type: ignore[no-untyped-def]
    return create_engine(stack.cfg.tracker_database_url.replace("postgresql://", "postgresql+psycopg://"))


def requests_of(stack: ProdStack, buyer_id: int) -> list[tuple[int, str]]:
    engine = app_db(stack)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(
                text("SELECT id, status FROM after_sales WHERE buyer_id = :b ORDER BY id"), {"b": buyer_id})]
    finally:
        engine.dispose()


def _user_and_rewind_events(stack: ProdStack, buyer_id: int) -> list[tuple[str, str]]:
    """(type_name, data) of the conversation's `user` and `rewind` events, in stored order."""
    engine = tracker_db(stack)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(
                text("SELECT type_name, data FROM events WHERE sender_id = :s AND type_name IN "
                     "('user', 'rewind') ORDER BY id"), {"s": sender_id_of(buyer_id)})]
    finally:
        engine.dispose()


def user_turns(stack: ProdStack, buyer_id: int) -> list[str]:
    """The buyer's messages as the conversation has them, in order: the tracker store's user events, where a
    `rewind` (UserUtteranceReverted, e.g. of the two-stage fallback, which then re-adds the message with the
    intent the buyer confirmed) takes back the user event before it."""
    turns: list[str] = []
    for kind, data in _user_and_rewind_events(stack, buyer_id):
        if kind == "rewind":
            if turns:
                turns.pop()
        else:
            turns.append(json.loads(data).get("text") or "")
    return turns


def stored_user_events(stack: ProdStack, buyer_id: int) -> tuple[list[str], int]:
    """Every user event of the conversation as stored (texts, in order) and the number of `rewind` events.
    Rasa stores a message twice only when a rewind (two-stage fallback) took it back first."""
    rows = _user_and_rewind_events(stack, buyer_id)
    return [json.loads(d).get("text") or "" for k, d in rows if k == "user"], sum(k == "rewind" for k, _ in rows)


def lost_and_duplicated(answered: list[str], stored: list[str], rewinds: int) -> tuple[int, int]:
    """Lost: answered messages missing from the store. Duplicated: stored copies beyond the answered ones that
    no rewind explains."""
    have, want = Counter(stored), Counter(answered)
    lost = sum((want - have).values())
    extra = sum((have - want).values())
    return lost, max(0, extra - rewinds)


def notice_deliveries(stack: ProdStack, buyer_ids: list[int]) -> tuple[Counter, Counter]:
    """Per outbox notice: how often it was triggered in a conversation (EXTERNAL_request_update with its
    notice_id), and how often the buyer heard it (the trigger was followed by a bot message)."""
    engine = tracker_db(stack)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT sender_id, type_name, intent_name, data FROM events WHERE sender_id = "
                                     "ANY(:s) AND type_name IN ('user', 'bot') ORDER BY id"),
                                {"s": [sender_id_of(b) for b in buyer_ids]}).all()
    finally:
        engine.dispose()
    triggered: Counter = Counter()
    heard: Counter = Counter()
    current: dict[str, int | None] = {}
    for sender, kind, intent, data in rows:
        if kind == "user":
            current[sender] = None
            if intent == "EXTERNAL_request_update":
                entities = {e["entity"]: e["value"] for e in json.loads(data)["parse_data"].get("entities", [])}
                current[sender] = int(entities["notice_id"])
                triggered[current[sender]] += 1
        elif current.get(sender) is not None:
            heard[current[sender]] += 1
            current[sender] = None
    return triggered, heard
