"""Load bench of the production profile: many buyers through whole refund conversations over REST.

Runs, in one go on this machine (everything on 127.0.0.1):
  1. the FLOOR: the same Rasa (3.6, same production profile: nginx, 2 replicas, PostgreSQL tracker store,
     Redis lock store) with a minimal one-rule bot and no actions, trained here into a temp dir from tiny data
     this script writes;
  2. the PLAIN FLOOR (unless --no-plain-floor): the same floor bot with BOT_RASA_SPEEDUPS=off, i.e. without
     our Rasa speed-ups, kept trackers or frozen start-up objects; a reference only, the targets use the floor;
  3. the NLU FLOOR (unless --no-nlu-floor): the floor's one rule and no actions on the bot's own NLU
     (config.yml's pipeline trained on data/nlu); a reference only, for what the bot costs beyond its NLU;
  4. the BOT: the production profile of the assistant (bot/ops/prod.py) with its real model, 2 action
     servers, web and 2 workers, on fresh databases;
and drives them with two shapes:
  - paused: N buyers (10, 50, 100) each pausing ~3 s between messages, start times spread out, for a fixed
    time (longer, in slices, at a level that would otherwise give too few messages for a steady p95);
    p50/p95/p99 latency and error rate per level;
  - no pause: C buyers sending back to back for a fixed time; throughput in messages per second (the
    highest over the concurrencies tried is the saturation throughput).
A conversation is the whole refund: greeting, the reason (quality), "photos later", the quote, "确认"
(submitted), "where is my refund", thanks — 6 messages, each checked for its expected answer. Each message is
one of several phrasings (5,040 quality complaints, 5 of each short step), so the replicas' parse cache meets
repeats as often as buyers' varied texts allow; the share of parses it answered is printed per run. Afterwards
every conversation is checked in the databases: each message answered is in the tracker store exactly once, each
completed buyer has exactly one request (nothing lost, nothing duplicated).
In the saturation runs it measures CPU seconds per message by process kind (/proc) and the time in action calls
(nginx log); after the measured runs, where a bot replica and an action server spend their time (py-spy, when
installed).

Prints the figures and writes bench/LOAD_RESULTS.md. Loops are bounded by count and time.

    .venv/app/bin/python bench/load_bench.py                       # full run (about 25 minutes)
    .venv/app/bin/python bench/load_bench.py --levels 10 --duration 30 --sat 8 --sat-duration 20   # quick
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import yaml  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from bench.phrasings import CONFIRM_STEP, STEPS  # noqa: E402
from bench.ratios import (  # noqa: E402
    NOT_MEASURED, Interval, by_conversation, percentile, percentile_ratio_interval,
)
from bot.identity import buyer_token, sender_id_of  # noqa: E402
from bot.ops.prod import (  # noqa: E402
    VENV_APP, VENV_RASA, ProdConfig, ProdPorts, ProdStack, add_load_buyers, drop_database, drop_lock_keys,
)

PG_SERVER = os.environ.get("BOT_BENCH_PG_SERVER", "postgresql://postgres@127.0.0.1:5432")
REPORT = ROOT / "bench" / "LOAD_RESULTS.md"
STACK_SPACING = 3500  # between the stacks' port layouts, each 3,095 ports wide (5005 … 8100)

FLOOR_REPLY = "收到"

# ---------------------------------------------------------------- the floor bot

FLOOR_DOMAIN = """version: "3.1"
intents:
  - say
  - other
responses:
  utter_reply:
    - text: "收到"
session_config:
  session_expiration_time: 60
  carry_over_slots_to_new_session: true
"""
FLOOR_CONFIG = """recipe: default.v1
assistant_id: load-floor
language: en
pipeline:
  - name: WhitespaceTokenizer
  - name: CountVectorsFeaturizer
    analyzer: char_wb
    min_ngram: 1
    max_ngram: 2
  - name: LogisticRegressionClassifier
policies:
  - name: RulePolicy
    core_fallback_threshold: 0.3
    core_fallback_action_name: utter_reply
    enable_fallback_prediction: true
"""
FLOOR_RULES = """version: "3.1"
rules:
  - rule: answer anything
    steps:
      - intent: say
      - action: utter_reply
