"""Load a shop's policy YAML, validate it with clear errors, and report rules below the legal floor."""

import re
from datetime import timedelta
from functools import lru_cache
from pathlib import Path

import yaml

from bot.clock import parse_duration
from bot.domain.policy import (
    BUYER, PRESETS, SELLER, TIMER_NAMES, Evidence, Policy, ReasonRule,
)
from bot.nlu.topics import REASON_CODES

SHOPS_DIR = Path(__file__).parent / "shops"
RESOLUTIONS = {"refund", "return", "exchange", "resend"}


class PolicyError(ValueError):
    """A policy file that cannot be used; the message names the file and the field."""


def parse_yuan(value: object, where: str) -> int:
    """'10元', '9.9', 10 -> fen."""
    text = str(value).strip().removesuffix("元")
    if not re.fullmatch(r"\d+(\.\d{1,2})?", text):
        raise PolicyError(f"{where}: {value!r} is not an amount like 10元")
    whole, _, frac = text.partition(".")
    return int(whole) * 100 + int((frac + "00")[:2])


def parse_policy(data: dict, source: str = "<policy>") -> Policy:
    """Build a Policy from parsed YAML, or raise PolicyError naming the bad field."""
    if not isinstance(data, dict):
        raise PolicyError(f"{source}: expected a mapping at top level")
    for key in ("shop", "name", "reasons"):
        if key not in data:
            raise PolicyError(f"{source}: missing '{key}'")
    preset = data.get("preset", "default")
    if preset not in PRESETS:
        raise PolicyError(f"{source}: preset {preset!r} is not one of {sorted(PRESETS)}")
    timers: dict[str, timedelta] = dict(PRESETS[preset])
    for name, value in (data.get("timers") or {}).items():
        if name not in TIMER_NAMES:
            raise PolicyError(f"{source}: timers.{name} is not a timer ({', '.join(TIMER_NAMES)})")
        try:
            timers[name] = parse_duration(str(value))
        except ValueError as exc:
            raise PolicyError(f"{source}: timers.{name}: {exc}") from None
    reasons: dict[str, ReasonRule] = {}
    warnings: list[str] = []
    for code, raw in (data["reasons"] or {}).items():
        where = f"{source}: reasons.{code}"
        if code not in REASON_CODES:
            raise PolicyError(f"{where}: unknown reason code (known: {', '.join(REASON_CODES)})")
        if not isinstance(raw, dict):
            raise PolicyError(f"{where}: expected a mapping")
        for leg in ("return_freight", "outbound_freight"):
            if raw.get(leg, BUYER) not in (SELLER, BUYER):
                raise PolicyError(f"{where}.{leg}: must be seller or buyer")
        try:
            evidence = Evidence(raw.get("evidence", "none"))
        except ValueError:
            raise PolicyError(f"{where}.evidence: must be none, optional or required") from None
        resolutions = tuple(raw.get("resolutions") or ())
        if bad := set(resolutions) - RESOLUTIONS:
            raise PolicyError(f"{where}.resolutions: unknown {sorted(bad)}")
        rule = ReasonRule(
            return_freight=raw.get("return_freight", BUYER),
            outbound_freight=raw.get("outbound_freight", BUYER),
            evidence=evidence,
            resolutions=resolutions,
            accepted=bool(raw.get("accepted", True)),
            exchange_first=bool(raw.get("exchange_first", False)),
            phone_call=bool(raw.get("phone_call", False)),
            script=str(raw.get("script", "")),
        )
        # The legal floor: report what falls below it; Policy.decide applies the law instead.
        if code == "quality" and (rule.return_freight == BUYER or rule.outbound_freight == BUYER or not rule.accepted):
            warnings.append(f"{where}: quality costs are borne by the business (Art. 24); not applied")
        if not rule.accepted:
            warnings.append(
                f"{where}: refusing returns is below the 7-day no-reason floor (Art. 25); "
                "inside 7 days of receipt the return is allowed"
            )
        reasons[code] = rule
    if "other" not in reasons:
        raise PolicyError(f"{source}: reasons.other is required (the fallback)")
    coupon = data.get("coupon") or {}
    return Policy(
        shop_code=str(data["shop"]),
        shop_name=str(data["name"]),
        preset=preset,
        timers=timers,
        reasons=reasons,
        express_refund=bool(data.get("express_refund", False)),
        coupon_fen=parse_yuan(coupon["amount"], f"{source}: coupon.amount") if coupon else 0,
        coupon_min_spend_fen=parse_yuan(coupon.get("min_spend", 0), f"{source}: coupon.min_spend") if coupon else 0,
        warnings=tuple(warnings),
    )


@lru_cache(maxsize=64)
def load_policy(shop_code: str, shops_dir: Path = SHOPS_DIR) -> Policy:
    """The policy of a shop from `<shops_dir>/<shop_code>.yml` (cached per process)."""
    path = shops_dir / f"{shop_code}.yml"
    if not path.exists():
        raise PolicyError(f"no policy file for shop {shop_code!r} at {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path}: not valid YAML: {exc}") from None
    return parse_policy(data, str(path))
