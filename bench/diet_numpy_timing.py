"""DIET's process, its _rasa_predict and whole parses, in process: TensorFlow (the concrete graph, the fallback)
vs NumPy (bot.nlu.diet_numpy), on the same 250 complaint texts after 40 others as warm-up, parse cache off.
Run: cd <repo> && PYTHONPATH=. TF_CPP_MIN_LOG_LEVEL=3 <rasa venv>/bin/python bench/diet_numpy_timing.py"""
import asyncio, os, statistics, sys, time
from pathlib import Path
os.chdir(Path(__file__).resolve().parents[1])
from rasa.core.agent import Agent
from bot.nlu import rasa_speedups; rasa_speedups.install()
from rasa.nlu.classifiers.diet_classifier import DIET, DIETClassifier
from bench.phrasings import STEPS
rasa_speedups.PARSE_CACHE_SIZE = 0  # every parse runs the graph
complaints = list(next(p for label, p, _ in STEPS if label == "quality reason"))
warm, texts = complaints[3::97][:40], complaints[::19][:250]
numpy_predict = DIET.__dict__["_rasa_predict"]
record = []
original_process = DIETClassifier.process
def timed_process(self, messages):
    w, c = time.perf_counter(), time.process_time()
    out = original_process(self, messages)
    record.append((time.perf_counter() - w, time.process_time() - c))
    return out
DIETClassifier.process = timed_process  # before loading: graph nodes keep the bound method
agent = Agent.load(sys.argv[1] if len(sys.argv) > 1 else "models/current.tar.gz")
from rasa.utils.tensorflow.models import RasaModel
tf_predict = RasaModel._rasa_predict
predict_record = []
def timing(fn):
    def wrapped(self, batch_in):
        w, c = time.perf_counter(), time.process_time()
        out = fn(self, batch_in)
        predict_record.append((time.perf_counter() - w, time.process_time() - c))
        return out
    return wrapped
def set_mode(mode):
    DIET._rasa_predict = timing(numpy_predict if mode == "numpy" else tf_predict)
async def run(mode, batch):
    set_mode(mode); record.clear(); predict_record.clear(); parses = []
    for t in batch:
        w, c = time.perf_counter(), time.process_time()
        await agent.parse_message(t)
        parses.append((time.perf_counter() - w, time.process_time() - c))
    return list(record), parses, list(predict_record)
def ms(values): return f"mean {statistics.mean(values)*1e3:.2f} ms, median {statistics.median(values)*1e3:.2f} ms"
async def main():
    for mode in ("tf", "numpy"): await run(mode, warm)
    for rnd in (1, 2):
        for mode in ("tf", "numpy"):
            diet, parses, pred = await run(mode, texts)
            assert len(diet) == len(texts)
            print(f"round {rnd} {mode:5} n={len(texts)}  DIET.process wall {ms([d[0] for d in diet])}; "
                  f"cpu {ms([d[1] for d in diet])} | _rasa_predict wall {ms([d[0] for d in pred])}; "
                  f"cpu {ms([d[1] for d in pred])}"
                  f" | parse wall {ms([p[0] for p in parses])}; cpu {ms([p[1] for p in parses])}")
asyncio.run(main())
