"""What every action shares: who the buyer is, the services, and polite failure."""

import asyncio
import logging
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import yaml

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.domain.errors import DomainError
from bot.identity import buyer_from_sender, buyer_from_token
from bot.services.bootstrap import default_services
from bot.services.context import Services
from bot.settings import Settings, load_settings

log = logging.getLogger(__name__)
_override: Services | None = None


def use_services(services: Services | None) -> None:
    """Run actions on other services (tests, an embedding process); None goes back to the default."""
    global _override
    _override = services


def current_services() -> Services:
    return _override or default_services()


DOMAIN_FILE = Path(__file__).resolve().parents[1] / "domain.yml"


@lru_cache(maxsize=1)
def local_domain() -> dict[str, Any]:
    """The domain the model was trained from, read once from the same project files.

    Rasa sends no domain with an action call (endpoints: enable_selective_domain): 17 KiB of JSON built,
    sent and parsed on every call, for forms, slots and responses that are the same each time.
    """
    return yaml.safe_load(DOMAIN_FILE.read_text(encoding="utf-8"))


def domain_or_local(domain: dict[str, Any] | None) -> dict[str, Any]:
    return domain or local_domain()

class UnknownBuyer(DomainError):
    code = "unknown_buyer"


def current_settings() -> Settings:
    """The settings for this process's environment, read once per set of BOT_* variables: reading them means
    reading the secret files, and the buyer is looked up several times in each action call (a tenth of the
    action server's CPU under load, bench/LOAD_RESULTS.md)."""
    return _settings_for(_bot_variables())


def _bot_variables() -> tuple:
    """The BOT_* variables as a cache key. os.environ decodes every name and value on each pass, which cost a
    fifth of an action call's CPU; its raw bytes mapping (POSIX) does not."""
    raw = getattr(os.environ, "_data", None)
    if isinstance(raw, dict):
        return tuple(sorted((k, v) for k, v in raw.items() if k.startswith(b"BOT_")))
    return tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("BOT_")))


@lru_cache(maxsize=8)
def _settings_for(environment: tuple) -> Settings:
    return load_settings()


@lru_cache(maxsize=4096)
def _buyer_of_token(token: str, secret_key: str) -> int | None:
    return buyer_from_token(token, secret_key)  # checking the signature: the same answer every time


def buyer_id_of(tracker: Tracker) -> int:
    """The signed-in buyer: a token in the message metadata, or (dev only) the sender id."""
    settings = current_settings()
    metadata = tracker.latest_message.get("metadata") or {}
    token = metadata.get("buyer_token") if isinstance(metadata, dict) else None
    if token:
        buyer = _buyer_of_token(str(token), settings.secret_key)
        named = buyer_from_sender(tracker.sender_id or "")
        # A valid token of one buyer must not write into another buyer's conversation.
        if buyer is None or (named is not None and named != buyer):
            raise UnknownBuyer("抱歉，您的登录状态已失效，请刷新页面重新登录后再试。")
        return buyer
    buyer = buyer_from_sender(tracker.sender_id or "")
    if buyer is not None and settings.trust_sender_id:
        return buyer
    raise UnknownBuyer("抱歉，我需要先确认您的身份，请从店铺页面登录后再联系我。")


def shop_of(tracker: Tracker) -> str:
    """The shop whose window the buyer chats in (metadata `shop`), else the configured one."""
    metadata = tracker.latest_message.get("metadata") or {}
    shop = metadata.get("shop") if isinstance(metadata, dict) else None
    return str(shop) if shop else current_settings().default_shop


def text_of(domain: dict[str, Any], response: str, **values: object) -> str:
    """A response's first text with its {variables} filled in, for sentences built from parts."""
    text = domain["responses"][response][0]["text"]
    return text.format(**{k: v for k, v in values.items()}) if values else text


T = TypeVar("T")
_thread_loops = threading.local()


async def off_the_loop(make: Callable[[], Awaitable[T]]) -> T:
    """Run an action's body in a worker thread, on that thread's own event loop.

    The bodies are async by rasa_sdk's signature but do synchronous database work: on the server's loop, a
    call waiting for PostgreSQL held up every other call to this action server."""
    def body() -> T:
        loop = getattr(_thread_loops, "loop", None)
        if loop is None:
            loop = _thread_loops.loop = asyncio.new_event_loop()
        return loop.run_until_complete(make())

    return await asyncio.to_thread(body)


class ServiceAction(Action, ABC):
    """An action that calls the services; domain errors become their Chinese message, anything else
    an apology, and the buyer never sees a trace."""

    @property
    def services(self) -> Services:
        return current_services()

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        domain = domain_or_local(domain)
        try:
            return await off_the_loop(lambda: self.act(dispatcher, tracker, domain))
        except DomainError as exc:
            dispatcher.utter_message(response="utter_error_generic", message=exc.message)
            return self.on_error(exc)
        except Exception:
            log.exception("action %s failed", self.name())
            dispatcher.utter_message(response="utter_error_backend")
            return self.on_error(None)

    def on_error(self, exc: DomainError | None) -> list:
        """Events to return after a failure (nothing by default)."""
        return []

    @abstractmethod
    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        """Do the action's work."""
