"""Rasa-side guards (imported by the Rasa server only, through credentials.yml in every profile and the endpoints
file that bot/ops/prod.py writes; nothing but rasa, the standard library and bot's Rasa-safe modules is imported).

Everything here applies in every profile (`make run` and `make run-prod`): the guarded channels, the
abort-on-failed-action guard, the socket.io room fix and the speed-ups; the strict tracker store is the
production profile's (dev keeps Rasa's SQLite tracker store).

Why: Rasa 3.6 wraps every tracker store in `FailSafeTrackerStore`, which on a database error *silently*
carries on with an empty in-memory conversation: while PostgreSQL refuses connections a buyer in the middle
of an application is treated as a stranger (the form is forgotten, the answer makes no sense), and turns
handled then are lost. And its REST channel answers an exception with `200 []`: silence.

In the production profile instead:
- `StrictSQLTrackerStore` retries a failed read or write a few times (a stale pooled connection after a
  database restart heals on the second try) and then lets the error through, so the message is not handled
  at all and the conversation stays where it was in PostgreSQL;
- a custom action that fails (action server killed or hung mid-action, or failing) aborts the message
  instead of being skipped silently, so the conversation stays where it was;
- every action-server answer is still checked against Rasa's schema, and Rasa's other per-message waste is
  cut (bot.nlu.rasa_speedups: validators built once, event classes and graph schemas looked up once);
- the tracker is read with one Core query and written with one executemany (`StrictSQLTrackerStore`);
- `GuardedRestInput` / `GuardedSocketIOInput` (same names and URLs as Rasa's `rest` and `socketio`) answer
  such a message with a polite apology (REST: status 503 with the apology as the bot's message), refuse
  malformed bodies with 400, strip control characters, refuse over-long messages politely and do not let a
  buyer type Rasa's internal intents (/restart, /session_start, /back, /EXTERNAL_…), and answer NO_ANSWER
  (logged as a dialogue gap) when the dialogue said nothing at all; nothing of the buyer's text is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import json
import logging
import os
import re
from collections import OrderedDict
from typing import Any, Awaitable, Callable, Dict, Iterator, NamedTuple, Optional, Text

from rasa.core import tracker_store as _ts
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.channels.rest import RestInput
from rasa.core.channels.socketio import SocketIOInput
from rasa.shared.core.trackers import EventVerbosity
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
import ujson

from bot.logging_setup import install_pii_masking
from bot.nlu import rasa_speedups

logger = logging.getLogger(__name__)
# Personal data (phone numbers, bank cards, addresses) masked in every log line of the Rasa server.
install_pii_masking()

APOLOGY = "非常抱歉，系统刚刚开了个小差，没能处理您这条消息。请稍等片刻再发一次；已经办好的售后不会受影响。"
TOO_LONG = "消息太长啦，请分几次发给我（每条不超过{limit}个字）。"
# When the dialogue produced no answer at all for a message (a gap in the rules/stories), the buyer still
# hears something; the gap is logged so it can be fixed in the training data.
NO_ANSWER = "抱歉亲，这句我没接上。可以换个说法再说一次吗？也可以回复“转人工”。"
MAX_CHARS = int(os.environ.get("BOT_MAX_MESSAGE_CHARS", "2000"))
MAX_SENDER = 128
# C0/C1 control characters except tab and newline; PostgreSQL text cannot hold NUL at all.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
RETRIES = 3
# BOT_RASA_SPEEDUPS=off runs Rasa's own code instead (no speed-ups of bot/nlu/rasa_speedups, no kept trackers, no
# frozen start-up objects, no kept action-server connections): the load bench measures a floor that way too, to
# show what the speed-ups buy.
SPEEDUPS = os.environ.get("BOT_RASA_SPEEDUPS", "on") != "off"
# Conversations whose tracker a replica keeps after saving it (see StrictSQLTrackerStore); 0 turns it off.
# About 140 KiB each for a conversation of 85 events with what the speed-ups keep on it: 1,000 ≈ 140 MiB.
KEPT_TRACKERS = int(os.environ.get("BOT_KEPT_TRACKERS", "1000")) if SPEEDUPS else 0


def _gc_thresholds(setting: str) -> tuple[int, int, int]:
    parts = setting.split(",")
    if len(parts) != 3 or not all(p.strip().isdigit() for p in parts) or int(parts[0]) == 0:
        raise ValueError(f"BOT_GC_THRESHOLDS must be three whole numbers, the first above 0, e.g. 20000,20,20 "
                         f"(got {setting!r})")
    return int(parts[0]), int(parts[1]), int(parts[2])


def _parse_cache_size(setting: str) -> int:
    if not setting.strip().isdigit():
        raise ValueError(f"BOT_PARSE_CACHE_SIZE must be a whole number of texts, 0 for no parse cache "
                         f"(got {setting!r})")
    return int(setting)


# Texts each loaded model's parse cache keeps (bot/nlu/rasa_speedups.ParseCache); 0 turns the cache off.
PARSE_CACHE_SIZE = _parse_cache_size(os.environ.get("BOT_PARSE_CACHE_SIZE",
                                                    str(rasa_speedups.PARSE_CACHE_SIZE)))


# A message allocates tens of thousands of objects that live until its answer: with Python's default (700, 10, 10)
# a young collection ran every few hundred of them and moved the messages in flight into the old generations.
GC_THRESHOLDS = _gc_thresholds(os.environ.get("BOT_GC_THRESHOLDS", "20000,20,20"))


# ---------------------------------------------------------------- tracker store


class TrackerStoreUnavailable(Exception):
    """The conversation could not be read or written: the message must not be handled."""


class StrictSQLTrackerStore(_ts.SQLTrackerStore):
    """SQLTrackerStore that retries briefly and then fails loudly instead of forgetting the conversation."""

    async def _with_retry(self, what: str, call: Callable[[], Awaitable[Any]]) -> Any:
        import sqlalchemy.exc

        for attempt in range(1, RETRIES + 1):
            try:
                return await call()
            except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError,
                    sqlalchemy.exc.DBAPIError) as exc:
                if attempt == RETRIES:
                    logger.error("tracker store %s failed %d times: %s", what, attempt, type(exc).__name__)
                    raise TrackerStoreUnavailable(f"tracker store {what} failed") from exc
                await asyncio.sleep(0.3 * attempt)
        raise AssertionError("unreachable")

    async def retrieve(self, sender_id: Text) -> Any:
        return await self._with_retry("read", lambda: super(StrictSQLTrackerStore, self).retrieve(sender_id))

    async def retrieve_full_tracker(self, sender_id: Text) -> Any:
        return await self._with_retry(
            "read", lambda: super(StrictSQLTrackerStore, self).retrieve_full_tracker(sender_id))

    async def save(self, tracker: Any) -> None:
        await self._with_retry("write", lambda: self._save(tracker))

    # Leaner reads and writes than Rasa's own (same table, same rows, same order): the events' JSON is read
    # with one prepared Core query on a Core connection instead of as ORM objects through a session (the
    # session's own work was half of the store's CPU); a save inserts the new events with one executemany and
    # knows how many were stored from the read that started the turn, where Rasa counts them again with a
    # second query. Reading and writing the tracker was a fifth of Rasa's CPU per message under load.
    # The database calls run in a worker thread: Rasa's store is synchronous, and while one message waited
    # for PostgreSQL the whole replica (every other conversation on it) waited too.

    # A replica keeps the tracker it saved last for each conversation (socket.io is sticky to a replica, and
    # the load balancer sends a REST conversation to one replica too), and reuses it for the next message
    # when the conversation's rows in the database are exactly the ones it saved: same number of rows, same
    # newest id (one small query instead of reading, decoding and replaying every event). Another replica's
    # write, a lost save or a turn that failed after changing the tracker all make it read afresh. Kept is
    # only a tracker that equals what a fresh read gives (not one whose events began a new session within
    # it: a fresh read starts at the newest session start), and the store hands out copies of it.

    def _probe_query(self) -> Any:
        """How many rows the conversation has and the newest id (bound parameter `sender_id`)."""
        import sqlalchemy as sa

        cache = self.__dict__.setdefault("_bot_queries", {})
        if "probe" not in cache:
            table = self.SQLEvent.__table__
            cache["probe"] = (sa.select(sa.func.count(table.c.id), sa.func.max(table.c.id))
                              .where(table.c.sender_id == sa.bindparam("sender_id")))
        return cache["probe"]

    def _events_query(self, all_sessions: bool) -> Any:
        """The query for a conversation's events (bound parameter `sender_id`), built once per kind. Each row
        also carries the conversation's probe (row count and newest id), read in the same statement."""
        import sqlalchemy as sa
        from rasa.shared.core.events import SessionStarted

        cache = self.__dict__.setdefault("_bot_queries", {})
        if all_sessions not in cache:
            table = self.SQLEvent.__table__
            sender = sa.bindparam("sender_id")
            mine = table.c.sender_id == sender
            query = sa.select(table.c.data, sa.select(sa.func.count(table.c.id)).where(mine).scalar_subquery(),
                              sa.select(sa.func.max(table.c.id)).where(mine).scalar_subquery()).where(mine)
            if not all_sessions:  # the latest conversation session only, as Rasa's own query
                start = (sa.select(sa.func.max(table.c.timestamp))
                         .where(table.c.sender_id == sender, table.c.type_name == SessionStarted.type_name)
                         .scalar_subquery())
                query = query.where(sa.or_(table.c.timestamp >= start, start.is_(None)))
            cache[all_sessions] = query.order_by(table.c.id)
        return cache[all_sessions]

    def _event_data(self, connection: Any, sender_id: Text, all_sessions: bool) -> list:
        return [row[0] for row in connection.execute(self._events_query(all_sessions), {"sender_id": sender_id})]

    @contextlib.contextmanager
    def _connection(self, write: bool) -> Iterator[Any]:
        """A Core connection: a write in one transaction, a read (one statement) in autocommit, so that
        giving the connection back costs no ROLLBACK. Rasa's ORM session cost more than the statements.
        With POSTGRESQL_SCHEMA set, Rasa's own session (which checks that the schema exists)."""
        if os.environ.get(_ts.POSTGRESQL_SCHEMA):
            with self.session_scope() as session:
                yield session
                if write:
                    session.commit()
            return
        if write:
            with self.engine.begin() as connection:
                yield connection
        else:
            with self.engine.connect() as connection:
                yield connection.execution_options(isolation_level="AUTOCOMMIT")

    def _read_events(self, sender_id: Text, all_sessions: bool, kept: Optional[tuple] = None) -> tuple:
        """(events, probe); events is None when the conversation's probe is still `kept`."""
        with self._connection(write=False) as connection:
            if kept is not None:
                probe = tuple(connection.execute(self._probe_query(), {"sender_id": sender_id}).one())
                if probe == kept:
                    return None, probe
            rows = connection.execute(self._events_query(all_sessions), {"sender_id": sender_id}).all()
            return [_loads(row[0]) for row in rows], (tuple(rows[0][1:]) if rows else (0, None))

    def _kept(self) -> "OrderedDict[Text, _Kept]":
        return self.__dict__.setdefault("_bot_kept", OrderedDict())

    async def _retrieve(self, sender_id: Text, fetch_events_from_all_sessions: bool) -> Any:
        from rasa.shared.core.trackers import DialogueStateTracker

        kept = None if fetch_events_from_all_sessions else self._kept().get(sender_id)
        events, probe = await asyncio.to_thread(self._read_events, sender_id, fetch_events_from_all_sessions,
                                                kept.probe if kept else None)
        if events is None:  # the kept tracker is still the conversation
            self._kept().move_to_end(sender_id)
            tracker = rasa_speedups.fork_tracker(kept.tracker)
            setattr(tracker, _STORED, kept.stored)
            setattr(tracker, _PROBE, probe)
            return tracker
        self._kept().pop(sender_id, None)
        if not (self.domain and events):
            return None
        tracker = DialogueStateTracker.from_dict(sender_id, events, self.domain.slots)
        if not fetch_events_from_all_sessions:
            setattr(tracker, _STORED, len(events))
            setattr(tracker, _PROBE, probe)
        return tracker

    def _write_events(self, sender_id: Text, events: list, stored: Optional[int],
                      probe: Optional[tuple]) -> Optional[tuple]:
        """Insert the events after the first `stored` ones (counted here when not known). Returns the probe
        after the write when the rows are exactly the ones read (`probe`) plus these, else None."""
        import sqlalchemy as sa

        with self._connection(write=True) as connection:
            if stored is None:  # not read by this store in this turn (a new conversation): count them
                stored = len(self._event_data(connection, sender_id, False))
            rows = [_event_row(sender_id, event) for event in events[stored:]]
            if rows:
                connection.execute(sa.insert(self.SQLEvent.__table__), rows)
            after = tuple(connection.execute(self._probe_query(), {"sender_id": sender_id}).one())
        return after if after[0] == (probe[0] if probe else 0) + len(rows) else None

    async def _save(self, tracker: Any) -> None:
        await self.stream_events(tracker)
        events = list(tracker.events)
        probe = await asyncio.to_thread(self._write_events, tracker.sender_id, events,
                                        getattr(tracker, _STORED, None), getattr(tracker, _PROBE, None))
        setattr(tracker, _STORED, len(events))
        setattr(tracker, _PROBE, probe)
        kept = self._kept()
        if probe is None or KEPT_TRACKERS <= 0 or not _as_a_fresh_read(events):
            kept.pop(tracker.sender_id, None)
            return
        kept[tracker.sender_id] = _Kept(rasa_speedups.fork_tracker(tracker), len(events), probe)
        kept.move_to_end(tracker.sender_id)
        while len(kept) > KEPT_TRACKERS:
            kept.popitem(last=False)


