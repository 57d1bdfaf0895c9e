"""The first real slice, end to end: a delivered order's quality return through every real process."""

import sqlite3
from datetime import datetime, timedelta, timezone

import requests

from tests.e2e.chat import Buyer, buttons, texts

# The smallest real JPEG header plus padding: the upload is checked by content, not by name.
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 200 + b"\xff\xd9"


def signed_in(stack, buyer_id: int) -> requests.Session:
    web = requests.Session()
    web.post(f"{stack.urls['web']}/signin/{buyer_id}", timeout=10).raise_for_status()
    return web


def test_quality_return_of_a_delivered_order(stack):
    buyer = Buyer(stack.urls["rasa"], "buyer-3")  # 张女士: one delivered order, one 针织开衫

    # Given a delivered order, when the buyer says the seam opened and she wants to return it
    first = texts(buyer.says("衣服穿了一次就开线了，我要退货"))

    # Then the assistant apologises and, as the policy wants for quality, asks for photos
    assert "抱歉" in first and "照片" in first

    # When she uploads a photo in the shop window and the chat sends it along
    upload = signed_in(stack, 3).post(f"{stack.urls['web']}/api/me/evidence",
                                      files={"file": ("seam.jpg", JPEG, "image/jpeg")}, timeout=10)
    assert upload.status_code == 201
    quote = texts(replies := buyer.says(upload.json()["payload"]))

    # Then it names who pays the freight, shows the item and the computed refund, and asks to confirm
    assert "照片收到" in quote
    assert "来回运费都由商家承担" in quote
    assert "针织开衫" in quote and "¥199.00" in quote
    assert "确认提交" in [b["title"] for b in buttons(replies)]

    # When she confirms
    before = datetime.now(timezone.utc)
    done = texts(buyer.says("确认"))

    # Then the request exists, with the next step and its deadline
    assert "已为您提交退货退款申请" in done
    assert "72小时" in done and "自动同意" in done
    db = sqlite3.connect(stack.var_dir / "app.db")
    request_id, status, reason, refund, freight, deadline, words = db.execute(
        "select id, status, reason, refund_fen, freight_refund_fen, deadline_at, buyer_words from after_sales "
        "where buyer_id = 3").fetchone()
    assert (status, reason, refund + freight) == ("requested", "quality", 19900)
    assert "开线" in words
    due = datetime.fromisoformat(deadline).replace(tzinfo=timezone.utc)
    assert timedelta(hours=71, minutes=59) < due - before < timedelta(hours=72, minutes=5)
    assert db.execute("select count(*) from evidence where after_sale_id = ?", (request_id,)).fetchone() == (1,)
    assert db.execute("select count(*) from tasks where kind = 'phone_call' and after_sale_id = ?",
                      (request_id,)).fetchone() == (1,)


def test_buyer_with_several_orders_picks_order_and_item_with_buttons(stack):
    buyer = Buyer(stack.urls["rasa"], "buyer-1")
    replies = buyer.says("衣服起球了，质量太差，我要退货")
    order_button = next(b for b in buttons(replies) if "尾号0104" in b["title"])
    replies = buyer.says(order_button["payload"])
    knit = next(b for b in buttons(replies) if "针织开衫" in b["title"])
    replies = buyer.says(knit["payload"])
    assert "照片" in texts(replies)
    replies = buyer.says("/deny")  # photos later
    assert "¥182.33" in texts(replies)  # its share after the order discount
    done = texts(buyer.says("确认"))
    assert "已为您提交退货退款申请" in done


def test_shop_window_serves_orders_and_chat(stack):
    web = requests.Session()
    page = web.post(f"{stack.urls['web']}/signin/1", allow_redirects=True, timeout=10)
    assert "针织开衫" in page.text and "chat.js" in page.text
    config = web.get(f"{stack.urls['web']}/api/me/chat", timeout=10).json()
    assert config["session_id"] == "buyer-1" and config["buyer_token"]
    assert web.get(f"{stack.urls['web']}/vendor/socket.io/socket.io.min.js", timeout=10).status_code == 200
    requests_ = web.get(f"{stack.urls['web']}/api/me/after-sales", timeout=10).json()
    assert requests_, "buyer 1 applied in the test before"
    timeline = web.get(f"{stack.urls['web']}/api/me/after-sales/{requests_[0]['id']}/timeline", timeout=10).json()
    assert timeline[0]["action"] == "submit" and timeline[0]["role"] == "buyer"
    other = web.get(f"{stack.urls['web']}/api/me/after-sales/999999/timeline", timeout=10)
    assert other.status_code == 404 and other.json()["error"]["code"] == "request_not_found"


def test_rasa_http_api_needs_its_token(stack):
    response = requests.get(f"{stack.urls['rasa']}/conversations/buyer-1/tracker", timeout=10)
    assert response.status_code == 401
