"""Browser tests: Playwright (Python) driving Debian's Chromium against the real stack of tests/e2e.

Screenshots of every step go to tests/artifacts/browser/<test>/ (or $BOT_TEST_ARTIFACTS/browser/).
"""

import os
import re
import struct
import subprocess
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from itertools import count
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright
from sqlalchemy import select

from bot.ops.stack import ROOT, VENV_APP, Stack
from bot.persistence.db import DbOffsetClock, make_engine, make_session_factory
from bot.persistence.models import AppClock, Buyer, Order, OrderItem, Shop

CHROMIUM = os.environ.get("BOT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(os.environ.get("BOT_TEST_ARTIFACTS", ROOT / "tests" / "artifacts")) / "browser"

# The `stack` fixture is the session-wide one of tests/conftest.py, shared with tests/e2e.


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    expect.set_options(timeout=30_000)  # the bot's first answers take a few seconds on a cold model
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def new_context(browser: Browser) -> Iterator:
    """Open browser contexts (one per person: own cookies), all closed after the test."""
    opened: list[BrowserContext] = []

    def open_one() -> BrowserContext:
        context = browser.new_context(viewport={"width": 1440, "height": 1000}, locale="zh-CN",
                                      timezone_id="Asia/Shanghai")
        context.set_default_timeout(30_000)
        opened.append(context)
        return context

    yield open_one
    for context in opened:
        context.close()


class Shots:
    """Numbered screenshots of one test's steps."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.n = count(1)
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.png"):
            old.unlink()

    def __call__(self, page: Page, step: str) -> Path:
        path = self.folder / f"{next(self.n):02d}-{step}.png"
        page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def shot(request: pytest.FixtureRequest) -> Shots:
    return Shots(ARTIFACTS / re.sub(r"[^\w-]+", "_", request.node.name))


# ---------------------------------------------------------------- data in the stack's database

_orders = count(1)


@dataclass(frozen=True)
class DemoBuyer:
    id: int
    name: str
    order_no: str

    @property
    def sender(self) -> str:
        return f"buyer-{self.id}"


def sessions_of(stack: Stack):  # type: ignore[no-untyped-def]
    return make_session_factory(make_engine(f"sqlite:///{stack.var_dir / 'app.db'}"))


def given_buyer(stack: Stack, name: str, *, item: tuple[str, str, str, int], payment: str = "online") -> DemoBuyer:
    """A buyer of the demo shop with one order received yesterday (by the application's clock)."""
    sessions = sessions_of(stack)
    now = DbOffsetClock(sessions).now()
    sku, item_name, spec, price = item
    with sessions() as session, session.begin():
        shop = session.scalar(select(Shop).where(Shop.code == "demo"))
        buyer = Buyer(name=name, phone="13600000000")
        session.add(buyer)
        session.flush()
        order = Order(order_no=f"2026112099{buyer.id:04d}{next(_orders):04d}", shop_id=shop.id, buyer_id=buyer.id,
                      state="received", payment=payment, goods_fen=price, discount_fen=0, freight_fen=0,
                      paid_fen=price, cod_collected=payment == "cod", created_at=now - timedelta(days=3),
                      shipped_at=now - timedelta(days=2), received_at=now - timedelta(days=1), courier="SF",
                      tracking_no="SF1000000000001")
        session.add(order)
        session.flush()
        session.add(OrderItem(order_id=order.id, sku=sku, name=item_name, spec=spec, unit_price_fen=price, quantity=1))
        return DemoBuyer(buyer.id, name, order.order_no)


def latest_request(stack: Stack, buyer_id: int) -> int:
    with sessions_of(stack)() as session:
        from bot.persistence.models import AfterSale

        found = session.scalar(select(AfterSale.id).where(AfterSale.buyer_id == buyer_id).order_by(AfterSale.id.desc()))
        assert found is not None, f"buyer {buyer_id} has no after-sales request"
        return found


@pytest.fixture
def restore_clock(stack: Stack) -> Iterator[None]:
    """Tests that move the application clock put it back, so later tests compare with real time."""
    sessions = sessions_of(stack)
    before = DbOffsetClock(sessions).offset().total_seconds()
    yield
    with sessions() as session, session.begin():
        row = session.get(AppClock, 1)
        if row is not None:
            row.offset_seconds = before


def advance_clock(stack: Stack, duration: str) -> str:
    """`python -m bot clock advance <duration>` with the stack's environment, as an operator would."""
    done = subprocess.run([str(VENV_APP / "python"), "-m", "bot", "clock", "advance", duration], env=stack.env,
                          cwd=ROOT, check=True, capture_output=True, text=True, timeout=60)
    return done.stdout.strip()


# ---------------------------------------------------------------- HTTP helpers (staff API, buyer API)


def staff_token(stack: Stack, username: str) -> str:
    response = requests.post(f"{stack.urls['web']}/api/staff/token",
                             json={"username": username, "password": f"demo-{username}"}, timeout=10)
    response.raise_for_status()
    return response.json()["token"]


def staff_act(stack: Stack, username: str, request_id: int, action: str, reason: str | None = None) -> dict:
    response = requests.post(f"{stack.urls['web']}/api/staff/requests/{request_id}/actions",
                             headers={"Authorization": f"Bearer {staff_token(stack, username)}"},
                             json={"action": action, "reason": reason}, timeout=15)
    assert response.status_code == 200, response.text
    return response.json()


def staff_view(stack: Stack, request_id: int) -> dict:
    response = requests.get(f"{stack.urls['web']}/api/staff/requests/{request_id}",
                            headers={"Authorization": f"Bearer {staff_token(stack, 'zhou')}"}, timeout=15)
    response.raise_for_status()
    return response.json()


def buyer_session(stack: Stack, buyer_id: int) -> requests.Session:
    web = requests.Session()
    web.post(f"{stack.urls['web']}/signin/{buyer_id}", timeout=10).raise_for_status()
    return web


# ---------------------------------------------------------------- a real photo


def seam_photo_png(width: int = 160, height: int = 120) -> bytes:
    """A small real PNG: beige knit with a red open seam, so the console shows a picture, not a broken icon."""
    rows = []
    for y in range(height):
        row = bytearray([0])  # filter: none
        for x in range(width):
            on_seam = abs(x - width // 2 - (y % 12 - 6) // 3) <= 1 and height // 5 < y < height * 4 // 5
            knit = 232 - 14 * ((x // 4 + y // 4) % 2)
            row += bytes((200, 40, 40) if on_seam else (knit, knit - 12, knit - 34))
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"".join(rows)))
            + chunk(b"IEND", b""))