class _Kept(NamedTuple):
    tracker: Any  # a copy nobody else holds
    stored: int  # its events, all in the database
    probe: tuple  # (rows, newest id) of the conversation when it was saved


def _as_a_fresh_read(events: list) -> bool:
    """Would reading the conversation back give exactly these events? A read starts at the newest session
    start (by timestamp): every event must be at least as new as it."""
    from rasa.shared.core.events import SessionStarted

    starts = [event.timestamp for event in events if isinstance(event, SessionStarted)]
    return not starts or all(event.timestamp >= max(starts) for event in events)


def _loads(data: Text) -> Any:
    """An event's stored JSON as Python, by ujson (Rasa's own dependency), about twice as fast as json: the
    standard decoder was 8 % of Rasa's CPU under load. ujson gives the same objects (floats round-trip
    exactly); anything it refuses (NaN, integers beyond 64 bits) is read by json as before."""
    try:
        return ujson.loads(data)
    except (ValueError, OverflowError):
        return json.loads(data)


def _event_row(sender_id: Text, event: Any) -> Dict[str, Any]:
    """The row of Rasa's events table for one event, as Rasa's own store writes it."""
    data = event.as_dict()
    return {"sender_id": sender_id, "type_name": event.type_name, "timestamp": data.get("timestamp"),
            "intent_name": data.get("parse_data", {}).get("intent", {}).get("name"),
            "action_name": data.get("name"), "data": json.dumps(data)}


