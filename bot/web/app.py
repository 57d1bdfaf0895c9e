"""The web app: shop window for buyers and the JSON API (FastAPI). Thin: every route calls a service."""

import logging
import threading
from pathlib import Path

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from itsdangerous import BadSignature, URLSafeSerializer

from bot.domain.errors import DomainError
from bot.services.bootstrap import build_services
from bot.services.context import Services
from bot.settings import ROOT, Settings, load_settings
from bot.web import api
from bot.web.console import console_router
from bot.web.staff_api import staff_router

HERE = Path(__file__).parent
log = logging.getLogger(__name__)
SESSION_COOKIE = "buyer_session"


def create_app(settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    """Build the app; the worker runs inside it in dev unless BOT_EMBEDDED_WORKER=0."""
    settings = settings or load_settings()
    svc = services or build_services(settings)
    app = FastAPI(title="售后助手 After-sales assistant API", version="1.0")
    app.state.settings, app.state.services = settings, svc
    templates = Jinja2Templates(directory=HERE / "templates")
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    vendor = ROOT / "node_modules" / "socket.io-client" / "dist"
    if vendor.exists():
        app.mount("/vendor/socket.io", StaticFiles(directory=vendor), name="vendor-socketio")

    @app.exception_handler(DomainError)
    async def _domain_error(_: Request, exc: DomainError) -> JSONResponse:
        return JSONResponse({"error": {"code": exc.code, "message": exc.message, "details": exc.details}},
                            status_code=exc.http_status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        fields = [{"field": ".".join(str(p) for p in e.get("loc", ())), "problem": e.get("msg", "")}
                  for e in exc.errors()]
        return JSONResponse({"error": {"code": "invalid_input", "message": "请求内容不正确", "details": fields}},
                            status_code=422)

    @app.exception_handler(DataError)
    async def _bad_data(_: Request, exc: DataError) -> JSONResponse:
        # The database refused a value (a NUL byte, an integer past its range): the transaction was
        # rolled back, so nothing is half-written; the client hears what was wrong, not a 500.
        return JSONResponse({"error": {"code": "invalid_input", "message": "请求中有无法保存的内容（例如空字符或超长数字）",
                                       "details": {}}}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, dict) else {"code": "http_error", "message": str(exc.detail)}
        return JSONResponse({"error": detail}, status_code=exc.status_code)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    signer = URLSafeSerializer(settings.secret_key, salt="buyer-session")

    def current_buyer(request: Request) -> int | None:
        raw = request.cookies.get(SESSION_COOKIE)
        if not raw:
            return None
        try:
            return int(signer.loads(raw))
        except (BadSignature, ValueError):
            return None

    def require_buyer(request: Request) -> int:
        buyer = current_buyer(request)
        if buyer is None:
            raise HTTPException(401, detail={"code": "not_signed_in", "message": "请先登录"})
        return buyer

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def shop_window(request: Request) -> HTMLResponse:
        buyer_id = current_buyer(request)
        buyers = api.demo_buyers(svc)
        if buyer_id is None:
            return templates.TemplateResponse(request, "signin.html", {"buyers": buyers})
        return templates.TemplateResponse(request, "shop.html", {
            "buyer": next((b for b in buyers if b["id"] == buyer_id), None),
            "orders": api.orders_payload(svc, buyer_id),
        })

    @app.post("/signin/{buyer_id}", include_in_schema=False)
    def sign_in(buyer_id: int) -> RedirectResponse:
        if buyer_id not in {b["id"] for b in api.demo_buyers(svc)}:
            raise HTTPException(404, detail={"code": "unknown_buyer", "message": "没有这个买家"})
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(SESSION_COOKIE, signer.dumps(str(buyer_id)), httponly=True, samesite="lax")
        return response

    @app.post("/signout", include_in_schema=False)
    def sign_out() -> RedirectResponse:
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    app.include_router(api.router(svc, settings, require_buyer), prefix="/api")
    app.include_router(staff_router(svc, settings), prefix="/api")
    app.include_router(console_router(svc, settings), prefix="/console")

    if settings.embedded_worker:
        @app.on_event("startup")
        def _start_worker() -> None:
            from bot.worker import run_forever

            threading.Thread(target=run_forever, args=(svc, settings), daemon=True, name="worker").start()

    return app


def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Depends(get_services)
