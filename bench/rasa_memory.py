"""Peak memory of the Rasa server (and the other processes) after a batch of whole conversations.

Starts the real stack on its own ports and a throw-away var dir, runs N refund conversations over
the REST channel, then reads each process's peak resident set (VmHWM) from /proc. Prints figures;
the baseline in the same run is the Rasa process right after it loaded the model (before any talk).
Usage: .venv/app/bin/python bench/rasa_memory.py [--conversations 50]
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.ops.stack import VENV_APP, Ports, Stack, stack_env  # noqa: E402

PORTS = Ports(rasa=47005, actions=47055, web=47800)


def rss_kb(pid: int, field: str) -> int:
    """VmRSS / VmHWM of a process and its children (Rasa runs in one process)."""
    total = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            total += int(line.split()[1])
    return total


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--conversations", type=int, default=50)
    args = parser.parse_args()
    var = Path(tempfile.mkdtemp(prefix="bench-mem-"))
    env = stack_env(var, PORTS)
    for command in ("migrate", "seed"):
        subprocess.run([str(VENV_APP / "python"), "-m", "bot", command], env=env, cwd=ROOT, check=True,
                       capture_output=True)
    with Stack(var, PORTS) as stack:
        rasa_pid = stack.procs["rasa"].pid
        loaded = rss_kb(rasa_pid, "VmRSS")
        url = stack.urls["rasa"] + "/webhooks/rest/webhook"
        started = time.monotonic()
        messages = 0
        for n in range(args.conversations):
            sender = f"buyer-1-bench{n}"  # buyer 1, a conversation of its own
            for text in ("你好", "衣服开线了想退货", "运费谁出", "退款到哪了", "谢谢"):
                requests.post(url, json={"sender": sender, "message": text}, timeout=60).raise_for_status()
                messages += 1
        elapsed = time.monotonic() - started
        peak = {name: rss_kb(proc.pid, "VmHWM") for name, proc in stack.procs.items()}
    print(f"conversations: {args.conversations}, messages: {messages}, {messages / elapsed:.1f} msg/s sequential")
    print(f"rasa server RSS after loading the model (baseline): {loaded / 1024:.0f} MiB")
    for name, kb in peak.items():
        print(f"peak RSS {name}: {kb / 1024:.0f} MiB")
    print(f"rasa peak / baseline: {peak['rasa'] / loaded:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
