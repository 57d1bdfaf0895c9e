"""The agent console (客服工作台): server-rendered pages for staff, mounted at /console.

Thin like the rest of bot/web: services decide; this module checks who is signed in, which role may
do what (on the server, whatever the page shows), the CSRF token of every form, and talks to Rasa's
HTTP API to show a conversation, pause or resume the bot, and deliver an agent's words.
"""

import hmac
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select

from bot.clock import format_local
from bot.domain.errors import DomainError, Forbidden, InvalidInput, NotFound
from bot.domain.money import yuan
from bot.domain.workflow import FINAL, MOVES, Role, Status, actions_for
from bot.persistence.models import AfterSale, Buyer, Shop
from bot.services import after_sales, analytics, conversation, scripts, tasks
from bot.services.context import Services
from bot.services.evidence import evidence_photo
from bot.services.queue import QueueFilter, detail, ledger_csv, queue
from bot.services.staff import DEMO_STAFF, BadCredentials, StaffView, authenticate, demo_password
from bot.settings import Settings

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
COOKIE = "console_session"
SESSION_SALT = "console-session"
SESSION_MAX_AGE_S = 12 * 3600

# Who may talk to buyers (send scripts, take over, hand back): the people who face them.
CHAT_ROLES = frozenset({Role.REVIEWER, Role.SUPERVISOR, Role.ARBITRATOR})
ANALYTICS_ROLES = frozenset({Role.REVIEWER, Role.SUPERVISOR, Role.FINANCE})
LEDGER_ROLES = frozenset({Role.FINANCE, Role.SUPERVISOR})
# Which tasks each role works; a low follow-up rating goes to a supervisor.
TASK_ROLES: dict[str, frozenset[Role]] = {
    "phone_call": frozenset({Role.REVIEWER, Role.SUPERVISOR}),
    "handoff": CHAT_ROLES,
    "scam_report": frozenset({Role.REVIEWER, Role.SUPERVISOR}),
    "low_rating": frozenset({Role.SUPERVISOR}),
}
# Every action a role can take in some status: a form asking for anything else is forged.
ROLE_ACTIONS: dict[Role, frozenset[str]] = {
    role: frozenset(m.action for m in MOVES if role in m.roles) for role in Role
}
NEEDS_REASON = frozenset(m.action for m in MOVES if m.needs_reason)

ROLE_LABELS = {"reviewer": "客服", "supervisor": "客服主管", "finance": "财务", "cashier": "出纳",
               "arbitrator": "平台小二", "buyer": "买家", "system": "系统"}
KIND_LABELS = {"refund_only": "仅退款", "return_refund": "退货退款", "exchange": "换货"}
ACTION_LABELS = {
    "approve_return": "同意退货", "approve_refund": "同意退款", "reject": "拒绝", "seller_shipped": "已发货，关闭退款",
    "confirm_receipt": "确认收货", "confirm_receipt_exchange": "确认收货（换货）", "refuse_refund": "拒绝退款",
    "arbitrate_for_buyer": "裁定支持买家", "arbitrate_for_seller": "裁定支持卖家", "check_online": "初审通过（线上）",
    "pay_original_route": "确认退款（原路退回）", "check_offline": "初审通过（货到付款）",
    "confirm_money_received": "确认已收到货款", "close_nothing_collected": "关闭（未发货未收款）",
    "record_transfer": "登记转账", "ship_replacement": "寄出换货", "submit": "提交申请", "ship_back": "买家寄回",
    "escalate": "申请平台介入", "modify": "修改申请", "expire": "超时", "cancel": "撤销申请",
    "express_refund": "极速退款", "agent_message": "客服发送消息", "order_shipped": "订单发货",
}
TASK_LABELS = {"phone_call": "电话沟通", "handoff": "转人工", "scam_report": "诈骗举报", "low_rating": "回访低分"}
DEADLINE_LABELS = {"review": "审核", "escalate_after_rejection": "维权期", "ship_back": "寄回",
                   "confirm_receipt": "确认收货", "escalate_after_refusal": "维权期"}
DONE_MESSAGES = {**{k: f"已完成：{v}" for k, v in ACTION_LABELS.items()},
                 "sent": "消息已发送到买家的对话", "takeover": "已接手对话，机器人已暂停",
                 "handback": "已交还机器人，对话已恢复", "task": "任务已更新"}


@dataclass(frozen=True)
class Session:
    staff: StaffView | None
    csrf: str


