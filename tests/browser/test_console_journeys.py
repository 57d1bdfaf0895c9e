"""The three faces in a real browser: the buyer's shop window, the agent console, the follow-up visit.

One journey (a → b → c) is told in three tests that share its buyer: (a) a buyer returns a jumper whose
seam opened, with a photo; (b) a reviewer sends an edited suggested script and approves, and the buyer
sees the words; (c) the refund is paid, the clock moves on, the follow-up visit arrives and is rated.
Then (d) a reviewer cannot do a cashier's step, and (e) a buyer's `<script>` stays text in the console.
"""

import re
import time

import pytest
import requests
from playwright.sync_api import Page, expect

from bot.ops.stack import rasa_token
from tests.browser.conftest import (
    DemoBuyer,
    advance_clock,
    buyer_session,
    given_buyer,
    latest_request,
    seam_photo_png,
    staff_act,
    staff_view,
)

JOURNEY: dict[str, object] = {}
AGENT_WORDS = "我是李客服，这单我会一直跟进，有问题随时找我～"


@pytest.fixture(scope="module")
def journey_buyer(stack) -> DemoBuyer:
    return given_buyer(stack, "赵女士", item=("KN-03", "针织开衫", "米白 M", 19900))


def buyer_page(new_context, stack, buyer: DemoBuyer) -> Page:
    """The shop window, signed in as `buyer`, with the chat connected."""
    page = new_context().new_page()
    page.goto(stack.urls["web"] + "/")
    page.click(f'button[data-buyer="{buyer.id}"]')
    expect(page.locator("#chat-status")).to_have_text("在线")
    return page


def console_page(new_context, stack, username: str, shot=None) -> Page:
    page = new_context().new_page()
    page.goto(stack.urls["web"] + "/console/")
    expect(page).to_have_url(re.compile(r"/console/signin"))
    expect(page.locator("tr.pick").first).to_be_visible()
    if shot:
        shot(page, f"console-signin-{username}")
    page.fill("#username", username)
    page.fill("#password", f"demo-{username}")
    page.click("button:has-text('登录')")
    expect(page).to_have_url(re.compile(r"/console/queue"))
    return page


def wait_until_in_conversation(stack, buyer: DemoBuyer, text: str, timeout_s: float = 30) -> None:
    """The buyer's message reached Rasa's tracker store (what the console reads)."""
    url = f"{stack.urls['rasa']}/conversations/{buyer.sender}/tracker"
    token, deadline = rasa_token(stack.env), time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        events = requests.get(url, params={"token": token}, timeout=10).json().get("events", [])
        if any(e.get("event") == "user" and e.get("text") == text for e in events):
            return
        time.sleep(0.5)
    raise AssertionError(f"{text!r} never reached the conversation of {buyer.sender}")


def bot_says(page: Page, text: str):  # type: ignore[no-untyped-def]
    return page.locator("#chat-log .msg.bot .bubble", has_text=text).last


# ---------------------------------------------------------------- (a) the buyer returns with a photo


def test_a_buyer_completes_a_return_in_the_shop_window_with_a_photo(stack, new_context, shot, journey_buyer, tmp_path):
    page = buyer_page(new_context, stack, journey_buyer)
    shot(page, "shop-window")

    page.fill("#chat-input", "衣服穿了一次就开线了，我要退货")
    page.press("#chat-input", "Enter")
    expect(bot_says(page, "照片")).to_be_visible()
    expect(page.locator("#chat-log")).to_contain_text("抱歉")
    shot(page, "bot-asks-for-photos")

    photo = tmp_path / "seam.png"
    photo.write_bytes(seam_photo_png())
    page.set_input_files("#chat-photo", str(photo))
    expect(page.locator("#chat-log .msg.buyer .bubble", has_text="[照片] seam.png")).to_be_visible()
    expect(bot_says(page, "照片收到")).to_be_visible()
    expect(page.locator("#chat-log")).to_contain_text("来回运费都由商家承担")
    expect(page.locator("#chat-log")).to_contain_text("¥199.00")
    shot(page, "quote-with-freight-and-amount")

    page.locator("#chat-log .buttons button", has_text="确认提交").last.click()
    expect(bot_says(page, "已为您提交退货退款申请")).to_be_visible()
    shot(page, "submitted")

    request_id = latest_request(stack, journey_buyer.id)
    request = staff_view(stack, request_id)
    assert (request["status"], request["reason"], request["refund_fen"]) == ("requested", "quality", 19900)
    assert len(request["evidence"]) == 1 and "开线" in request["buyer_words"]
    JOURNEY.update(request_id=request_id)


# ---------------------------------------------------------------- (b) an agent approves with a script


