"""DIET in process, three ways: TensorFlow (Rasa's own model data, batch and graph: the baseline), NumPy from
Rasa's batch (bot.nlu.diet_numpy through `_rasa_predict`), and NumPy from the message's features directly (the
patched `DIETClassifier._predict`, which skips Rasa's model data and batch generator). It times DIET's `process`
and whole parses on the same 250 quality complaints after 40 others as a warm-up, parse cache off. The three
run in turns, two rounds; the last line gives each NumPy way's medians as a ratio of TensorFlow's over both
rounds.

Run: PYTHONPATH=. TF_CPP_MIN_LOG_LEVEL=3 .venv/rasa/bin/python bench/diet_numpy_timing.py [model]
"""

import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

os.chdir(Path(__file__).resolve().parents[1])

from rasa.core.agent import Agent  # noqa: E402
from rasa.nlu.classifiers.diet_classifier import DIET, DIETClassifier  # noqa: E402
from rasa.utils.tensorflow.models import RasaModel  # noqa: E402

from bench.phrasings import STEPS  # noqa: E402
from bot.nlu import rasa_speedups  # noqa: E402

rasa_speedups.install()
rasa_speedups.PARSE_CACHE_SIZE = 0  # every parse runs the graph
COMPLAINTS = list(next(p for label, p, _ in STEPS if label == "quality reason"))
WARM, TEXTS = COMPLAINTS[3::97][:40], COMPLAINTS[::19][:250]
NUMPY_PREDICT, TF_PREDICT = DIET.__dict__["_rasa_predict"], RasaModel._rasa_predict
DIRECT, THROUGH_BATCH = DIETClassifier._predict, rasa_speedups.ORIGINALS["DIETClassifier._predict"]
MODES = {"tensorflow": (THROUGH_BATCH, TF_PREDICT), "numpy from batch": (THROUGH_BATCH, NUMPY_PREDICT),
         "numpy direct": (DIRECT, NUMPY_PREDICT)}

process_times: list = []  # (wall, cpu) per DIET.process call


def timed(fn, into: list):
    def wrapped(*args, **kwargs):
        wall, cpu = time.perf_counter(), time.process_time()
        out = fn(*args, **kwargs)
        into.append((time.perf_counter() - wall, time.process_time() - cpu))
        return out
    return wrapped


DIETClassifier.process = timed(DIETClassifier.process, process_times)  # before loading: nodes keep the method
agent = Agent.load(sys.argv[1] if len(sys.argv) > 1 else "models/current.tar.gz")


async def run(mode: str, texts: list) -> dict:
    DIETClassifier._predict, DIET._rasa_predict = MODES[mode]
    process_times.clear()
    parses = []
    for text in texts:
        wall, cpu = time.perf_counter(), time.process_time()
        await agent.parse_message(text)
        parses.append((time.perf_counter() - wall, time.process_time() - cpu))
    assert len(process_times) == len(texts)
    return {"DIET.process": list(process_times), "parse": parses}


def ms(values: list) -> str:
    return f"mean {statistics.mean(values) * 1e3:.2f} ms, median {statistics.median(values) * 1e3:.2f} ms"


async def main() -> None:
    for mode in MODES:
        await run(mode, WARM)
    medians: dict = {mode: {} for mode in MODES}
    for round_ in (1, 2):
        for mode in MODES:
            times = await run(mode, TEXTS)
            print(f"round {round_} {mode:16} n={len(TEXTS)}  " + " | ".join(
                f"{part} wall {ms([t[0] for t in values])}; cpu {ms([t[1] for t in values])}"
                for part, values in times.items()))
            for part, values in times.items():
                medians[mode].setdefault(part, []).extend(t[1] for t in values)
    base = medians["tensorflow"]
    for mode in list(MODES)[1:]:
        print(f"{mode} / tensorflow, median CPU over both rounds: " + ", ".join(
            f"{part} {statistics.median(medians[mode][part]) / statistics.median(base[part]):.2f}" for part in base))


asyncio.run(main())
