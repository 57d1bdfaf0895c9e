"""One settings object, read from the environment when asked for (never at import time)."""

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    profile: str  # dev | test | prod
    var_dir: Path
    database_url: str
    rasa_url: str
    rasa_token: str
    secret_key: str
    # In dev a REST client may name a demo buyer by sender id ("buyer-3"); prod needs a signed token.
    trust_sender_id: bool
    embedded_worker: bool
    worker_interval_s: float
    default_shop: str
    integration_key: str  # X-Api-Key of the warehouse / courier webhooks

    @property
    def is_production(self) -> bool:
        return self.profile == "prod"


def _secret(var_dir: Path, name: str) -> str:
    """A per-installation secret kept under var/ so every process of one installation agrees."""
    path = var_dir / name
    if not path.exists():
        var_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
    return path.read_text().strip()


def load_settings() -> Settings:
    """Settings from BOT_* environment variables, with development defaults."""
    env = os.environ
    var_dir = Path(env.get("BOT_VAR_DIR", ROOT / "var")).resolve()
    profile = env.get("BOT_PROFILE", "dev")
    return Settings(
        profile=profile,
        var_dir=var_dir,
        database_url=env.get("BOT_DATABASE_URL", f"sqlite:///{var_dir / 'app.db'}"),
        rasa_url=env.get("BOT_RASA_URL", "http://127.0.0.1:5005"),
        rasa_token=env.get("BOT_RASA_TOKEN") or _secret(var_dir, "rasa_token"),
        secret_key=env.get("BOT_SECRET_KEY") or _secret(var_dir, "secret_key"),
        trust_sender_id=env.get("BOT_TRUST_SENDER_ID", "0" if profile == "prod" else "1") == "1",
        embedded_worker=env.get("BOT_EMBEDDED_WORKER", "0" if profile == "prod" else "1") == "1",
        worker_interval_s=float(env.get("BOT_WORKER_INTERVAL", "2")),
        default_shop=env.get("BOT_DEFAULT_SHOP", "demo"),
        integration_key=env.get("BOT_INTEGRATION_KEY") or _secret(var_dir, "integration_key"),
    )
