"""Authorisation: a buyer reaching another buyer's order, a role reaching beyond itself, the staff API and
the webhooks without credentials, the console without sign-in, CSRF on console forms, and (in the running
production profile) Rasa's HTTP API without its token and the chat without a buyer token."""

import re

import pytest
import requests
from sqlalchemy import create_engine, text

from bot.identity import buyer_token
from tests.hostile.conftest import TRIED, signed_in_buyer, staff_headers

OTHERS_ORDER = "202611200000000201"  # buyer 2's delivered 羊毛大衣
NO_SUCH_ORDER = "209911200000000999"
HTTPS = "https://testserver"


def _db(app_env):  # type: ignore[no-untyped-def]
    return create_engine(app_env["BOT_DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://"))


@pytest.fixture(scope="module")
def others_request(app, app_env) -> int:
    """A request of buyer 2 (created by buyer 2 through the API)."""
    buyer2 = signed_in_buyer(app, 2)
    r = buyer2.post("/api/me/after-sales", json={"order_no": OTHERS_ORDER, "reason": "size"})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _state(app_env, request_id: int) -> tuple:  # type: ignore[no-untyped-def]
    engine = _db(app_env)
    with engine.connect() as conn:
        row = conn.execute(text("SELECT status, version FROM after_sales WHERE id = :i"), {"i": request_id}).one()
    engine.dispose()
    return tuple(row)


# ---------------------------------------------------------------- buyer against buyer


def test_buyer_sees_only_own_orders_and_requests(app, others_request):
    buyer1 = signed_in_buyer(app, 1)
    body = buyer1.get("/api/me/orders").text + buyer1.get("/api/me/after-sales").text + buyer1.get("/").text
    TRIED["authz buyer"] += 3
    assert OTHERS_ORDER not in body and "羊毛大衣" not in body and "王先生" not in body


def test_buyer_cannot_act_on_another_buyers_order_or_request(app, app_env, others_request):
    buyer1 = signed_in_buyer(app, 1)
    before = _state(app_env, others_request)
    attempts = {
        "apply": buyer1.post("/api/me/after-sales", json={"order_no": OTHERS_ORDER, "reason": "quality"}),
        "cancel order": buyer1.post(f"/api/me/orders/{OTHERS_ORDER}/cancel"),
        "cancel request": buyer1.post(f"/api/me/after-sales/{others_request}/cancel"),
        "escalate": buyer1.post(f"/api/me/after-sales/{others_request}/escalate"),
        "ship back": buyer1.post(f"/api/me/after-sales/{others_request}/ship-back",
                                 json={"tracking_no": "SF1234567890123"}),
        "timeline": buyer1.get(f"/api/me/after-sales/{others_request}/timeline"),
    }
    TRIED["authz buyer"] += len(attempts)
    for what, r in attempts.items():
        assert r.status_code in (403, 404), (what, r.status_code, r.text)
        assert "羊毛大衣" not in r.text and "王先生" not in r.text, what
    assert _state(app_env, others_request) == before


def test_another_buyers_order_answers_in_the_same_words_as_no_order(app):
    buyer1 = signed_in_buyer(app, 1)
    theirs = buyer1.post("/api/me/after-sales", json={"order_no": OTHERS_ORDER, "reason": "quality"})
    none = buyer1.post("/api/me/after-sales", json={"order_no": NO_SUCH_ORDER, "reason": "quality"})
    TRIED["authz buyer"] += 2
    assert theirs.json()["error"]["message"] == none.json()["error"]["message"]


def test_another_buyers_order_answers_with_the_same_status_as_no_order(app):
    buyer1 = signed_in_buyer(app, 1)
    theirs = buyer1.post("/api/me/after-sales", json={"order_no": OTHERS_ORDER, "reason": "quality"})
    none = buyer1.post("/api/me/after-sales", json={"order_no": NO_SUCH_ORDER, "reason": "quality"})
    TRIED["authz buyer"] += 2
    assert theirs.status_code == none.status_code
    assert theirs.json()["error"]["code"] == none.json()["error"]["code"]


# ---------------------------------------------------------------- staff roles


@pytest.mark.parametrize("user,action", [
    ("li", "pay_original_route"),  # a reviewer does not pay
    ("sun", "approve_return"),  # a cashier does not review
    ("xiaoer", "approve_return"),  # the platform arbitrates, it does not review
    ("qian", "approve_return"),  # finance does not review
    ("zhou", "ship_back"),  # staff cannot act as the buyer
    ("li", "escalate"),
])
def test_role_cannot_act_beyond_itself(app, app_env, others_request, user, action):
    client = signed_in_buyer(app, 3)
    before = _state(app_env, others_request)
    r = client.post(f"/api/staff/requests/{others_request}/actions", json={"action": action},
                    headers=staff_headers(client, user))
    TRIED["authz staff role"] += 1
    assert r.status_code in (403, 409), r.text
    assert _state(app_env, others_request) == before


