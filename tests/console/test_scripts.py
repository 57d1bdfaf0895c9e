"""Suggested scripts and the checker: table-driven over statuses, reasons, policies and forbidden promises."""

from datetime import datetime, timedelta, timezone

import pytest
import yaml
from sqlalchemy import select

from bot.domain.policy import Policy
from bot.domain.workflow import Role
from bot.persistence.models import Event
from bot.policy.loader import SHOPS_DIR, load_policy, parse_policy
from bot.services import after_sales
from bot.services.after_sales import QuoteLine, RequestView
from bot.services.queue import RequestDetail, detail
from bot.services.scripts import check_script, find_problems, load_templates, record_sent, suggest

CREATED = datetime(2026, 11, 20, 2, 0, tzinfo=timezone.utc)
RECEIVED_YESTERDAY = CREATED - timedelta(days=1)
RECEIVED_LONG_AGO = CREATED - timedelta(days=20)
KNIT = QuoteLine(1, "针织开衫", "米白 M", 1, 19900)
SOCKS = QuoteLine(2, "棉袜三双装", "混色 均码", 2, 3620)

# The rule id a request of each reason was accepted under in the demo shop.
RULE = {"quality": "law.art24.quality", "color_difference": "law.art25.no_reason_7d"}
KIND = {"missing_item": "refund_only"}


def demo() -> Policy:
    return load_policy("demo")


def no_coupon() -> Policy:
    data = yaml.safe_load((SHOPS_DIR / "demo.yml").read_text(encoding="utf-8"))
    data.pop("coupon")
    return parse_policy(data, "no-coupon")


def request(status: str = "requested", reason: str = "quality", *, kind: str | None = None, note: str | None = None,
            lines: tuple[QuoteLine, ...] = (KNIT,), evidence: bool = True, evidence_required: bool = True,
            phone_call: bool = False, route: str = "original", deadline: bool = True) -> RequestDetail:
    view = RequestView(
        id=7, order_no="202611200000000301", kind=kind or KIND.get(reason, "return_refund"), status=status,
        reason=reason, refund_fen=sum(line.refund_fen for line in lines),
        deadline_at=CREATED + timedelta(hours=72) if deadline else None, deadline_kind="review" if deadline else None,
        rule_id=RULE.get(reason, f"demo.reason.{reason}"), refund_route=route, refund_account_masked="",
        last_reason_note=note, version=1, lines=lines,
    )
    return RequestDetail(
        view=view, buyer_id=3, buyer_name="张女士", shop_code="demo", payment="online", reason_confidence=0.91,
        earlier_reasons=[], buyer_words="穿了一次就开线了", evidence_required=evidence_required,
        phone_call_task=phone_call, refund_account="", return_tracking="", created_at=CREATED,
        allowed_actions=[], events=[], evidence=[{"id": 1}] if evidence else [],
    )


def ids(scripts) -> list[str]:
    return [s.id for s in scripts]


def by_id(scripts, script_id: str) -> str:
    return next(s.text for s in scripts if s.id == script_id)


STATUSES = ["requested", "rejected", "awaiting_return", "return_shipped", "refund_refused", "escalated", "checking",
            "awaiting_supervisor", "awaiting_finance", "awaiting_cashier", "exchange_shipping", "refunded",
            "exchanged", "closed", "cancelled"]
REASONS = ["quality", "size", "color_difference", "dislike", "wrong_item", "missing_item", "not_as_described", "other"]


# ---------------------------------------------------------------- every suggestion is sendable


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("reason", REASONS)
@pytest.mark.parametrize("policy", [demo, no_coupon], ids=["coupon", "no-coupon"])
@pytest.mark.parametrize("route", ["original", "bank"])
def test_every_suggestion_is_warm_filled_and_passes_the_checker(status, reason, policy, route):
    d = request(status, reason, note="商品已经洗过，影响二次销售" if status in ("rejected", "refund_refused") else None,
                evidence=False, phone_call=reason == "quality", route=route,
                deadline=status not in ("closed", "cancelled", "refunded", "exchanged", "escalated"))
    scripts = suggest(d, policy(), received_at=RECEIVED_YESTERDAY)
    assert scripts, "every status has at least the general comfort script"
    for script in scripts:
        assert script.text.startswith("亲")
        assert "抱歉" in script.text, script.id  # the seed: apologise first, whatever the reason
        assert "{" not in script.text and "}" not in script.text and "None" not in script.text
        assert check_script(script.text, d, policy(), received_at=RECEIVED_YESTERDAY) == [], script.id