"""


def floor_nlu() -> str:
    say = [phrasings[0] for _, phrasings, _ in STEPS] + [
        "你好呀", "在吗", "我要退款", "衣服坏了", "确认提交", "好的", "多谢", "退款进度", "什么时候到账", "质量问题",
        "尺码不对", "不喜欢"]
    other = ["lorem ipsum", "qwerty", "asdf", "zzz", "foo bar", "xyz"]
    lines = ['version: "3.1"', "nlu:", "  - intent: say", "    examples: |"]
    lines += [f"      - {m}" for m in say]
    lines += ["  - intent: other", "    examples: |"] + [f"      - {m}" for m in other]
    return "\n".join(lines) + "\n"


def train_floor(workdir: Path) -> Path:
    """Train the one-rule floor bot from data written here; returns the model."""
    (workdir / "data").mkdir(parents=True, exist_ok=True)
    (workdir / "domain.yml").write_text(FLOOR_DOMAIN)
    (workdir / "config.yml").write_text(FLOOR_CONFIG)
    (workdir / "data" / "nlu.yml").write_text(floor_nlu())
    (workdir / "data" / "rules.yml").write_text(FLOOR_RULES)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "SQLALCHEMY_SILENCE_UBER_WARNING": "1"}
    out = subprocess.run([str(VENV_RASA / "rasa"), "train", "--domain", "domain.yml", "--config", "config.yml",
                          "--data", "data", "--out", "models", "--fixed-model-name", "floor"],
                         cwd=workdir, env=env, capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        raise RuntimeError(f"floor training failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return workdir / "models" / "floor.tar.gz"


def train_nlu_floor(workdir: Path) -> Path:
    """Train the NLU floor: the floor's one rule and no actions, but the bot's own NLU (config.yml's pipeline,
    its jieba words, entity rules and DIET, trained on data/nlu). It answers 收到 to everything like the floor,
    and so shows what the bot costs beyond understanding a Chinese message the way the bot does."""
    (workdir / "data").mkdir(parents=True, exist_ok=True)
    bot_domain = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
    domain = {"version": "3.1", "intents": bot_domain["intents"], "entities": bot_domain["entities"],
              "responses": {"utter_reply": [{"text": FLOOR_REPLY}]},
              "session_config": {"session_expiration_time": 60, "carry_over_slots_to_new_session": True}}
    (workdir / "domain.yml").write_text(yaml.safe_dump(domain, allow_unicode=True), encoding="utf-8")
    config = yaml.safe_load((ROOT / "config.yml").read_text(encoding="utf-8"))
    config.update(assistant_id="load-nlu-floor", policies=yaml.safe_load(FLOOR_CONFIG)["policies"])
    (workdir / "config.yml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    for source in sorted((ROOT / "data" / "nlu").glob("*.yml")):
        shutil.copy(source, workdir / "data" / source.name)
    # Still one rule, for whichever intent DIET finds (the core fallback alone would answer again and again).
    rules = {"version": "3.1", "rules": [{"rule": "answer anything", "steps": [
        {"or": [{"intent": intent} for intent in [*bot_domain["intents"], "nlu_fallback"]]},
        {"action": "utter_reply"}]}]}
    (workdir / "data" / "rules.yml").write_text(yaml.safe_dump(rules, allow_unicode=True), encoding="utf-8")
    # From the project's root: the pipeline names bot/nlu/dictionary and the bot's own components.
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "SQLALCHEMY_SILENCE_UBER_WARNING": "1", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([str(VENV_RASA / "rasa"), "train", "--domain", str(workdir / "domain.yml"),
                          "--config", str(workdir / "config.yml"), "--data", str(workdir / "data"),
                          "--out", str(workdir / "models"), "--fixed-model-name", "nlu-floor"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError(f"NLU floor training failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return workdir / "models" / "nlu-floor.tar.gz"


# ---------------------------------------------------------------- load generator


@dataclass
class Sample:
    latency: float
    ok: bool
    kind: str  # ok | status_<n> | wrong_answer | timeout | transport
    step: int = 0  # which message of the conversation (index into STEPS)
    conversation: str = ""  # its sender: a conversation's messages are drawn together for the ratios' intervals


@dataclass
class RunResult:
    name: str
    buyers: int
    pause: float
    elapsed: float
    samples: list[Sample] = field(default_factory=list)
    conversations: dict[str, list[str]] = field(default_factory=dict)  # sender -> messages answered 200
    completed: set[str] = field(default_factory=set)  # senders whose 6 messages were all answered right
    ran_out: bool = False  # the identities ran out before `duration`: the run is shorter than asked
    generator_cpu: float = 0.0  # CPU seconds this process (the load generator) spent meanwhile, on the same cores
    parse_cache: Counter = field(default_factory=Counter)  # the replicas' parse cache counts during the run

    @property
    def cache_hit_share(self) -> float:
        """Share of the parses the replicas answered from their parse cache."""
        return self.parse_cache["hits"] / max(sum(self.parse_cache.values()), 1)

    @property
    def generator_ms_per_message(self) -> float:
        return 1000 * self.generator_cpu / max(self.messages, 1)

    @property
    def messages(self) -> int:
        return len(self.samples)

    @property
    def errors(self) -> int:
        return sum(not s.ok for s in self.samples)

    @property
    def error_kinds(self) -> Counter:
        return Counter(s.kind for s in self.samples if not s.ok)

    def pct(self, q: float, step: int | None = None) -> float:
        return percentile([s.latency for s in self.samples if step is None or s.step == step], q)

    def by_conversation(self) -> list[list[float]]:
        return by_conversation((s.conversation, s.latency) for s in self.samples)

    @property
    def throughput(self) -> float:
        return sum(s.ok for s in self.samples) / self.elapsed if self.elapsed else 0.0


class Population:
    """Fresh identities: every conversation is a different buyer with an unused order."""

    def __init__(self, ids: list[int], secret_key: str | None, prefix: str) -> None:
        self.ids, self.secret_key, self.prefix, self.next = ids, secret_key, prefix, 0

    def take(self) -> tuple[str, dict | None] | None:
        if self.next >= len(self.ids):
            return None
        buyer_id = self.ids[self.next]
        self.next += 1
        if self.secret_key is None:
            return f"{self.prefix}-{buyer_id}", None
        return sender_id_of(buyer_id), {"buyer_token": buyer_token(buyer_id, self.secret_key)}


async def one_conversation(client: aiohttp.ClientSession, url: str, sender: str, metadata: dict | None,
                           floor: bool, pause: float, result: RunResult, rng: random.Random) -> None:
    answered: list[str] = []
    right = 0
    for i, (_, phrasings, expected) in enumerate(STEPS):
        message = rng.choice(phrasings)
        if i and pause:
            await asyncio.sleep(pause * rng.uniform(0.8, 1.2))
        body = {"sender": sender, "message": message}
        if metadata:
            body["metadata"] = metadata
        started = time.perf_counter()
        try:
            async with client.post(url, json=body) as response:
                status = response.status
                answer = await response.json(content_type=None) if status == 200 else None
            latency = time.perf_counter() - started
        except asyncio.TimeoutError:
            result.samples.append(Sample(time.perf_counter() - started, False, "timeout", i, sender))
            break
        except (aiohttp.ClientError, ValueError):
            result.samples.append(Sample(time.perf_counter() - started, False, "transport", i, sender))
            break
        if status != 200:
            result.samples.append(Sample(latency, False, f"status_{status}", i, sender))
            break
        answered.append(message)
        reply = "\n".join(m.get("text") or "" for m in answer)
        if (FLOOR_REPLY if floor else expected) not in reply:
            result.samples.append(Sample(latency, False, "wrong_answer", i, sender))
            break
        result.samples.append(Sample(latency, True, "ok", i, sender))
        right += 1
    result.conversations[sender] = answered
    if right == len(STEPS):
        result.completed.add(sender)


def process_cpu() -> float:
    times = os.times()
    return times.user + times.system


async def drive(url: str, population: Population, *, buyers: int, pause: float, duration: float, spread: float,
                floor: bool, name: str, max_conversations: int) -> RunResult:
    """`buyers` virtual buyers, each starting at a random time in [0, spread) and then running whole
    conversations (a fresh identity each) until `duration` has passed; bounded by max_conversations."""
    result = RunResult(name, buyers, pause, 0.0)
    rng = random.Random(7)
    started_conversations = 0
    # aiohttp: httpx's client cost about 9 ms of CPU per request, on the cores of the stack it measures.
    connector = aiohttp.TCPConnector(limit=buyers + 8)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=150.0)) as client:
        t0 = time.perf_counter()

        async def virtual_buyer(k: int) -> None:
            nonlocal started_conversations
            await asyncio.sleep(rng.uniform(0, spread) if spread else 0)
            while time.perf_counter() - t0 < duration and started_conversations < max_conversations:
                identity = population.take()
                if identity is None:
                    result.ran_out = True
                    return
                started_conversations += 1
                await one_conversation(client, url, identity[0], identity[1], floor, pause, result, rng)
                if pause:
                    await asyncio.sleep(pause * rng.uniform(0.8, 1.2))

        cpu0 = process_cpu()
        await asyncio.gather(*(virtual_buyer(k) for k in range(buyers)))
        result.elapsed = time.perf_counter() - t0
        result.generator_cpu = process_cpu() - cpu0
    return result


def parse_cache_counts(ports: tuple[int, ...]) -> Counter:
    """The replicas' parse cache counts so far (hits, misses, skipped), summed; from each replica directly."""
    async def one(client: aiohttp.ClientSession, port: int) -> dict:
        async with client.get(f"http://127.0.0.1:{port}/webhooks/rest/") as response:
            return (await response.json()).get("parse_cache") or {}

    async def every() -> list[dict]:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10.0)) as client:
            return await asyncio.gather(*(one(client, port) for port in ports))

    total: Counter = Counter()
    for counts in asyncio.run(every()):
        total.update(counts)
    return total


