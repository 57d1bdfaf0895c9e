"""Tables of the application database (SQLAlchemy 2). Money is integer fen, time is UTC."""

from datetime import datetime, timezone

from sqlalchemy import (
    JSON, BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, LargeBinary, String, Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware UTC datetimes; SQLite gives them back naive, so put the zone back on read."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        # Always store UTC: SQLite keeps no zone, so a China-time value would come back 8 hours off.
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc) if value is not None else None


class Base(DeclarativeBase):
    pass


class Shop(Base):
    __tablename__ = "shops"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    return_address: Mapped[str] = mapped_column(String(300), default="")


class Buyer(Base):
    __tablename__ = "buyers"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(60))
    phone: Mapped[str] = mapped_column(String(20))
    follow_up_opt_out: Mapped[bool] = mapped_column(Boolean, default=False)


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    order_no: Mapped[str] = mapped_column(String(24), unique=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id"))
    buyer_id: Mapped[int] = mapped_column(ForeignKey("buyers.id"), index=True)
    # unconfirmed | confirmed | shipped | received | completed | cancelled
    state: Mapped[str] = mapped_column(String(20))
    payment: Mapped[str] = mapped_column(String(10))  # online | cod
    goods_fen: Mapped[int] = mapped_column(Integer)
    discount_fen: Mapped[int] = mapped_column(Integer, default=0)
    freight_fen: Mapped[int] = mapped_column(Integer, default=0)
    paid_fen: Mapped[int] = mapped_column(Integer)  # goods - discount + freight
    cod_collected: Mapped[bool] = mapped_column(Boolean, default=False)
    courier: Mapped[str | None] = mapped_column(String(10), nullable=True)
    tracking_no: Mapped[str | None] = mapped_column(String(30), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    shipped_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    received_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    items: Mapped[list["OrderItem"]] = relationship(back_populates="order", order_by="OrderItem.id")
    shop: Mapped[Shop] = relationship()
    buyer: Mapped[Buyer] = relationship()


class OrderItem(Base):
    __tablename__ = "order_items"
    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    sku: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(100))
    spec: Mapped[str] = mapped_column(String(100), default="")
    unit_price_fen: Mapped[int] = mapped_column(Integer)
    quantity: Mapped[int] = mapped_column(Integer)
    home_goods: Mapped[bool] = mapped_column(Boolean, default=False)  # 居家馆
    order: Mapped[Order] = relationship(back_populates="items")


class AfterSale(Base):
    __tablename__ = "after_sales"
    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    buyer_id: Mapped[int] = mapped_column(ForeignKey("buyers.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(30), index=True)
    reason: Mapped[str] = mapped_column(String(30))
    reason_confidence: Mapped[float | None] = mapped_column(nullable=True)
    earlier_reasons: Mapped[list] = mapped_column(JSON, default=list)
    buyer_words: Mapped[str] = mapped_column(Text, default="")
    refund_fen: Mapped[int] = mapped_column(Integer)
    freight_refund_fen: Mapped[int] = mapped_column(Integer, default=0)
    return_freight_payer: Mapped[str] = mapped_column(String(10))
    evidence_required: Mapped[bool] = mapped_column(Boolean, default=False)
    rule_id: Mapped[str] = mapped_column(String(80))
    refund_route: Mapped[str] = mapped_column(String(20))  # original | alipay | bank | none
    refund_account: Mapped[str | None] = mapped_column(String(60), nullable=True)
    preset: Mapped[str] = mapped_column(String(20))
    express_refund: Mapped[bool] = mapped_column(Boolean, default=False)
    phone_call_task: Mapped[bool] = mapped_column(Boolean, default=False)
    last_reason_note: Mapped[str | None] = mapped_column(Text, nullable=True)  # rejection / close reason
    approved_by: Mapped[str | None] = mapped_column(String(60), nullable=True)
    return_courier: Mapped[str | None] = mapped_column(String(10), nullable=True)
    return_tracking_no: Mapped[str | None] = mapped_column(String(30), nullable=True)
    deadline_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    deadline_kind: Mapped[str | None] = mapped_column(String(40), nullable=True)
    escalation_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    items: Mapped[list["AfterSaleItem"]] = relationship(back_populates="after_sale", order_by="AfterSaleItem.id")
    order: Mapped[Order] = relationship()

    # Two agents writing the same row: the second UPDATE finds a newer version and fails.
    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (Index("ix_after_sales_due", "deadline_at"),)


class AfterSaleItem(Base):
    __tablename__ = "after_sale_items"
    id: Mapped[int] = mapped_column(primary_key=True)
    after_sale_id: Mapped[int] = mapped_column(ForeignKey("after_sales.id"), index=True)
    order_item_id: Mapped[int] = mapped_column(ForeignKey("order_items.id"), index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    refund_fen: Mapped[int] = mapped_column(Integer)
    after_sale: Mapped[AfterSale] = relationship(back_populates="items")
    order_item: Mapped[OrderItem] = relationship()


class Event(Base):
    """Append-only audit log: one row per change, written in the change's transaction."""

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    after_sale_id: Mapped[int | None] = mapped_column(ForeignKey("after_sales.id"), index=True, nullable=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), nullable=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(60))
    role: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(40))
    from_status: Mapped[str | None] = mapped_column(String(30), nullable=True)
    to_status: Mapped[str | None] = mapped_column(String(30), nullable=True)
    rule: Mapped[str] = mapped_column(String(80))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    data: Mapped[dict] = mapped_column(JSON, default=dict)


class Evidence(Base):
    __tablename__ = "evidence"
    id: Mapped[int] = mapped_column(primary_key=True)
    after_sale_id: Mapped[int | None] = mapped_column(ForeignKey("after_sales.id"), index=True, nullable=True)
    buyer_id: Mapped[int] = mapped_column(ForeignKey("buyers.id"))
    # The photo itself, in the database so that any replica can serve it; NULL only in rows from before
    # revision 0005, whose file is still at `path` (relative to BOT_VAR_DIR).
    data: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True, deferred=True)
    path: Mapped[str | None] = mapped_column(String(200), nullable=True)
    content_type: Mapped[str] = mapped_column(String(40))
    size: Mapped[int] = mapped_column(Integer)
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Payout(Base):
    """A refund paid out; the unique key makes a retried payout a no-op."""

    __tablename__ = "payouts"
    id: Mapped[int] = mapped_column(primary_key=True)
    after_sale_id: Mapped[int] = mapped_column(ForeignKey("after_sales.id"))
    idempotency_key: Mapped[str] = mapped_column(String(80), unique=True)
    route: Mapped[str] = mapped_column(String(20))
    amount_fen: Mapped[int] = mapped_column(Integer)
    external_ref: Mapped[str] = mapped_column(String(80))
    paid_at: Mapped[datetime] = mapped_column(UTCDateTime())
    paid_by: Mapped[str] = mapped_column(String(60))


class AppClock(Base):
    """Dev/test only: how far the application's clock runs ahead of real time (`bot clock advance`)."""

    __tablename__ = "app_clock"
    id: Mapped[int] = mapped_column(primary_key=True)
    offset_seconds: Mapped[float] = mapped_column(default=0.0)


class SeedMark(Base):
    """Which seed data sets are in, so seeding twice does nothing."""

    __tablename__ = "seed_marks"
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    applied_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Outbox(Base):
    """Messages to a buyer's conversation, delivered through Rasa by the worker."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(primary_key=True)
    buyer_id: Mapped[int] = mapped_column(ForeignKey("buyers.id"), index=True)
    after_sale_id: Mapped[int | None] = mapped_column(ForeignKey("after_sales.id"), nullable=True)
    kind: Mapped[str] = mapped_column(String(40))  # what happened: the bot renders it as utter_update_<kind>
    text: Mapped[str] = mapped_column(Text, default="")  # an agent's own words, when kind is agent_message
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    due_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # One notice per request and event key: a deadline swept twice cannot message the buyer twice.
    dedupe_key: Mapped[str] = mapped_column(String(120), unique=True)


class Staff(Base):
    """A shop or platform employee who works requests in the console or through the API."""

    __tablename__ = "staff"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(60))
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Task(Base):
    """Work for a person: a phone call about a quality return, a handoff, a low follow-up rating."""

    __tablename__ = "tasks"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(30), index=True)  # phone_call | handoff | low_rating | scam_report
    buyer_id: Mapped[int] = mapped_column(ForeignKey("buyers.id"), index=True)
    after_sale_id: Mapped[int | None] = mapped_column(ForeignKey("after_sales.id"), nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(10), default="open", index=True)  # open | taken | done
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    taken_by: Mapped[str | None] = mapped_column(String(60), nullable=True)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class FollowUp(Base):
    """The one visit (回访) after a refund succeeds or an exchange is delivered."""

    __tablename__ = "follow_ups"
    id: Mapped[int] = mapped_column(primary_key=True)
    after_sale_id: Mapped[int] = mapped_column(ForeignKey("after_sales.id"), unique=True)
    buyer_id: Mapped[int] = mapped_column(ForeignKey("buyers.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # refund | exchange
    coupon_fen: Mapped[int] = mapped_column(Integer, default=0)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    cancelled: Mapped[bool] = mapped_column(Boolean, default=False)
    rating: Mapped[int | None] = mapped_column(Integer, nullable=True)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    rated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
