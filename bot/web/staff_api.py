"""Staff and integration endpoints of the JSON API. Roles are checked again in the services."""

from datetime import date

from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from bot.domain.errors import Forbidden, InvalidInput
from bot.domain.workflow import Role
from bot.services import after_sales
from bot.services.context import Services
from bot.services.queue import QueueFilter, detail, ledger_csv, queue
from bot.services.staff import BadCredentials, StaffView, authenticate, issue_token, staff_from_token
from bot.settings import Settings
from bot.web.api import view_payload

LEDGER_ROLES = frozenset({Role.FINANCE, Role.SUPERVISOR})


class Credentials(BaseModel):
    username: str = Field(min_length=1, max_length=40)
    password: str = Field(min_length=1, max_length=200)


class ActionIn(BaseModel):
    action: str = Field(min_length=1, max_length=40, pattern=r"^[a-z_]+$")
    reason: str | None = Field(default=None, max_length=1000)
    expected_version: int | None = Field(default=None, ge=1)


class ShipmentIn(BaseModel):
    courier: str = Field(min_length=1, max_length=10)
    tracking_no: str = Field(min_length=5, max_length=30)
    expected_version: int | None = Field(default=None, ge=1)


class OrderShippedIn(BaseModel):
    order_no: str = Field(min_length=1, max_length=30)
    courier: str = Field(min_length=1, max_length=10)
    tracking_no: str = Field(min_length=5, max_length=30)


def staff_router(svc: Services, settings: Settings) -> APIRouter:
    r = APIRouter()

    def current_staff(authorization: str = Header(default="")) -> StaffView:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise BadCredentials("请先登录")
        return staff_from_token(svc, token, settings.secret_key)

    Staff_ = Depends(current_staff)

    @r.post("/staff/token", tags=["staff"])
    def token(body: Credentials) -> dict:
        """Sign in with a staff account; send the token as `Authorization: Bearer <token>`."""
        staff = authenticate(svc, body.username, body.password)
        return {"token": issue_token(staff, settings.secret_key), "role": staff.role.value, "name": staff.name}

    @r.get("/staff/requests", tags=["staff"])
    def list_requests(status: str | None = None, reason: str | None = None, shop: str | None = None,
                      overdue: bool | None = None, include_final: bool = False,
                      limit: int = Query(100, ge=1, le=500), staff: StaffView = Staff_) -> list[dict]:
        """Requests sorted by the nearest deadline, with filters."""
        flt = QueueFilter(status=status, reason=reason, shop=shop, overdue=overdue, include_final=include_final,
                          limit=limit)
        return [view_payload(v) for v in queue(svc, flt)]

    @r.get("/staff/requests/{request_id}", tags=["staff"])
    def get_request(request_id: int, staff: StaffView = Staff_) -> dict:
        """One request in full: items, reason and confidence, buyer's words, audit timeline, allowed actions."""
        d = detail(svc, request_id, staff.role)
        payload = {k: v for k, v in d.__dict__.items() if k != "view"}
        payload["created_at"] = d.created_at.isoformat()
        return {**view_payload(d.view), **payload}

    @r.post("/staff/requests/{request_id}/actions", tags=["staff"])
    def take_action(request_id: int, body: ActionIn, staff: StaffView = Staff_) -> dict:
        """Approve, reject (reason required), confirm receipt, pay out, arbitrate … as the signed-in role."""
        view = after_sales.act(svc, request_id, body.action, actor=staff.actor, reason=body.reason,
                               expected_version=body.expected_version)
        return view_payload(view)

    @r.post("/staff/requests/{request_id}/replacement", tags=["staff"])
    def send_replacement(request_id: int, body: ShipmentIn, staff: StaffView = Staff_) -> dict:
        view = after_sales.ship_replacement(svc, request_id, actor=staff.actor, courier=body.courier,
                                            tracking_no=body.tracking_no, expected_version=body.expected_version)
        return view_payload(view)

    @r.get("/staff/ledger.csv", tags=["finance"], response_class=PlainTextResponse)
    def ledger(start: date, end: date, staff: StaffView = Staff_) -> PlainTextResponse:
        """The refund-success ledger for a date range (China time), for finance's audit."""
        if staff.role not in LEDGER_ROLES:
            raise Forbidden("只有财务和主管可以导出退款成功表", role=staff.role.value)
        if end < start or (end - start).days > 366:
            raise InvalidInput("日期范围不对（结束不能早于开始，最长一年）", start=str(start), end=str(end))
        return PlainTextResponse(ledger_csv(svc, start, end), media_type="text/csv; charset=utf-8",
                                 headers={"Content-Disposition": f'attachment; filename="refunds-{start}-{end}.csv"'})

    @r.post("/integrations/warehouse/shipped", tags=["integrations"])
    def warehouse_shipped(body: OrderShippedIn, x_api_key: str = Header(default="")) -> dict:
        """Webhook of the warehouse system: an order shipped. Safe to deliver twice."""
        if not x_api_key or x_api_key != settings.integration_key:
            raise BadCredentials("缺少或错误的 X-Api-Key")
        return after_sales.order_shipped(svc, order_no=body.order_no, courier=body.courier,
                                         tracking_no=body.tracking_no)

    return r