# ---------------------------------------------------------------- which scripts, with which facts


@pytest.mark.parametrize("reason, freight_words, offers_exchange", [
    ("quality", "来回运费都由我们承担", True),
    ("wrong_item", "来回运费都由我们承担", True),
    ("size", "寄回的运费需要您自己承担", True),
    ("dislike", "寄回的运费需要您自己承担", True),
    ("other", "寄回的运费需要您自己承担", False),
])
def test_approval_script_names_items_amount_freight_and_exchange_per_policy(reason, freight_words, offers_exchange):
    scripts = suggest(request("requested", reason), demo())
    text = by_id(scripts, "approve_return")
    assert "针织开衫" in text and "¥199.00" in text and freight_words in text and "7天内" in text
    assert ("换货" in text) is offers_exchange
    assert ("offer_exchange" in ids(scripts)) is offers_exchange


def test_refund_only_request_gets_the_refund_script_with_route_and_working_days():
    scripts = suggest(request("requested", "missing_item", lines=(SOCKS,)), demo())
    assert "approve_refund" in ids(scripts) and "approve_return" not in ids(scripts)
    text = by_id(scripts, "approve_refund")
    assert "¥36.20" in text and "原路退回" in text and "1–3个工作日" in text
    assert "offer_exchange" not in ids(scripts)  # missing items: resend or refund, never an exchange


def test_bank_transfer_quotes_three_to_five_working_days():
    text = by_id(suggest(request("awaiting_cashier", "size", route="bank"), demo()), "refund_in_progress")
    assert "退到您提供的银行卡" in text and "3–5个工作日" in text and "不会要求您贷款" in text


@pytest.mark.parametrize("evidence, required, expected", [
    (False, True, True), (True, True, False), (False, False, False),
])
def test_photos_are_asked_for_only_when_required_and_missing(evidence, required, expected):
    scripts = suggest(request("requested", "quality", evidence=evidence, evidence_required=required), demo())
    assert ("ask_photos" in ids(scripts)) is expected


def test_quality_return_with_a_phone_task_suggests_the_call():
    scripts = suggest(request("requested", "quality", phone_call=True), demo())
    assert "来回运费都由我们承担" in by_id(scripts, "phone_call")


def test_rejection_script_quotes_the_recorded_reason_and_the_escalation_deadline():
    scripts = suggest(request("rejected", "dislike", note="吊牌已剪，影响二次销售"), demo())
    text = by_id(scripts, "explain_rejection")
    assert "吊牌已剪，影响二次销售" in text and "11月23日 10:00" in text and "平台介入" in text


def test_rejection_without_a_recorded_reason_offers_no_explanation_script():
    assert "explain_rejection" not in ids(suggest(request("rejected", "dislike", note=None), demo()))


@pytest.mark.parametrize("policy, coupon_offered", [(demo, True), (no_coupon, False)])
def test_coupon_is_offered_only_where_the_policy_has_one(policy, coupon_offered):
    scripts = suggest(request("refunded", "quality", deadline=False), policy())
    visit = by_id(scripts, "refund_visit")
    assert ("¥10的店铺优惠券（满¥99可用）" in visit) is coupon_offered
    assert ("coupon_apology" in ids(scripts)) is coupon_offered
    assert "回访" in visit and "¥199.00" in visit


def test_templates_are_data_with_unique_ids():
    data = load_templates()
    assert len({s["id"] for s in data["scripts"]}) == len(data["scripts"]) >= 10
    assert {c["id"] for c in data["checks"]} >= {"seller_pays_freight", "coupon_without_policy", "arrival_promise",
                                                 "refund_before_paid", "refuse_lawful_return", "amount"}


# ---------------------------------------------------------------- the checker

