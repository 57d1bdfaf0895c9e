"""The production profile (bot/ops/prod.py) on its own ports, databases and Redis key prefix.

Ports: the LB on 25005 (Rasa), 25055 (actions), 28000 (web); replicas on 25105/25106, 25155/25156, 28100 –
away from `make run` (5005, 5055, 8000) and the end-to-end stack (15005, 15055, 18000); 1000 up while another
run holds them. Set BOT_TEST_PROD_OFFSET to move them. Two fresh PostgreSQL databases are created and dropped afterwards; logs
of every process are copied to tests/artifacts/prod-logs/.
"""

import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.ops.prod import ROOT, ProdConfig, ProdPorts, ProdStack, drop_database, drop_lock_keys, nginx_binary
from tests.prod import support
from tests.prod.support import PG_SERVER

OFFSET = int(os.environ.get("BOT_TEST_PROD_OFFSET", "20000"))


def _ports_free(ports: ProdPorts) -> bool:
    for port in (ports.rasa, ports.actions, ports.web, *ports.rasa_replicas, *ports.action_replicas,
                 *ports.web_replicas):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def free_ports() -> ProdPorts:
    """The default layout, or the next one 1000 ports up while another run (or `make run-prod`) holds it."""
    for step in range(10):
        ports = ProdPorts().shifted(OFFSET + 1000 * step)
        if _ports_free(ports):
            return ports
    raise RuntimeError("no free ports for the production profile")


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def _missing() -> str | None:
    try:
        nginx_binary()
    except SystemExit:
        return "nginx is not installed (run `make nginx`)"
    if not _reachable("127.0.0.1", 5432):
        return "PostgreSQL is not reachable on 127.0.0.1:5432"
    if not _reachable("127.0.0.1", 6379):
        return "Redis is not reachable on 127.0.0.1:6379"
    if not list((ROOT / "models").glob("*.tar.gz")):
        return "no trained model (run `make model`)"
    return None


@pytest.fixture(scope="session")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProdStack]:
    """One running profile per test session, shared by tests/prod and tests/hostile (which imports this
    fixture): whichever asks first starts it, and stops it at the end of the session."""
    if support.SHARED is not None:
        yield support.SHARED
        return
    missing = _missing()
    if missing:
        pytest.fail(f"production profile not available: {missing} (`make test` sets it up)")
    tag = uuid.uuid4().hex[:8]
    cfg = ProdConfig(var_dir=tmp_path_factory.mktemp("prod-var"), ports=free_ports(),
                     pg_server=PG_SERVER, app_db=f"bot_t{tag}_app", tracker_db=f"bot_t{tag}_tracker",
                     lock_prefix=f"t{tag}", worker_interval_s=0.5)
    stack = ProdStack(cfg)
    try:
        stack.start()
        support.SHARED = stack
        yield stack
    finally:
        support.SHARED = None
        stack.stop()
        artifacts = Path(os.environ.get("BOT_TEST_ARTIFACTS", ROOT / "tests" / "artifacts")) / "prod-logs"
        shutil.rmtree(artifacts, ignore_errors=True)
        if cfg.log_dir.exists():
            shutil.copytree(cfg.log_dir, artifacts)
        for name in (cfg.app_db, cfg.tracker_db):
            drop_database(cfg.pg_server, name)
        drop_lock_keys(cfg)


@pytest.fixture
def prod_stack(prod: ProdStack) -> Iterator[ProdStack]:
    """The running profile, with every process alive and ready before and after the test."""
    prod.supervise_once()
    prod.wait_ready()
    yield prod
    prod.supervise_once()
    prod.wait_ready()
