"""The policy engine: reason x policy x timing, with the legal floor (table-driven)."""

import pytest
import yaml

from bot.domain.policy import Evidence
from bot.policy.loader import SHOPS_DIR, PolicyError, load_policy, parse_policy

DEMO = yaml.safe_load((SHOPS_DIR / "demo.yml").read_text(encoding="utf-8"))


def policy_with(**changes):
    data = yaml.safe_load(yaml.safe_dump(DEMO))
    for path, value in changes.items():
        node = data
        *parents, leaf = path.split("__")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return parse_policy(data, "test.yml")


# reason, within 7 days of receipt, accepted, return freight, evidence, first resolution, rule id
CASES = [
    ("quality", True, True, "seller", Evidence.REQUIRED, "return", "law.art24.quality"),
    ("quality", False, True, "seller", Evidence.REQUIRED, "return", "law.art24.quality"),
    ("wrong_item", True, True, "seller", Evidence.REQUIRED, "exchange", "demo.reason.wrong_item"),
    ("missing_item", False, True, "seller", Evidence.REQUIRED, "resend", "demo.reason.missing_item"),
    ("not_as_described", True, True, "seller", Evidence.REQUIRED, "return", "demo.reason.not_as_described"),
    ("size", True, True, "buyer", Evidence.NONE, "exchange", "demo.reason.size"),
    ("size", False, True, "buyer", Evidence.NONE, "exchange", "demo.reason.size"),
    ("dislike", True, True, "buyer", Evidence.NONE, "return", "demo.reason.dislike"),
    # The seed shop refuses 色差; inside 7 days the law's no-reason return applies instead.
    ("color_difference", True, True, "buyer", Evidence.REQUIRED, "return", "law.art25.no_reason_7d"),
    ("color_difference", False, False, "buyer", Evidence.REQUIRED, None, "demo.reason.color_difference"),
    ("other", True, True, "buyer", Evidence.OPTIONAL, "return", "demo.reason.other"),
]


@pytest.mark.parametrize("reason,within,accepted,freight,evidence,first,rule", CASES)
def test_decisions_of_the_demo_shop(reason, within, accepted, freight, evidence, first, rule):
    decision = load_policy("demo").decide(reason, within_no_reason_days=within)
    assert decision.accepted is accepted
    assert decision.return_freight == freight
    assert decision.evidence == evidence
    assert (decision.resolutions[0] if decision.resolutions else None) == first
    assert decision.rule_id == rule
    assert decision.explanation  # the buyer always hears why


def test_a_shop_making_buyers_pay_for_quality_is_reported_and_overridden():
    policy = policy_with(reasons__quality__return_freight="buyer", reasons__quality__outbound_freight="buyer")
    assert any("Art. 24" in w for w in policy.warnings)
    decision = policy.decide("quality", within_no_reason_days=False)
    assert (decision.return_freight, decision.outbound_freight, decision.rule_id) == ("seller", "seller", "law.art24.quality")


def test_refusing_a_reason_is_reported_as_below_the_seven_day_floor():
    assert any("Art. 25" in w and "color_difference" in w for w in load_policy("demo").warnings)


@pytest.mark.parametrize("preset,timer,hours", [
    ("default", "review", 72), ("default", "ship_back", 7 * 24), ("default", "confirm_receipt", 7 * 24),
    ("default", "escalate_after_rejection", 72), ("default", "home_goods_hold", 20 * 24),
    ("taobao", "review", 5 * 24), ("taobao", "review_unshipped", 48), ("taobao", "confirm_receipt", 10 * 24),
    ("taobao", "escalate_after_rejection", 7 * 24),
])
def test_presets_hold_the_seed_timers(preset, timer, hours):
    assert policy_with(preset=preset).timer(timer).total_seconds() == hours * 3600


def test_a_shop_may_override_one_timer():
    policy = policy_with(timers={"review": "48h"})
    assert policy.timer("review").total_seconds() == 48 * 3600
    assert policy.timer("ship_back").days == 7


@pytest.mark.parametrize("change,message", [
    ({"preset": "jd"}, "preset"),
    ({"timers": {"review": "soon"}}, "timers.review"),
    ({"timers": {"nap": "1h"}}, "timers.nap"),
    ({"reasons__quality__evidence": "maybe"}, "reasons.quality.evidence"),
    ({"reasons__size__return_freight": "courier"}, "reasons.size.return_freight"),
    ({"reasons__size__resolutions": ["refund", "teleport"]}, "reasons.size.resolutions"),
    ({"coupon": {"amount": "ten"}}, "coupon.amount"),
])
def test_bad_policy_files_get_clear_errors(change, message):
    with pytest.raises(PolicyError, match=message.replace(".", r"\.")):
        policy_with(**change)


def test_unknown_reason_code_and_missing_fallback_are_refused():
    data = yaml.safe_load(yaml.safe_dump(DEMO))
    data["reasons"]["too_expensive"] = {"return_freight": "buyer"}
    with pytest.raises(PolicyError, match="unknown reason code"):
        parse_policy(data, "x.yml")
    data = yaml.safe_load(yaml.safe_dump(DEMO))
    del data["reasons"]["other"]
    with pytest.raises(PolicyError, match="reasons.other is required"):
        parse_policy(data, "x.yml")
