"""Reaching into a running stack from a test: its database, its clock, its Rasa conversations."""

import subprocess
import time
from collections.abc import Callable
from typing import TypeVar

import requests

from bot.ops.stack import ROOT, VENV_APP, Stack
from bot.persistence.db import DbOffsetClock, make_engine, make_session_factory
from bot.policy.loader import load_policy
from bot.services.adapters import LocalCourierTracking, LocalPaymentGateway, LocalWarehouse
from bot.services.context import Services
from bot.settings import Settings, load_settings

T = TypeVar("T")


def services_of(stack: Stack) -> Services:
    """Services on the stack's own database and movable clock (what its processes see)."""
    sessions = make_session_factory(make_engine(f"sqlite:///{stack.var_dir / 'app.db'}"))
    return Services(sessions=sessions, clock=DbOffsetClock(sessions), policies=load_policy,
                    payments=LocalPaymentGateway(), warehouse=LocalWarehouse(), couriers=LocalCourierTracking())


def advance_clock(stack: Stack, duration: str) -> None:
    """Move the application clock from outside, as a demo would (`bot clock advance`)."""
    subprocess.run([str(VENV_APP / "python"), "-m", "bot", "clock", "advance", duration], env=stack.env, cwd=ROOT,
                   check=True, capture_output=True)


def wait_for(check: Callable[[], T | None], timeout: float = 20.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"condition not met within {timeout}s")


def bot_texts(stack: Stack, sender: str) -> list[str]:
    """Everything the bot said in a conversation, from the tracker store through Rasa's HTTP API."""
    token = settings_of(stack).rasa_token
    response = requests.get(f"{stack.urls['rasa']}/conversations/{sender}/tracker", params={"token": token},
                            timeout=10)
    response.raise_for_status()
    return [e.get("text") or "" for e in response.json()["events"] if e.get("event") == "bot"]


def settings_of(stack: Stack) -> Settings:
    """The settings the stack's processes run with (its URLs, token and var dir)."""
    import os
    from unittest import mock

    with mock.patch.dict(os.environ, stack.env, clear=True):
        return load_settings()
