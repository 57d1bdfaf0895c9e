"""The console over HTTP: sign-in, roles checked on the server, CSRF, escaping, scripts, take over, hand back."""

import re
import shutil
from dataclasses import replace

from fastapi.testclient import TestClient
from sqlalchemy import select

from bot.domain.workflow import Role
from bot.persistence.models import AfterSale, Event, Evidence, Task
from bot.services import after_sales
from bot.services.after_sales import Actor
from bot.services.evidence import save_evidence
from bot.web.app import create_app
from tests.console.conftest import csrf_of

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 200 + b"\xff\xd9"
LI = Actor("staff:li", Role.REVIEWER)


def quality_request(console, words: str = "穿了一次就开线了") -> int:
    return after_sales.submit(console.svc, buyer_id=3, order_no="202611200000000301", reason="quality",
                              words=words).id


def status_of(console, request_id: int) -> str:
    with console.svc.sessions() as session:
        return session.get(AfterSale, request_id).status


def cod_awaiting_cashier(console) -> int:
    """Buyer 1's cash-on-delivery trousers, returned and checked: the cashier must transfer now."""
    svc = console.svc
    view = after_sales.submit(svc, buyer_id=1, order_no="202611200000000106", reason="size", resolution="return",
                              account="alipay:13812345678")
    after_sales.act(svc, view.id, "approve_return", actor=LI)
    after_sales.ship_back(svc, view.id, buyer_id=1, tracking_no="SF1234567890123")
    after_sales.act(svc, view.id, "confirm_receipt", actor=LI)
    after_sales.act(svc, view.id, "check_offline", actor=LI)
    after_sales.act(svc, view.id, "confirm_money_received", actor=Actor("staff:qian", Role.FINANCE))
    return view.id


# ---------------------------------------------------------------- sign-in


