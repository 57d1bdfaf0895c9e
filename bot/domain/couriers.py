"""Couriers and the formats of their tracking numbers (pure; used by the NLU and the backend)."""

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Courier:
    code: str
    name: str
    aliases: tuple[str, ...]
    pattern: re.Pattern[str]
    example: str


COURIERS: tuple[Courier, ...] = (
    Courier("SF", "顺丰", ("顺丰", "顺丰速运", "顺丰快递", "SF"), re.compile(r"SF\d{13}"), "SF1234567890123"),
    Courier("ZTO", "中通", ("中通", "中通快递", "ZTO"), re.compile(r"7[568]\d{12}"), "75123456789012"),
    Courier("YTO", "圆通", ("圆通", "圆通速递", "圆通快递", "YTO"), re.compile(r"YT\d{13}"), "YT1234567890123"),
    Courier("YUNDA", "韵达", ("韵达", "韵达快递", "韵达速递"), re.compile(r"[34]\d{12}|[34]\d{14}"), "4312345678901"),
    Courier("STO", "申通", ("申通", "申通快递", "STO"), re.compile(r"(?:77|88)\d{11}|268\d{9}"), "7712345678901"),
    Courier("JD", "京东", ("京东", "京东快递", "京东物流", "JD"), re.compile(r"JD\d{13}"), "JD1234567890123"),
    Courier("EMS", "EMS", ("EMS", "ems", "邮政", "中国邮政", "邮政EMS"), re.compile(r"[A-Z]{2}\d{9}CN|1\d{12}"), "EA123456789CN"),
    Courier("JT", "极兔", ("极兔", "极兔速递", "极兔快递", "JT"), re.compile(r"JT\d{13}"), "JT1234567890123"),
)

BY_CODE: dict[str, Courier] = {c.code: c for c in COURIERS}

# Any tracking number of any courier, for finding one inside free text.
ANY_TRACKING_NUMBER = re.compile(
    r"(?<![A-Za-z0-9])(" + "|".join(c.pattern.pattern for c in COURIERS) + r")(?![A-Za-z0-9])"
)


def courier_by_alias(text: str) -> Courier | None:
    """The courier named in `text` (顺丰, 中通, EMS …), longest alias first, or None."""
    best: tuple[int, Courier] | None = None
    upper = text.upper()
    for courier in COURIERS:
        for alias in courier.aliases:
            if alias.upper() in upper and (best is None or len(alias) > best[0]):
                best = (len(alias), courier)
    return best[1] if best else None


def couriers_matching(number: str) -> list[Courier]:
    """Every courier whose format the whole tracking number fits."""
    number = number.strip().upper()
    return [c for c in COURIERS if c.pattern.fullmatch(number)]


def is_valid_tracking_number(courier_code: str, number: str) -> bool:
    """Whether `number` has the format of the courier's tracking numbers."""
    courier = BY_CODE.get(courier_code)
    return bool(courier and courier.pattern.fullmatch(number.strip().upper()))
