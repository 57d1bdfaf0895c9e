"""The load bench's intervals for its ratios against the floor (bench/ratios.py)."""

import random

import pytest

from bench.ratios import NOT_MEASURED, Interval, by_conversation, percentile, percentile_ratio_interval


def conversations(rng: random.Random, count: int, scale: float, messages: int = 6) -> list[list[float]]:
    return [[scale * rng.lognormvariate(0, 0.4) for _ in range(messages)] for _ in range(count)]


def test_percentile_is_the_nearest_rank_the_bench_reports():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 95) == 96.0  # k = round(95 + 0.5) - 1, as RunResult.pct
    assert percentile(list(reversed(values)), 50) == 50.0
    assert percentile([0.2], 95) == 0.2


def test_conversations_keep_their_messages_together_in_first_seen_order():
    pairs = [("b", 1.0), ("a", 2.0), ("b", 3.0), ("c", 4.0), ("a", 5.0)]
    assert by_conversation(pairs) == [[1.0, 3.0], [2.0, 5.0], [4.0]]


def test_constant_latencies_give_the_exact_ratio_and_no_spread():
    bot = [[0.03] * 6 for _ in range(40)]
    floor = [[0.01] * 6 for _ in range(40)]
    interval = percentile_ratio_interval(bot, floor)
    assert (interval.ratio, interval.low, interval.high) == pytest.approx((3.0, 3.0, 3.0))
    assert interval.verdict(2.0) == "missed"


def test_the_interval_holds_the_run_s_own_ratio_and_narrows_with_more_conversations():
    rng = random.Random(1)
    small = percentile_ratio_interval(conversations(rng, 20, 2.0), conversations(rng, 20, 1.0))
    large = percentile_ratio_interval(conversations(rng, 600, 2.0), conversations(rng, 600, 1.0))
    for interval in (small, large):
        assert interval.low <= interval.ratio <= interval.high
    assert large.high - large.low < (small.high - small.low) / 2
    assert large.low < 2.0 < large.high  # the true ratio of the two distributions


def test_one_slow_conversation_moves_all_of_its_messages():
    # 19 quick conversations and one whose eight messages are all slow: the p95 of the 122 is one of them. Draws
    # that leave that conversation out (about a third) give the floor's p95, so the interval reaches down to 1.
    bot = [[0.01] * 6 for _ in range(19)] + [[0.1] * 8]
    floor = [[0.01] * 6 for _ in range(20)]
    interval = percentile_ratio_interval(bot, floor, draws=4000)
    assert interval.ratio == pytest.approx(10.0)
    assert interval.low == pytest.approx(1.0)
    assert interval.verdict(2.0) == "too close to call"


def test_verdicts_against_a_target():
    assert Interval(1.5, 1.3, 1.8, 0.9).verdict(2.0) == "met"
    assert Interval(2.4, 2.1, 2.8, 0.9).verdict(2.0) == "missed"
    assert Interval(1.9, 1.7, 2.2, 0.9).verdict(2.0) == "too close to call"
    assert Interval(1.9, 1.7, 2.2, 0.9).text() == "1.90× (1.70–2.20×)"
    assert NOT_MEASURED.verdict(2.0) == "not measured"


def test_the_same_seed_gives_the_same_interval():
    rng = random.Random(3)
    bot, floor = conversations(rng, 50, 1.8), conversations(rng, 50, 1.0)
    assert percentile_ratio_interval(bot, floor, seed=11) == percentile_ratio_interval(bot, floor, seed=11)


@pytest.mark.parametrize("bot, floor, kw", [
    ([], [[0.01]], {}), ([[0.01]], [], {}), ([[0.01]], [[0.01]], {"draws": 5}), ([[0.01]], [[0.01]], {"level": 1.0}),
])
def test_refuses_what_it_cannot_bootstrap(bot, floor, kw):
    with pytest.raises(ValueError):
        percentile_ratio_interval(bot, floor, **kw)


def test_the_load_report_gives_each_level_its_interval_and_verdict():
    # The bench's own report from made-up runs: the intervals and verdicts come from the samples.
    import argparse
    from collections import Counter

    from bench.load_bench import RunResult, Sample, write_report

    def stack(scale: float, levels: list[int], sat: list[float]) -> dict:
        rng = random.Random(scale)
        paused = []
        for buyers in levels:
            r = RunResult(f"paused-{buyers}", buyers, 3.0, 60.0)
            for n in range(100):
                r.samples += [Sample(scale * rng.uniform(0.9, 1.1), True, "ok", step, f"s{n}") for step in range(6)]
            paused.append(r)
        saturation = [(RunResult("nopause-24", 24, 0.0, 30.0, [Sample(0.1, True, "ok")] * int(30 * sum(sat) / 3)),
                       Counter({"rasa": 5.0}))]
        return {"paused": paused, "saturation": saturation, "saturation_slices": [sat], "checks": {"lost": 0}}

    args = argparse.Namespace(pause=3.0, spread=15.0, levels=[10, 50], duration=40.0, min_messages=0,
                              paused_slices=1, sat_duration=30.0, sat_slices=3, env=[], sat=[24])
    floor = stack(0.010, [10, 50], [300.0, 320.0, 310.0])
    bot = stack(0.030, [10, 50], [150.0, 176.0, 155.0])
    report = write_report(args, floor, bot, 0.0, (0.5, 0.5, 0.5))
    assert "| 10 | bot | 600 |" in report and "3.00× (" in report
    assert "10 buyers: **missed**; 50 buyers: **missed**." in report
    assert "24 buyers 0.50, 0.55, 0.50." in report

    bot["paused"][1].samples = []  # a level where the bot answered nothing: reported, not a crash
    assert "50 buyers: **not measured**" in write_report(args, floor, bot, 0.0, (0.5, 0.5, 0.5))