_STORED = "_bot_stored_events"  # on a tracker: how many of its events the store holds
_PROBE = "_bot_probe"  # on a tracker: (rows, newest id) of its conversation as read or saved, None if unsure


def _strict(method_name: str) -> Callable:
    original = getattr(_ts.FailSafeTrackerStore, method_name)

    async def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(self._tracker_store, StrictSQLTrackerStore):
            return await getattr(self._tracker_store, method_name)(*args, **kwargs)
        return await original(self, *args, **kwargs)

    method.__name__ = method_name
    return method


# Only for the strict store: other stores keep Rasa's behaviour.
for _name in ("retrieve", "retrieve_full_tracker", "save"):
    setattr(_ts.FailSafeTrackerStore, _name, _strict(_name))


# ---------------------------------------------------------------- failed custom actions


class ActionServerFailed(Exception):
    """A custom action could not be run (action server dead, hung or failing): abort the whole message."""


_FAILED = "_bot_failed_action"


def _install_action_guard() -> None:
    """Rasa logs a failed custom action and carries on as if it had run (its events lost, the buyer told
    nothing). Here the message is aborted instead: the conversation is not saved, so it stays where it was,
    and the channel answers with an apology; sending the message again redoes the turn."""
    from rasa.core.actions.action import ActionExecutionRejection, RemoteAction
    from rasa.core.processor import MessageProcessor

    original_run = RemoteAction.run
    original_run_action = MessageProcessor._run_action

    async def run(self: Any, output_channel: Any, nlg: Any, tracker: Any, domain: Any) -> Any:
        try:
            return await original_run(self, output_channel, nlg, tracker, domain)
        except ActionExecutionRejection:
            raise  # a form's "not this slot": part of the dialogue, not a failure
        except Exception:
            setattr(output_channel, _FAILED, self.name())
            raise

    async def run_action(self: Any, action: Any, tracker: Any, output_channel: Any, nlg: Any,
                         prediction: Any) -> bool:
        result = await original_run_action(self, action, tracker, output_channel, nlg, prediction)
        failed = getattr(output_channel, _FAILED, None)
        if failed:
            setattr(output_channel, _FAILED, None)
            raise ActionServerFailed(failed)
        return result

    RemoteAction.run = run
    MessageProcessor._run_action = run_action