# ---------------------------------------------------------------- Rasa's HTTP API




def conversation_lines(tracker: dict | None) -> list[dict]:
    """Buyer, bot and agent messages of a tracker, oldest first, with pauses and resumes marked."""
    lines: list[dict] = []
    from_agent = False
    for event in (tracker or {}).get("events", []):
        kind = event.get("event")
        at = datetime.fromtimestamp(event.get("timestamp") or 0, tz=timezone.utc)
        if kind == "user":
            intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name") or ""
            text = event.get("text") or ""
            from_agent = intent == "EXTERNAL_agent_message"
            if text.startswith("EXTERNAL") or intent.startswith("EXTERNAL_"):
                continue  # sent by the app through the HTTP API, not typed by the buyer
            if text.startswith("/"):
                lines.append({"from": "buyer", "text": _payload_label(text), "at": at, "muted": True})
            else:
                lines.append({"from": "buyer", "text": text, "at": at})
        elif kind == "bot":
            data = event.get("data") or {}
            lines.append({"from": "agent" if from_agent else "bot", "text": event.get("text") or "", "at": at,
                          "buttons": [b.get("title", "") for b in data.get("buttons") or []]})
        elif kind == "pause":
            lines.append({"from": "system", "text": "人工接管，机器人暂停", "at": at})
        elif kind == "resume":
            lines.append({"from": "system", "text": "机器人恢复接待", "at": at})
    return lines


def _payload_label(payload: str) -> str:
    """A button the buyer pressed (its payload is all the tracker keeps), in words for the agent."""
    if "evidence_id" in payload:
        return "[照片]"
    rating = re.search(r'"rating"\s*:\s*"?([1-5])', payload)
    if payload.startswith("/rate") and rating:
        return f"[评分] {rating.group(1)}分"
    return f"[点了按钮] {payload[1:].split('{')[0]}"


# ---------------------------------------------------------------- charts (inline SVG geometry)

REASON_COLORS = {"quality": "#c0392b", "size": "#e67e22", "color_difference": "#8e44ad", "dislike": "#2980b9",
                 "wrong_item": "#16a085", "missing_item": "#27ae60", "not_as_described": "#d35400",
                 "other": "#7f8c8d"}


def stacked_bars(rows: list[tuple[str, dict[str, int]]], *, width: int = 560, bar: int = 22,
                 gap: int = 10, label_w: int = 120) -> dict:
    """Horizontal stacked bars, one per row (label, counts per reason)."""
    top = max((sum(c.values()) for _, c in rows), default=0) or 1
    scale = (width - label_w - 40) / top
    out = []
    for i, (label, counts) in enumerate(rows):
        y, x = i * (bar + gap), float(label_w)
        segments = []
        for reason, n in counts.items():
            w = n * scale
            segments.append({"x": round(x, 1), "w": round(w, 1), "color": REASON_COLORS.get(reason, "#999"),
                             "reason": reason, "n": n})
            x += w
        out.append({"label": label, "y": y, "text_y": y + bar * 0.7, "segments": segments,
                    "total": sum(counts.values()), "end": round(x + 6, 1)})
    return {"rows": out, "width": width, "height": max(len(rows) * (bar + gap), bar), "bar": bar,
            "label_w": label_w}


def stacked_columns(rows: list[tuple[str, dict[str, int]]], *, height: int = 220, col: int = 34,
                    gap: int = 18) -> dict:
    """Vertical stacked columns, one per week."""
    top = max((sum(c.values()) for _, c in rows), default=0) or 1
    plot = height - 50  # room above for the totals and below for the week labels
    out = []
    for i, (label, counts) in enumerate(rows):
        x = 30 + i * (col + gap)
        y = float(plot + 20)
        segments = []
        for reason, n in counts.items():
            h = n * plot / top
            y -= h
            segments.append({"y": round(y, 1), "h": round(h, 1), "color": REASON_COLORS.get(reason, "#999"),
                             "reason": reason, "n": n})
        out.append({"label": label, "x": x, "segments": segments, "total": sum(counts.values()),
                    "top": round(y - 4, 1)})
    return {"cols": out, "width": max(30 + len(rows) * (col + gap), 200), "height": height, "col": col,
            "base": plot + 20}


# ---------------------------------------------------------------- the router