@pytest.mark.parametrize("user,allowed", [("li", False), ("sun", False), ("xiaoer", False), ("qian", True),
                                          ("zhou", True)])
def test_ledger_only_for_finance_and_supervisor(client, user, allowed):
    r = client.get("/api/staff/ledger.csv", params={"start": "2026-01-01", "end": "2026-12-31"},
                   headers=staff_headers(client, user))
    TRIED["authz staff role"] += 1
    assert (r.status_code == 200) is allowed, r.status_code


def test_staff_api_without_valid_credentials(app, client, others_request):
    from itsdangerous import URLSafeTimedSerializer

    foreign = URLSafeTimedSerializer("another-installation", salt="staff-api").dumps({"id": 1})
    buyer = signed_in_buyer(app, 1)  # a buyer's session cookie is no staff credential
    for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": "Basic bGk6ZGVtby1saQ=="},
                    {"Authorization": f"Bearer {foreign}"}, {"Authorization": "Bearer " + "A" * 400},
                    {"Authorization": "Bearer e30.e30."}):
        for method, path in (("GET", "/api/staff/requests"), ("GET", f"/api/staff/requests/{others_request}"),
                             ("POST", f"/api/staff/requests/{others_request}/actions")):
            r = buyer.request(method, path, headers=headers, json={"action": "approve_return"})
            TRIED["authz staff credentials"] += 1
            assert r.status_code == 401, (headers, path, r.status_code)


def test_warehouse_webhook_needs_its_key(client):
    body = {"order_no": "202611200000000102", "courier": "SF", "tracking_no": "SF1234567890123"}
    for headers in ({}, {"X-Api-Key": ""}, {"X-Api-Key": "wrong"}, {"X-Api-Key": "hostile-integration-key "}):
        r = client.post("/api/integrations/warehouse/shipped", json=body, headers=headers)
        TRIED["authz webhook key"] += 1
        assert r.status_code == 401