def run(url: str, population: Population, **kw: object) -> RunResult:
    return asyncio.run(drive(url, population, **kw))  # type: ignore[arg-type]


def merged(parts: list[RunResult]) -> RunResult:
    """Runs of one stack at one level, taken in slices, as one run: their samples and their time together."""
    whole = RunResult(parts[0].name, parts[0].buyers, parts[0].pause, sum(p.elapsed for p in parts))
    for part in parts:
        whole.samples += part.samples
        whole.conversations.update(part.conversations)
        whole.completed |= part.completed
        whole.ran_out |= part.ran_out
        whole.generator_cpu += part.generator_cpu
        whole.parse_cache.update(part.parse_cache)
    return whole


# ---------------------------------------------------------------- checks in the databases


def check_conversations(stack: ProdStack, results: list[RunResult], with_app: bool) -> dict[str, int]:
    """Lost: a message answered 200 that the tracker store lacks. Duplicated: a message stored twice, or more
    than one request for a buyer. Returns the counts (all must be 0)."""
    senders = [s for r in results for s in r.conversations]
    tracker = create_engine(stack.cfg.tracker_database_url.replace("postgresql://", "postgresql+psycopg://"))
    stored: dict[str, list[str]] = defaultdict(list)
    rewinds: Counter = Counter()
    with tracker.connect() as conn:
        for sender, kind, data in conn.execute(text(
                "SELECT sender_id, type_name, data FROM events WHERE type_name IN ('user', 'rewind') AND "
                "sender_id = ANY(:s) ORDER BY id"), {"s": senders}):
            if kind == "rewind":
                rewinds[sender] += 1  # a two-stage fallback may store the message once more after it
            else:
                stored[sender].append(json.loads(data).get("text") or "")
    tracker.dispose()
    lost = duplicated = requests_missing = requests_duplicated = 0
    for r in results:
        for sender, answered in r.conversations.items():
            have, want = Counter(stored.get(sender, [])), Counter(answered)
            lost += sum((want - have).values())
            # One copy more than answered is allowed for the message whose answer failed (handled, answer lost).
            duplicated += max(0, sum((have - want).values()) - rewinds[sender] - 1)
    if with_app:
        app = create_engine(stack.cfg.app_database_url.replace("postgresql://", "postgresql+psycopg://"))
        with app.connect() as conn:
            per_buyer = dict(conn.execute(text("SELECT buyer_id, count(*) FROM after_sales GROUP BY buyer_id")).all())
        app.dispose()
        for r in results:
            for sender, answered in r.conversations.items():
                buyer_id = int(sender.split("-")[1])
                n = per_buyer.get(buyer_id, 0)
                if len(answered) > CONFIRM_STEP and n == 0:
                    requests_missing += 1
                if n > 1:
                    requests_duplicated += 1
    return {"messages_lost": lost, "messages_duplicated": duplicated, "requests_lost": requests_missing,
            "requests_duplicated": requests_duplicated}


# ---------------------------------------------------------------- profiling


def _descendants(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True).stdout.split("\n")
    children: dict[int, list[int]] = defaultdict(list)
    for line in out:
        parts = line.split()
        if len(parts) == 2:
            children[int(parts[1])].append(int(parts[0]))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo += children.get(p, [])
    return found


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def cpu_snapshot(stack: ProdStack) -> dict[str, float]:
    """CPU seconds so far by kind of process: rasa, actions, web, worker, nginx, postgres, redis."""
    kinds: dict[str, float] = defaultdict(float)
    for name, proc in stack.procs.items():
        for pid in _descendants(proc.pid):
            kinds[name.split("-")[0]] += _cpu_seconds(pid)
    pg = subprocess.run(["pgrep", "-u", "postgres"], capture_output=True, text=True).stdout.split()
    kinds["postgres"] = sum(_cpu_seconds(int(p)) for p in pg)
    redis = subprocess.run(["pgrep", "-x", "redis-server"], capture_output=True, text=True).stdout.split()
    kinds["redis"] = sum(_cpu_seconds(int(p)) for p in redis)
    return dict(kinds)


CATEGORIES = [
    ("TensorFlow (DIET/TED inference)", re.compile(r"tensorflow|keras")),
    ("jieba tokenizer", re.compile(r"jieba")),
    # Our patches of Rasa (rasa_speedups, rasa_guard, rasa_lock) stand in for Rasa code they replace or wrap.
    ("our Rasa patches and guards (bot/nlu/rasa_speedups, bot/ops/rasa_*)",
     re.compile(r"bot/nlu/rasa_speedups|bot/ops/rasa_")),
    ("spaCy entity rules (bot/nlu)", re.compile(r"spacy|bot/nlu")),
    ("featurizers / scikit-learn / numpy", re.compile(r"featurizers|sklearn|scipy|numpy")),
    ("SQL (SQLAlchemy, psycopg)", re.compile(r"sqlalchemy|psycopg")),
    ("lock store (redis)", re.compile(r"redis")),
    ("logging (structlog, logging)", re.compile(r"structlog|/logging/")),
    # py-spy names standard-library files relative ("json/decoder.py"), site-packages ones by their path.
    ("JSON / copying (json, ujson, copy)", re.compile(r"[(/]json/|ujson|[(/]copy\.py|jsonpickle")),
    ("tracker replay and events (rasa.shared.core)", re.compile(r"rasa/shared/core/(trackers|events|domain|slots)")),
    ("policies and featurizing states (rasa.core)", re.compile(r"rasa/core/(policies|featurizers)")),
    ("checking action-server answers (jsonschema)", re.compile(r"jsonschema|_validate_action_result")),
    ("application code (actions/, bot/)", re.compile(r"\((actions|bot)/")),  # py-spy shows them relative
    ("rasa_sdk", re.compile(r"rasa_sdk")),
    ("Rasa message processing (processor, agent, channels)", re.compile(r"rasa/core/|rasa/engine|rasa/graph")),
    ("HTTP and event loop (sanic, aiohttp, asyncio)", re.compile(r"sanic|aiohttp|httptools|uvloop|asyncio")),
]


