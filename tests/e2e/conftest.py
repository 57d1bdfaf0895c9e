"""The real stack (Rasa, action server, web app with worker) on test ports and a throw-away var dir."""

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.ops.stack import ROOT, VENV_APP, Ports, Stack, stack_env

# Away from `make run` (5005, 5055, 8000) so tests can run beside it.
TEST_PORTS = Ports(rasa=int(os.environ.get("BOT_TEST_RASA_PORT", 15005)),
                   actions=int(os.environ.get("BOT_TEST_ACTIONS_PORT", 15055)),
                   web=int(os.environ.get("BOT_TEST_WEB_PORT", 18000)))


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    var_dir = tmp_path_factory.mktemp("stack-var")
    env = stack_env(var_dir, TEST_PORTS, {"BOT_WORKER_INTERVAL": "0.5"})
    for command in ("migrate", "seed"):
        subprocess.run([str(VENV_APP / "python"), "-m", "bot", command], env=env, cwd=ROOT, check=True,
                       capture_output=True)
    logs = Path(os.environ.get("BOT_TEST_ARTIFACTS", ROOT / "tests" / "artifacts")) / "stack-logs"
    logs.mkdir(parents=True, exist_ok=True)
    with Stack(var_dir, TEST_PORTS, extra_env={"BOT_WORKER_INTERVAL": "0.5"}, log_dir=logs) as running:
        yield running