_install_action_guard()


# ---------------------------------------------------------------- kept action-server connections

# Idle connections are closed by the client before any server or load balancer would close them (nginx keeps
# upstream connections 3 s, Sanic 5 s): a request never goes out on a connection the other side is closing.
KEPT_CONNECTION_IDLE_S = 2.0


def action_call_json(body: Any) -> str:
    """An action call's JSON by ujson (Rasa's own dependency): the same document as `json.dumps`, which aiohttp
    uses by default, in about half the time (2 % of a replica's samples under load went to encoding the
    calls); Chinese text goes as UTF-8 instead of \\u escapes. What ujson cannot encode goes to `json.dumps`,
    which encodes it as before or raises its own error."""
    try:
        return ujson.dumps(body, ensure_ascii=False, escape_forward_slashes=False)
    except (TypeError, OverflowError, ValueError):
        return json.dumps(body)


class _KeptSession:
    """What `EndpointConfig.session()` returns instead of a new `aiohttp.ClientSession`: the endpoint's one
    session on this event loop, which `async with` leaves open. Rasa made a session, and so a new TCP connection,
    for every custom-action call (a tenth of a replica's CPU under load, bench/LOAD_RESULTS.md)."""

    def __init__(self, endpoint: Any) -> None:
        self._endpoint = endpoint

    async def __aenter__(self) -> Any:
        import aiohttp
        from rasa.utils.endpoints import DEFAULT_REQUEST_TIMEOUT

        endpoint = self._endpoint
        loop = asyncio.get_running_loop()
        kept = endpoint.__dict__.get("_bot_kept_session")
        if kept is None or kept[0] is not loop or kept[1].closed:
            auth = (aiohttp.BasicAuth(endpoint.basic_auth["username"], endpoint.basic_auth["password"])
                    if endpoint.basic_auth else None)  # as EndpointConfig.session builds it
            session = aiohttp.ClientSession(
                headers=endpoint.headers, auth=auth, timeout=aiohttp.ClientTimeout(total=DEFAULT_REQUEST_TIMEOUT),
                connector=aiohttp.TCPConnector(keepalive_timeout=KEPT_CONNECTION_IDLE_S),
                json_serialize=action_call_json)
            kept = endpoint.__dict__["_bot_kept_session"] = (loop, session)
            _KEPT_SESSIONS.append(session)
        return kept[1]

    async def __aexit__(self, *exc: Any) -> bool:
        return False


