"""Personal data masked in every log line: phone numbers, bank cards, ID card numbers, e-mail addresses and
street addresses. Imports only the standard library and pure bot.domain code, so the Rasa
environment can use it too.

    from bot.logging_setup import install_pii_masking
    install_pii_masking()      # once per process, after logging is configured (idempotent)

It wraps the log record factory, so it covers every logger and handler of the process (ours, uvicorn,
Sanic, Rasa, SQLAlchemy), including the text of exceptions. `mask_pii(text)` is the same masking for other
uses (e.g. a console page for a role that does not need the data).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from bot.domain.accounts import luhn_ok

# 138****5678 – mainland mobile numbers, with or without +86 and separators.
_MOBILE = re.compile(r"(?<![\d])(?:\+?86[- ]?)?(1[3-9]\d)[- ]?(\d{4})[- ]?(\d{4})(?![\d])")
# 0571-****0000 – landlines with an area code.
_LANDLINE = re.compile(r"(?<![\d-])(0\d{2,3})[- ]?(\d{3,4})(\d{4})(?![\d])")
# 33010519900101123X – resident ID numbers (birth date inside).
_ID_CARD = re.compile(r"(?<![\dA-Za-z])(\d{6})(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}([\dXx])"
                      r"(?![\dA-Za-z])")
# Runs of 13–19 digits, maybe grouped by spaces or dashes: masked when they pass the Luhn check (bank cards;
# order numbers mostly do not), except short runs right after a letter (SF1234567890123 is a tracking number).
_DIGIT_RUN = re.compile(r"(?<!\d)\d(?:[ -]?\d){12,18}(?!\d)")
_EMAIL = re.compile(r"(?<![\w.+-])([\w.+-])[\w.+-]*@([\w-]+(?:\.[\w-]+)+)")
# The street part of a Chinese address (province/city/district stay readable; the rest does not).
_STREET = re.compile(
    r"(?:(?![省市区县址在到])[\u4e00-\u9fa5A-Za-z0-9]){1,12}(?:路|街|巷|弄|大道|胡同|小区|花园|公寓|新村|村)"
    r"[\u4e00-\u9fa5A-Za-z0-9\- ]{0,12}?\d+\s*(?:号楼|号|栋|幢|单元|室|弄)[\u4e00-\u9fa5A-Za-z0-9#\-]{0,16}"
)


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    after_letter = match.start() > 0 and match.string[match.start() - 1].isascii() and \
        match.string[match.start() - 1].isalpha()
    if not luhn_ok(digits) or (after_letter and len(digits) < 16):
        return match.group(0)  # an order or tracking number, not a card
    return f"**** **** {digits[-4:]}"


def mask_pii(text: str) -> str:
    """`text` with phone numbers, bank cards, ID numbers, e-mails and street addresses masked."""
    if not text:
        return text
    text = _ID_CARD.sub(lambda m: f"{m.group(1)}********{'*' * 3}{m.group(2)}", text)
    text = _DIGIT_RUN.sub(_card, text)
    text = _MOBILE.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)
    text = _LANDLINE.sub(lambda m: f"{m.group(1)}-****{m.group(3)}", text)
    text = _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    text = _STREET.sub("****", text)
    return text


def _mask_value(value: Any) -> Any:
    return mask_pii(value) if isinstance(value, str) else value


def mask_record(record: logging.LogRecord) -> logging.LogRecord:
    """Mask the message, its string arguments and any exception text of one record, in place."""
    if isinstance(record.msg, str):
        record.msg = mask_pii(record.msg)
    if isinstance(record.args, tuple):
        record.args = tuple(_mask_value(a) for a in record.args)
    elif isinstance(record.args, dict):
        record.args = {k: _mask_value(v) for k, v in record.args.items()}
    if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
        record.exc_text = mask_pii(logging.Formatter().formatException(record.exc_info))
    if record.stack_info:
        record.stack_info = mask_pii(record.stack_info)
    return record


class PiiMaskingFilter(logging.Filter):
    """The same masking as a filter, for a handler that is set up by hand."""

    def filter(self, record: logging.LogRecord) -> bool:
        mask_record(record)
        return True


_installed = False


def install_pii_masking() -> None:
    """Mask personal data in every log record this process creates from now on (idempotent)."""
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return mask_record(previous(*args, **kwargs))

    logging.setLogRecordFactory(factory)
    _installed = True