# A worker-thread pool's idle threads wait here (the tracker store and the actions run their database calls
# in threads): py-spy does not see that wait as idle, so those samples are left out.
_IDLE_LEAF = re.compile(r"^_worker \(.*concurrent/futures/thread\.py")


def busy_stacks(raw: Path) -> Iterator[tuple[str, int]]:
    """(stack, samples) of py-spy's raw output, without idle pool threads."""
    for line in raw.read_text().splitlines():
        stack_, _, n = line.rpartition(" ")
        if n.isdigit() and not _IDLE_LEAF.match(stack_.rsplit(";", 1)[-1]):
            yield stack_, int(n)


def pyspy_profile(pid: int, seconds: int, out: Path) -> list[tuple[str, float]] | None:
    """Share of busy samples by category (first matching frame from the leaf up), via py-spy."""
    pyspy = shutil.which("py-spy") or str(VENV_APP / "py-spy")
    if not Path(pyspy).exists():
        return None
    proc = subprocess.run([pyspy, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "100",
                           "--format", "raw", "--output", str(out), "--nonblocking", "--gil"],
                          capture_output=True, text=True, timeout=seconds + 60)
    if proc.returncode != 0 or not out.exists():
        return None
    return layer_shares(out)


def layer_shares(raw: Path) -> list[tuple[str, float]] | None:
    """Share of busy samples by category (first matching frame from the leaf up) of a py-spy raw file."""
    counts: Counter = Counter()
    total = 0
    for stack_, n in busy_stacks(raw):
        total += int(n)
        frames = stack_.split(";")[::-1]  # leaf first
        for frame in frames:
            label = next((name for name, rx in CATEGORIES if rx.search(frame)), None)
            if label:
                counts[label] += int(n)
                break
        else:
            counts["other Python"] += int(n)
    return [(k, 100.0 * v / total) for k, v in counts.most_common()] if total else None


def top_functions(raw: Path, prefix: str, n: int = 8) -> list[tuple[str, float]]:
    """Functions under `prefix` (e.g. "rasa/") by inclusive share of busy samples."""
    if not raw.exists():
        return []
    inclusive: Counter = Counter()
    total = 0
    for stack_, count in busy_stacks(raw):
        total += int(count)
        for frame in set(stack_.split(";")):
            if prefix in frame:
                inclusive[re.sub(r" \(.*/site-packages/", " (", frame)] += int(count)
    return [(k, 100.0 * v / total) for k, v in inclusive.most_common(n)] if total else []


def nginx_split(log: Path, since: float, rest_port: int, actions_port: int) -> dict[str, float]:
    """Average time per REST message at the LB, and in custom-action calls per REST message."""
    rest = actions = 0.0
    n_rest = n_actions = action_bytes_in = action_bytes_out = 0
    if not log.exists():
        return {}
    for line in log.read_text(errors="replace").splitlines():
        parts = line.split()
        if len(parts) < 8 or float(parts[0]) < since:
            continue
        port, request_time = int(parts[1]), float(parts[5])
        if port == rest_port and parts[3] == "/webhooks/rest/webhook":
            rest += request_time
            n_rest += 1
        elif port == actions_port:
            actions += request_time
            n_actions += 1
            if len(parts) >= 10:
                action_bytes_in += int(parts[8])
                action_bytes_out += int(parts[9])
    if not n_rest:
        return {}
    return {"rest_avg_s": rest / n_rest, "action_calls_per_message": n_actions / n_rest,
            "action_time_per_message_s": actions / n_rest,
            "action_request_bytes": action_bytes_in / max(n_actions, 1),
            "action_response_bytes": action_bytes_out / max(n_actions, 1)}


# ---------------------------------------------------------------- the run