def console_router(svc: Services, settings: Settings) -> APIRouter:
    """Pages and form posts of the agent console; include with prefix /console."""
    r = APIRouter(include_in_schema=False)
    templates = Jinja2Templates(directory=HERE / "templates")
    env = templates.env
    env.globals.update(REASON_LABELS=scripts.labels("reason"), STATUS_LABELS=scripts.labels("status"),
                       ROLE_LABELS=ROLE_LABELS, KIND_LABELS=KIND_LABELS, ACTION_LABELS=ACTION_LABELS,
                       TASK_LABELS=TASK_LABELS, DEADLINE_LABELS=DEADLINE_LABELS, REASON_COLORS=REASON_COLORS,
                       NEEDS_REASON=NEEDS_REASON)
    env.filters["yuan"] = yuan
    env.filters["local"] = lambda at: format_local(at) if at else ""
    serializer = URLSafeTimedSerializer(settings.secret_key, salt=SESSION_SALT)

    # ---- session, CSRF and roles

    def load_session(request: Request) -> Session:
        raw = request.cookies.get(COOKIE)
        data: dict = {}
        if raw:
            try:
                data = serializer.loads(raw, max_age=SESSION_MAX_AGE_S)
            except (BadSignature, SignatureExpired):
                data = {}
        staff = None
        if data.get("staff"):
            staff = StaffView(int(data["staff"]["id"]), data["staff"]["username"], data["staff"]["name"],
                              Role(data["staff"]["role"]))
        return Session(staff, str(data.get("csrf") or ""))

    def save_session(response: Response, session: Session) -> None:
        payload: dict[str, Any] = {"csrf": session.csrf}
        if session.staff is not None:
            s = session.staff
            payload["staff"] = {"id": s.id, "username": s.username, "name": s.name, "role": s.role.value}
        response.set_cookie(COOKIE, serializer.dumps(payload), httponly=True, samesite="strict",
                            secure=settings.is_production, path="/console", max_age=SESSION_MAX_AGE_S)

    def page(request: Request, name: str, session: Session, context: dict, status: int = 200) -> HTMLResponse:
        response = templates.TemplateResponse(request, f"console/{name}", {
            **context, "me": session.staff, "csrf": session.csrf, "now": svc.clock.now(),
            "can_analytics": session.staff is not None and session.staff.role in ANALYTICS_ROLES,
            "can_ledger": session.staff is not None and session.staff.role in LEDGER_ROLES,
        }, status_code=status)
        response.headers.update(SECURITY_HEADERS)
        return response

    def error_page(request: Request, session: Session, exc: DomainError) -> HTMLResponse:
        return page(request, "error.html", session, {"error": exc}, status=exc.http_status)

    def signed_in(request: Request) -> Session | RedirectResponse:
        session = load_session(request)
        if session.staff is None:
            return RedirectResponse("/console/signin?" + urlencode({"next": request.url.path}), status_code=303)
        return session

    def posted(request: Request, csrf: str) -> Session:
        """The signed-in staff of a form post whose CSRF token matches the session's."""
        session = load_session(request)
        if not session.csrf or not csrf or not hmac.compare_digest(session.csrf, csrf):
            raise Forbidden("页面已过期或来源不明，请刷新页面后再试", reason="csrf")
        if session.staff is None:
            raise BadCredentials("请先登录")
        return session

    def require_role(session: Session, roles: frozenset[Role], what: str) -> StaffView:
        assert session.staff is not None
        if session.staff.role not in roles:
            raise Forbidden(f"{ROLE_LABELS[session.staff.role.value]}不能{what}", role=session.staff.role.value)
        return session.staff

    def form_post(request: Request, csrf: str, work: Callable[[Session], Response]) -> Response:
        """Run a form post: CSRF and sign-in checked first, domain errors shown as a page."""
        try:
            session = posted(request, csrf)
        except DomainError as exc:
            return error_page(request, load_session(request), exc)
        try:
            return work(session)
        except DomainError as exc:
            return error_page(request, session, exc)

    def back_to(path: str, done: str) -> RedirectResponse:
        return RedirectResponse(f"{path}?{urlencode({'done': done})}", status_code=303)

    # ---- sign-in

    @r.get("/", response_class=HTMLResponse)
    def home(request: Request) -> Response:
        return RedirectResponse("/console/queue", status_code=303)

    @r.get("/signin", response_class=HTMLResponse)
    def signin_page(request: Request, next: str = "/console/queue") -> Response:
        session = load_session(request)
        if not session.csrf:
            session = Session(session.staff, secrets.token_urlsafe(24))
        response = page(request, "signin.html", session, {"accounts": demo_accounts(), "next": safe_next(next)})
        save_session(response, session)
        return response

    @r.post("/signin", response_class=HTMLResponse)
    def signin(request: Request, username: str = Form(""), password: str = Form(""), csrf: str = Form(""),
               next: str = Form("/console/queue")) -> Response:
        session = load_session(request)
        if not session.csrf or not hmac.compare_digest(session.csrf, csrf):
            return error_page(request, session, Forbidden("页面已过期，请刷新登录页后再试", reason="csrf"))
        try:
            staff = authenticate(svc, username.strip(), password)
        except BadCredentials as exc:
            return page(request, "signin.html", session, {"accounts": demo_accounts(), "error": exc.message,
                                                          "username": username, "next": safe_next(next)}, status=401)
        response = RedirectResponse(safe_next(next), status_code=303)
        save_session(response, Session(staff, secrets.token_urlsafe(24)))  # a fresh token for the new session
        return response

    @r.post("/signout")
    def signout(request: Request, csrf: str = Form("")) -> Response:
        def work(_: Session) -> Response:
            response = RedirectResponse("/console/signin", status_code=303)
            response.delete_cookie(COOKIE, path="/console")
            return response
        return form_post(request, csrf, work)

    # ---- queue

    @r.get("/queue", response_class=HTMLResponse)
    def queue_page(request: Request, status: str = "", reason: str = "", shop: str = "", overdue: str = "",
                   mine: str = "1", done: str = "") -> Response:
        session = signed_in(request)
        if isinstance(session, RedirectResponse):
            return session
        assert session.staff is not None
        role = session.staff.role
        flt = QueueFilter(status=status or None, reason=reason or None, shop=shop or None,
                          overdue={"1": True, "0": False}.get(overdue), include_final=status in
                          {s.value for s in FINAL}, limit=300)
        rows = queue(svc, flt)
        if mine == "1":
            rows = [v for v in rows if actions_for(Status(v.status), role)]
        with svc.sessions() as db:
            shops = list(db.scalars(select(Shop.code).order_by(Shop.code)))
            buyers: dict[int, str] = {
                request_id: name for request_id, name in db.execute(
                    select(AfterSale.id, Buyer.name).join(Buyer, Buyer.id == AfterSale.buyer_id)
                    .where(AfterSale.id.in_([v.id for v in rows])))}
        return page(request, "queue.html", session, {
            "rows": rows, "buyers": buyers, "shops": shops, "statuses": list(scripts.labels("status")),
            "reasons": list(scripts.labels("reason")), "done": DONE_MESSAGES.get(done, ""),
            "filters": {"status": status, "reason": reason, "shop": shop, "overdue": overdue, "mine": mine},
        })

    # ---- one request

    def request_context(session: Session, request_id: int) -> dict:
        assert session.staff is not None
        d = detail(svc, request_id, session.staff.role)
        policy = svc.policies(d.shop_code)
        received_at = scripts.received_at_of(svc, request_id)
        suggested = scripts.suggest(d, policy, received_at=received_at)
        tracker = conversation.tracker(settings, d.buyer_id)
        handoff = [t for t in tasks.open_tasks(svc, "handoff") if t.buyer_id == d.buyer_id]
        return {
            "d": d, "v": d.view, "policy": policy, "scripts": suggested,
            "can_chat": session.staff.role in CHAT_ROLES,
            "conversation": conversation_lines(tracker), "rasa_ok": tracker is not None,
            "paused": bool(tracker and tracker.get("paused")), "handoff": handoff,
            "events": [{**e, "at_local": format_local(datetime.fromisoformat(e["at"]))} for e in d.events],
            "confidence": f"{d.reason_confidence:.0%}" if d.reason_confidence is not None else "—",
        }

    @r.get("/requests/{request_id}", response_class=HTMLResponse)
    def request_page(request: Request, request_id: int, done: str = "") -> Response:
        session = signed_in(request)
        if isinstance(session, RedirectResponse):
            return session
        try:
            context = request_context(session, request_id)
        except DomainError as exc:
            return error_page(request, session, exc)
        return page(request, "request.html", session, {**context, "done": DONE_MESSAGES.get(done, "")})

    @r.post("/requests/{request_id}/actions")
    def take_action(request: Request, request_id: int, csrf: str = Form(""), action: str = Form(""),
                    reason: str = Form(""), version: int | None = Form(None), courier: str = Form(""),
                    tracking_no: str = Form("")) -> Response:
        def work(session: Session) -> Response:
            staff = session.staff
            assert staff is not None
            # The role is checked before anything else: a forged form for another role's step is refused.
            if action not in ROLE_ACTIONS[staff.role]:
                raise Forbidden(f"{ROLE_LABELS[staff.role.value]}没有“{ACTION_LABELS.get(action, action)}”的权限",
                                action=action, role=staff.role.value)
            if action == "ship_replacement":
                after_sales.ship_replacement(svc, request_id, actor=staff.actor, courier=courier.strip().upper(),
                                             tracking_no=tracking_no, expected_version=version)
            else:
                after_sales.act(svc, request_id, action, actor=staff.actor, reason=reason.strip() or None,
                                expected_version=version)
            return back_to(f"/console/requests/{request_id}", action)
        return form_post(request, csrf, work)

    @r.post("/requests/{request_id}/send", response_class=HTMLResponse)
    def send_script(request: Request, request_id: int, csrf: str = Form(""), text: str = Form(""),
                    script_id: str = Form("")) -> Response:
        def work(session: Session) -> Response:
            staff = require_role(session, CHAT_ROLES, "给买家发消息")
            words = text.strip()
            if not words or len(words) > 1000:
                raise InvalidInput("消息不能为空，也不能超过1000字")
            d = detail(svc, request_id, staff.role)
            problems = scripts.check_script(words, d, svc.policies(d.shop_code),
                                            received_at=scripts.received_at_of(svc, request_id))
            if problems:
                context = request_context(session, request_id)
                return page(request, "request.html", session, {**context, "problems": problems, "draft": words,
                                                               "draft_id": script_id}, status=422)
            conversation.send_agent_message(settings, d.buyer_id, words)
            scripts.record_sent(svc, request_id, actor=staff.actor, text=words, script_id=script_id or None)
            return back_to(f"/console/requests/{request_id}", "sent")
        return form_post(request, csrf, work)

    @r.post("/requests/{request_id}/takeover")
    def take_over(request: Request, request_id: int, csrf: str = Form("")) -> Response:
        def work(session: Session) -> Response:
            staff = require_role(session, CHAT_ROLES, "接手对话")
            d = detail(svc, request_id, staff.role)
            start_handoff(staff, d.buyer_id, request_id)
            return back_to(f"/console/requests/{request_id}", "takeover")
        return form_post(request, csrf, work)

    @r.post("/requests/{request_id}/handback")
    def hand_back(request: Request, request_id: int, csrf: str = Form("")) -> Response:
        def work(session: Session) -> Response:
            staff = require_role(session, CHAT_ROLES, "交还对话")
            d = detail(svc, request_id, staff.role)
            end_handoff(staff, d.buyer_id)
            return back_to(f"/console/requests/{request_id}", "handback")
        return form_post(request, csrf, work)

    def start_handoff(staff: StaffView, buyer_id: int, request_id: int | None) -> None:
        """Take (or open and take) the buyer's handoff task and pause the bot for them."""
        existing = [t for t in tasks.open_tasks(svc, "handoff") if t.buyer_id == buyer_id]
        task = existing[0] if existing else tasks.open_task(
            svc, kind="handoff", buyer_id=buyer_id, after_sale_id=request_id, note="客服在工作台接手对话",
            actor=staff.actor)
        if task.status == "open":
            tasks.move_task(svc, task.id, to="taken", actor=staff.actor)
        conversation.pause(settings, buyer_id)

    def end_handoff(staff: StaffView, buyer_id: int) -> None:
        """Finish the buyer's handoff tasks, resume the bot and let it say it is back."""
        for task in tasks.open_tasks(svc, "handoff"):
            if task.buyer_id == buyer_id:
                tasks.move_task(svc, task.id, to="done", actor=staff.actor)
        conversation.hand_back(settings, buyer_id)

    @r.get("/evidence/{evidence_id}")
    def evidence(request: Request, evidence_id: int) -> Response:
        session = signed_in(request)
        if isinstance(session, RedirectResponse):
            return session
        try:
            photo = evidence_photo(svc, settings.var_dir, evidence_id)
        except NotFound as exc:
            return error_page(request, session, exc)
        if photo.after_sale_id is None:
            # A photo not yet attached to a request is still the buyer's own.
            return error_page(request, session, NotFound("找不到这张照片", evidence_id=evidence_id))
        return Response(photo.data, media_type=photo.content_type, headers={
            "X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=300",
            "Content-Security-Policy": "default-src 'none'; sandbox"})

    # ---- tasks

    @r.get("/tasks", response_class=HTMLResponse)
    def tasks_page(request: Request, done: str = "") -> Response:
        session = signed_in(request)
        if isinstance(session, RedirectResponse):
            return session
        assert session.staff is not None
        role = session.staff.role
        mine = [t for t in tasks.open_tasks(svc) if role in TASK_ROLES.get(t.kind, frozenset())]
        with svc.sessions() as db:
            names: dict[int, str] = {buyer_id: name for buyer_id, name in db.execute(select(Buyer.id, Buyer.name))}
            # The newest request of each buyer, for tasks that name no request.
            latest: dict[int, int] = {buyer_id: request_id for buyer_id, request_id in db.execute(
                select(AfterSale.buyer_id, AfterSale.id).order_by(AfterSale.id))}
        return page(request, "tasks.html", session, {"tasks": mine, "names": names, "latest": latest,
                                                     "done": DONE_MESSAGES.get(done, "")})

    @r.post("/tasks/{task_id}/move")
    def move(request: Request, task_id: int, csrf: str = Form(""), to: str = Form("")) -> Response:
        def work(session: Session) -> Response:
            staff = session.staff
            assert staff is not None
            task = next((t for t in tasks.open_tasks(svc) if t.id == task_id), None)
            if task is None:
                raise NotFound("找不到这个任务，可能已经处理完了", task_id=task_id)
            require_role(session, TASK_ROLES.get(task.kind, frozenset()), f"处理“{TASK_LABELS.get(task.kind, '')}”任务")
            if to not in ("taken", "done"):
                raise InvalidInput("不支持的操作", to=to)
            if task.kind == "handoff" and to == "taken":
                start_handoff(staff, task.buyer_id, task.after_sale_id)
            elif task.kind == "handoff":
                end_handoff(staff, task.buyer_id)
            else:
                tasks.move_task(svc, task_id, to=to, actor=staff.actor)
            return back_to("/console/tasks", "task")
        return form_post(request, csrf, work)

    # ---- analytics and the ledger

    @r.get("/analytics", response_class=HTMLResponse)
    def analytics_page(request: Request) -> Response:
        session = signed_in(request)
        if isinstance(session, RedirectResponse):
            return session
        try:
            require_role(session, ANALYTICS_ROLES, "查看退货分析")
        except DomainError as exc:
            return error_page(request, session, exc)
        data = analytics.report(svc)
        return page(request, "analytics.html", session, {
            "report": data,
            "by_product": stacked_bars([(p.name, p.by_reason) for p in data.products[:12]]),
            "by_week": stacked_columns([(w.week, w.by_reason) for w in data.weeks[-12:]]),
            "used_reasons": [r for r in data.reasons if any(r in p.by_reason for p in data.products)],
        })

    @r.get("/ledger.csv")
    def ledger(request: Request, start: date, end: date) -> Response:
        session = signed_in(request)
        if isinstance(session, RedirectResponse):
            return session
        try:
            require_role(session, LEDGER_ROLES, "导出退款成功表")
            if end < start or (end - start).days > 366:
                raise InvalidInput("日期范围不对（结束不能早于开始，最长一年）")
        except DomainError as exc:
            return error_page(request, session, exc)
        return PlainTextResponse(ledger_csv(svc, start, end), media_type="text/csv; charset=utf-8",
                                 headers={"Content-Disposition": f'attachment; filename="refunds-{start}-{end}.csv"'})

    return r


# Inline scripts are never needed by the console: a buyer's words that slipped through would not run.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                               "script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
                               "form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def demo_accounts() -> list[dict[str, str]]:
    """The demo team with their demo passwords, for the sign-in page."""
    return [{"username": u, "name": n, "role": ROLE_LABELS[r.value], "password": demo_password(u)}
            for u, n, r in DEMO_STAFF]


def safe_next(target: str) -> str:
    """Only redirect inside the console after sign-in (no open redirect)."""
    return target if target.startswith("/console/") and "//" not in target and "\\" not in target else "/console/queue"


__all__ = [
    "console_router",
    "conversation_lines",
    "stacked_bars",
    "stacked_columns",
]