def test_pages_need_a_signed_in_staff_member(console):
    response = console.client.get("/console/queue", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/console/signin")


def test_signin_page_shows_the_demo_accounts_and_refuses_a_wrong_password(console):
    page = console.client.get("/console/signin").text
    for username in ("li", "wang", "zhou", "qian", "sun", "xiaoer"):
        assert f"demo-{username}" in page
    response = console.client.post("/console/signin", data={"username": "li", "password": "nope",
                                                            "csrf": csrf_of(page)})
    assert response.status_code == 401 and "用户名或密码不对" in response.text


def test_signin_without_the_form_token_is_refused(console):
    console.client.get("/console/signin")
    response = console.client.post("/console/signin", data={"username": "li", "password": "demo-li", "csrf": "x"},
                                   follow_redirects=False)
    assert response.status_code == 403
    assert console.client.get("/console/queue", follow_redirects=False).status_code == 303


def test_signin_does_not_redirect_outside_the_console(console):
    page = console.client.get("/console/signin").text
    response = console.client.post("/console/signin", data={
        "username": "li", "password": "demo-li", "csrf": csrf_of(page), "next": "https://evil.example/"},
        follow_redirects=False)
    assert response.headers["location"] == "/console/queue"


# ---------------------------------------------------------------- queue


def test_queue_is_sorted_by_nearest_deadline_and_filtered(console, clock):
    later = quality_request(console)
    clock.advance(hours=-10)  # submitted earlier: its review deadline comes first
    sooner = after_sales.submit(console.svc, buyer_id=2, order_no="202611200000000201", reason="size",
                                resolution="return").id
    clock.advance(hours=10)
    console.sign_in("li")
    page = console.client.get("/console/queue").text
    assert page.index(f'data-request="{sooner}"') < page.index(f'data-request="{later}"')
    only_size = console.client.get("/console/queue", params={"reason": "size"}).text
    assert f'data-request="{sooner}"' in only_size and f'data-request="{later}"' not in only_size
    assert 'data-request' not in console.client.get("/console/queue", params={"overdue": "1"}).text
    clock.advance(hours=80)
    overdue = console.client.get("/console/queue", params={"overdue": "1"}).text
    assert f'data-request="{later}"' in overdue and 'class="overdue"' in overdue


def test_each_role_sees_its_own_turn_by_default(console):
    request_id = quality_request(console)
    console.sign_in("sun")  # cashier: nothing to do on a request under review
    assert f'data-request="{request_id}"' not in console.client.get("/console/queue").text
    assert f'data-request="{request_id}"' in console.client.get("/console/queue", params={"mine": "0"}).text


# ---------------------------------------------------------------- the request page


def test_request_page_shows_facts_and_escapes_buyer_text(console):
    request_id = quality_request(console, words="<script>alert(1)</script>开线了")
    console.rasa.tracker("buyer-3")["events"].append(
        {"event": "user", "text": "<img src=x onerror=alert(2)>", "timestamp": 1.0, "parse_data": {}})
    console.sign_in("li")
    response = console.client.get(f"/console/requests/{request_id}")
    page = response.text
    assert "针织开衫" in page and "¥199.00" in page and "质量问题" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;开线了" in page and "<script>alert(1)" not in page
    assert "&lt;img src=x onerror=alert(2)&gt;" in page and "<img src=x" not in page
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert 'data-action="approve_return"' in page and 'data-action="reject"' in page
    assert 'data-script="approve_return"' in page


def test_reviewer_approves_and_the_step_is_audited(console):
    request_id = quality_request(console)
    csrf = console.sign_in("li")
    response = console.client.post(f"/console/requests/{request_id}/actions",
                                   data={"csrf": csrf, "action": "approve_return", "version": 1})
    assert response.status_code == 200 and "已完成：同意退货" in response.text
    assert status_of(console, request_id) == "awaiting_return"
    with console.svc.sessions() as session:
        event = session.scalar(select(Event).where(Event.after_sale_id == request_id,
                                                   Event.action == "approve_return"))
    assert event.actor == "staff:li"


def test_rejection_needs_a_reason_and_the_reason_is_recorded(console):
    request_id = quality_request(console)
    csrf = console.sign_in("li")
    refused = console.client.post(f"/console/requests/{request_id}/actions",
                                  data={"csrf": csrf, "action": "reject", "reason": "  ", "version": 1})
    assert refused.status_code == 422 and "必须填写原因" in refused.text
    assert status_of(console, request_id) == "requested"
    console.client.post(f"/console/requests/{request_id}/actions",
                        data={"csrf": csrf, "action": "reject", "reason": "照片看不出开线", "version": 1})
    assert status_of(console, request_id) == "rejected"
    page = console.client.get(f"/console/requests/{request_id}").text
    assert "照片看不出开线" in page and 'data-script="explain_rejection"' in page


def test_a_stale_page_cannot_overwrite_someone_elses_step(console):
    request_id = quality_request(console)
    after_sales.act(console.svc, request_id, "approve_return", actor=Actor("staff:wang", Role.REVIEWER))
    csrf = console.sign_in("li")
    response = console.client.post(f"/console/requests/{request_id}/actions",
                                   data={"csrf": csrf, "action": "approve_return", "version": 1})
    assert response.status_code == 409


def test_reviewer_cannot_record_a_cashiers_transfer_even_by_a_forged_form(console):
    request_id = cod_awaiting_cashier(console)
    csrf = console.sign_in("li")
    page = console.client.get(f"/console/requests/{request_id}").text
    assert 'data-action="record_transfer"' not in page
    response = console.client.post(f"/console/requests/{request_id}/actions",
                                   data={"csrf": csrf, "action": "record_transfer", "version": 6})
    assert response.status_code == 403 and "没有“登记转账”的权限" in response.text
    assert status_of(console, request_id) == "awaiting_cashier"

    csrf = console.sign_in("sun")
    page = console.client.get(f"/console/requests/{request_id}").text
    assert 'data-action="record_transfer"' in page and "13812345678" in page  # the cashier needs it in full
    version = re.search(r'name="version" value="(\d+)"', page).group(1)
    console.client.post(f"/console/requests/{request_id}/actions",
                        data={"csrf": csrf, "action": "record_transfer", "version": version})
    assert status_of(console, request_id) == "refunded"


def test_a_post_without_the_sessions_token_does_nothing(console):
    request_id = quality_request(console)
    console.sign_in("li")
    response = console.client.post(f"/console/requests/{request_id}/actions",
                                   data={"csrf": "forged", "action": "approve_return", "version": 1})
    assert response.status_code == 403 and "页面已过期" in response.text
    assert status_of(console, request_id) == "requested"


# ---------------------------------------------------------------- scripts, take over, hand back


def test_a_script_the_policy_forbids_is_blocked_and_nothing_reaches_the_buyer(console):
    request_id = after_sales.submit(console.svc, buyer_id=2, order_no="202611200000000201", reason="size",
                                    resolution="return").id
    csrf = console.sign_in("li")
    response = console.client.post(f"/console/requests/{request_id}/send", data={
        "csrf": csrf, "script_id": "approve_return", "text": "亲，运费我们承担，马上给您退款！"})
    assert response.status_code == 422
    assert "不能承诺由商家承担运费" in response.text and "不能说已经退款或马上退款" in response.text
    assert "亲，运费我们承担，马上给您退款！" in response.text  # the draft is kept for editing
    assert console.rasa.calls_for("buyer-2") == []


def test_an_edited_script_reaches_the_buyers_conversation_and_is_audited(console):
    request_id = quality_request(console)
    csrf = console.sign_in("li")
    page = console.client.get(f"/console/requests/{request_id}").text
    script = re.search(r'data-script="approve_return".*?<textarea[^>]*>(.*?)</textarea>', page, re.DOTALL).group(1)
    edited = script.replace("&amp;", "&") + "我是李客服。"
    response = console.client.post(f"/console/requests/{request_id}/send",
                                   data={"csrf": csrf, "script_id": "approve_return", "text": edited})
    assert response.status_code == 200 and "消息已发送" in response.text
    # resumed and given a listening step first, so the rules see the agent's words as a fresh turn
    assert console.rasa.calls_for("buyer-3") == [
        ("tracker/events", [{"event": "resume"}, {"event": "action", "name": "action_listen"}]),
        ("trigger_intent", {"name": "EXTERNAL_agent_message", "entities": {"agent_text": edited}})]
    assert "我是李客服。" in response.text  # shown in the conversation as the agent's words
    with console.svc.sessions() as session:
        event = session.scalar(select(Event).where(Event.action == "agent_message"))
    assert event.after_sale_id == request_id and event.data["script_id"] == "approve_return"


def test_take_over_pauses_the_bot_messages_resume_for_delivery_and_hand_back_resumes(console):
    request_id = quality_request(console)
    csrf = console.sign_in("li")
    console.client.post(f"/console/requests/{request_id}/takeover", data={"csrf": csrf})
    with console.svc.sessions() as session:
        task = session.scalar(select(Task).where(Task.kind == "handoff", Task.buyer_id == 3))
        assert (task.status, task.taken_by) == ("taken", "staff:li")
    assert console.rasa.tracker("buyer-3")["paused"] is True
    page = console.client.get(f"/console/requests/{request_id}").text
    assert 'data-paused="1"' in page

    console.client.post(f"/console/requests/{request_id}/send", data={"csrf": csrf, "text": "亲，我来帮您看看～"})
    console.client.post(f"/console/requests/{request_id}/handback", data={"csrf": csrf})
    assert [c[0] for c in console.rasa.calls_for("buyer-3")] == [
        "tracker/events", "tracker/events", "trigger_intent", "tracker/events", "trigger_intent"]
    bodies = [c[1] for c in console.rasa.calls_for("buyer-3")]
    listening = [{"event": "resume"}, {"event": "action", "name": "action_listen"}]
    assert bodies[0] == [{"event": "pause"}] and bodies[1] == listening
    assert bodies[3] == listening and bodies[4]["name"] == "EXTERNAL_handback"
    with console.svc.sessions() as session:
        assert session.get(Task, task.id).status == "done"


def test_roles_that_do_not_face_buyers_cannot_send_or_take_over(console):
    request_id = quality_request(console)
    csrf = console.sign_in("qian")
    assert console.client.post(f"/console/requests/{request_id}/send",
                               data={"csrf": csrf, "text": "亲，您好"}).status_code == 403
    assert console.client.post(f"/console/requests/{request_id}/takeover", data={"csrf": csrf}).status_code == 403
    assert console.rasa.calls_for("buyer-3") == []


# ---------------------------------------------------------------- photos, tasks, analytics, ledger


def test_evidence_photos_are_served_to_staff_only_once_attached(console):
    attached = save_evidence(console.svc, buyer_id=3, data=JPEG)
    loose = save_evidence(console.svc, buyer_id=3, data=JPEG)
    request_id = after_sales.submit(console.svc, buyer_id=3, order_no="202611200000000301", reason="quality",
                                    evidence_ids=[attached]).id
    assert console.client.get(f"/console/evidence/{attached}", follow_redirects=False).status_code == 303
    console.sign_in("li")
    photo = console.client.get(f"/console/evidence/{attached}")
    assert photo.status_code == 200 and photo.headers["content-type"] == "image/jpeg" and photo.content == JPEG
    assert photo.headers["x-content-type-options"] == "nosniff"
    assert console.client.get(f"/console/evidence/{loose}").status_code == 404
    assert f'src="/console/evidence/{attached}"' in console.client.get(f"/console/requests/{request_id}").text


def test_an_uploaded_photo_is_kept_in_the_database_and_served_by_any_replica(console, tmp_path):
    buyer = TestClient(console.client.app)
    assert buyer.post("/signin/3", follow_redirects=False).status_code == 303
    upload = buyer.post("/api/me/evidence", files={"file": ("seam.jpg", JPEG, "image/jpeg")})
    assert upload.status_code == 201, upload.text
    photo_id = upload.json()["id"]
    with console.svc.sessions() as session:
        row = session.get(Evidence, photo_id)
        assert row.data == JPEG and row.path is None and row.size == len(JPEG)
    after_sales.submit(console.svc, buyer_id=3, order_no="202611200000000301", reason="quality",
                       evidence_ids=[photo_id])
    # Nothing on this machine's disk: even with its var/evidence gone, the photo is still there.
    assert not list((console.var_dir / "evidence").rglob("*"))
    shutil.rmtree(console.var_dir / "evidence", ignore_errors=True)
    console.sign_in("li")
    served = console.client.get(f"/console/evidence/{photo_id}")
    assert served.status_code == 200 and served.content == JPEG and served.headers["content-type"] == "image/jpeg"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert served.headers["cache-control"] == "private, max-age=300"
    assert served.headers["content-security-policy"] == "default-src 'none'; sandbox"
    # Another replica: same database, a var/ directory of its own that is empty.
    elsewhere = tmp_path / "other-replica-var"
    elsewhere.mkdir()
    other = TestClient(create_app(replace(console.client.app.state.settings, var_dir=elsewhere), console.svc))
    other.cookies.update(console.client.cookies)
    again = other.get(f"/console/evidence/{photo_id}")
    assert again.status_code == 200 and again.content == JPEG


def _legacy_row(console, path: str | None) -> int:
    """A photo stored the way it was before migration 0005: a file under var/, no bytes in the row."""
    with console.svc.sessions() as session, session.begin():
        row = Evidence(buyer_id=3, path=path, data=None, content_type="image/jpeg", size=len(JPEG),
                       uploaded_at=console.svc.clock.now())
        session.add(row)
        session.flush()
        return row.id


def test_a_photo_uploaded_before_the_change_is_still_served_from_its_file(console):
    legacy_jpeg = JPEG[:-2] + b"legacy" + b"\xff\xd9"
    (console.var_dir / "evidence" / "3").mkdir(parents=True)
    (console.var_dir / "evidence" / "3" / "old.jpg").write_bytes(legacy_jpeg)
    (console.var_dir.parent / "outside.jpg").write_bytes(legacy_jpeg)
    legacy = _legacy_row(console, "evidence/3/old.jpg")
    gone = _legacy_row(console, "evidence/3/deleted.jpg")
    empty = _legacy_row(console, None)
    escaping = _legacy_row(console, "../outside.jpg")
    after_sales.submit(console.svc, buyer_id=3, order_no="202611200000000301", reason="quality",
                       evidence_ids=[legacy, gone, empty, escaping])
    console.sign_in("li")
    served = console.client.get(f"/console/evidence/{legacy}")
    assert served.status_code == 200 and served.content == legacy_jpeg
    assert served.headers["content-type"] == "image/jpeg" and served.headers["x-content-type-options"] == "nosniff"
    for missing in (gone, empty, escaping, 999999):
        assert console.client.get(f"/console/evidence/{missing}").status_code == 404, missing


def test_tasks_are_shown_and_worked_only_by_their_roles(console):
    quality_request(console)  # a quality return-and-refund opens a phone-call task
    console.sign_in("li")
    page = console.client.get("/console/tasks").text
    task_id = int(re.search(r'data-task="(\d+)" data-kind="phone_call"', page).group(1))
    csrf = console.sign_in("sun")
    assert "data-task=" not in console.client.get("/console/tasks").text
    assert console.client.post(f"/console/tasks/{task_id}/move", data={"csrf": csrf, "to": "done"}).status_code == 403
    csrf = console.sign_in("li")
    console.client.post(f"/console/tasks/{task_id}/move", data={"csrf": csrf, "to": "done"})
    with console.svc.sessions() as session:
        assert session.get(Task, task_id).status == "done"


def test_analytics_page_draws_the_charts_for_allowed_roles(console):
    quality_request(console)
    console.sign_in("zhou")
    page = console.client.get("/console/analytics")
    assert page.status_code == 200
    assert 'id="chart-products"' in page.text and 'id="chart-weeks"' in page.text and "针织开衫" in page.text
    console.sign_in("sun")
    assert console.client.get("/console/analytics").status_code == 403


def test_ledger_is_for_finance_and_supervisors(console, clock):
    request_id = cod_awaiting_cashier(console)
    after_sales.act(console.svc, request_id, "record_transfer", actor=Actor("staff:sun", Role.CASHIER))
    day = clock.now().date().isoformat()
    console.sign_in("qian")
    ledger = console.client.get("/console/ledger.csv", params={"start": day, "end": day})
    assert ledger.status_code == 200 and "202611200000000106" in ledger.text
    console.sign_in("li")
    assert console.client.get("/console/ledger.csv", params={"start": day, "end": day}).status_code == 403


def test_conversation_lines_mark_the_agents_words_and_hide_the_apps_own_triggers():
    from bot.web.console import conversation_lines

    tracker = {"events": [
        {"event": "user", "text": "衣服开线了", "timestamp": 1.0, "parse_data": {"intent": {"name": "reason_quality"}}},
        {"event": "bot", "text": "非常抱歉～", "timestamp": 2.0, "data": {"buttons": [{"title": "确认提交"}]}},
        {"event": "user", "text": '/rate{"rating":"5"}', "timestamp": 3.0, "parse_data": {"intent": {"name": "rate"}}},
        {"event": "pause", "timestamp": 4.0},
        {"event": "user", "text": "EXTERNAL: EXTERNAL_agent_message", "timestamp": 5.0,
         "parse_data": {"intent": {"name": "EXTERNAL_agent_message"}}},
        {"event": "bot", "text": "亲，我是李客服", "timestamp": 5.0},
        {"event": "resume", "timestamp": 6.0},
    ]}
    lines = [(m["from"], m["text"]) for m in conversation_lines(tracker)]
    assert lines == [("buyer", "衣服开线了"), ("bot", "非常抱歉～"), ("buyer", "[评分] 5分"),
                     ("system", "人工接管，机器人暂停"), ("agent", "亲，我是李客服"), ("system", "机器人恢复接待")]
    assert conversation_lines(tracker)[1]["buttons"] == ["确认提交"]
    assert conversation_lines(None) == []