# ---------------------------------------------------------------- console


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf"\s+value="([^"]+)"', html)
    assert match, "no CSRF token in the form"
    return match.group(1)


def console_signed_in(app, username: str):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    c = TestClient(app, raise_server_exceptions=False, base_url=HTTPS)  # the prod cookie is Secure
    page = c.get("/console/signin")
    r = c.post("/console/signin", data={"username": username, "password": f"demo-{username}",
                                        "csrf": _csrf(page.text), "next": "/console/queue"}, follow_redirects=False)
    assert r.status_code in (302, 303), r.text[:300]
    return c


def test_console_needs_sign_in(client, others_request):
    for path in ("/console/queue", f"/console/requests/{others_request}", "/console/tasks", "/console/analytics",
                 "/console/ledger.csv?start=2026-01-01&end=2026-12-31", "/console/evidence/1"):
        r = client.get(path, follow_redirects=False)
        TRIED["authz console"] += 1
        assert r.status_code in (302, 303, 307, 401, 403), (path, r.status_code)
        assert "羊毛大衣" not in r.text and "王先生" not in r.text


def test_console_forms_refuse_posts_without_the_right_csrf_token(app, app_env, others_request):
    reviewer = console_signed_in(app, "li")
    page = reviewer.get(f"/console/requests/{others_request}")
    assert page.status_code == 200
    good = _csrf(page.text)
    before = _state(app_env, others_request)
    for token in ("", "x", good[:-1] + ("A" if good[-1] != "A" else "B"), good + "x"):
        r = reviewer.post(f"/console/requests/{others_request}/actions", data={"csrf": token, "action": "reject",
                                                                              "reason": "CSRF"},
                          follow_redirects=False)
        TRIED["authz console CSRF"] += 1
        assert r.status_code == 403, (token, r.status_code)
        assert _state(app_env, others_request) == before
    # Another person's (an attacker's own, valid) token does not work in this session either.
    attacker = console_signed_in(app, "wang")
    theirs = _csrf(attacker.get(f"/console/requests/{others_request}").text)
    r = reviewer.post(f"/console/requests/{others_request}/actions", data={"csrf": theirs, "action": "reject",
                                                                          "reason": "CSRF"}, follow_redirects=False)
    TRIED["authz console CSRF"] += 1
    assert r.status_code == 403 and _state(app_env, others_request) == before
    # Without the session cookie at all (a cross-site form post from elsewhere): refused.
    from fastapi.testclient import TestClient

    r = TestClient(app, raise_server_exceptions=False, base_url=HTTPS).post(
        f"/console/requests/{others_request}/actions", data={"csrf": good, "action": "reject", "reason": "x"},
        follow_redirects=False)
    TRIED["authz console CSRF"] += 1
    assert r.status_code in (302, 303, 401, 403) and _state(app_env, others_request) == before


def test_console_session_cookie_is_not_sent_cross_site(app):
    from fastapi.testclient import TestClient

    c = TestClient(app, raise_server_exceptions=False, base_url=HTTPS)
    page = c.get("/console/signin")
    r = c.post("/console/signin", data={"username": "li", "password": "demo-li", "csrf": _csrf(page.text)},
               follow_redirects=False)
    cookies = ";".join(r.headers.get_list("set-cookie")).lower()
    TRIED["authz console"] += 1
    assert "httponly" in cookies and "samesite=strict" in cookies and "secure" in cookies


# ---------------------------------------------------------------- Rasa and the chat (production profile)


RASA_API = [("GET", "/status"), ("GET", "/domain"), ("GET", "/conversations/buyer-1/tracker"),
            ("POST", "/conversations/buyer-1/tracker/events"), ("POST", "/conversations/buyer-1/trigger_intent"),
            ("POST", "/conversations/buyer-1/messages"), ("POST", "/model/parse"), ("PUT", "/model"),
            ("POST", "/model/train"), ("DELETE", "/model"), ("GET", "/conversations/buyer-1/story")]


def test_rasa_http_api_needs_its_token(prod_stack):
    urls = [prod_stack.urls["rasa"]] + [f"http://127.0.0.1:{p}" for p in prod_stack.cfg.ports.rasa_replicas]
    for base in urls:
        for method, path in RASA_API:
            for params in ({}, {"token": "wrong"}, {"token": ""}):
                r = requests.request(method, base + path, params=params, json={"text": "hi", "event": "restart",
                                                                              "name": "greet"}, timeout=10)
                TRIED["authz rasa api"] += 1
                assert r.status_code in (401, 403), (base, method, path, params, r.status_code)
    ok = requests.get(prod_stack.urls["rasa"] + "/status", params={"token": prod_stack.token}, timeout=10)
    assert ok.status_code == 200


def _say(prod_stack, sender: str, message: str, metadata: dict | None = None) -> str:  # type: ignore[no-untyped-def]
    body = {"sender": sender, "message": message}
    if metadata is not None:
        body["metadata"] = metadata
    r = requests.post(prod_stack.urls["rasa"] + "/webhooks/rest/webhook", json=body, timeout=120)
    TRIED["authz chat"] += 1
    assert r.status_code in (200, 503)
    return "\n".join(m.get("text") or "" for m in r.json())


def test_chat_without_buyer_token_reveals_nothing(prod_stack):
    for message in ("我的退款到哪了", "我要退货", "/inform{\"order_no\":\"202611200000000104\"}", "确认"):
        for metadata in (None, {}, {"buyer_token": "forged"}, {"buyer_token": buyer_token(1, "wrong-key")}):
            reply = _say(prod_stack, "buyer-1", message, metadata)
            assert "0104" not in reply and "针织开衫" not in reply and "林小姐" not in reply, reply


def test_chat_with_another_buyers_token_reaches_only_that_buyer(prod_stack):
    """Buyer 2, signed in, writes into buyer 1's conversation id: the bot acts as buyer 2, never for buyer 1."""
    mine = {"buyer_token": buyer_token(1, prod_stack.secret_key)}
    theirs = {"buyer_token": buyer_token(2, prod_stack.secret_key)}
    _say(prod_stack, "buyer-1", "衣服起球了，质量太差，我要退货", mine)  # buyer 1 starts on her own
    for message in ("我的退款到哪了", "确认", "/inform{\"order_no\":\"202611200000000104\"}", "/inform{\"picks\":\"all\"}",
                    "退款明细给我看看"):
        reply = _say(prod_stack, "buyer-1", message, theirs)
        assert "0104" not in reply and "针织开衫" not in reply and "林小姐" not in reply, reply
    engine = create_engine(prod_stack.cfg.app_database_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        wrong = conn.execute(text("SELECT count(*) FROM after_sales a JOIN orders o ON o.id = a.order_id "
                                  "WHERE a.buyer_id <> o.buyer_id")).scalar()
    engine.dispose()
    assert wrong == 0
