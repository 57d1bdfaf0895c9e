"""Hostile input: the web app in-process (FastAPI TestClient) on a fresh PostgreSQL database in the production
profile, and the running production profile (tests/prod) for the chat. Counts every input tried and prints the
totals at the end of the run (also written to tests/artifacts/hostile-inputs.json)."""

import json
import os
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bot.ops.prod import drop_database, ensure_database
from tests.prod.conftest import prod, prod_stack  # noqa: F401  (the shared production profile, for the chat)
from tests.prod.support import PG_SERVER

ROOT = Path(__file__).resolve().parents[2]
TRIED: Counter = Counter()


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # type: ignore[no-untyped-def]
    if TRIED:
        terminalreporter.write_sep("-", "hostile inputs tried")
        for kind, n in sorted(TRIED.items()):
            terminalreporter.write_line(f"{kind:<40} {n:>7}")
        terminalreporter.write_line(f"{'total':<40} {sum(TRIED.values()):>7}")
        out = Path(os.environ.get("BOT_TEST_ARTIFACTS", ROOT / "tests" / "artifacts"))
        out.mkdir(parents=True, exist_ok=True)
        (out / "hostile-inputs.json").write_text(json.dumps(dict(TRIED), indent=1, sort_keys=True))


@pytest.fixture(scope="session")
def app_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Production-profile settings on a database of its own (dropped afterwards); Rasa is not reachable."""
    name = f"bot_h{uuid.uuid4().hex[:8]}"
    ensure_database(PG_SERVER, name)
    var = tmp_path_factory.mktemp("hostile-var")
    env = {"BOT_PROFILE": "prod", "BOT_VAR_DIR": str(var), "BOT_DATABASE_URL": f"{PG_SERVER}/{name}",
           "BOT_RASA_URL": "http://127.0.0.1:9", "BOT_RASA_TOKEN": "hostile-rasa-token",
           "BOT_SECRET_KEY": "hostile-secret-key", "BOT_INTEGRATION_KEY": "hostile-integration-key",
           "BOT_EMBEDDED_WORKER": "0"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        from bot.persistence.migrate import upgrade
        from bot.services.bootstrap import build_services
        from bot.services.seed import seed_demo
        from bot.settings import load_settings

        upgrade(env["BOT_DATABASE_URL"])
        seed_demo(build_services(load_settings()))
        yield env
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        drop_database(PG_SERVER, name)


@pytest.fixture(scope="session")
def app(app_env: dict[str, str]):  # type: ignore[no-untyped-def]
    from bot.web.app import create_app

    return create_app()


@pytest.fixture
def client(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def signed_in_buyer(app, buyer_id: int) -> TestClient:  # type: ignore[no-untyped-def]
    c = TestClient(app, raise_server_exceptions=False)
    assert c.post(f"/signin/{buyer_id}", follow_redirects=False).status_code in (302, 303)
    return c


def staff_headers(client: TestClient, username: str) -> dict[str, str]:
    r = client.post("/api/staff/token", json={"username": username, "password": f"demo-{username}"})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}
