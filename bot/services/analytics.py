"""Return-reason analytics for the console: reasons by product and by ISO week, the share of 尺码 and 色差
per product (a listing whose size chart or photos drive returns stands out), and follow-up ratings."""

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import inspect, select, text

from bot.clock import local
from bot.nlu.topics import REASON_CODES
from bot.persistence.models import AfterSale, AfterSaleItem, OrderItem
from bot.services.context import Services

# A listing stands out when at least this many of its returns name size / colour, and they are at least
# this share of its returns: then its size chart or its photos, not the buyers, are the likely cause.
MIN_RETURNS = 3
SHARE_THRESHOLD = 0.4
LOW_RATING = 2


@dataclass(frozen=True)
class ProductReasons:
    sku: str
    name: str
    total: int
    by_reason: dict[str, int]


@dataclass(frozen=True)
class WeekReasons:
    week: str  # ISO week in China time, "2026-W48"
    total: int
    by_reason: dict[str, int]


@dataclass(frozen=True)
class FitShare:
    """How much of a product's returns are about size (尺码) and colour difference (色差)."""

    sku: str
    name: str
    total: int
    size: int
    color: int
    flags: tuple[str, ...]  # "size" and/or "color" when that share stands out

    @property
    def size_share(self) -> float:
        return self.size / self.total if self.total else 0.0

    @property
    def color_share(self) -> float:
        return self.color / self.total if self.total else 0.0


@dataclass(frozen=True)
class Ratings:
    available: bool  # False until the follow_ups table exists
    rated: int = 0
    average: float | None = None
    histogram: dict[int, int] = field(default_factory=lambda: {n: 0 for n in range(1, 6)})
    low: list[dict] = field(default_factory=list)  # rating <= LOW_RATING: request id, rating, when


@dataclass(frozen=True)
class Report:
    products: list[ProductReasons]
    weeks: list[WeekReasons]
    fit: list[FitShare]
    ratings: Ratings
    reasons: tuple[str, ...] = REASON_CODES


def iso_week(at: datetime) -> str:
    year, week, _ = local(at).isocalendar()
    return f"{year}-W{week:02d}"


def _returned_lines(svc: Services, since: datetime | None) -> list[tuple[int, str, datetime, str, str]]:
    """(request id, reason, created at, sku, product name), one row per product of a request."""
    query = (select(AfterSale.id, AfterSale.reason, AfterSale.created_at, OrderItem.sku, OrderItem.name)
             .join(AfterSaleItem, AfterSaleItem.after_sale_id == AfterSale.id)
             .join(OrderItem, OrderItem.id == AfterSaleItem.order_item_id)
             .order_by(AfterSale.id, OrderItem.id))
    if since is not None:
        query = query.where(AfterSale.created_at >= since)
    with svc.sessions() as session:
        rows = session.execute(query).all()
    seen: set[tuple[int, str]] = set()
    out = []
    for request_id, reason, created_at, sku, name in rows:
        if (request_id, sku) not in seen:  # two lines of one product in a request count once
            seen.add((request_id, sku))
            out.append((request_id, reason, created_at, sku, name))
    return out


def reasons_by_product(svc: Services, since: datetime | None = None) -> list[ProductReasons]:
    """Per product (SKU), how many requests gave each reason; most returned first."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    names: dict[str, str] = {}
    for _, reason, _, sku, name in _returned_lines(svc, since):
        counts[sku][reason] += 1
        names[sku] = name
    rows = [ProductReasons(sku, names[sku], sum(c.values()), {r: c[r] for r in REASON_CODES if c[r]})
            for sku, c in counts.items()]
    return sorted(rows, key=lambda p: (-p.total, p.sku))


def reasons_by_week(svc: Services, since: datetime | None = None) -> list[WeekReasons]:
    """Per ISO week (China time) of submission, how many requests gave each reason; oldest week first."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    with svc.sessions() as session:
        query = select(AfterSale.reason, AfterSale.created_at)
        if since is not None:
            query = query.where(AfterSale.created_at >= since)
        for reason, created_at in session.execute(query):
            counts[iso_week(created_at)][reason] += 1
    return [WeekReasons(week, sum(c.values()), {r: c[r] for r in REASON_CODES if c[r]})
            for week, c in sorted(counts.items())]


def fit_shares(svc: Services, since: datetime | None = None, *, min_returns: int = MIN_RETURNS,
               threshold: float = SHARE_THRESHOLD) -> list[FitShare]:
    """Per product, the share of size and colour-difference returns; flagged ones first."""
    out = []
    for p in reasons_by_product(svc, since):
        size, color = p.by_reason.get("size", 0), p.by_reason.get("color_difference", 0)
        flags = tuple(kind for kind, n in (("size", size), ("color", color))
                      if n >= min_returns and n / p.total >= threshold)
        out.append(FitShare(p.sku, p.name, p.total, size, color, flags))
    return sorted(out, key=lambda f: (not f.flags, -(f.size + f.color) / f.total if f.total else 0, f.sku))


def ratings(svc: Services) -> Ratings:
    """Follow-up ratings (回访评分) from the follow_ups table, if this installation has it yet."""
    engine = svc.sessions.kw["bind"]
    if not inspect(engine).has_table("follow_ups"):
        return Ratings(available=False)
    with svc.sessions() as session:
        rows = session.execute(text(
            "SELECT after_sale_id, rating, rated_at FROM follow_ups WHERE rating IS NOT NULL "
            "ORDER BY rated_at, after_sale_id")).all()
    histogram = {n: 0 for n in range(1, 6)}
    low = []
    for after_sale_id, rating, rated_at in rows:
        rating = int(rating)
        if rating in histogram:
            histogram[rating] += 1
        if rating <= LOW_RATING:
            low.append({"after_sale_id": after_sale_id, "rating": rating, "rated_at": rated_at})
    rated = sum(histogram.values())
    average = round(sum(n * c for n, c in histogram.items()) / rated, 2) if rated else None
    return Ratings(available=True, rated=rated, average=average, histogram=histogram, low=low)


def report(svc: Services, since: datetime | None = None) -> Report:
    """Everything the analytics page shows."""
    return Report(reasons_by_product(svc, since), reasons_by_week(svc, since), fit_shares(svc, since), ratings(svc))