class StackBench:
    """One stack (the floor or the bot) under the bench. Both stacks run at once and take turns level by level:
    this host's speed drifts by a third from minute to minute, and measuring all of the floor first and all
    of the bot afterwards let that drift into the ratios."""

    def __init__(self, name: str, cfg: ProdConfig, *, floor: bool, args: argparse.Namespace, ids_needed: int,
                 profile_dir: Path) -> None:
        self.name, self.cfg, self.floor, self.args = name, cfg, floor, args
        self.ids_needed, self.profile_dir = ids_needed, profile_dir
        self.stack = ProdStack(cfg)
        self.out: dict = {"paused": [], "saturation": [], "checks": {}, "profile": {}}
        self.results: list[RunResult] = []
        self.slices: dict[int, tuple[list[RunResult], Counter, float]] = {}  # no-pause level -> its slices so far
        self.paused_slices: dict[int, list[RunResult]] = {}  # paused level -> its slices so far

    def start(self) -> None:
        t = time.monotonic()
        self.stack.start()
        print(f"[{self.name}] started in {time.monotonic() - t:.0f}s", flush=True)
        self.url = f"{self.stack.urls['rasa']}/webhooks/rest/webhook"
        if self.floor:
            # The floor's identities are only names, so it gets as many as any run may use: sized like the
            # bot's, it ran out within seconds of its busiest level (4 conversations a second per buyer).
            floor_ids = self.args.max_conversations * (len(self.args.levels) + len(self.args.sat)) + 8
            self.population = Population(list(range(1, floor_ids + 1)), None, f"floor{uuid.uuid4().hex[:6]}")
        else:
            ids = add_load_buyers(self.cfg.app_database_url, self.ids_needed, first_id=10_000)
            self.population = Population(ids, self.stack.secret_key, "buyer")
        # Warm-up: a few conversations so every replica has run every code path once.
        run(self.url, self.population, buyers=4, pause=0.0, duration=1, spread=0, floor=self.floor,
            name="warm-up", max_conversations=4)

    def measured(self, **kw: object) -> RunResult:
        """A measured run, with the replicas' parse cache counts over it."""
        ports = self.cfg.ports.rasa_replicas
        before = parse_cache_counts(ports)
        r = run(self.url, self.population, floor=self.floor, max_conversations=self.args.max_conversations, **kw)
        r.parse_cache = parse_cache_counts(ports)
        r.parse_cache.subtract(before)
        return r

    def paused(self, level: int, seconds: float) -> None:
        """One slice of the paused run at `level` buyers (`paused_total` adds the slices up)."""
        args = self.args
        r = self.measured(buyers=level, pause=args.pause, duration=seconds, spread=args.spread,
                          name=f"paused-{level}")
        self.results.append(r)
        self.paused_slices.setdefault(level, []).append(r)

    def paused_total(self, level: int) -> None:
        args, name = self.args, self.name
        slices = self.paused_slices.pop(level)
        r = merged(slices)
        self.out["paused"].append(r)
        print(f"[{name}] {level:>3} buyers, {args.pause:.0f}s pause: {r.messages} msgs in "
              f"{plan_text(r.elapsed, len(slices))}, p50 {r.pct(50):.3f}s p95 {r.pct(95):.3f}s "
              f"p99 {r.pct(99):.3f}s, errors {r.errors} {dict(r.error_kinds)}, "
              f"{r.throughput:.1f} msg/s; load generator {r.generator_ms_per_message:.1f} ms CPU/msg; "
              f"parse cache {100 * r.cache_hit_share:.0f} % of parses", flush=True)
        print(f"[{name}]      p95 by message: " + ", ".join(
            f"{label} {r.pct(95, i) * 1000:.0f}" for i, (label, _, _) in enumerate(STEPS)) + " ms", flush=True)

    def saturation(self, c: int, seconds: float) -> None:
        """One slice of the no-pause run at `c` buyers (`saturation_total` adds the slices up)."""
        since = time.time()
        before = cpu_snapshot(self.stack)
        r = self.measured(buyers=c, pause=0.0, duration=seconds, spread=0, name=f"nopause-{c}")
        after = cpu_snapshot(self.stack)
        self.results.append(r)
        slices, cpu, _ = self.slices.setdefault(c, ([], Counter(), since))
        slices.append(r)
        cpu.update({k: after.get(k, 0) - before.get(k, 0) for k in after})

    def saturation_total(self, c: int) -> None:
        name = self.name
        slices, cpu_seconds, since = self.slices.pop(c)
        r = merged(slices)
        ok = sum(s.ok for s in r.samples)
        cpu = {k: v / max(ok, 1) * 1000 for k, v in cpu_seconds.items()}
        self.out["saturation"].append((r, cpu))
        self.out.setdefault("saturation_slices", []).append([part.throughput for part in slices])
        self.out["nginx"] = nginx_split(self.cfg.log_dir / "nginx-access.log", since, self.cfg.ports.rasa,
                                        self.cfg.ports.actions)
        print(f"[{name}] {c:>3} buyers, no pause: {r.throughput:.1f} msg/s over {r.elapsed:.0f}s in {len(slices)} "
              f"slices ({', '.join(f'{part.throughput:.0f}' for part in slices)} msg/s), p50 "
              f"{r.pct(50):.3f}s p95 {r.pct(95):.3f}s, errors {r.errors} {dict(r.error_kinds)}"
              + f"; parse cache {100 * r.cache_hit_share:.0f} % of parses"
              + (" (IDENTITIES RAN OUT: shorter than asked)" if r.ran_out else ""), flush=True)
        print(f"[{name}]     CPU ms per message: " + ", ".join(f"{k} {v:.1f}" for k, v in sorted(
            cpu.items(), key=lambda kv: -kv[1]) if v >= 0.05) + f"; load generator {r.generator_ms_per_message:.1f}",
              flush=True)
        if self.out["nginx"].get("action_calls_per_message"):
            print(f"[{name}]     action calls: " + ", ".join(f"{k} {v:.4g}" for k, v in self.out["nginx"].items()),
                  flush=True)

    def profile(self, c: int) -> None:
        """Where a Rasa replica and an action server spend their time (py-spy), under `c` buyers without pause,
        in a run of its own after the measured ones: py-spy's own CPU would slow the run it samples."""
        args, stack, shares = self.args, self.stack, {}
        seconds = max(5, int(args.sat_duration / 2) - 4)

        def spy() -> None:
            time.sleep(2)
            for proc_name in ("rasa-1", "actions-1"):
                raw = self.profile_dir / f"{proc_name}.txt"
                shares[proc_name] = pyspy_profile(stack.procs[proc_name].pid, seconds, raw)
                shares[proc_name + " functions"] = top_functions(
                    raw, "rasa/core/" if proc_name.startswith("rasa") else "/work/", 12)

        spy_thread = threading.Thread(target=spy)
        spy_thread.start()
        r = run(self.url, self.population, buyers=c, pause=0.0, duration=2 * seconds + 6, spread=0,
                floor=self.floor, name=f"profile-{c}", max_conversations=args.max_conversations)
        spy_thread.join()
        self.results.append(r)  # checked in the databases like every other run
        self.out["profile"] = shares
        print(f"[{self.name}] profiled under {c} buyers without pause ({r.throughput:.1f} msg/s, not a measurement)",
              flush=True)

    def check(self) -> None:
        self.out["checks"] = check_conversations(self.stack, self.results, with_app=not self.floor)
        print(f"[{self.name}] checks: {self.out['checks']}", flush=True)

    def stop(self) -> None:
        self.stack.stop()
        for db in (self.cfg.app_db, self.cfg.tracker_db):
            drop_database(self.cfg.pg_server, db)
        drop_lock_keys(self.cfg)


