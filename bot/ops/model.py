"""Train the Rasa model only when what it is made from changed (runs in the Rasa environment)."""

import argparse
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "models"
MODEL = MODELS / "current.tar.gz"
STAMP = MODELS / "current.fingerprint"

# Everything the trained model depends on.
INPUTS = ("domain.yml", "config.yml", "data", "bot/nlu", "bot/domain/couriers.py", "requirements/rasa.lock")


def fingerprint(root: Path = ROOT) -> str:
    digest = hashlib.sha256()
    for name in INPUTS:
        path = root / name
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            if "__pycache__" in file.parts or file.suffix == ".pyc":
                continue
            digest.update(str(file.relative_to(root)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()


def ensure(quiet: bool = False) -> Path:
    """The current model, trained first if it is missing or stale."""
    wanted = fingerprint()
    if MODEL.exists() and STAMP.exists() and STAMP.read_text().strip() == wanted:
        if not quiet:
            print(f"model up to date: {MODEL.relative_to(ROOT)}")
        return MODEL
    MODELS.mkdir(exist_ok=True)
    print("training the Rasa model (data, domain or config changed) …", file=sys.stderr if quiet else sys.stdout,
          flush=True)
    started = time.monotonic()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    out = subprocess.DEVNULL if quiet else None
    subprocess.run([sys.executable, "-m", "rasa", "train", "--fixed-model-name", "current", "--out", str(MODELS),
                    "--force"], cwd=ROOT, env=env, check=True, stdout=out)
    STAMP.write_text(wanted)
    print(f"model trained in {time.monotonic() - started:.0f}s", file=sys.stderr if quiet else sys.stdout)
    return MODEL


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["ensure", "fingerprint"])
    parser.add_argument("--quiet", action="store_true", help="training output to stderr only")
    args = parser.parse_args()
    if args.command == "fingerprint":
        print(fingerprint())
    else:
        ensure(args.quiet)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