_KEPT_SESSIONS: list = []


async def close_kept_sessions(*_: Any) -> None:
    """Close the kept sessions when the server stops (aiohttp warns about sessions left open)."""
    while _KEPT_SESSIONS:
        await _KEPT_SESSIONS.pop().close()


def _install_kept_action_connections() -> None:
    from rasa.utils.endpoints import EndpointConfig

    EndpointConfig.session = lambda self: _KeptSession(self)


if SPEEDUPS:
    _install_kept_action_connections()


def _install_turn_only_action_calls() -> None:
    """An action call carries the events of the turn at hand only (bot.ops.action_history says why and which
    actions still get the whole history); everything else in it is Rasa's own."""
    from rasa.core.actions.action import RemoteAction
    from rasa.shared.core.events import UserUttered

    from bot.ops.action_history import ACTIONS_READING_HISTORY

    original = RemoteAction._action_call_format

    def _action_call_format(self: Any, tracker: Any, domain: Any) -> Dict[Text, Any]:
        if self.name() in ACTIONS_READING_HISTORY:
            return original(self, tracker, domain)
        events = tracker.events
        start = next((i for i in range(len(events) - 1, -1, -1) if isinstance(events[i], UserUttered)), 0)
        return original(self, _TurnView(tracker, start), domain)

    RemoteAction._action_call_format = _action_call_format


