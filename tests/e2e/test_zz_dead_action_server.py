"""A dead action server mid-conversation: the buyer gets an apology, and the conversation continues
where it was once the server is back. (Named to run last: it kills a process of the shared stack.)"""

from tests.e2e.chat import Buyer, texts


def test_dead_action_server_gives_an_apology_then_the_conversation_continues(stack):
    buyer = Buyer(stack.urls["rasa"], "buyer-1")
    replies = texts(buyer.says("裤子洗了一次就褪色了，质量有问题"))
    assert "哪一笔订单" in replies  # the form asks which order

    stack.kill("actions")
    apology = texts(buyer.says('/inform{"order_no":"202611200000000106"}'))
    assert "系统刚刚开了个小差" in apology and "Traceback" not in apology
    assert apology.count("系统刚刚开了个小差") == 1

    stack.restart("actions")
    resumed = texts(buyer.says('/inform{"order_no":"202611200000000106"}'))
    assert "照片" in resumed  # the form goes on from the order to the evidence step
