"""The production profile on one machine: `make run-prod`, the fault tests and the load bench use it.

What runs (all on 127.0.0.1):

    nginx (Debian)         LB ports: Rasa 5005, actions 5055, web 8000 (where `make run` puts the processes)
      ├─ 2 Rasa replicas   5105, 5106  tracker store: PostgreSQL `bot_tracker`; lock store: Redis db 1
      ├─ 2 action servers  5155, 5156  (Rasa calls them through the LB, so either may die)
      └─ web app           8100        BOT_EMBEDDED_WORKER=0
    2 workers              `bot worker`, claiming due deadlines with SELECT … FOR UPDATE SKIP LOCKED
    application database   PostgreSQL `bot_app`

Everything that matters is in PostgreSQL (application rows, conversations) or, for the seconds a message is
being handled, in Redis (the conversation lock), so any replica, action server or worker can be killed at any
moment; the runner restarts what died (as a cluster's orchestrator would). The settings are the same BOT_*
variables as everywhere (bot/settings.py) plus the endpoints file written here; bot/ops/deploy/ uses the same
ones for a real cluster.

Runs in the application environment (psycopg for creating the databases); nothing of `bot` is imported
except in `add_load_buyers`, which the bench and the tests call.
"""

from __future__ import annotations

import argparse
import http.client
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV_APP = ROOT / ".venv" / "app" / "bin"
VENV_RASA = ROOT / ".venv" / "rasa" / "bin"

# What a buyer reads when a message could not be handled at all (Rasa replica down, tracker store
# unreachable): the load balancer answers in the bot's place instead of silence or a stack trace.
APOLOGY_MESSAGE = "非常抱歉，系统刚刚开了个小差，没能处理您这条消息。请稍等片刻再发一次；已经办好的售后不会受影响。"

API_APOLOGY = "非常抱歉，系统暂时有点忙，请稍后再试；您的订单和售后都不受影响。"
PAGE_APOLOGY = ("<!doctype html><html lang=zh-CN><meta charset=utf-8><title>请稍后再试</title>"
                "<p style=\"font:16px sans-serif;margin:3em\">非常抱歉，系统暂时有点忙，请稍后刷新页面再试。</p></html>")


@dataclass(frozen=True)
class ProdPorts:
    """The load balancer listens where `make run` puts the processes; replicas sit behind it."""

    rasa: int = 5005
    actions: int = 5055
    web: int = 8000
    rasa_replicas: tuple[int, ...] = (5105, 5106)
    action_replicas: tuple[int, ...] = (5155, 5156)
    web_replicas: tuple[int, ...] = (8100,)

    def shifted(self, offset: int) -> "ProdPorts":
        """The same layout moved by `offset` (tests and bench use their own ports)."""
        return ProdPorts(self.rasa + offset, self.actions + offset, self.web + offset,
                         tuple(p + offset for p in self.rasa_replicas), tuple(p + offset for p in self.action_replicas),
                         tuple(p + offset for p in self.web_replicas))


@dataclass(frozen=True)
class ProdConfig:
    var_dir: Path
    ports: ProdPorts = ProdPorts()
    pg_server: str = "postgresql://postgres@127.0.0.1:5432"  # no database name: one per role below
    app_db: str = "bot_app"
    tracker_db: str = "bot_tracker"
    redis_host: str = "127.0.0.1"
    redis_port: int = 6379
    redis_db: int = 1
    lock_prefix: str = "botprod"  # alphanumeric (Rasa ignores anything else)
    workers: int = 2
    worker_interval_s: float = 2.0
    model: Path | None = None
    with_actions: bool = True  # False: the bench's floor bot (no action server, no web, no workers)
    with_app: bool = True  # web app and workers
    action_timeout_s: int = 60  # an action that takes longer counts as failed (the message is answered by an apology)
    nginx_access_log: bool = True
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def log_dir(self) -> Path:
        return self.var_dir / "logs"

    @property
    def app_database_url(self) -> str:
        return f"{self.pg_server}/{self.app_db}"

    @property
    def tracker_database_url(self) -> str:
        return f"{self.pg_server}/{self.tracker_db}"


# ---------------------------------------------------------------- PostgreSQL


def _pg_parts(pg_server: str) -> dict[str, str | int | None]:
    from urllib.parse import urlsplit

    u = urlsplit(pg_server.replace("postgresql+psycopg://", "postgresql://"))
    return {"host": u.hostname or "127.0.0.1", "port": u.port or 5432, "user": u.username or "postgres",
            "password": u.password}


