"""How sure one load run is of its ratios against the floor.

Two runs minutes apart on one host gave the bot's p95 at 10 paused buyers as 2.16× and 1.80× the floor's
(bench/LOAD_RESULTS.md): a single ratio cannot say whether the 2× target is met. A bootstrap says how far the
ratio could move with the same host and code: each stack's conversations are drawn again with replacement (a
conversation's messages stay together, since one slow conversation slows several of its messages), the p95 of
each draw is taken the bench's way, and the spread of the draws' ratios is the interval. A target is *met* when
the whole interval is below it, *missed* when the whole interval is above it, and *too close to call* otherwise.

Standard library only, so that the tests run it without the bench's stacks.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile by nearest rank, as RunResult.pct takes it (values need not be sorted)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, int(round(q / 100 * len(ordered) + 0.5)) - 1))
    return ordered[k]


def by_conversation(samples: Iterable[tuple[str, float]]) -> list[list[float]]:
    """(conversation, latency) pairs as one list of latencies per conversation, in first-seen order."""
    groups: dict[str, list[float]] = {}
    for conversation, latency in samples:
        groups.setdefault(conversation, []).append(latency)
    return list(groups.values())


@dataclass(frozen=True)
class Interval:
    ratio: float  # the run's own ratio
    low: float  # the interval's ends: `level` of the bootstrap ratios lie between them
    high: float
    level: float

    def verdict(self, target: float) -> str:
        """Against a ratio the run must stay under: met, missed or too close to call (or not measured)."""
        if math.isnan(self.ratio):
            return "not measured"
        if self.high < target:
            return "met"
        if self.low > target:
            return "missed"
        return "too close to call"

    def text(self) -> str:
        return f"{self.ratio:.2f}× ({self.low:.2f}–{self.high:.2f}×)"


NOT_MEASURED = Interval(math.nan, math.nan, math.nan, 0.0)


def _draw(groups: Sequence[Sequence[float]], rng: random.Random) -> list[float]:
    picked = rng.choices(groups, k=len(groups))
    return [latency for group in picked for latency in group]


def percentile_ratio_interval(bot: Sequence[Sequence[float]], floor: Sequence[Sequence[float]], *, q: float = 95,
                              draws: int = 2000, level: float = 0.90, seed: int = 7) -> Interval:
    """The bot's q-th percentile over the floor's, with a `level` bootstrap interval; `bot` and `floor` are
    latencies grouped by conversation (`by_conversation`)."""
    if not bot or not floor:
        raise ValueError("both stacks need at least one conversation")
    if draws < 10 or not 0 < level < 1:
        raise ValueError("draws must be 10 or more and level between 0 and 1")
    rng = random.Random(seed)
    ratio = percentile([x for g in bot for x in g], q) / percentile([x for g in floor for x in g], q)
    ratios = sorted(percentile(_draw(bot, rng), q) / percentile(_draw(floor, rng), q) for _ in range(draws))
    tail = (1 - level) / 2
    low = ratios[int(round(tail * (draws - 1)))]
    high = ratios[int(round((1 - tail) * (draws - 1)))]
    return Interval(ratio, low, high, level)