CHECKS = [
    # (case, text, request kwargs, policy, received_at, expected check ids)
    ("buyer pays, agent promises free return", "亲，运费我们承担，您放心寄回。", {"reason": "size"}, demo, None,
     {"seller_pays_freight"}),
    ("buyer pays, 包邮退回", "这单可以包邮退回哦～", {"reason": "dislike"}, demo, None, {"seller_pays_freight"}),
    ("buyer pays, 到付", "您直接到付寄回就行。", {"reason": "size"}, demo, None, {"seller_pays_freight"}),
    ("seller pays for quality", "亲，运费由我们承担，您放心寄回。", {"reason": "quality"}, demo, None, set()),
    ("coupon without a policy coupon", "送您一张10元优惠券～", {}, no_coupon, None, {"coupon_without_policy"}),
    ("the policy's coupon", "送您一张10元优惠券，满99元可用～", {}, demo, None, set()),
    ("a bigger coupon than the policy's", "送您一张20元优惠券～", {}, demo, None, {"coupon_amount"}),
    ("refund now before it is paid", "我马上给您退款！", {"status": "checking"}, demo, None, {"refund_before_paid"}),
    ("already refunded before it is paid", "已经给您退款了，请查收。", {"status": "awaiting_supervisor"}, demo, None,
     {"refund_before_paid"}),
    ("already refunded when it is", "已经给您退款了，请查收。", {"status": "refunded", "deadline": False}, demo, None,
     set()),
    ("arrival today, even when paid", "退款今天就能到账。", {"status": "refunded", "deadline": False}, demo, None,
     {"arrival_promise"}),
    ("arrival within hours", "2小时内到账，放心。", {"status": "checking"}, demo, None, {"arrival_promise"}),
    ("working days are fine", "原路退回一般1–3个工作日到账。", {"status": "checking"}, demo, None, set()),
    ("no return for quality", "这种情况不能退货哦。", {"reason": "quality"}, demo, None, {"refuse_lawful_return"}),
    ("no return inside the 7 days", "亲，不支持退货。", {"reason": "dislike"}, demo, RECEIVED_YESTERDAY,
     {"refuse_lawful_return"}),
    ("no return for 色差 inside the 7 days", "色差问题本店是不能退换的。", {"reason": "color_difference"}, demo,
     None, {"refuse_lawful_return"}),
    ("no return long after receipt", "亲，这件不支持退货。", {"reason": "dislike"}, demo, RECEIVED_LONG_AGO, set()),
    ("exchange the policy does not offer", "可以给您换货的。", {"reason": "missing_item"}, demo, None,
     {"exchange_not_offered"}),
    ("exchange the policy offers", "可以给您换货的。", {"reason": "size"}, demo, None, set()),
    ("asks for a verification code", "请把收到的验证码发给我，马上处理。", {}, demo, None, {"scam_words"}),
    ("asks to click a link", "请点击这个链接填写退款信息。", {}, demo, None, {"scam_words"}),
    ("the anti-scam line itself", "温馨提示：退款不会要求您贷款、提供验证码、点链接或转账。", {}, demo, None, set()),
    ("a different refund amount", "给您退款150元。", {}, demo, None, {"amount"}),
    ("the request's amount", "给您退款¥199.00，也可以写成199元退款。", {}, demo, None, set()),
    ("one line of two", "棉袜的退款是36.20元。", {"lines": (KNIT, SOCKS)}, demo, None, set()),
    ("several problems at once", "运费我们承担，马上给您退款150元，今天到账！", {"reason": "size", "status": "checking"},
     no_coupon, None, {"seller_pays_freight", "refund_before_paid", "arrival_promise", "amount"}),
]


@pytest.mark.parametrize("case, text, kwargs, policy, received_at, expected", CHECKS, ids=[c[0] for c in CHECKS])
def test_checker_blocks_what_the_policy_forbids(case, text, kwargs, policy, received_at, expected):
    problems = find_problems(text, request(**kwargs), policy(), received_at=received_at)
    assert {p.check for p in problems} == expected
    assert all(p.message and "{" not in p.message for p in problems)


def test_checker_messages_name_the_facts():
    [message] = check_script("给您退款150元。", request(), demo())
    assert "¥199.00" in message and "150元" in message
    [message] = check_script("运费我们承担。", request(reason="size"), demo())
    assert "尺码不合适" in message


# ---------------------------------------------------------------- on real requests


def test_scripts_for_a_submitted_request_and_the_message_is_audited(sqlite_svc):
    view = after_sales.submit(sqlite_svc, buyer_id=3, order_no="202611200000000301", reason="quality",
                              words="穿了一次就开线了")
    d = detail(sqlite_svc, view.id, Role.REVIEWER)
    scripts = suggest(d, sqlite_svc.policies("demo"))
    assert ids(scripts)[:3] == ["ask_photos", "phone_call", "approve_return"]
    assert "¥199.00" in by_id(scripts, "approve_return")

    agent = after_sales.Actor("staff:li", Role.REVIEWER)
    record_sent(sqlite_svc, view.id, actor=agent, text=by_id(scripts, "approve_return"), script_id="approve_return")
    with sqlite_svc.sessions() as session:
        event = session.scalar(select(Event).where(Event.after_sale_id == view.id, Event.action == "agent_message"))
    assert event is not None and event.actor == "staff:li" and event.data["script_id"] == "approve_return"
    assert "¥199.00" in event.data["text"]

