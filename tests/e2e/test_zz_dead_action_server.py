"""A dead action server mid-conversation: the message is not handled, the buyer gets an apology, and the
conversation continues where it was once the server is back, as in the production profile. (Named to run
last: it kills a process of the shared stack.)"""

import requests

from bot.ops.stack import rasa_token
from tests.e2e.chat import Buyer, texts


def test_dead_action_server_gives_an_apology_then_the_conversation_continues(stack):
    buyer = Buyer(stack.urls["rasa"], "buyer-1")
    replies = texts(buyer.says("裤子洗了一次就褪色了，质量有问题"))
    assert "哪一笔订单" in replies  # the form asks which order

    def stored_events() -> int:
        tracker = requests.get(f"{stack.urls['rasa']}/conversations/buyer-1/tracker",
                               params={"token": rasa_token(stack.env)}, timeout=10).json()
        return len(tracker["events"])

    before = stored_events()
    stack.kill("actions")
    status, answer = buyer.sends('/inform{"order_no":"202611200000000106"}')
    apology = texts(answer)
    assert status == 503 and len(answer) == 1
    assert "系统刚刚开了个小差" in apology and "Traceback" not in apology
    assert stored_events() == before  # nothing of the failed turn was kept

    stack.restart("actions")
    resumed = texts(buyer.says('/inform{"order_no":"202611200000000106"}'))
    assert "照片" in resumed  # the form goes on from the order to the evidence step
