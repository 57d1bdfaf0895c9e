"""Personal data (phone numbers, bank accounts, addresses) masked in logs and, unless the role needs it, in what
staff read."""

import io
import logging
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.logging_setup import PiiMaskingFilter, install_pii_masking, mask_pii
from tests.hostile.conftest import TRIED, signed_in_buyer, staff_headers

PHONE, CARD, ID_CARD = "13812345678", "6222021234567890128", "33010519900101123X"
ADDRESS = "浙江省杭州市西湖区文三路100号2单元301室"


@pytest.mark.parametrize("raw,must_go,must_stay", [
    (f"电话{PHONE}", [PHONE], ["138", "5678"]),
    ("+86 138-1234-5678 回电", ["1234-5678", "138-1234"], []),
    (f"卡号 {CARD[:4]} {CARD[4:8]} {CARD[8:12]} {CARD[12:16]} {CARD[16:]}", [CARD[4:8] + " " + CARD[8:12]], ["0128"]),
    (f"退到{CARD}", [CARD], ["0128"]),
    (f"身份证{ID_CARD}", [ID_CARD, "19900101"], []),
    ("支付宝 lin.xiao@example.com", ["lin.xiao@"], ["example.com"]),
    (f"寄到{ADDRESS}", ["文三路100号", "301室"], ["浙江省杭州市西湖区"]),
    ("座机0571-88880000", ["88880000"], ["0571"]),
    # Not personal: order numbers, tracking numbers, money, request ids stay readable.
    ("订单202611200000000104 单号SF1234567890123 退款¥199.00 售后单 12", [],
     ["202611200000000104", "SF1234567890123", "¥199.00", "售后单 12"]),
    ("衣服穿了一次就开线了，我要退货；走路时鞋底开胶", [], ["衣服穿了一次就开线了，我要退货；走路时鞋底开胶"]),
])
def test_mask_pii(raw, must_go, must_stay):
    masked = mask_pii(raw)
    TRIED["pii masking"] += 1
    for secret in must_go:
        assert secret not in masked, masked
    for kept in must_stay:
        assert kept in masked, masked


_filler = st.text(st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF) | st.sampled_from(list("，。 ab")), max_size=20)
_mobile = st.builds(lambda p, n: f"1{p}{n:09d}", st.sampled_from("3456789"), st.integers(0, 10**9 - 1))
_card = st.integers(10**14, 10**18 - 1).map(str).map(lambda d: d + str((10 - _luhn_sum(d + "0")) % 10))


def _luhn_sum(digits: str) -> int:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10


@settings(max_examples=500, deadline=None, derandomize=True)
@given(_filler, st.one_of(_mobile, _card), _filler)
def test_no_phone_or_card_survives_masking(before, secret, after):
    TRIED["pii masking (property)"] += 1
    assert secret not in mask_pii(before + secret + after)


def test_log_lines_are_masked_everywhere(caplog):
    """install_pii_masking covers every logger, string arguments, and exception text."""
    install_pii_masking()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    log = logging.getLogger("hostile.pii")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        log.info("buyer wrote %s", f"电话{PHONE} 地址{ADDRESS}")
        log.warning(f"refund to {CARD}")
        log.info("%(who)s at %(where)s", {"who": PHONE, "where": ADDRESS})
        try:
            raise ValueError(f"bad account {CARD} for {PHONE}")
        except ValueError:
            log.exception("failed")
        logging.getLogger("uvicorn.access").info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:1", "GET", "/x", "1.1", 200)
    finally:
        log.removeHandler(handler)
    out = stream.getvalue()
    TRIED["pii log lines"] += 5
    for secret in (PHONE, CARD, "文三路100号"):
        assert secret not in out, out
    assert "138****5678" in out and "ValueError" in out


def test_filter_for_a_handler_set_up_by_hand():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(PiiMaskingFilter())
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "call %s", (PHONE,), None)
    handler.handle(record)
    assert PHONE not in stream.getvalue()


def test_refused_account_is_not_echoed(app):
    # buyer 1's cash-on-delivery order was delivered and paid to the courier: a refund account is required
    buyer = signed_in_buyer(app, 1)
    r = buyer.post("/api/me/after-sales", json={"order_no": "202611200000000106", "reason": "dislike",
                                                "resolution": "return", "refund_account": CARD})
    TRIED["pii by role"] += 1
    assert r.status_code == 422 and CARD not in r.text, r.text


def test_refund_account_masked_unless_the_role_pays_it(app):
    """A cash-on-delivery refund to a bank card: reviewers see 6222 **** 0128, finance and the cashier all of it."""
    buyer = signed_in_buyer(app, 1)
    r = buyer.post("/api/me/after-sales", json={"order_no": "202611200000000106", "reason": "quality",
                                                "refund_account": f"bank:{CARD}",
                                                "words": f"裤子破了，电话{PHONE}，地址{ADDRESS}"})
    assert r.status_code == 201, r.text
    request_id = r.json()["id"]
    assert CARD not in r.text  # the buyer's own answer shows it masked too
    seen = {}
    for user in ("li", "zhou", "xiaoer", "qian", "sun"):
        detail = buyer.get(f"/api/staff/requests/{request_id}", headers=staff_headers(buyer, user))
        assert detail.status_code == 200
        seen[user] = detail.text
        TRIED["pii by role"] += 1
    for user in ("li", "zhou", "xiaoer"):
        assert CARD not in seen[user] and "0128" in seen[user], user
    for user in ("qian", "sun"):
        assert CARD in seen[user], user
    queue = buyer.get("/api/staff/requests", headers=staff_headers(buyer, "li"), params={"include_final": True})
    assert CARD not in queue.text


def test_buyer_words_with_contact_data_masked_for_roles_that_do_not_call(app):
    buyer = signed_in_buyer(app, 3)
    r = buyer.post("/api/me/after-sales", json={"order_no": "202611200000000301", "reason": "quality",
                                                "words": f"开线了，打我电话{PHONE}，寄到{ADDRESS}"})
    assert r.status_code == 201, r.text
    detail = buyer.get(f"/api/staff/requests/{r.json()['id']}", headers=staff_headers(buyer, "xiaoer"))
    TRIED["pii by role"] += 1
    assert PHONE not in detail.text and "文三路100号" not in detail.text


def test_prod_logs_hold_no_personal_data(prod_stack):
    """Everything the profile logged so far (all processes) after buyers typed phone numbers, cards and
    addresses into the chat (the chat fuzzer and this test send them)."""
    import requests

    from bot.identity import buyer_token

    for message in (f"我的电话{PHONE}", f"退到这张卡{CARD}", f"寄到{ADDRESS}", f"身份证{ID_CARD}"):
        requests.post(prod_stack.urls["rasa"] + "/webhooks/rest/webhook",
                      json={"sender": "buyer-3", "message": message,
                            "metadata": {"buyer_token": buyer_token(3, prod_stack.secret_key)}}, timeout=120)
        TRIED["pii chat message"] += 1
    logs = "".join(p.read_text(errors="replace") for p in prod_stack.cfg.log_dir.glob("*.log"))
    for secret in (PHONE, CARD, "文三路100号", ID_CARD):
        assert not re.search(re.escape(secret), logs), f"{secret} in the logs"