class _TurnView:
    """The tracker as `_action_call_format` reads it, with the events from `start` on (nothing is copied)."""

    def __init__(self, tracker: Any, start: int) -> None:
        self._tracker, self._start = tracker, start

    @property
    def sender_id(self) -> Text:
        return self._tracker.sender_id

    def current_state(self, verbosity: Any) -> Dict[Text, Any]:
        """Rasa asks for every event (EventVerbosity.ALL): these are the turn's."""
        state = self._tracker.current_state(EventVerbosity.NONE)
        state["events"] = [e.as_dict() for e in itertools.islice(self._tracker.events, self._start, None)]
        return state


_install_turn_only_action_calls()


# ---------------------------------------------------------------- socket.io rooms


def _fix_socketio_rooms() -> None:
    """Rasa 3.6 calls `AsyncServer.enter_room` without awaiting it, and python-socketio 5.x made it a
    coroutine: the buyer's socket never joined its conversation's room, so what the bot sends on its own
    (an agent's reply, a timer's outcome, a follow-up visit) never reached an open chat page. Scheduled."""
    import socketio

    enter = socketio.AsyncServer.enter_room
    if not asyncio.iscoroutinefunction(enter) or getattr(enter, "_scheduled", False):
        return

    def enter_room(self: socketio.AsyncServer, sid: str, room: str, namespace: Optional[str] = None) -> Any:
        return asyncio.ensure_future(enter(self, sid, room, namespace))

    enter_room._scheduled = True  # type: ignore[attr-defined]
    socketio.AsyncServer.enter_room = enter_room  # type: ignore[method-assign]


_fix_socketio_rooms()


# ---------------------------------------------------------------- work Rasa repeats per message, done once

if SPEEDUPS:
    rasa_speedups.PARSE_CACHE_SIZE = PARSE_CACHE_SIZE
    rasa_speedups.install()


# ---------------------------------------------------------------- channels


# Intents a buyer must not trigger by typing them ("/restart" wiped the conversation without a word; notices
# come only from the worker through the token-protected HTTP API): typed, they are read as plain text.
_INTERNAL_INTENT = re.compile(r"^/(restart|session_start|back|EXTERNAL_\w*)\b")


def clean_text(text: str) -> str:
    text = _CONTROL.sub(" ", text).strip()
    if _INTERNAL_INTENT.match(text):
        text = "／" + text[1:]  # a full-width slash: no longer an intent payload
    return text


async def _paused(request: Request, sender: str) -> bool:
    try:
        tracker = await request.app.ctx.agent.tracker_store.retrieve(sender)
        return bool(tracker and tracker.is_paused())
    except Exception:  # cannot tell: say something rather than nothing
        return False


