"""A shop's after-sales policy as data, and the decisions drawn from it, each with a rule id.

Pure: the YAML loader in bot/policy/ builds these objects; services and actions ask them questions.
"""

from dataclasses import dataclass, field
from datetime import timedelta
from enum import Enum

from bot.domain.workflow import Kind

SELLER, BUYER = "seller", "buyer"

# Timer names and what each one governs (see rules.md "Timers").
TIMER_NAMES: tuple[str, ...] = (
    "review",  # seller reviews a request, else it is approved
    "review_unshipped",  # seller reviews a refund of an unshipped order, else refunded
    "escalate_after_rejection",  # buyer may escalate or change a rejected request, else closed
    "ship_back",  # buyer ships the goods back with a tracking number, else closed
    "home_goods_hold",  # 居家馆 parcels without tracking number are kept this long
    "confirm_receipt",  # seller confirms receipt, else confirmed automatically and refunded
    "escalate_after_refusal",  # buyer may escalate a refused refund, else closed
    "complaint_window",  # after a trade completes, buyer may complain to the platform
    "no_reason_return",  # the legal 7 days after receipt
    "follow_up_delay_workdays",  # days (working) before the follow-up visit
)

PRESETS: dict[str, dict[str, timedelta]] = {
    # The seed's 卷皮 rules.
    "default": {
        "review": timedelta(hours=72),
        "review_unshipped": timedelta(hours=72),
        "escalate_after_rejection": timedelta(days=3),
        "ship_back": timedelta(days=7),
        "home_goods_hold": timedelta(days=20),
        "confirm_receipt": timedelta(days=7),
        "escalate_after_refusal": timedelta(days=3),
        "complaint_window": timedelta(days=15),
        "no_reason_return": timedelta(days=7),
        "follow_up_delay_workdays": timedelta(days=1),
    },
    # The seed's 淘宝 sections.
    "taobao": {
        "review": timedelta(days=5),
        "review_unshipped": timedelta(days=2),
        "escalate_after_rejection": timedelta(days=7),
        "ship_back": timedelta(days=7),
        "home_goods_hold": timedelta(days=20),
        "confirm_receipt": timedelta(days=10),
        "escalate_after_refusal": timedelta(days=3),
        "complaint_window": timedelta(days=15),
        "no_reason_return": timedelta(days=7),
        "follow_up_delay_workdays": timedelta(days=1),
    },
}


class Evidence(str, Enum):
    NONE = "none"
    OPTIONAL = "optional"
    REQUIRED = "required"


@dataclass(frozen=True)
class ReasonRule:
    """What the shop does for one reason code."""

    return_freight: str  # who pays shipping the goods back: seller | buyer
    outbound_freight: str  # who bears the original delivery freight: seller refunds it | buyer
    evidence: Evidence
    resolutions: tuple[str, ...]  # refund | return | exchange | resend
    accepted: bool = True  # the shop takes returns for this reason at all
    exchange_first: bool = False
    phone_call: bool = False  # an agent phones the buyer before a return-and-refund
    script: str = ""  # the shop's own words when it refuses


@dataclass(frozen=True)
class Decision:
    """An answer the bot may give and the backend will honour, with the rule behind it."""

    rule_id: str
    accepted: bool
    return_freight: str
    outbound_freight: str
    evidence: Evidence
    resolutions: tuple[str, ...]
    exchange_first: bool
    phone_call: bool
    explanation: str  # plain Chinese, quoted to the buyer


@dataclass(frozen=True)
class Policy:
    shop_code: str
    shop_name: str
    preset: str
    timers: dict[str, timedelta]
    reasons: dict[str, ReasonRule]
    express_refund: bool = False
    coupon_fen: int = 0
    coupon_min_spend_fen: int = 0
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def timer(self, name: str) -> timedelta:
        return self.timers[name]

    def decide(self, reason: str, *, within_no_reason_days: bool) -> Decision:
        """Freight, evidence and resolutions for `reason`, with the legal floor applied.

        Legal floor (Consumer Rights Protection Law): Art. 24, quality costs are the business's;
        Art. 25, within 7 days of receipt any return is allowed, buyer paying return freight.
        """
        rule = self.reasons.get(reason) or self.reasons["other"]
        rule_id = f"{self.shop_code}.reason.{reason}"
        explanation = EXPLANATIONS.get(reason, EXPLANATIONS["other"])
        if reason == "quality":
            # Art. 24 overrides whatever the YAML says about who pays.
            return Decision(
                "law.art24.quality", True, SELLER, SELLER, rule.evidence,
                rule.resolutions or ("refund", "return", "exchange"), False, rule.phone_call,
                EXPLANATIONS["quality"],
            )
        if not rule.accepted:
            if within_no_reason_days:
                return Decision(
                    "law.art25.no_reason_7d", True, BUYER, BUYER, rule.evidence, ("return", "exchange"),
                    False, False,
                    "本店对这种情况原本不支持退换，但您在签收后7天内，依法享有七天无理由退货的权利，"
                    "商品保持完好即可退回，寄回运费由您承担。",
                )
            return Decision(rule_id, False, BUYER, BUYER, rule.evidence, (), False, False,
                            rule.script or "很抱歉，这种情况本店不支持退换。")
        return Decision(rule_id, True, rule.return_freight, rule.outbound_freight, rule.evidence,
                        rule.resolutions, rule.exchange_first, rule.phone_call, explanation)


EXPLANATIONS: dict[str, str] = {
    "quality": "商品质量问题由商家负责，来回运费都由商家承担。",
    "wrong_item": "发错货是我们的责任，来回运费由商家承担。",
    "missing_item": "漏发少发是我们的责任，可以为您补发或退款，运费由商家承担。",
    "not_as_described": "商品与描述不符是我们的责任，来回运费由商家承担。",
    "size": "尺码不合适可以为您换货或退货，来回运费需要您承担。",
    "dislike": "不喜欢也可以退换（七天无理由），寄回运费需要您承担。",
    "color_difference": "色差问题按本店规则处理，寄回运费需要您承担。",
    "other": "这种情况可以为您办理退换，寄回运费需要您承担。",
}


def who_pays_text(payer: str) -> str:
    return "商家" if payer == SELLER else "您"


def kind_for(resolution: str) -> Kind:
    """The request kind for a resolution, in the policy's words or the chat's (refund_only …)."""
    return {"refund": Kind.REFUND_ONLY, "refund_only": Kind.REFUND_ONLY, "resend": Kind.EXCHANGE,
            "exchange": Kind.EXCHANGE}.get(resolution, Kind.RETURN_REFUND)
