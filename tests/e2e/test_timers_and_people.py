"""Whole flows through the running stack, crossing timers with the application clock from outside."""

from sqlalchemy import select

from bot.domain.workflow import Role
from bot.persistence.models import AfterSale, Task
from bot.services import after_sales
from bot.services.after_sales import Actor
from tests.e2e.chat import Buyer, buttons, texts
from bot.services import conversation
from tests.e2e.stack_tools import advance_clock, bot_texts, services_of, settings_of, wait_for

REVIEWER, SUPERVISOR = Actor("staff:li", Role.REVIEWER), Actor("staff:zhou", Role.SUPERVISOR)


def status_of(svc, buyer_id: int) -> str | None:
    with svc.sessions() as session:
        row = session.scalar(select(AfterSale).where(AfterSale.buyer_id == buyer_id).order_by(AfterSale.id.desc()))
        return row.status if row else None


def test_refund_from_chat_to_follow_up_crossing_every_timer(stack):
    svc = services_of(stack)
    buyer = Buyer(stack.urls["rasa"], "buyer-2")  # 王先生: a delivered 羊毛大衣 and an unshipped COD bag

    # Given a buyer who applies for a size return of his delivered coat
    replies = buyer.says("大衣买大了一码，穿着晃荡，想退货")
    coat = next(b for b in buttons(replies) if "羊毛大衣" in b["title"])
    quote = texts(buyer.says(coat["payload"]))
    assert "运费需要您承担" in quote
    assert "已为您提交" in texts(buyer.says("确认"))
    assert status_of(svc, 2) == "requested"

    # When the seller stays silent for 72 hours, the worker approves and tells the buyer
    advance_clock(stack, "72h1s")
    wait_for(lambda: status_of(svc, 2) == "awaiting_return")
    wait_for(lambda: any("商家已同意" in t for t in bot_texts(stack, "buyer-2")))

    # When he sends the tracking number in chat, it is checked and recorded
    recorded = texts(buyer.says("寄回去了，顺丰 SF1234567890123"))
    assert "已为您登记退货单号" in recorded and "SF1234567890123" in recorded
    assert status_of(svc, 2) == "return_shipped"

    # When the seller does not confirm receipt within 7 days, the system confirms it
    advance_clock(stack, "7d1s")
    wait_for(lambda: status_of(svc, 2) == "checking")

    # And the internal chain pays by the original route
    request_id = after_sales.requests_of_buyer(svc, 2)[0].id
    after_sales.act(svc, request_id, "check_online", actor=REVIEWER)
    after_sales.act(svc, request_id, "pay_original_route", actor=SUPERVISOR)
    progress = texts(buyer.says("退款到哪了"))
    assert "已退出" in progress and "到账" in progress and "¥599.00" in progress

    # Then the follow-up visit comes a working day later and a low rating reaches a supervisor
    advance_clock(stack, "4d")
    wait_for(lambda: any("回访" in t for t in bot_texts(stack, "buyer-2")), timeout=30)
    assert "抱歉" in texts(buyer.says('/rate{"rating":"2"}'))
    with svc.sessions() as session:
        assert session.scalar(select(Task).where(Task.kind == "low_rating", Task.buyer_id == 2)) is not None


def test_handoff_silences_the_bot_until_the_agent_hands_back(stack):
    buyer = Buyer(stack.urls["rasa"], "buyer-1")
    assert "人工客服" in texts(buyer.says("转人工"))
    assert buyer.says("你好，在吗") == []  # a person has this buyer now
    conversation.send_agent_message(settings_of(stack), 1, "您好，我是李客服，马上帮您看一下")
    assert any("我是李客服" in t for t in bot_texts(stack, "buyer-1"))
    assert buyer.says("好的") == []  # still with the person after the agent spoke
    conversation.hand_back(settings_of(stack), 1)
    assert any("我回来啦" in t for t in bot_texts(stack, "buyer-1"))
    assert texts(buyer.says("你好"))  # the bot answers again


def test_scam_report_warns_and_hands_over_without_any_refund_step(stack):
    svc = services_of(stack)
    before = after_sales.requests_of_buyer(svc, 1)
    reply = texts(Buyer(stack.urls["rasa"], "buyer-1").says("有个自称客服的人让我开通借呗，说这样才能退款"))
    assert "诈骗" in reply and "验证码" in reply
    assert after_sales.requests_of_buyer(svc, 1) == before
    with svc.sessions() as session:
        assert session.scalar(select(Task).where(Task.kind == "scam_report", Task.buyer_id == 1)) is not None
    conversation.hand_back(settings_of(stack), 1)
