"""Command line of the application environment: migrate, seed, web, worker, clock."""

import argparse
import logging
import sys

from bot.logging_setup import install_pii_masking
from bot.settings import load_settings


def _services():  # type: ignore[no-untyped-def]
    from bot.services.bootstrap import build_services

    return build_services(load_settings())


def cmd_migrate(_: argparse.Namespace) -> int:
    from bot.persistence.migrate import upgrade

    settings = load_settings()
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    print(f"database migrated: {settings.database_url.split('@')[-1]}")
    return 0


def cmd_seed(_: argparse.Namespace) -> int:
    from bot.services.seed import seed_demo

    print("demo shop seeded" if seed_demo(_services()) else "demo shop already seeded")
    return 0


def cmd_clock(args: argparse.Namespace) -> int:
    from bot.clock import format_local, parse_duration
    from bot.domain.errors import DomainError
    from bot.persistence.db import DbOffsetClock

    settings = load_settings()
    clock = DbOffsetClock(_services().sessions)
    try:
        if args.action == "advance":
            now = clock.advance(parse_duration(args.duration), production=settings.is_production)
        else:
            now = clock.now()
    except (ValueError, DomainError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"application clock: {now.isoformat()} ({format_local(now)} 北京时间), offset {clock.offset()}")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from bot.worker import run_forever, sweep_once

    svc = _services()
    if args.once:
        print(sweep_once(svc, load_settings()))
        return 0
    run_forever(svc, load_settings())
    return 0


def cmd_web(args: argparse.Namespace) -> int:
    import uvicorn

    # No websockets here (the chat talks to Rasa); the SDK pins an old websockets uvicorn cannot use.
    uvicorn.run("bot.web.app:create_app", factory=True, host=args.host, port=args.port, log_level="info", ws="none")
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    install_pii_masking()  # phone numbers, cards and addresses never reach a log in clear
    parser = argparse.ArgumentParser(prog="bot", description="after-sales assistant: application commands")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="bring the database schema up to date").set_defaults(func=cmd_migrate)
    sub.add_parser("seed", help="insert the demo shop (idempotent)").set_defaults(func=cmd_seed)
    clock = sub.add_parser("clock", help="show or move the application clock (not in production)")
    clock.add_argument("action", choices=["show", "advance"])
    clock.add_argument("duration", nargs="?", default="0s", help="e.g. 72h, 3d, 1d12h")
    clock.set_defaults(func=cmd_clock)
    worker = sub.add_parser("worker", help="sweep due deadlines and deliver buyer notices")
    worker.add_argument("--once", action="store_true", help="one sweep, then exit")
    worker.set_defaults(func=cmd_worker)
    web = sub.add_parser("web", help="serve the shop window, console and JSON API")
    web.add_argument("--host", default="127.0.0.1")
    web.add_argument("--port", type=int, default=8000)
    web.set_defaults(func=cmd_web)
    args = parser.parse_args(argv)
    return int(args.func(args))
