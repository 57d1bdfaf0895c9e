"""Start the whole assistant (Rasa, action server, web app with its worker) and stop it cleanly.

Used by `make run` and by the end-to-end tests, which start it on other ports and another var dir.
Standard library only, so it can run before anything else is importable.
"""

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV_APP = ROOT / ".venv" / "app" / "bin"
VENV_RASA = ROOT / ".venv" / "rasa" / "bin"


@dataclass(frozen=True)
class Ports:
    rasa: int = 5005
    actions: int = 5055
    web: int = 8000


def latest_model(models_dir: Path = ROOT / "models") -> Path:
    models = sorted(models_dir.glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)
    if not models:
        raise SystemExit("no trained model in models/: run `make model` first")
    return models[-1]


def stack_env(var_dir: Path, ports: Ports, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment shared by every process of one stack."""
    env = dict(os.environ)
    env.update({
        "PYTHONPATH": str(ROOT),
        "BOT_VAR_DIR": str(var_dir),
        "BOT_RASA_URL": f"http://127.0.0.1:{ports.rasa}",
        "BOT_ACTION_URL": f"http://127.0.0.1:{ports.actions}/webhook",
        "BOT_TRACKER_DB": str(var_dir / "rasa_tracker.db"),
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
        "PYTHONUNBUFFERED": "1",
    })
    env.update(extra or {})
    return env


def rasa_token(env: dict[str, str]) -> str:
    """The token protecting Rasa's HTTP API (created once per var dir by the app's settings)."""
    out = subprocess.run([str(VENV_APP / "python"), "-c",
                          "from bot.settings import load_settings; print(load_settings().rasa_token)"],
                         env=env, check=True, capture_output=True, text=True, cwd=ROOT)
    return out.stdout.strip()


def commands(ports: Ports, model: Path, token: str, endpoints: Path) -> dict[str, list[str]]:
    return {
        "actions": [str(VENV_APP / "python"), "-m", "rasa_sdk", "--actions", "actions", "--port", str(ports.actions)],
        "web": [str(VENV_APP / "python"), "-m", "bot", "web", "--port", str(ports.web)],
        "rasa": [str(VENV_RASA / "python"), "-m", "bot.nlu.serve", "run", "--model", str(model), "--port", str(ports.rasa),
                 "--enable-api", f"--auth-token={token}", "--cors", "*", "--credentials",
                 str(ROOT / "credentials.yml"), "--endpoints", str(endpoints)],
    }


def wait_ready(url: str, timeout: float, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} not ready after {timeout:.0f}s")


class Stack:
    """The three processes of one installation; a context manager that always stops them."""

    def __init__(self, var_dir: Path, ports: Ports = Ports(), model: Path | None = None,
                 extra_env: dict[str, str] | None = None, log_dir: Path | None = None) -> None:
        self.var_dir, self.ports = var_dir, ports
        self.model = model or latest_model()
        self.env = stack_env(var_dir, ports, extra_env)
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen] = {}

    @property
    def urls(self) -> dict[str, str]:
        return {"rasa": f"http://127.0.0.1:{self.ports.rasa}", "actions": f"http://127.0.0.1:{self.ports.actions}",
                "web": f"http://127.0.0.1:{self.ports.web}"}

    READY = {"actions": ("/health", 120), "web": ("/healthz", 120), "rasa": ("/", 300)}

    def start(self) -> "Stack":
        self.var_dir.mkdir(parents=True, exist_ok=True)
        self._commands = commands(self.ports, self.model, rasa_token(self.env), ROOT / "endpoints.yml")
        for name in self._commands:
            self._spawn(name)
        for name in self._commands:
            self._wait(name)
        return self

    def _spawn(self, name: str) -> None:
        out = open(self.log_dir / f"{name}.log", "ab") if self.log_dir else None
        # Own process group: Ctrl-C in the terminal reaches us once, and we stop the children.
        self.procs[name] = subprocess.Popen(self._commands[name], cwd=ROOT, env=self.env, stdout=out,
                                            stderr=subprocess.STDOUT if out else None, start_new_session=True)

    def _wait(self, name: str) -> None:
        path, timeout = self.READY[name]
        wait_ready(self.urls[name] + path, timeout, self.procs[name])

    def kill(self, name: str) -> None:
        """Kill one process at once (fault tests)."""
        proc = self.procs[name]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def restart(self, name: str) -> None:
        if self.procs[name].poll() is None:
            self.kill(name)
        self._spawn(name)
        self._wait(name)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs.clear()

    def __enter__(self) -> "Stack":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description="run the after-sales assistant")
    parser.add_argument("--var-dir", type=Path, default=ROOT / "var")
    args = parser.parse_args()
    stack = Stack(args.var_dir, log_dir=None)
    stopping = False

    def _stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            print("\nstopping …", flush=True)
            stack.stop()
            sys.exit(0)

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    print("starting Rasa, the action server and the web app (the first start of Rasa takes a minute) …", flush=True)
    stack.start()
    u = stack.urls
    print(f"""
  shop window (buyers)   {u['web']}/
  JSON API (OpenAPI)     {u['web']}/docs
  Rasa server            {u['rasa']}   (REST: POST /webhooks/rest/webhook, sender "buyer-1")
  action server          {u['actions']}/health
Press Ctrl-C to stop everything.""", flush=True)
    while True:
        for name, proc in stack.procs.items():
            if proc.poll() is not None:
                print(f"{name} exited with {proc.returncode}; stopping the rest", flush=True)
                stack.stop()
                return 1
        time.sleep(1)


if __name__ == "__main__":
    raise SystemExit(main())