def test_b_agent_sends_an_edited_script_and_approves_and_the_buyer_sees_it(stack, new_context, shot, journey_buyer):
    assert "request_id" in JOURNEY, "needs the request of test (a)"
    request_id = JOURNEY["request_id"]
    buyer = buyer_page(new_context, stack, journey_buyer)

    agent = console_page(new_context, stack, "li", shot)
    row = agent.locator(f'tr[data-request="{request_id}"]')
    expect(row).to_contain_text("针织开衫")
    expect(row.locator("time.countdown")).to_contain_text(re.compile(r"剩 2天\d+小时"))
    shot(agent, "queue-with-countdown")

    row.locator("a.button").click()
    expect(agent.locator("#buyer-words")).to_contain_text("开线")
    photo = agent.locator(".photos img").first
    expect(photo).to_be_visible()
    assert photo.evaluate("img => img.complete && img.naturalWidth") == 160  # the real photo, not a broken icon
    expect(agent.locator("#conversation")).to_contain_text("衣服穿了一次就开线了，我要退货")
    shot(agent, "request-page")

    script = agent.locator('form[data-script="approve_return"]')
    area = script.locator("textarea")
    suggested = area.input_value()
    assert suggested.startswith("亲，真的非常抱歉") and "来回运费都由我们承担" in suggested and "¥199.00" in suggested
    expect(area).to_have_attribute("readonly", "")
    script.locator("[data-edit]").click()
    area.press("End")
    area.type(AGENT_WORDS)
    shot(agent, "script-edited")
    script.locator("[data-send]").click()
    expect(agent.locator(".flash.ok")).to_have_text("消息已发送到买家的对话")
    expect(agent.locator("#conversation .from-agent").last).to_contain_text(AGENT_WORDS)
    shot(agent, "script-sent")

    agent.locator('form[data-action="approve_return"] button').click()
    expect(agent.locator(".flash.ok")).to_have_text("已完成：同意退货")
    expect(agent.locator("#status")).to_have_attribute("data-status", "awaiting_return")
    expect(agent.locator("#timeline")).to_contain_text("同意退货")
    shot(agent, "approved")

    expect(buyer.locator("#chat-log .msg.bot .bubble", has_text=AGENT_WORDS)).to_be_visible()
    expect(bot_says(buyer, "有新进展")).to_be_visible()
    shot(buyer, "buyer-sees-agent-words")
    JOURNEY.update(approved=True)


# ---------------------------------------------------------------- (c) refunded, then the follow-up visit


def test_c_after_the_refund_the_follow_up_visit_arrives_and_is_rated(stack, new_context, shot, journey_buyer,
                                                                      restore_clock):
    assert JOURNEY.get("approved"), "needs the approval of test (b)"
    request_id = JOURNEY["request_id"]
    web = buyer_session(stack, journey_buyer.id)
    shipped = web.post(f"{stack.urls['web']}/api/me/after-sales/{request_id}/ship-back",
                       json={"tracking_no": "SF1234567890123"}, timeout=15)
    assert shipped.status_code == 200, shipped.text
    staff_act(stack, "li", request_id, "confirm_receipt")
    staff_act(stack, "li", request_id, "check_online")

    supervisor = console_page(new_context, stack, "zhou")
    supervisor.goto(f"{stack.urls['web']}/console/requests/{request_id}")
    expect(supervisor.locator("#status")).to_have_attribute("data-status", "awaiting_supervisor")
    shot(supervisor, "supervisor-before-paying")
    supervisor.locator('form[data-action="pay_original_route"] button').click()
    expect(supervisor.locator("#status")).to_have_attribute("data-status", "refunded")
    shot(supervisor, "refunded")

    buyer = buyer_page(new_context, stack, journey_buyer)
    visit = buyer.locator("#chat-log .msg.bot .bubble", has_text="回访")
    for _ in range(3):  # one working day at 10:00: three days cover a weekend; a holiday may need more
        advance_clock(stack, "3d")
        try:
            expect(visit.last).to_be_visible(timeout=20_000)
            break
        except AssertionError:
            continue
    expect(visit.last).to_be_visible()
    expect(visit.last).to_contain_text("¥199.00")
    rating = buyer.locator("#chat-log .msg.bot", has=buyer.locator(".buttons button", has_text="5分")).last
    for n in range(1, 6):
        expect(rating.locator(".buttons button", has_text=f"{n}分")).to_be_visible()
    shot(buyer, "follow-up-visit")

    rating.locator(".buttons button", has_text="5分").click()
    expect(bot_says(buyer, "谢谢您的评价")).to_be_visible()
    shot(buyer, "rated")

    manager = console_page(new_context, stack, "zhou")
    manager.goto(f"{stack.urls['web']}/console/analytics")
    expect(manager.locator("#chart-products")).to_contain_text("针织开衫")
    expect(manager.locator("#rating-average")).to_be_visible()
    shot(manager, "analytics")


