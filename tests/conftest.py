"""Shared fixtures: services on a fresh SQLite file or a fresh PostgreSQL database, with a fake clock."""

import os
import subprocess
import uuid
from unittest import mock
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from bot.clock import FakeClock
from bot.ops.stack import ROOT, VENV_APP, Ports, Stack, stack_env
from bot.persistence.db import make_engine, make_session_factory
from bot.persistence.migrate import upgrade
from bot.policy.loader import load_policy
from bot.services.adapters import LocalCourierTracking, LocalPaymentGateway, LocalWarehouse
from bot.services.context import Services
from bot.services.seed import seed_demo

PG_ADMIN_URL = os.environ.get("BOT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _services(url: str, clock: FakeClock) -> Services:
    upgrade(url)
    return Services(sessions=make_session_factory(make_engine(url)), clock=clock, policies=load_policy,
                    payments=LocalPaymentGateway(), warehouse=LocalWarehouse(), couriers=LocalCourierTracking())


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'app.db'}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL database of its own, dropped afterwards."""
    name = f"bot_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each test that takes this runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'app.db'}"
    else:
        yield request.getfixturevalue("pg_url")


@pytest.fixture
def svc(db_url: str, clock: FakeClock) -> Services:
    services = _services(db_url, clock)
    seed_demo(services)
    return services


@pytest.fixture
def sqlite_svc(sqlite_url: str, clock: FakeClock) -> Services:
    services = _services(sqlite_url, clock)
    seed_demo(services)
    return services


# ---- the real stack (Rasa, action server, web app with its worker), shared by e2e and browser tests
# Away from `make run` (5005, 5055, 8000) so tests can run beside it.
TEST_PORTS = Ports(rasa=int(os.environ.get("BOT_TEST_RASA_PORT", 15005)),
                   actions=int(os.environ.get("BOT_TEST_ACTIONS_PORT", 15055)),
                   web=int(os.environ.get("BOT_TEST_WEB_PORT", 18000)))


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The dev stack (`make run`) on its own var dir. It is built from an environment without BOT_* settings:
    a session fixture of another suite (tests/hostile sets the production profile's) must not leak into it."""
    var_dir = tmp_path_factory.mktemp("stack-var")
    logs = Path(os.environ.get("BOT_TEST_ARTIFACTS", ROOT / "tests" / "artifacts")) / "stack-logs"
    logs.mkdir(parents=True, exist_ok=True)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}
    with mock.patch.dict(os.environ, clean, clear=True):
        env = stack_env(var_dir, TEST_PORTS, {"BOT_WORKER_INTERVAL": "0.5"})
        stack = Stack(var_dir, TEST_PORTS, extra_env={"BOT_WORKER_INTERVAL": "0.5"}, log_dir=logs)
    for command in ("migrate", "seed"):
        subprocess.run([str(VENV_APP / "python"), "-m", "bot", command], env=env, cwd=ROOT, check=True,
                       capture_output=True)
    with stack as running:
        yield running
