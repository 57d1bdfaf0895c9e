"""The batch classifier: 10,000 JSON lines in, one JSON line out per input, in order, logs off stdout."""

import json
import os
import subprocess
import sys
from pathlib import Path

from bot.nlu.topics import REASON_CODES, TOPICS

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ["衣服穿了一次就开线了，我要退货", "颜色不喜欢", "我买的M你发了L", "运费谁出", "退款到哪了",
           "转人工", "有人让我提供验证码退款", "你好", "尺码没问题，就是颜色跟图片差太多", "不是质量问题，就是不喜欢"]


def test_ten_thousand_lines_in_order_with_errors_in_place():
    lines = []
    for n in range(10_000):
        if n % 1000 == 999:
            lines.append("this is not json")
        elif n % 1000 == 998:
            lines.append(json.dumps({"content": "no text field"}))
        else:
            lines.append(json.dumps({"text": f"{SAMPLES[n % len(SAMPLES)]} #{n}"}, ensure_ascii=False))
    result = subprocess.run([sys.executable, "-m", "bot.nlu.classify"], input="\n".join(lines) + "\n",
                            capture_output=True, text=True, cwd=ROOT, timeout=900,
                            env={**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-2000:]
    out = [json.loads(line) for line in result.stdout.splitlines()]  # every stdout line is JSON
    assert len(out) == 10_000
    for n, row in enumerate(out):
        if n % 1000 in (998, 999):
            assert row["line"] == n + 1 and row["error"]
            continue
        assert row["text"].endswith(f"#{n}")
        assert row["topic"] in TOPICS and 0.0 <= row["intent_confidence"] <= 1.0
        if "reason" in row:
            assert row["reason"] in REASON_CODES
    by_text = {row["text"].rsplit(" #", 1)[0]: row for row in out[:20] if "text" in row}
    assert by_text["衣服穿了一次就开线了，我要退货"]["reason"] == "quality"
    assert by_text["颜色不喜欢"]["reason"] == "dislike"
    assert by_text["我买的M你发了L"]["reason"] == "wrong_item"
    assert by_text["运费谁出"]["topic"] == "shipping_fee" and "reason" not in by_text["运费谁出"]
    assert by_text["有人让我提供验证码退款"]["topic"] == "scam_report"