def bench_stacks(stacks: list[StackBench], args: argparse.Namespace) -> None:
    """Start every stack, then each level on each stack in turn; always stop them all."""
    try:
        for stack in stacks:
            stack.start()
        # Each stack's run at a level is cut into slices that take turns with the other stacks' slices, the
        # first stack changing from turn to turn: a drift in the host's speed then favours none. In run 18 the
        # floor's no-pause run measured 603 msg/s and the bot's, minutes later, 237; a quick run half an hour
        # later gave 482 and 235: the host's speed moved by a fifth and caught one stack only.
        turn = 0

        def in_turns(slices: int, run_slice: Callable[[StackBench], None]) -> None:
            nonlocal turn
            for _ in range(slices):
                for stack in (stacks if turn % 2 == 0 else stacks[::-1]):
                    run_slice(stack)
                turn += 1

        for level in args.levels:
            seconds, slices = paused_plan(args, level)
            in_turns(slices, lambda stack: stack.paused(level, seconds / slices))
            for stack in stacks:
                stack.paused_total(level)
        for c in args.sat:
            in_turns(args.sat_slices, lambda stack: stack.saturation(c, args.sat_duration / args.sat_slices))
            for stack in stacks:
                stack.saturation_total(c)
        if args.profile:
            for stack in stacks:
                if not stack.floor:
                    stack.profile(max(args.sat))
        for stack in stacks:
            stack.check()
    finally:
        for stack in stacks:
            stack.stop()


def paused_plan(args: argparse.Namespace, level: int) -> tuple[float, int]:
    """How long a paused level runs (all slices) and in how many slices: `--duration` in one run, or longer in
    up to `--paused-slices` slices where one run would give fewer than about `--min-messages` messages (a buyer
    sends one message per pause, and starts half the spread late on average in each slice). At 10 buyers 40 s
    gave 144 messages, whose p95 is the 7th slowest: one slow complaint moved the ratio to the floor by a third
    from one run to the next. Slices shorter than `--duration` would spend most of their time ramping up."""
    needed = args.min_messages * args.pause / level
    slices = max(1, min(args.paused_slices, round(needed / args.duration)))
    return max(args.duration, needed + slices * args.spread / 2), slices


def plan_text(seconds: float, slices: int) -> str:
    return f"{seconds:.0f} s" + (f" in {slices} slices" if slices > 1 else "")


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


P95_TARGET = 2.0
P95_TARGET_TEXT = (f"Against the target (p95 at most {P95_TARGET:g}× the floor's): *met* when the whole 90 % interval "
                   f"is below {P95_TARGET:g}, *missed* when it is above, else *too close to call* (bench/ratios.py: "
                   "each stack's conversations drawn again 2,000 times) –")


def p95_intervals(floor: dict, bot: dict) -> list[Interval]:
    """The bot's p95 over the floor's at each paused level, with how far the same run could have put it."""
    def interval(f: RunResult, b: RunResult) -> Interval:
        try:
            return percentile_ratio_interval(b.by_conversation(), f.by_conversation())
        except (ValueError, ZeroDivisionError):  # a stack without answers at this level: no ratio to give
            return NOT_MEASURED

    return [interval(f, b) for f, b in zip(floor["paused"], bot["paused"])]


def slice_ratios(floor: dict, bot: dict) -> list[tuple[int, list[float]]]:
    """Per no-pause level: the bot's throughput over the floor's, slice by slice (slices that took turns)."""
    return [(r.buyers, [b / f for f, b in zip(f_slices, b_slices) if f > 0])
            for (r, _), f_slices, b_slices in zip(bot["saturation"], floor.get("saturation_slices", []),
                                                  bot.get("saturation_slices", []))]