def _admin_connect(pg_server: str):  # type: ignore[no-untyped-def]
    import psycopg

    p = _pg_parts(pg_server)
    return psycopg.connect(host=p["host"], port=p["port"], user=p["user"], password=p["password"], dbname="postgres",
                           autocommit=True, connect_timeout=5)


def ensure_database(pg_server: str, name: str) -> bool:
    """Create database `name` if it is missing; returns whether it was created."""
    from psycopg import sql

    with _admin_connect(pg_server) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return True


def drop_database(pg_server: str, name: str) -> None:
    from psycopg import sql

    with _admin_connect(pg_server) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(sql.Identifier(name)))
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def set_connections_allowed(pg_server: str, names: list[str], allowed: bool) -> None:
    """Make PostgreSQL refuse (or accept again) new connections to `names`, and cut the open ones."""
    from psycopg import sql

    with _admin_connect(pg_server) as conn:
        for name in names:
            conn.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS {}").format(
                sql.Identifier(name), sql.SQL("true" if allowed else "false")))
            if not allowed:
                conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                             "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))


def drop_lock_keys(cfg: ProdConfig) -> int:
    """Remove the Redis lock keys of this installation's prefix (a replica killed mid-message leaves one)."""
    import redis

    client = redis.Redis(host=cfg.redis_host, port=cfg.redis_port, db=cfg.redis_db, socket_timeout=5)
    keys = list(client.scan_iter(f"{cfg.lock_prefix}:*"))
    if keys:
        client.delete(*keys)
    client.close()
    return len(keys)


# ---------------------------------------------------------------- files under var/


def _secret(var_dir: Path, name: str) -> str:
    path = var_dir / name
    if not path.exists():
        var_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


def prod_env(cfg: ProdConfig) -> dict[str, str]:
    """The BOT_* settings every process of the profile gets (bot/ops/deploy/ sets the same ones)."""
    env = dict(os.environ)
    for noisy in ("BOT_TRACKER_DB", "BOT_TRUST_SENDER_ID", "BOT_EMBEDDED_WORKER"):
        env.pop(noisy, None)
    env.update({
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
        "BOT_PROFILE": "prod",
        "BOT_VAR_DIR": str(cfg.var_dir),
        "BOT_DATABASE_URL": cfg.app_database_url,
        "BOT_RASA_URL": f"http://127.0.0.1:{cfg.ports.rasa}",
        "BOT_ACTION_URL": f"http://127.0.0.1:{cfg.ports.actions}/webhook",
        "BOT_RASA_TOKEN": _secret(cfg.var_dir, "rasa_token"),
        "BOT_SECRET_KEY": _secret(cfg.var_dir, "secret_key"),
        "BOT_INTEGRATION_KEY": _secret(cfg.var_dir, "integration_key"),
        "BOT_EMBEDDED_WORKER": "0",
        "BOT_WORKER_INTERVAL": str(cfg.worker_interval_s),
    })
    env.update(cfg.extra_env)
    return env


def endpoints_yaml(cfg: ProdConfig) -> str:
    pg = _pg_parts(cfg.pg_server)
    lines = ["# Written by bot/ops/prod.py: the production profile's Rasa endpoints (do not edit).", ""]
    if cfg.with_actions:
        # The action server reads the domain from its own copy of domain.yml (actions/common.py).
        lines += ["action_endpoint:", f"  url: http://127.0.0.1:{cfg.ports.actions}/webhook",
                  "  enable_selective_domain: true", ""]
    # The SQL tracker store, made strict (bot/ops/rasa_guard.py): no silent in-memory fallback.
    lines += [
        "tracker_store:", "  type: bot.ops.rasa_guard.StrictSQLTrackerStore", "  dialect: postgresql",
        f"  url: {pg['host']}", f"  port: {pg['port']}",
        f"  db: {cfg.tracker_db}", f"  username: {pg['user']}",
    ]
    if pg["password"]:
        lines.append(f"  password: {pg['password']}")
    # First come, first served per conversation, with leases renewed while a message is handled, so a killed
    # replica's lock is free again within BOT_LOCK_LEASE_S (bot/ops/rasa_lock.py).
    lines += ["", "lock_store:", "  type: bot.ops.rasa_lock.LeaseLockStore", f"  url: {cfg.redis_host}",
              f"  port: {cfg.redis_port}",
              f"  db: {cfg.redis_db}", f"  key_prefix: {cfg.lock_prefix}", ""]
    return "\n".join(lines)


