"""Staff accounts: password check, signed API tokens, and the demo team of the demo shop."""

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select

from bot.domain.errors import DomainError
from bot.domain.workflow import Role
from bot.persistence.models import Staff
from bot.services.after_sales import Actor
from bot.services.context import Services

TOKEN_SALT = "staff-api"
TOKEN_MAX_AGE_S = 12 * 3600

# The demo shop's team: one account per role (two reviewers, to show that one may not pay out).
DEMO_STAFF = [
    ("li", "李客服", Role.REVIEWER), ("wang", "王客服", Role.REVIEWER), ("zhou", "周主管", Role.SUPERVISOR),
    ("qian", "钱财务", Role.FINANCE), ("sun", "孙出纳", Role.CASHIER), ("xiaoer", "平台小二", Role.ARBITRATOR),
]


class BadCredentials(DomainError):
    code = "bad_credentials"
    http_status = 401


@dataclass(frozen=True)
class StaffView:
    id: int
    username: str
    name: str
    role: Role

    @property
    def actor(self) -> Actor:
        return Actor(f"staff:{self.username}", self.role)


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return f"scrypt${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    try:
        _, salt_hex, digest_hex = stored.split("$")
    except ValueError:
        return False
    return hmac.compare_digest(hash_password(password, bytes.fromhex(salt_hex)).split("$")[2], digest_hex)


def demo_password(username: str) -> str:
    """Demo accounts only: shown on the console's sign-in page."""
    return f"demo-{username}"


def seed_staff(svc: Services) -> None:
    with svc.sessions() as session, session.begin():
        existing = set(session.scalars(select(Staff.username)))
        for username, name, role in DEMO_STAFF:
            if username not in existing:
                session.add(Staff(username=username, name=name, role=role.value,
                                  password_hash=hash_password(demo_password(username))))


def authenticate(svc: Services, username: str, password: str) -> StaffView:
    with svc.sessions() as session:
        row = session.scalar(select(Staff).where(Staff.username == username, Staff.active.is_(True)))
        if row is None or not check_password(password, row.password_hash):
            raise BadCredentials("用户名或密码不对")
        return StaffView(row.id, row.username, row.name, Role(row.role))


def issue_token(staff: StaffView, secret_key: str) -> str:
    return URLSafeTimedSerializer(secret_key, salt=TOKEN_SALT).dumps({"id": staff.id})


def staff_from_token(svc: Services, token: str, secret_key: str) -> StaffView:
    try:
        data = URLSafeTimedSerializer(secret_key, salt=TOKEN_SALT).loads(token, max_age=TOKEN_MAX_AGE_S)
    except (BadSignature, SignatureExpired):
        raise BadCredentials("登录已失效，请重新登录") from None
    with svc.sessions() as session:
        row = session.get(Staff, int(data["id"]))
        if row is None or not row.active:
            raise BadCredentials("登录已失效，请重新登录")
        return StaffView(row.id, row.username, row.name, Role(row.role))
