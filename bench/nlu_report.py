"""NLU report: the trained model on the independent test set, next to a baseline trained in the same run.

Runs in the Rasa environment (`make nlu-report`). Prints the figures and writes bench/NLU_REPORT.md:
per-intent precision/recall/F1, reason macro-F1, intent accuracy, a confusion matrix of the reasons,
parse latency, and the same numbers for a character n-gram TF-IDF + logistic regression baseline
trained on the same training data.
"""

import asyncio
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from bot.nlu.topics import REASON_INTENTS  # noqa: E402

TEST_SET = ROOT / "tests" / "nlu" / "test_set.yml"
REPORT = ROOT / "bench" / "NLU_REPORT.md"


def load_examples(path: Path) -> list[tuple[str, str]]:
    from rasa.shared.nlu.training_data.loading import load_data

    data = load_data(str(path))
    return [(m.get("text"), m.get("intent")) for m in data.intent_examples]


def scores(gold: list[str], pred: list[str], labels: list[str]) -> dict[str, tuple[float, float, float, int]]:
    out = {}
    for label in labels:
        tp = sum(1 for g, p in zip(gold, pred) if g == label and p == label)
        fp = sum(1 for g, p in zip(gold, pred) if g != label and p == label)
        fn = sum(1 for g, p in zip(gold, pred) if g == label and p != label)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out[label] = (precision, recall, f1, tp + fn)
    return out


def macro_f1(table: dict[str, tuple[float, float, float, int]], labels: tuple[str, ...]) -> float:
    return statistics.mean(table[label][2] for label in labels)


def baseline_predict(train: list[tuple[str, str]], texts: list[str]) -> list[str]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    model = make_pipeline(TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True),
                          LogisticRegression(max_iter=2000, C=10))
    model.fit([t for t, _ in train], [i for _, i in train])
    return list(model.predict(texts))


def confusion(gold: list[str], pred: list[str], labels: tuple[str, ...]) -> str:
    short = [label.removeprefix("reason_") for label in labels]
    counts = Counter(zip(gold, pred))
    head = "| gold \\ predicted | " + " | ".join(short) + " | other |\n|---" * 1 + "|---" * (len(labels) + 1) + "|\n"
    rows = []
    for g, name in zip(labels, short):
        cells = [str(counts.get((g, p), 0)) for p in labels]
        other = sum(c for (gg, p), c in counts.items() if gg == g and p not in labels)
        rows.append(f"| {name} | " + " | ".join(cells) + f" | {other} |")
    return head + "\n".join(rows)


def main() -> int:
    from bot.nlu.classify import Classifier

    train = load_examples(ROOT / "data" / "nlu")
    test = load_examples(TEST_SET)
    texts, gold = [t for t, _ in test], [i for _, i in test]
    classifier = Classifier(ROOT / "models" / "current.tar.gz")
    parsed = asyncio.run(classifier.parse_batch(texts))
    pred = []
    for p in parsed:
        name = p["intent"]["name"]
        if name == "nlu_fallback":  # score the model's best guess; the fallback is a dialogue decision
            name = next(r["name"] for r in p["intent_ranking"] if r["name"] != "nlu_fallback")
        pred.append(name)
    base = baseline_predict(train, texts)

    # Latency of one message at a time, as the server sees a text it has not parsed before: the parse cache is
    # off here (these texts were all parsed just above).
    from bot.nlu import rasa_speedups

    rasa_speedups.PARSE_CACHE_SIZE = 0
    agent = classifier.agent
    latencies = []
    for text in texts[:300]:
        started = time.perf_counter()
        asyncio.run(agent.parse_message(text))
        latencies.append((time.perf_counter() - started) * 1000)
    latencies.sort()
    p50, p95 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.95) - 1]

    labels = sorted(set(gold))
    ours, theirs = scores(gold, pred, labels), scores(gold, base, labels)
    acc = sum(g == p for g, p in zip(gold, pred)) / len(gold)
    base_acc = sum(g == p for g, p in zip(gold, base)) / len(gold)
    reason_f1, base_reason_f1 = macro_f1(ours, REASON_INTENTS), macro_f1(theirs, REASON_INTENTS)
    figures = (f"test items {len(gold)}; training examples {len(train)}\n"
               f"reason macro-F1: model {reason_f1:.3f}, baseline {base_reason_f1:.3f} "
               f"(ratio {reason_f1 / base_reason_f1:.2f})\n"
               f"intent accuracy: model {acc:.3f}, baseline {base_acc:.3f}\n"
               f"parse latency (one new message, in process, {len(latencies)} messages): p50 {p50:.1f} ms, p95 {p95:.1f} ms")
    print(figures)
    table = "\n".join(
        f"| {label} | {ours[label][3]} | {ours[label][0]:.2f} | {ours[label][1]:.2f} | {ours[label][2]:.2f} | "
        f"{theirs[label][2]:.2f} |" for label in labels)
    errors = "\n".join(f"| {t} | {g} | {p} |" for t, g, p in zip(texts, gold, pred) if g != p)
    REPORT.write_text(f"""# NLU report (independent test set)

Written by `bench/nlu_report.py` (`make nlu-report`) on {time.strftime('%Y-%m-%d %H:%M')}.
Baseline: character n-gram (1–3) TF-IDF + logistic regression, trained in the same run on the same
training data (`data/nlu/`). Test set: `tests/nlu/test_set.yml`, written independently.

```
{figures}
```

## Per intent

| intent | n | precision | recall | F1 | baseline F1 |
|---|---|---|---|---|---|
{table}

## Confusion matrix of the return reasons (model)

{confusion(gold, pred, REASON_INTENTS)}

## Misclassified test items (model)

| text | gold | predicted |
|---|---|---|
{errors}
""", encoding="utf-8")
    print(f"report written to {REPORT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
