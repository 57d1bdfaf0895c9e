"""Refund accounts for cash-on-delivery orders: Alipay or a bank card, validated and masked."""

import re

from bot.domain.errors import BadAccount

_PHONE = re.compile(r"1[3-9]\d{9}")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_CARD = re.compile(r"\d{16,19}")


def luhn_ok(digits: str) -> bool:
    """The check digit of bank card numbers."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2 == 1:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def parse_account(value: str) -> tuple[str, str]:
    """'alipay:13812345678' or 'bank:6222…' -> (route, id); raise BadAccount if malformed."""
    route, _, ident = value.strip().partition(":")
    ident = ident.replace(" ", "")
    if route == "alipay" and (_PHONE.fullmatch(ident) or _EMAIL.fullmatch(ident)):
        return "alipay", ident
    if route == "bank" and _CARD.fullmatch(ident) and luhn_ok(ident):
        return "bank", ident
    raise BadAccount(
        "请提供正确的支付宝账号（手机号或邮箱）或银行卡号", value=mask_account(value),
        route=route if route in ("alipay", "bank") else "",  # never echo a bare number back
    )


def mask_account(value: str | None) -> str:
    """Show only what a person needs to recognise the account: 138****5678, 6222 **** 0123."""
    if not value:
        return ""
    route, _, ident = value.partition(":")
    if not ident:
        route, ident = "", route
    if "@" in ident:
        name, _, host = ident.partition("@")
        shown = name[:2] + "***@" + host
    elif len(ident) == 11:
        shown = ident[:3] + "****" + ident[-4:]
    elif len(ident) >= 8:
        shown = ident[:4] + " **** " + ident[-4:]
    else:
        shown = "****"
    label = {"alipay": "支付宝 ", "bank": "银行卡 "}.get(route, "")
    return label + shown