# ---------------------------------------------------------------- (d) the reviewer cannot pay out cash


def test_d_reviewer_cannot_record_a_cashiers_transfer(stack, new_context, shot):
    buyer = given_buyer(stack, "钱先生", item=("PT-08", "休闲长裤", "卡其 L", 13900), payment="cod")
    web = buyer_session(stack, buyer.id)
    created = web.post(f"{stack.urls['web']}/api/me/after-sales", json={
        "order_no": buyer.order_no, "reason": "size", "resolution": "return",
        "refund_account": "alipay:13812345678"}, timeout=15)
    assert created.status_code == 201, created.text
    request_id = created.json()["id"]
    staff_act(stack, "li", request_id, "approve_return")
    assert web.post(f"{stack.urls['web']}/api/me/after-sales/{request_id}/ship-back",
                    json={"tracking_no": "SF1234567890124"}, timeout=15).status_code == 200
    staff_act(stack, "li", request_id, "confirm_receipt")
    staff_act(stack, "li", request_id, "check_offline")
    staff_act(stack, "qian", request_id, "confirm_money_received")

    cashier = console_page(new_context, stack, "sun")
    cashier.goto(f"{stack.urls['web']}/console/requests/{request_id}")
    expect(cashier.locator('form[data-action="record_transfer"] button')).to_have_text("登记转账")
    shot(cashier, "cashier-sees-record-transfer")

    reviewer = console_page(new_context, stack, "li")
    reviewer.goto(f"{stack.urls['web']}/console/requests/{request_id}")
    expect(reviewer.locator("#status")).to_have_attribute("data-status", "awaiting_cashier")
    expect(reviewer.locator('form[data-action="record_transfer"]')).to_have_count(0)
    expect(reviewer.locator("#actions")).to_contain_text("没有可执行的操作")
    shot(reviewer, "reviewer-has-no-button")

    # A forged form, with the reviewer's own valid session and CSRF token, posted from the page.
    with reviewer.expect_response(re.compile(rf"/console/requests/{request_id}/actions$")) as posted:
        reviewer.evaluate("""([id, version]) => {
            const form = document.createElement("form");
            form.method = "post";
            form.action = `/console/requests/${id}/actions`;
            const token = document.querySelector("input[name=csrf]").value;
            for (const [name, value] of [["csrf", token], ["action", "record_transfer"], ["version", version]]) {
                const input = document.createElement("input");
                input.name = name; input.value = value; form.appendChild(input);
            }
            document.body.appendChild(form);
            form.submit();
        }""", [request_id, str(staff_view(stack, request_id)["version"])])
    assert posted.value.status == 403
    expect(reviewer.locator(".error .flash.bad")).to_contain_text("没有“登记转账”的权限")
    shot(reviewer, "forged-post-refused-403")
    assert staff_view(stack, request_id)["status"] == "awaiting_cashier"


# ---------------------------------------------------------------- (e) buyer text stays text


def test_e_a_buyers_script_tag_shows_as_text_in_the_console(stack, new_context, shot):
    buyer = given_buyer(stack, "孙小姐", item=("DR-07", "碎花连衣裙", "蓝色 S", 16900))
    words = "<script>alert(1)</script>尺码偏小"
    web = buyer_session(stack, buyer.id)
    created = web.post(f"{stack.urls['web']}/api/me/after-sales", json={
        "order_no": buyer.order_no, "reason": "size", "resolution": "return", "words": words}, timeout=15)
    assert created.status_code == 201, created.text
    request_id = created.json()["id"]

    shop = buyer_page(new_context, stack, buyer)
    typed = "<script>alert(1)</script> 请问什么时候处理？"
    shop.fill("#chat-input", typed)
    shop.press("#chat-input", "Enter")
    expect(shop.locator("#chat-log .msg.buyer .bubble", has_text="<script>alert(1)</script>")).to_be_visible()
    wait_until_in_conversation(stack, buyer, typed)
    shot(shop, "buyer-typed-a-script-tag")

    agent = console_page(new_context, stack, "li")
    dialogs: list[str] = []
    agent.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    agent.goto(f"{stack.urls['web']}/console/requests/{request_id}")
    expect(agent.locator("#buyer-words")).to_have_text(words)
    said = agent.locator("#conversation .from-buyer .text", has_text="<script>")
    expect(said.first).to_have_text(typed)
    assert agent.locator("#conversation script, #buyer-words script").count() == 0
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in agent.content()
    agent.wait_for_timeout(500)
    assert dialogs == []
    shot(agent, "console-shows-text")
