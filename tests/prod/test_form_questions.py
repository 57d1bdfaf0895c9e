"""The form's questions about the quote, asked by its validation, through real Rasa replicas and action servers:
once each time the form asks, never twice, and again after the buyer asked something else in between."""

from tests.prod.support import Buyer, new_buyers

QUALITY = "衣服穿了一次就开线了，我要退货"


def test_the_quote_is_asked_once_and_again_after_a_question_in_between(prod_stack):
    buyer = Buyer(prod_stack, new_buyers(prod_stack)[0])
    assert "照片" in buyer.says(QUALITY)

    quote = buyer.says("/deny")  # photos later
    assert quote.count("合计退款 ¥199.00") == 1 and quote.count("确认提交申请吗") == 1

    # Who pays the freight, while the confirmation is pending: the answer, then the question again, once.
    between = buyer.says("运费谁出")
    assert "商家承担" in between
    assert between.count("合计退款 ¥199.00") == 1 and between.count("确认提交申请吗") == 1
    assert between.index("商家承担") < between.index("确认提交申请吗")

    done = buyer.says("确认")
    assert "已为您提交退货退款申请" in done and "确认提交申请吗" not in done


def test_an_application_given_up_and_begun_again_starts_afresh(prod_stack):
    """The first application's answers (photos later) stay in the slots after giving up; the second one must
    ask for the photos again instead of jumping to the quote."""
    buyer = Buyer(prod_stack, new_buyers(prod_stack)[0])
    assert "照片" in buyer.says(QUALITY)
    assert "合计退款 ¥199.00" in buyer.says("/deny")  # photos later -> the quote
    assert "取消" in buyer.says("/stop")

    again = buyer.says(QUALITY)
    assert "抱歉" in again and "照片" in again and "合计退款" not in again
    assert "合计退款 ¥199.00" in buyer.says("/deny")
    assert "已为您提交退货退款申请" in buyer.says("确认")
