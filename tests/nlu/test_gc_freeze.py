"""Both guarded channels (bot/ops/rasa_guard.py) move what was loaded before the server started out of the
garbage collector's reach, once the server has started: full collections then no longer walk the model,
TensorFlow and spaCy under load. Each channel runs on a real Sanic server in a process of its own (Sanic 21.12
prepares its protocol code once per process, so a second server in one process fails)."""

import subprocess
import sys
from pathlib import Path

import pytest

import bot.ops.rasa_guard as guard

ROOT = Path(__file__).resolve().parents[2]

SCENARIO = """
import asyncio, gc, sys
from sanic import Sanic
import bot.ops.rasa_guard as guard

channel = {"rest": lambda: guard.GuardedRestInput(),
           "socketio": lambda: guard.GuardedSocketIOInput.from_credentials(None)}[sys.argv[1]]()

async def on_new_message(_):
    return None

async def main():
    app = Sanic("freeze_" + sys.argv[1])
    app.blueprint(channel.blueprint(on_new_message), url_prefix="/webhooks/" + sys.argv[1])
    server = await app.create_server(host="127.0.0.1", port=0, return_asyncio_server=True)
    await server.startup()
    before = gc.get_freeze_count()
    await server.after_start()
    after = gc.get_freeze_count()
    server.close()
    await server.wait_closed()
    print("FROZEN", before, after, *gc.get_threshold())
    print("PATCHED", int(guard.rasa_speedups._installed), guard.KEPT_TRACKERS)

asyncio.run(main())
"""


def _scenario(channel: str, **env: str) -> tuple[str, str]:
    """The FROZEN and PATCHED lines' figures of SCENARIO, run with the channel in a fresh process."""
    out = subprocess.run([sys.executable, "-c", SCENARIO, channel], cwd=ROOT, capture_output=True, text=True,
                         timeout=240, env={"PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3",
                                           "PATH": "/usr/bin:/bin", **env})
    assert out.returncode == 0, out.stderr[-3000:]
    frozen, patched = out.stdout.split("FROZEN", 1)[1].split("PATCHED")
    return frozen, patched


@pytest.mark.parametrize("channel", ["rest", "socketio"])
def test_a_started_server_freezes_what_it_loaded(channel: str) -> None:
    frozen, _ = _scenario(channel)
    before, after, *thresholds = (int(n) for n in frozen.split())
    assert before == 0
    assert after > 100_000  # everything the process had loaded (Rasa, Sanic, TensorFlow), not a few objects
    assert tuple(thresholds) == guard.GC_THRESHOLDS != (700, 10, 10)


def test_without_the_speed_ups_rasa_runs_its_own_code_and_nothing_is_frozen() -> None:
    frozen, patched = _scenario("rest", BOT_RASA_SPEEDUPS="off")
    assert [int(n) for n in frozen.split()] == [0, 0, 700, 10, 10]
    assert [int(n) for n in patched.split()] == [0, 0]  # Rasa's own code, and no kept trackers


@pytest.mark.parametrize("setting", ["abc", "1,2", "0,10,10", "10,-1,10", ""])
def test_a_bad_threshold_setting_is_refused_with_its_name(setting: str) -> None:
    with pytest.raises(ValueError, match="BOT_GC_THRESHOLDS must be three whole numbers"):
        guard._gc_thresholds(setting)


def test_a_threshold_setting_is_read() -> None:
    assert guard._gc_thresholds("5000, 5, 7") == (5000, 5, 7)


@pytest.mark.parametrize("setting", ["abc", "-1", "1.5", ""])
def test_a_bad_parse_cache_size_is_refused_with_its_name(setting: str) -> None:
    with pytest.raises(ValueError, match="BOT_PARSE_CACHE_SIZE must be a whole number"):
        guard._parse_cache_size(setting)


def test_a_parse_cache_size_is_read() -> None:
    assert guard._parse_cache_size("0") == 0 and guard._parse_cache_size(" 512 ") == 512