def write_report(args: argparse.Namespace, floor: dict, bot: dict, started: float, load: tuple,
                 references: dict[str, dict] | None = None) -> str:
    """The report. `references` are the other stacks measured beside the floor, by name: the "plain floor"
    (the floor without our Rasa speed-ups) and the "NLU floor" (the floor with the bot's NLU). The targets
    compare with `floor`."""
    references = references or {}
    plain, nlu = references.get("plain floor"), references.get("NLU floor")
    lines = ["# Load bench: the production profile under many buyers", "",
             f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))} by `bench/load_bench.py` on "
             f"this machine ({os.cpu_count()} cores, {platform.python_version()}), load average before the run "
             f"{load[0]:.2f}. Both the floor and the bot run in the production profile (nginx, 2 Rasa replicas, "
             "PostgreSQL tracker store, Redis lock store); the floor is a one-rule bot without actions, the bot "
             "has 2 action servers, the web app and 2 workers on PostgreSQL. One conversation = 6 messages "
             "(greeting, quality reason, photos later, quote, 确认 → submitted, status, thanks), every answer "
             "checked. The stacks run at once and take turns, level by level or, where a level runs in slices, slice "
             "by slice (floor first, then the bot first at the next turn, and so on), so that the host's drift in "
             "speed reaches them alike."
             + (" A third stack, the *plain floor*, is the same floor bot with `BOT_RASA_SPEEDUPS=off` (none of "
                "bot/nlu/rasa_speedups, no kept trackers, no frozen start-up objects): it is only a reference for "
                "what those speed-ups buy the floor, and the targets are against the floor with them." if plain else "")
             + (" Another reference, the *NLU floor*, is the floor's one rule without actions on the bot's own NLU "
                "(config.yml's pipeline with its jieba words, entity rules and DIET, trained on data/nlu): it shows "
                "what the bot costs beyond understanding each message the way the bot does." if nlu else "")
             + (f" Extra environment: `{' '.join(args.env)}`." if args.env else ""), "",
             f"## Paused buyers (~{args.pause:.0f} s between messages, starts spread over {args.spread:.0f} s; "
             + ", ".join(f"{plan_text(*paused_plan(args, level))} at {level}" for level in args.levels)
             + f" buyers: at least {args.duration:.0f} s, longer for about {args.min_messages} messages, the stacks' "
             "slices taking turns)", "",
             "| buyers | run | messages | p50 ms | p95 ms | p99 ms | errors | error rate | msg/s | "
             "p95 vs floor (90 % interval) |",
             "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    # The stacks this run measured, in the order of the tables' rows.
    runs = [("floor", floor), *references.items(), ("bot", bot)]
    intervals = p95_intervals(floor, bot)
    for level, interval in enumerate(intervals):
        for name, r in ((name, stack["paused"][level]) for name, stack in runs):
            ratio = interval.text() if name == "bot" else ""
            lines.append(f"| {r.buyers} | {name} | {r.messages} | {fmt_ms(r.pct(50))} | {fmt_ms(r.pct(95))} | "
                         f"{fmt_ms(r.pct(99))} | {r.errors} | {100 * r.errors / max(r.messages, 1):.2f} % | "
                         f"{r.throughput:.1f} | {ratio} |")
    lines += ["", P95_TARGET_TEXT + " " + "; ".join(
        f"{b.buyers} buyers: **{interval.verdict(P95_TARGET)}**" for b, interval in zip(bot["paused"], intervals))
        + "."]
    if nlu:
        lines += ["", "p95 of the bot against the NLU floor's at " + ", ".join(
            f"{b.buyers} buyers: {b.pct(95) / max(n.pct(95), 1e-9):.2f}×"
            for n, b in zip(nlu["paused"], bot["paused"])) + " (a reference; the target is against the floor)."]
    # The mean hides which messages are slow: the ones that run custom actions set the bot's p95.
    lines += ["", "By message of the conversation, p50 / p95 ms (bot; floor p95 for comparison):", "",
              "| message | " + " | ".join(f"{b.buyers} buyers: bot p50 / p95, floor p95" for b in bot["paused"]) + " |",
              "| --- |" + " ---: |" * len(bot["paused"])]
    for step, (label, phrasings, _) in enumerate(STEPS):
        lines.append(f"| {label} ({len(phrasings)} phrasings) | " + " | ".join(
            f"{fmt_ms(b.pct(50, step))} / {fmt_ms(b.pct(95, step))}, {fmt_ms(f.pct(95, step))}"
            for f, b in zip(floor["paused"], bot["paused"])) + " |")
    lines += ["", f"## No pause ({args.sat_duration:.0f} s per concurrency, in {args.sat_slices} slices per stack that "
              "take turns with the other stacks' slices)", "",
              "| buyers | run | seconds | msg/s | p50 ms | p95 ms | errors |",
              "| ---: | --- | ---: | ---: | ---: | ---: | ---: |"]
    for level in range(len(bot["saturation"])):
        for name, (r, _) in ((name, stack["saturation"][level]) for name, stack in runs):
            short = " (identities ran out)" if r.ran_out else ""
            lines.append(f"| {r.buyers} | {name} | {r.elapsed:.0f}{short} | {r.throughput:.1f} | {fmt_ms(r.pct(50))} "
                         f"| {fmt_ms(r.pct(95))} | {r.errors} |")
    f_sat = max(r.throughput for r, _ in floor["saturation"])
    b_sat = max(r.throughput for r, _ in bot["saturation"])
    lines += ["", f"Saturation throughput: floor **{f_sat:.1f} msg/s**, bot **{b_sat:.1f} msg/s** "
              f"({b_sat / f_sat:.2f} of the floor; target ≥ 0.5)."]
    pairs = slice_ratios(floor, bot)
    if pairs:
        lines += ["", "The same ratio slice by slice (each bot slice against the floor slice it took turns with), "
                  "a measure of how far it moves within the run: " + "; ".join(
                      f"{buyers} buyers " + ", ".join(f"{x:.2f}" for x in ratios) for buyers, ratios in pairs) + "."]
    # The parse cache answers repeated short texts; the phrasings vary, so this is the share real buyers allow.
    lines += ["", "Share of the replicas' parses answered from their parse cache (the rest ran the NLU components; "
              "payloads and texts with digits are never kept): " + "; ".join(
                  f"{name}: " + ", ".join(f"{r.buyers} paused {100 * r.cache_hit_share:.0f} %"
                                         for r in stack["paused"])
                  + ", " + ", ".join(f"{r.buyers} no pause {100 * r.cache_hit_share:.0f} %"
                                     for r, _ in stack["saturation"])
                  for name, stack in runs) + "."]
    if plain:
        p_sat = max(r.throughput for r, _ in plain["saturation"])
        lines += ["", f"For reference, the plain floor (no speed-ups) saturated at {p_sat:.1f} msg/s: the bot is "
                  f"{b_sat / p_sat:.2f} of it, and the speed-ups made the floor {f_sat / p_sat:.1f}× as fast."]
    if nlu:
        n_sat = max(r.throughput for r, _ in nlu["saturation"])
        lines += ["", f"For reference, the NLU floor (the bot's NLU, one rule, no actions) saturated at {n_sat:.1f} "
                  f"msg/s: the bot is {b_sat / n_sat:.2f} of it."]
    lines += [""]
    lines += ["## Nothing lost, nothing duplicated", "", "| run | " + " | ".join(bot["checks"]) + " |",
              "| --- |" + " ---: |" * len(bot["checks"])]
    lines.append("| bot | " + " | ".join(str(v) for v in bot["checks"].values()) + " |")
    for name, stack in runs[:-1]:
        lines.append(f"| {name} | " + " | ".join(str(stack["checks"].get(k, "–")) for k in bot["checks"]) + " |")
    lines += ["", "## Where the time goes (bot, highest no-pause concurrency)", ""]
    _, cpu = bot["saturation"][-1]
    cpus = [cpu] + [stack["saturation"][-1][1] for name, stack in runs[:-1]]
    lines += ["CPU milliseconds per answered message, by process kind:", "",
              "| process | bot | " + " | ".join(name for name, _ in runs[:-1]) + " |",
              "| --- |" + " ---: |" * len(cpus)]
    for k in sorted(set().union(*cpus), key=lambda k: -cpu.get(k, 0)):
        if max(c.get(k, 0) for c in cpus) >= 0.05:
            lines.append(f"| {k} | " + " | ".join(f"{c.get(k, 0):.1f}" for c in cpus) + " |")
    lines.append("| **total** | " + " | ".join(f"**{sum(c.values()):.1f}**" for c in cpus) + " |")
    lines += ["", "The load generator (this script, on the same cores) used " + ", ".join(
        f"{stack['saturation'][-1][0].generator_ms_per_message:.1f} ms ({name})" for name, stack in runs)
        + f" of CPU per message in the same runs; at {bot['paused'][-1].buyers} paused buyers " + ", ".join(
        f"{stack['paused'][-1].generator_ms_per_message:.1f} ms ({name})" for name, stack in runs) + "."]
    if bot.get("nginx"):
        n = bot["nginx"]
        lines += ["", f"At the load balancer: {n['rest_avg_s'] * 1000:.0f} ms per REST message on average, of which "
                  f"{n['action_time_per_message_s'] * 1000:.0f} ms in {n['action_calls_per_message']:.1f} "
                  f"custom-action calls (on average {n.get('action_request_bytes', 0) / 1024:.1f} KiB sent to the "
                  f"action server and {n.get('action_response_bytes', 0) / 1024:.1f} KiB back per call)."]
    if bot.get("profile"):
        lines += ["", f"py-spy sampled a replica and an action server in a run of its own under {max(args.sat)} buyers "
                  "without pause, after the measured runs (its own CPU would have slowed a measured run)."]
    for proc_name, shares in (bot.get("profile") or {}).items():
        if shares and proc_name.endswith(" functions"):
            lines += ["", f"py-spy, {proc_name.split()[0]}: functions by inclusive share of busy samples:", "",
                      "| function | share |", "| --- | ---: |"]
            lines += [f"| `{k}` | {v:.1f} % |" for k, v in shares]
        elif shares:
            lines += ["", f"py-spy, {proc_name}: busy samples by the innermost known layer:", "",
                      "| where | share |", "| --- | ---: |"]
            lines += [f"| {k} | {v:.1f} % |" for k, v in shares[:12]]
    return "\n".join(lines) + "\n"


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", type=lambda s: [int(x) for x in s.split(",")], default=[10, 50, 100])
    parser.add_argument("--pause", type=float, default=3.0)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per paused level")
    parser.add_argument("--spread", type=float, default=15.0, help="start times spread over this many seconds")
    parser.add_argument("--min-messages", type=int, default=400,
                        help="a paused level runs longer than --duration where that gives fewer messages")
    parser.add_argument("--paused-slices", type=positive_int, default=3,
                        help="at most this many slices of a paused level that runs longer than --duration")
    parser.add_argument("--sat", type=lambda s: [int(x) for x in s.split(",")], default=[8, 24])
    parser.add_argument("--sat-duration", type=float, default=45.0, help="seconds per no-pause level, all slices")
    parser.add_argument("--sat-slices", type=positive_int, default=3,
                        help="slices of each no-pause run, the stacks taking turns slice by slice")
    parser.add_argument("--max-conversations", type=int, default=2000, help="per run (bounds every loop)")
    parser.add_argument("--no-profile", dest="profile", action="store_false")
    # Below Linux's ephemeral ports (32768 and up), where a client connection could hold a replica's port, and
    # below the production-profile tests' (25005 and up).
    parser.add_argument("--offset", type=int, default=6000,
                        help="ports: bot LB 11005…, floor 14505…, plain floor 18005…, NLU floor 21505…")
    parser.add_argument("--no-report", action="store_true", help="print only, do not write LOAD_RESULTS.md")
    parser.add_argument("--bot-only", action="store_true",
                        help="measure the bot alone (while working on it): prints, never writes the report")
    parser.add_argument("--no-plain-floor", dest="plain_floor", action="store_false",
                        help="skip the reference floor that runs without our Rasa speed-ups")
    parser.add_argument("--no-nlu-floor", dest="nlu_floor", action="store_false",
                        help="skip the reference floor that has the bot's NLU (one rule, no actions)")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="extra environment for every process of both stacks (repeatable)")
    args = parser.parse_args()
    started, load = time.time(), os.getloadavg()
    tag = uuid.uuid4().hex[:6]
    extra_env = dict(item.split("=", 1) for item in args.env)
    # Paused: at most one conversation per buyer every 15 s, doubled. No pause (each level, and the profile run):
    # up to 70 conversations a second (the bot did 40 in run 18).
    plans = {level: paused_plan(args, level) for level in args.levels}
    ids_needed = (2 * sum(level * int(seconds / 15 + 2 * slices) for level, (seconds, slices) in plans.items())
                  + (len(args.sat) + 1) * int(args.sat_duration * 70) + 8)
    ids_needed = min(ids_needed, args.max_conversations * (len(args.levels) + len(args.sat) + 1) + 8)
    with tempfile.TemporaryDirectory(prefix="load-bench-") as tmp:
        work = Path(tmp)
        profile_dir = ROOT / "var" / "load-bench-profile"
        profile_dir.mkdir(parents=True, exist_ok=True)
        stacks: list[StackBench] = []

        def floor_stack(name: str, key: str, place: int, model: Path, env: dict[str, str]) -> StackBench:
            """A floor-like stack (one rule, no actions, no app) on its own ports, databases and lock keys."""
            ports = ProdPorts().shifted(args.offset + place * STACK_SPACING)
            cfg = ProdConfig(var_dir=work / f"{key}-var", ports=ports,
                             pg_server=PG_SERVER, app_db=f"bench_{tag}_{key}_app",
                             tracker_db=f"bench_{tag}_{key}_tracker", lock_prefix=f"bench{key}{tag}", model=model,
                             with_actions=False, with_app=False, nginx_access_log=False, extra_env=env)
            return StackBench(name, cfg, floor=True, args=args, ids_needed=ids_needed, profile_dir=profile_dir)

        if not args.bot_only:
            print("training the floor bot …", flush=True)
            t = time.monotonic()
            floor_model = train_floor(work / "floor")
            print(f"floor bot trained in {time.monotonic() - t:.0f}s", flush=True)
            stacks.append(floor_stack("floor", "floor", 1, floor_model, extra_env))
            if args.plain_floor:
                # The same floor bot without our speed-ups: for reference only (the targets use the floor above).
                stacks.append(floor_stack("plain floor", "plain", 2, floor_model,
                                          {**extra_env, "BOT_RASA_SPEEDUPS": "off"}))
            if args.nlu_floor:
                # The floor's dialogue on the bot's NLU: for reference only (the targets use the floor above).
                print("training the NLU floor …", flush=True)
                t = time.monotonic()
                nlu_model = train_nlu_floor(work / "nlu-floor")
                print(f"NLU floor trained in {time.monotonic() - t:.0f}s", flush=True)
                stacks.append(floor_stack("NLU floor", "nlu", 3, nlu_model, extra_env))
        bot_cfg = ProdConfig(var_dir=work / "bot-var", ports=ProdPorts().shifted(args.offset), pg_server=PG_SERVER,
                             app_db=f"bench_{tag}_app", tracker_db=f"bench_{tag}_tracker", lock_prefix=f"bench{tag}",
                             extra_env=extra_env)
        stacks.append(StackBench("bot", bot_cfg, floor=False, args=args, ids_needed=ids_needed,
                                 profile_dir=profile_dir))
        bench_stacks(stacks, args)
        if args.bot_only:
            return 0
        report = write_report(args, stacks[0].out, stacks[-1].out, started, load,
                              references={stack.name: stack.out for stack in stacks[1:-1]})
        logs = ROOT / "var" / "load-bench-logs"
        shutil.rmtree(logs, ignore_errors=True)
        shutil.copytree(bot_cfg.log_dir, logs, ignore=shutil.ignore_patterns("nginx-access.log"))
    print("\n" + report)
    if not args.no_report:
        REPORT.write_text(report)
        print(f"written to {REPORT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