class GuardedRestInput(RestInput):
    """Rasa's REST channel (same URL) that never answers a failure with silence."""

    @classmethod
    def name(cls) -> Text:
        return "rest"

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[None]]) -> Blueprint:
        webhook = Blueprint("guarded_rest_webhook", __name__)

        @webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            # The parse cache's counts (no texts) let the load bench report its hit rate.
            return response.json({"status": "ok", "parse_cache": rasa_speedups.parse_cache_stats()})

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            try:
                body = request.json
            except Exception:  # sanic raises on a body that is not JSON
                body = None
            sender = body.get("sender") if isinstance(body, dict) else None
            text = body.get("message") if isinstance(body, dict) else None
            metadata = body.get("metadata") if isinstance(body, dict) else None
            if (not isinstance(sender, str) or not sender.strip() or len(sender) > MAX_SENDER
                    or _CONTROL.search(sender) or not isinstance(text, str)
                    or not (metadata is None or isinstance(metadata, dict))):
                return response.json({"error": "bad_request",
                                      "message": "需要 JSON：{\"sender\": 字符串, \"message\": 字符串, \"metadata\": 对象}"},
                                     status=400)
            if len(text) > MAX_CHARS:
                return response.json([{"recipient_id": sender, "text": TOO_LONG.format(limit=MAX_CHARS)}], status=413)
            collector = CollectingOutputChannel()
            try:
                await on_new_message(UserMessage(clean_text(text), collector, sender, input_channel=self.name(),
                                                 metadata=metadata))
            except Exception as exc:  # tracker store, lock store or anything else: the buyer hears an apology
                logger.error("message for a conversation not handled: %s", type(exc).__name__)
                return response.json([{"recipient_id": sender, "text": APOLOGY}], status=503,
                                     headers={"Retry-After": "2"})
            if not any((m.get("text") or m.get("buttons") or m.get("image") or m.get("custom"))
                       for m in collector.messages) and not await _paused(request, sender):
                # (A paused conversation is with a person in the console: the bot is silent on purpose.)
                logger.warning("the dialogue gave no answer to a message of %s", sender)
                return response.json([{"recipient_id": sender, "text": NO_ANSWER}])
            return response.json(collector.messages)

        return _frozen_after_start(webhook)


class GuardedSocketIOInput(SocketIOInput):
    """Rasa's socket.io channel (same path) that says sorry instead of nothing when a message fails."""

    @classmethod
    def name(cls) -> Text:
        return "socketio"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "GuardedSocketIOInput":
        base = SocketIOInput.from_credentials(credentials)
        guarded = cls.__new__(cls)
        guarded.__dict__.update(base.__dict__)
        return guarded

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        async def guarded(message: UserMessage) -> None:
            text = message.text or ""
            if len(text) > MAX_CHARS:
                await message.output_channel.send_text_message(message.sender_id,
                                                               TOO_LONG.format(limit=MAX_CHARS))
                return
            message.text = clean_text(text)
            try:
                await on_new_message(message)
            except Exception as exc:
                logger.error("socket.io message not handled: %s", type(exc).__name__)
                await message.output_channel.send_text_message(message.sender_id, APOLOGY)

        return _frozen_after_start(super().blueprint(guarded))


def _frozen_after_start(blueprint: Blueprint) -> Blueprint:
    """Once the server has started, the model and everything loaded with it live as long as the process: they
    are moved out of the garbage collector's reach, and collections run less often. Measured under load (bench/
    load_bench.py, 2 replicas): full collections walked about 900,000 objects, 0.2–0.3 s each, one replica
    silent for every conversation on it; with Python's thresholds (700, 10, 10) the collector took 1.5 s of a
    replica's 33 s of CPU in a 2-minute run even when frozen, and 0.3 s with GC_THRESHOLDS (no full
    collection at all; the longest pause 0.12 s). The load figures did not move measurably with it
    (bench/LOAD_RESULTS.md, run 11): it is about 4 % of a replica's CPU, within the runs' noise."""

    async def freeze(*_: Any) -> None:
        gc.collect()
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)

    if SPEEDUPS:
        blueprint.listener("after_server_start")(freeze)
        blueprint.listener("before_server_stop")(close_kept_sessions)
    return blueprint
