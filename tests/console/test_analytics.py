"""Return-reason analytics on real requests: by product, by ISO week, size/colour shares, ratings."""

from datetime import datetime, timedelta, timezone
from itertools import count

from sqlalchemy import text

from bot.domain.workflow import Role
from bot.persistence.models import Order, OrderItem, Shop
from bot.services import after_sales
from bot.services.after_sales import Actor
from bot.services.analytics import fit_shares, iso_week, ratings, reasons_by_product, reasons_by_week, report

_numbers = count(1)
LI = Actor("staff:li", Role.REVIEWER)
ZHOU = Actor("staff:zhou", Role.SUPERVISOR)


def given_return(svc, *, sku: str, name: str, reason: str, buyer_id: int = 2) -> int:
    """A delivered order of one product (received yesterday) and a request for it with `reason`."""
    now = svc.clock.now()
    with svc.sessions() as session, session.begin():
        shop = session.query(Shop).filter_by(code="demo").one()
        order = Order(order_no=f"2026990000{next(_numbers):08d}", shop_id=shop.id, buyer_id=buyer_id, state="received",
                      payment="online", goods_fen=9900, discount_fen=0, freight_fen=0, paid_fen=9900,
                      created_at=now - timedelta(days=3), shipped_at=now - timedelta(days=2),
                      received_at=now - timedelta(days=1))
        session.add(order)
        session.flush()
        session.add(OrderItem(order_id=order.id, sku=sku, name=name, spec="M", unit_price_fen=9900, quantity=1))
        order_no = order.order_no
    return after_sales.submit(svc, buyer_id=buyer_id, order_no=order_no, reason=reason, resolution="return").id


def test_reasons_by_product_and_by_week(sqlite_svc, clock):
    given_return(sqlite_svc, sku="DR-01", name="碎花裙", reason="size")
    given_return(sqlite_svc, sku="DR-01", name="碎花裙", reason="quality")
    given_return(sqlite_svc, sku="TS-02", name="T恤", reason="dislike")
    first_week = iso_week(clock.now())
    clock.advance(days=7)
    given_return(sqlite_svc, sku="DR-01", name="碎花裙", reason="size")
    second_week = iso_week(clock.now())

    products = reasons_by_product(sqlite_svc)
    assert [(p.sku, p.total, p.by_reason) for p in products] == [
        ("DR-01", 3, {"quality": 1, "size": 2}), ("TS-02", 1, {"dislike": 1})]
    weeks = reasons_by_week(sqlite_svc)
    assert [(w.week, w.total, w.by_reason) for w in weeks] == [
        (first_week, 3, {"quality": 1, "size": 1, "dislike": 1}), (second_week, 1, {"size": 1})]
    assert first_week != second_week and first_week.startswith("2026-W")


def test_iso_week_is_counted_in_china_time():
    # Sunday 20:00 UTC is already Monday in Shanghai: the next ISO week.
    assert iso_week(datetime(2026, 11, 29, 20, 0, tzinfo=timezone.utc)) == "2026-W49"
    assert iso_week(datetime(2026, 11, 29, 15, 0, tzinfo=timezone.utc)) == "2026-W48"


def test_a_listing_whose_size_chart_or_photos_drive_returns_stands_out(sqlite_svc):
    for _ in range(3):
        given_return(sqlite_svc, sku="JK-09", name="短款夹克", reason="size")
    given_return(sqlite_svc, sku="JK-09", name="短款夹克", reason="quality")
    for _ in range(3):
        given_return(sqlite_svc, sku="SW-03", name="毛衣", reason="color_difference")
    for reason in ("quality", "dislike", "wrong_item", "size"):
        given_return(sqlite_svc, sku="PT-01", name="长裤", reason=reason)

    shares = {f.sku: f for f in fit_shares(sqlite_svc)}
    assert shares["JK-09"].flags == ("size",) and shares["JK-09"].size_share == 0.75
    assert shares["SW-03"].flags == ("color",) and shares["SW-03"].color_share == 1.0
    assert shares["PT-01"].flags == () and shares["PT-01"].size_share == 0.25
    assert [f.sku for f in fit_shares(sqlite_svc)][-1] == "PT-01"  # the ones that stand out come first


def test_two_returns_are_not_yet_a_pattern(sqlite_svc):
    for _ in range(2):
        given_return(sqlite_svc, sku="HT-01", name="帽子", reason="size")
    assert fit_shares(sqlite_svc)[0].flags == ()


def refunded(svc, request_id: int) -> None:
    after_sales.act(svc, request_id, "approve_return", actor=LI)
    with svc.sessions() as session:
        buyer_id = session.execute(text("SELECT buyer_id FROM after_sales WHERE id = :id"),
                                   {"id": request_id}).scalar_one()
    after_sales.ship_back(svc, request_id, buyer_id=buyer_id, tracking_no="SF1234567890123")
    for action, actor in (("confirm_receipt", LI), ("check_online", LI), ("pay_original_route", ZHOU)):
        after_sales.act(svc, request_id, action, actor=actor)


def test_follow_up_ratings_from_the_follow_ups_table(sqlite_svc, clock):
    rated = {}
    for rating in (5, 4, 1):
        request_id = given_return(sqlite_svc, sku="KN-03", name="针织开衫", reason="quality")
        refunded(sqlite_svc, request_id)
        rated[request_id] = rating
    unrated = given_return(sqlite_svc, sku="KN-03", name="针织开衫", reason="quality")
    refunded(sqlite_svc, unrated)
    with sqlite_svc.sessions() as session, session.begin():
        for request_id, rating in rated.items():
            done = session.execute(text("UPDATE follow_ups SET rating = :r, rated_at = :t WHERE after_sale_id = :id"),
                                   {"r": rating, "t": clock.now().replace(tzinfo=None), "id": request_id})
            assert done.rowcount == 1  # a refund queued exactly one visit

    result = ratings(sqlite_svc)
    assert result.available and result.rated == 3
    assert result.histogram == {1: 1, 2: 0, 3: 0, 4: 1, 5: 1}
    assert result.average == 3.33
    low_request = next(r for r, n in rated.items() if n == 1)
    assert [(r["after_sale_id"], r["rating"]) for r in result.low] == [(low_request, 1)]


def test_without_a_follow_ups_table_ratings_are_simply_not_available(sqlite_svc):
    with sqlite_svc.sessions() as session, session.begin():
        session.execute(text("DROP TABLE IF EXISTS follow_ups"))
    given_return(sqlite_svc, sku="KN-03", name="针织开衫", reason="size")
    full = report(sqlite_svc)
    assert full.ratings.available is False and full.ratings.rated == 0
    assert full.products[0].by_reason == {"size": 1}