def credentials_yaml() -> str:
    """The repository's credentials.yml (its channels are already the guarded ones of bot/ops/rasa_guard.py)."""
    return "# Written by bot/ops/prod.py from credentials.yml (do not edit).\n" + (ROOT / "credentials.yml").read_text()


def nginx_conf(cfg: ProdConfig) -> str:
    """The local load balancer. Least connections for the HTTP API; sticky for socket.io (ip_hash: its polling
    transport must keep reaching the replica that holds its session) and for a REST conversation (by sender:
    the replica keeps its tracker)."""
    p, var, logs = cfg.ports, cfg.var_dir / "nginx", cfg.log_dir
    user = "user root root;" if os.geteuid() == 0 else ""

    def servers(ports: tuple[int, ...]) -> str:
        return "\n".join(f"        server 127.0.0.1:{port} max_fails=1 fail_timeout=3s;" for port in ports)

    access = (f"access_log {logs}/nginx-access.log timing buffer=64k flush=1s;" if cfg.nginx_access_log
              else "access_log off;")
    api_apology = '{"error": {"code": "unavailable", "message": "%s", "details": {}}}' % API_APOLOGY
    rasa_apology = '[{"recipient_id": "", "text": "%s"}]' % APOLOGY_MESSAGE
    actions_block = f"""
    upstream actions {{
        least_conn;
{servers(p.action_replicas)}
        keepalive 32;
        keepalive_timeout 3s;  # below the servers' own 5 s: never reuse a connection they are closing
    }}
    server {{
        listen 127.0.0.1:{p.actions};
        location / {{
            proxy_pass http://actions;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_read_timeout {cfg.action_timeout_s}s;
            # A refused connection goes to the other action server (nothing ran there). An action server
            # that dies or hangs in the middle of an action is not retried (the action may have written):
            # Rasa sees the error and bot/ops/rasa_guard.py aborts the message with an apology.
            proxy_next_upstream error;
        }}
    }}""" if cfg.with_actions else ""
    web_block = f"""
    upstream web {{
{servers(p.web_replicas)}
        keepalive 16;
        keepalive_timeout 3s;
    }}
    server {{
        listen 127.0.0.1:{p.web};
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        # A failure (e.g. the database refusing connections) reaches people as a polite message.
        proxy_intercept_errors on;
        location / {{
            proxy_pass http://web;
            error_page 500 502 503 504 = @page_apology;
        }}
        location /api/ {{
            proxy_pass http://web;
            error_page 500 502 503 504 = @api_apology;
        }}
        location @api_apology {{
            default_type "application/json; charset=utf-8";
            add_header Retry-After 5 always;
            return 503 '{api_apology}';
        }}
        location @page_apology {{
            default_type "text/html; charset=utf-8";
            add_header Retry-After 5 always;
            return 503 '{PAGE_APOLOGY}';
        }}
    }}""" if cfg.with_app else ""
    return f"""# Written by bot/ops/prod.py for the production profile (do not edit: it is rewritten on start).
{user}
worker_processes 1;
daemon off;
pid {var}/nginx.pid;
error_log {logs}/nginx-error.log warn;
events {{
    worker_connections 4096;
}}
http {{
    client_body_temp_path {var}/client_body;
    proxy_temp_path {var}/proxy;
    fastcgi_temp_path {var}/fastcgi;
    uwsgi_temp_path {var}/uwsgi;
    scgi_temp_path {var}/scgi;
    client_max_body_size 6m;  # evidence photos: 5 MB
    client_body_buffer_size 1m;  # Rasa's calls to the action servers (tracker + domain) stay in memory
    server_tokens off;
    log_format timing '$msec $server_port $request_method $uri $status $request_time '
                      '$upstream_addr $upstream_response_time $request_length $bytes_sent';
    {access}
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      close;
    }}

    upstream rasa {{
        least_conn;
{servers(p.rasa_replicas)}
        keepalive 64;
        keepalive_timeout 3s;
    }}
    # A REST conversation keeps to one replica, by the "sender" of its JSON body (socket.io by ip_hash), so
    # that the tracker the replica kept after the last message serves the next one (bot/ops/rasa_guard.py).
    # Consistent hashing: a replica that fails is skipped, and only its conversations move.
    map $request_body $rest_sender {{
        '~"sender"\\s*:\\s*"(?<sender>[^"]{{1,128}})"' $sender;
        default $request_id;
    }}
    upstream rasa_rest {{
        hash $rest_sender consistent;
{servers(p.rasa_replicas)}
        keepalive 64;
        keepalive_timeout 3s;
    }}
    upstream rasa_socketio {{
        ip_hash;
{servers(p.rasa_replicas)}
    }}
    server {{
        listen 127.0.0.1:{p.rasa};
        proxy_http_version 1.1;
        proxy_set_header Host $http_host;
        location /socket.io/ {{
            proxy_pass http://rasa_socketio;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_read_timeout 1h;
        }}
        location = /webhooks/rest/webhook {{
            proxy_pass http://rasa_rest;
            proxy_set_header Connection "";
            proxy_read_timeout 120s;
            proxy_intercept_errors on;
            error_page 500 502 503 504 = @apology;
        }}
        location / {{
            proxy_pass http://rasa;
            proxy_set_header Connection "";
            proxy_read_timeout 120s;
        }}
        location @apology {{
            default_type "application/json; charset=utf-8";
            add_header Retry-After 2 always;
            return 503 '{rasa_apology}';
        }}
    }}
{actions_block}
{web_block}
}}
"""


