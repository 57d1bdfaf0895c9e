"""Batch classifier: JSON lines {"text": ...} on stdin -> one JSON line per input on stdout, in order.

Runs in the Rasa environment on the trained model. Messages go through the model's NLU graph in
batches (every component takes a list), so 10,000 lines take one model load and a few hundred calls.
Logs go to stderr; stdout carries only the JSON lines.
"""

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
from pathlib import Path
from typing import IO, Any, Iterable, Iterator

from bot.nlu.topics import reason_of_intent, topic_of_intent

ROOT = Path(__file__).resolve().parents[2]
MAX_TEXT = 2000


def label(parse: dict[str, Any]) -> dict[str, Any]:
    """The fields a shop needs from one parse result."""
    intent = parse.get("intent") or {}
    name = intent.get("name") or "nlu_fallback"
    confidence = float(intent.get("confidence") or 0.0)
    if name == "nlu_fallback":
        # The fallback hides the best guess; the ranking still has it, for the topic and reason.
        ranking = parse.get("intent_ranking") or []
        best = next((r for r in ranking if r.get("name") != "nlu_fallback"), None)
        guess = best.get("name") if best else None
    else:
        guess = name
    out: dict[str, Any] = {"text": parse.get("text", ""), "intent": name, "intent_confidence": round(confidence, 4),
                           "topic": topic_of_intent(guess or name)}
    reason = reason_of_intent(guess or "")
    if reason:
        reason_conf = next((r["confidence"] for r in parse.get("intent_ranking") or [] if r.get("name") == guess),
                           confidence)
        out["reason"] = reason
        out["reason_confidence"] = round(float(reason_conf), 4)
    entities = [{"entity": e["entity"], "value": e["value"]} for e in parse.get("entities") or []]
    if entities:
        out["entities"] = entities
    return out


def read_inputs(lines: Iterable[str]) -> Iterator[tuple[int, str | None, str | None]]:
    """(line number, text, error) for each non-empty input line."""
    for number, raw in enumerate(lines, start=1):
        raw = raw.strip()
        if not raw:
            continue
        try:
            item = json.loads(raw)
        except json.JSONDecodeError as exc:
            yield number, None, f"not valid JSON: {exc.msg}"
            continue
        text = item.get("text") if isinstance(item, dict) else None
        if not isinstance(text, str):
            yield number, None, 'expected an object with a string field "text"'
        elif not text.strip():
            yield number, None, "empty text"
        else:
            yield number, text[:MAX_TEXT], None


class Classifier:
    """The trained model's NLU graph, applied to batches of texts."""

    def __init__(self, model_path: Path) -> None:
        from rasa.core.agent import Agent

        from bot.nlu import rasa_speedups

        rasa_speedups.install()  # the same NLU code path as the Rasa server's
        self.agent = Agent.load(str(model_path))

    async def parse_batch(self, texts: list[str]) -> list[dict[str, Any]]:
        from rasa.core.channels.channel import UserMessage
        from rasa.engine.constants import PLACEHOLDER_MESSAGE
        from rasa.shared.nlu.constants import TEXT

        processor = self.agent.processor
        assert processor is not None
        results = processor.graph_runner.run(
            inputs={PLACEHOLDER_MESSAGE: [UserMessage(t) for t in texts]},
            targets=[processor.model_metadata.nlu_target],
        )
        parsed = []
        for message in results[processor.model_metadata.nlu_target]:
            data = {TEXT: "", "intent": {"name": None, "confidence": 0.0}, "entities": []}
            data.update(message.as_dict(only_output_properties=True))
            parsed.append(data)
        return parsed


def classify_stream(classifier: Classifier, lines: Iterable[str], out: IO[str], batch: int = 256) -> int:
    """Write one JSON line per input line, in input order; returns how many were written."""
    written = 0
    pending: list[tuple[int, str | None, str | None]] = []

    def flush() -> None:
        nonlocal written
        texts = [t for _, t, err in pending if err is None and t is not None]
        parsed = iter(asyncio.run(classifier.parse_batch(texts))) if texts else iter(())
        for number, text, error in pending:
            if error is not None:
                row: dict[str, Any] = {"line": number, "error": error}
            else:
                row = label(next(parsed))
                row["text"] = text
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            written += 1
        out.flush()
        pending.clear()

    for item in read_inputs(lines):
        pending.append(item)
        if len(pending) >= batch:
            flush()
    if pending:
        flush()
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "current.tar.gz")
    parser.add_argument("--batch", type=int, default=256)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    # Anything a library prints goes to stderr; only our JSON lines reach the real stdout.
    real_stdout = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):
        classifier = Classifier(args.model)
        count = classify_stream(classifier, sys.stdin, real_stdout, batch=args.batch)
    print(f"classified {count} lines", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