# ---------------------------------------------------------------- processes


def latest_model() -> Path:
    models = sorted((ROOT / "models").glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)
    if not models:
        raise SystemExit("no trained model in models/: run `make model` first")
    return models[-1]


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if not found:
        raise SystemExit("nginx not found: run `make nginx` (installs Debian's nginx with apt-get)")
    return found


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status < 500
    except (OSError, http.client.HTTPException):  # not listening yet, or not speaking HTTP yet
        return False


class ProdStack:
    """Every process of the production profile; a context manager that always stops all of them."""

    def __init__(self, cfg: ProdConfig) -> None:
        self.cfg = cfg if cfg.model else replace(cfg, model=latest_model())
        self.env = prod_env(self.cfg)
        self.procs: dict[str, subprocess.Popen] = {}
        self.restarts: dict[str, int] = {}
        self._stopping = False

    # -- what runs
    @property
    def urls(self) -> dict[str, str]:
        p = self.cfg.ports
        return {"rasa": f"http://127.0.0.1:{p.rasa}", "actions": f"http://127.0.0.1:{p.actions}",
                "web": f"http://127.0.0.1:{p.web}"}

    @property
    def token(self) -> str:
        return self.env["BOT_RASA_TOKEN"]

    @property
    def secret_key(self) -> str:
        return self.env["BOT_SECRET_KEY"]

    def commands(self) -> dict[str, list[str]]:
        c, p = self.cfg, self.cfg.ports
        cmds: dict[str, list[str]] = {
            "nginx": [nginx_binary(), "-e", str(c.log_dir / "nginx-error.log"), "-p", str(c.var_dir / "nginx"),
                      "-c", str(c.var_dir / "nginx.conf")],
        }
        for i, port in enumerate(p.rasa_replicas, 1):
            cmds[f"rasa-{i}"] = [str(VENV_RASA / "rasa"), "run", "--model", str(c.model), "-i", "127.0.0.1",
                                 "--port", str(port), "--enable-api", f"--auth-token={self.token}", "--cors", "*",
                                 "--credentials", str(c.var_dir / "credentials.yml"),
                                 "--endpoints", str(c.var_dir / "endpoints.yml")]
        if c.with_actions:
            for i, port in enumerate(p.action_replicas, 1):
                cmds[f"actions-{i}"] = [str(VENV_APP / "python"), "-m", "rasa_sdk", "--actions", "actions",
                                        "--port", str(port), "--quiet"]
        if c.with_app:
            for i, port in enumerate(p.web_replicas, 1):
                cmds[f"web-{i}"] = [str(VENV_APP / "python"), "-m", "bot", "web", "--port", str(port)]
            for i in range(1, c.workers + 1):
                cmds[f"worker-{i}"] = [str(VENV_APP / "python"), "-m", "bot", "worker"]
        return cmds

    def ready_url(self, name: str) -> str | None:
        p = self.cfg.ports
        kind, _, num = name.partition("-")
        if kind == "rasa":
            return f"http://127.0.0.1:{p.rasa_replicas[int(num) - 1]}/"
        if kind == "actions":
            return f"http://127.0.0.1:{p.action_replicas[int(num) - 1]}/health"
        if kind == "web":
            return f"http://127.0.0.1:{p.web_replicas[int(num) - 1]}/healthz"
        return None

    # -- set-up
    def prepare(self) -> None:
        """Databases, migrations, endpoints and nginx config: idempotent, safe to run on every start."""
        c = self.cfg
        for d in (c.var_dir, c.log_dir, c.var_dir / "nginx"):
            d.mkdir(parents=True, exist_ok=True)
        ensure_database(c.pg_server, c.tracker_db)
        (c.var_dir / "endpoints.yml").write_text(endpoints_yaml(c))
        (c.var_dir / "nginx.conf").write_text(nginx_conf(c))
        (c.var_dir / "credentials.yml").write_text(credentials_yaml())
        if c.with_app:
            ensure_database(c.pg_server, c.app_db)
            for command in ("migrate", "seed"):
                out = subprocess.run([str(VENV_APP / "python"), "-m", "bot", command], env=self.env, cwd=ROOT,
                                     capture_output=True, text=True)
                if out.returncode != 0:
                    raise RuntimeError(f"bot {command} failed:\n{out.stdout}\n{out.stderr}")
        test = subprocess.run([nginx_binary(), "-t", "-q", "-e", str(c.log_dir / "nginx-error.log"), "-p",
                               str(c.var_dir / "nginx"), "-c", str(c.var_dir / "nginx.conf")],
                              capture_output=True, text=True)
        if test.returncode != 0:
            raise RuntimeError(f"nginx config rejected: {test.stderr}")

    # -- life cycle
    def spawn(self, name: str) -> subprocess.Popen:
        cmd = self.commands()[name]
        log = open(self.cfg.log_dir / f"{name}.log", "ab")
        # Own process group: Ctrl-C reaches the runner once, and the runner stops the children.
        proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        log.close()
        self.procs[name] = proc
        return proc

    def wait_ready(self, names: list[str] | None = None, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        pending = [n for n in (names or list(self.procs)) if self.ready_url(n)]
        while pending:
            for name in list(pending):
                proc = self.procs[name]
                if proc.poll() is not None:
                    tail = (self.cfg.log_dir / f"{name}.log").read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"{name} exited with {proc.returncode} while starting:\n{tail}")
                if _http_ok(self.ready_url(name) or ""):
                    pending.remove(name)
            if pending and time.monotonic() > deadline:
                raise TimeoutError(f"not ready after {timeout:.0f}s: {', '.join(pending)}")
            time.sleep(0.5)
        # The LB itself answers once nginx is up.
        while not _http_ok(self.urls["rasa"] + "/"):
            if time.monotonic() > deadline:
                raise TimeoutError("the load balancer does not answer")
            time.sleep(0.2)

    def start(self) -> "ProdStack":
        self.prepare()
        for name in self.commands():
            self.spawn(name)
        self.wait_ready()
        return self

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Kill one process (and its children) as a crash would."""
        proc = self.procs[name]
        if proc.poll() is None:
            os.killpg(proc.pid, sig)
            if sig in (signal.SIGKILL, signal.SIGTERM):
                proc.wait(timeout=30)

    def restart(self, name: str, wait: bool = True) -> None:
        proc = self.procs.get(name)
        if proc is not None and proc.poll() is None:
            self.kill(name, signal.SIGTERM)
        self.spawn(name)
        self.restarts[name] = self.restarts.get(name, 0) + 1
        if wait:
            self.wait_ready([name])

    def supervise_once(self) -> list[str]:
        """Restart whatever died (not nginx: without it nothing answers, so the runner stops)."""
        restarted = []
        for name, proc in list(self.procs.items()):
            if proc.poll() is not None and not self._stopping:
                if name == "nginx":
                    raise RuntimeError(f"nginx exited with {proc.returncode}")
                self.restart(name, wait=False)
                restarted.append(name)
        return restarted

    def stop(self) -> None:
        self._stopping = True
        for proc in self.procs.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 20
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()
        self.procs.clear()
        self._stopping = False

    def __enter__(self) -> "ProdStack":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ---------------------------------------------------------------- synthetic buyers (bench, fault tests)

LOAD_ORDER_PREFIX = "9"  # order numbers 9xxxxxxxxxxxxxxxxx: never a demo order


def add_load_buyers(database_url: str, count: int, *, first_id: int = 1000) -> list[int]:
    """Buyers `first_id`… each with one delivered order of one 针织开衫 (¥199), for load and fault runs.
    Idempotent: buyers that exist are kept. Returns the buyer ids."""
    from datetime import datetime, timedelta, timezone

    from sqlalchemy import select

    from bot.persistence.db import make_engine, make_session_factory
    from bot.persistence.models import Buyer, Order, OrderItem, Shop

    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    ids = list(range(first_id, first_id + count))
    now = datetime.now(timezone.utc)
    with sessions() as session, session.begin():
        shop = session.scalar(select(Shop).where(Shop.code == "demo"))
        if shop is None:
            raise RuntimeError("the demo shop is missing: run `bot seed` first")
        existing = set(session.scalars(select(Buyer.id).where(Buyer.id.in_(ids))))
        for buyer_id in ids:
            if buyer_id in existing:
                continue
            session.add(Buyer(id=buyer_id, name=f"压测买家{buyer_id}", phone=f"139{buyer_id:08d}"))
            session.flush()
            order = Order(order_no=f"{LOAD_ORDER_PREFIX}{buyer_id:017d}", shop_id=shop.id, buyer_id=buyer_id,
                          state="received", payment="online", goods_fen=19900, discount_fen=0, freight_fen=0,
                          paid_fen=19900, created_at=now - timedelta(days=4), shipped_at=now - timedelta(days=3),
                          received_at=now - timedelta(days=1), courier="SF", tracking_no=f"SF{buyer_id:013d}")
            session.add(order)
            session.flush()
            session.add(OrderItem(order_id=order.id, sku="KN-03", name="针织开衫", spec="米白 M", unit_price_fen=19900,
                                  quantity=1, home_goods=False))
    if engine.dialect.name == "postgresql":
        # Explicit ids above: move the sequence past them so later inserts do not collide.
        with engine.begin() as conn:
            conn.exec_driver_sql("SELECT setval(pg_get_serial_sequence('buyers', 'id'), "
                                 "(SELECT max(id) FROM buyers))")
    engine.dispose()
    return ids


# ---------------------------------------------------------------- `make run-prod`


def main() -> int:
    parser = argparse.ArgumentParser(description="run the after-sales assistant in the production profile")
    parser.add_argument("--var-dir", type=Path, default=ROOT / "var" / "prod")
    parser.add_argument("--pg", default=os.environ.get("BOT_PG_SERVER", "postgresql://postgres@127.0.0.1:5432"),
                        help="PostgreSQL server URL without a database name")
    parser.add_argument("--redis", default=os.environ.get("BOT_REDIS", "127.0.0.1:6379"), help="host:port")
    parser.add_argument("--offset", type=int, default=0, help="move every port by this much")
    args = parser.parse_args()
    host, _, port = args.redis.partition(":")
    cfg = ProdConfig(var_dir=args.var_dir.resolve(), ports=ProdPorts().shifted(args.offset), pg_server=args.pg,
                     redis_host=host, redis_port=int(port or 6379))
    stack = ProdStack(cfg)

    def _stop(signum: int, _frame: object) -> None:
        print("\nstopping …", flush=True)
        stack.stop()
        sys.exit(0)

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    print("production profile: PostgreSQL databases, nginx, 2 Rasa replicas, 2 action servers, web, "
          f"{cfg.workers} workers (Rasa takes a minute to load) …", flush=True)
    stack.start()
    u, p = stack.urls, cfg.ports
    print(f"""
  shop window (buyers)     {u['web']}/          (nginx → web {', '.join(map(str, p.web_replicas))})
  JSON API (OpenAPI)       {u['web']}/docs
  Rasa (REST, socket.io)   {u['rasa']}          (nginx → {', '.join(map(str, p.rasa_replicas))}; socket.io: ip_hash)
  action servers           {u['actions']}/health   (nginx → {', '.join(map(str, p.action_replicas))})
  app database             {cfg.app_database_url}
  tracker store            {cfg.tracker_database_url}
  lock store               redis://{cfg.redis_host}:{cfg.redis_port}/{cfg.redis_db} (prefix {cfg.lock_prefix})
  logs                     {cfg.log_dir}/
REST needs a signed buyer token in the metadata here (GET /api/me/chat gives one). A process that dies is
restarted. Press Ctrl-C to stop everything.""", flush=True)
    while True:
        for name in stack.supervise_once():
            print(f"{name} exited; restarted it", flush=True)
        time.sleep(1)


if __name__ == "__main__":
    raise SystemExit(main())
