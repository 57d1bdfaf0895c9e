"""Suggested scripts (话术) for agents, filled with a request's facts, and a checker that blocks promises
the shop's policy (or the law) forbids. The Chinese words live in bot/policy/scripts.yml."""

import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select

from bot.clock import format_local
from bot.domain.errors import RequestNotFound
from bot.domain.money import yuan
from bot.domain.policy import BUYER, SELLER, Policy
from bot.domain.workflow import Status
from bot.persistence.models import AfterSale, Order
from bot.services.after_sales import Actor, audit
from bot.services.context import Services
from bot.services.queue import RequestDetail

SCRIPTS_FILE = Path(__file__).resolve().parent.parent / "policy" / "scripts.yml"

_SENTENCE_END = re.compile(r"(?<=[。！？!?；;～~\n])")
_AMOUNT = re.compile(r"(?:¥|￥)\s*(\d+(?:\.\d{1,2})?)|(\d+(?:\.\d{1,2})?)\s*(?:元|块)")
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Script:
    id: str
    title: str
    text: str


@dataclass(frozen=True)
class Facts:
    """Everything a script may say about one request, already decided from the request and the policy."""

    request_id: int
    status: str
    reason: str
    kind: str
    items: str
    goods: str
    amount_fen: int
    line_fens: tuple[int, ...]
    return_freight: str  # seller | buyer
    deadline: str
    note: str
    route: str
    coupon_fen: int
    coupon_min_spend_fen: int
    exchange_allowed: bool
    evidence_missing: bool
    phone_call: bool
    law: str | None  # why the law allows the return (None: only the shop's policy decides)
    ship_back_days: int


@lru_cache(maxsize=4)
def load_templates(path: Path = SCRIPTS_FILE) -> dict[str, Any]:
    """The script templates, fragments and checks (read once per process)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not {"fragments", "scripts", "checks"} <= set(data):
        raise ValueError(f"{path}: expected fragments, scripts and checks")
    ids = [s["id"] for s in data["scripts"]]
    if len(ids) != len(set(ids)):
        raise ValueError(f"{path}: script ids must be unique")
    return data


def labels(kind: str) -> dict[str, str]:
    """Chinese names for codes shown to staff: `reason`, `status` or `law` (from scripts.yml)."""
    return dict(load_templates()["labels"][kind])


def facts_for(detail: RequestDetail, policy: Policy, *, received_at: datetime | None = None) -> Facts:
    """The facts of `detail` under `policy`; `received_at` (of the order) tells whether the 7 days apply."""
    view = detail.view
    # The request exists, so it was accepted: by the shop's rule, or inside the 7 days by law.
    decision = policy.decide(view.reason, within_no_reason_days=True)
    within_7_days = view.rule_id.startswith("law.art25") or (
        received_at is not None and detail.created_at <= received_at + policy.timer("no_reason_return"))
    law = None
    if view.reason == "quality":
        law = "quality"
    elif within_7_days:
        law = "no_reason"
    return Facts(
        request_id=view.id, status=view.status, reason=view.reason, kind=view.kind,
        items="、".join(f"{line.name}（{line.spec}）×{line.quantity}" if line.spec else f"{line.name}×{line.quantity}"
                       for line in view.lines),
        goods="、".join(dict.fromkeys(line.name for line in view.lines)),
        amount_fen=view.refund_fen, line_fens=tuple(line.refund_fen for line in view.lines),
        return_freight=decision.return_freight, deadline=format_local(view.deadline_at) if view.deadline_at else "",
        note=(view.last_reason_note or "").strip(), route=view.refund_route, coupon_fen=policy.coupon_fen,
        coupon_min_spend_fen=policy.coupon_min_spend_fen,
        exchange_allowed=view.kind != "exchange" and "exchange" in decision.resolutions,
        evidence_missing=detail.evidence_required and not detail.evidence, phone_call=detail.phone_call_task,
        law=law, ship_back_days=policy.timer("ship_back").days,
    )


def _short_yuan(fen: int) -> str:
    return yuan(fen).removesuffix(".00")


def _values(facts: Facts, data: dict[str, Any]) -> dict[str, str]:
    """Placeholder values: facts first, then the fragments that are built from them."""
    frag = data["fragments"]
    values: dict[str, str] = {
        "items": facts.items, "goods": facts.goods, "amount": yuan(facts.amount_fen), "deadline": facts.deadline, "note": facts.note,
        "ship_back_days": str(facts.ship_back_days), "coupon": _short_yuan(facts.coupon_fen),
        "min_spend": _short_yuan(facts.coupon_min_spend_fen),
        "freight": frag["freight"][SELLER if facts.return_freight == SELLER else BUYER],
        "arrival": frag["arrival"].get(facts.route, frag["arrival"]["original"]),
        "route": frag["route"].get(facts.route, ""),
        "reason_ack": frag["reason_ack"].get(facts.reason, ""),
        "anti_scam": frag["anti_scam"],
        "reason_label": labels("reason").get(facts.reason, facts.reason),
        "status_label": labels("status").get(facts.status, facts.status),
    }
    values["exchange_offer"] = frag["exchange_offer"] if facts.exchange_allowed else ""
    values["coupon_offer"] = _fill(frag["coupon_offer"], values) if facts.coupon_fen else ""
    values["next_step"] = _fill(frag["next_step"].get(facts.status, ""), values)
    return values


def _fill(template: str, values: dict[str, str]) -> str:
    # Templates are folded YAML: the line breaks become spaces, which Chinese text does not use.
    return _SPACES.sub("", template).format_map(values)


def _conditions(facts: Facts) -> dict[str, bool]:
    return {
        "always": True,
        "evidence_missing": facts.evidence_missing,
        "exchange_allowed": facts.exchange_allowed,
        "exchange_not_allowed": not facts.exchange_allowed and facts.kind != "exchange",
        "coupon": facts.coupon_fen > 0,
        "no_coupon": facts.coupon_fen <= 0,
        "phone_call": facts.phone_call,
        "note": bool(facts.note),
        "deadline": bool(facts.deadline),
        "seller_pays": facts.return_freight == SELLER,
        "buyer_pays": facts.return_freight == BUYER,
        "not_refunded": facts.status != Status.REFUNDED.value,
        "law_allows_return": facts.law is not None,
    }


def suggest(detail: RequestDetail, policy: Policy, *, received_at: datetime | None = None) -> list[Script]:
    """The scripts that fit this request's status, reason and policy, filled with its facts."""
    data = load_templates()
    facts = facts_for(detail, policy, received_at=received_at)
    values = _values(facts, data)
    holds = _conditions(facts)
    out = []
    for tpl in data["scripts"]:
        if facts.status not in tpl["statuses"]:
            continue
        if "reasons" in tpl and facts.reason not in tpl["reasons"]:
            continue
        if "kinds" in tpl and facts.kind not in tpl["kinds"]:
            continue
        if not all(holds[name] for name in tpl.get("requires", [])):
            continue
        out.append(Script(tpl["id"], tpl["title"], _fill(tpl["text"], values)))
    return out


def _fen(text: str) -> int:
    whole, _, frac = text.partition(".")
    return int(whole) * 100 + int((frac + "00")[:2])


def _amounts(sentence: str) -> list[tuple[str, int]]:
    return [(m.group(0), _fen(m.group(1) or m.group(2))) for m in _AMOUNT.finditer(sentence)]


def _amount_problems(sentence: str, facts: Facts) -> list[str]:
    """Amounts said about a refund must be the request's (its total or one of its lines)."""
    if "退" not in sentence:
        return []
    allowed = {facts.amount_fen, *facts.line_fens, sum(facts.line_fens)}
    if "券" in sentence:
        allowed |= {facts.coupon_fen, facts.coupon_min_spend_fen}
    return [said for said, fen in _amounts(sentence) if fen not in allowed]


def _coupon_problems(sentence: str, facts: Facts) -> list[str]:
    """Amounts said about a coupon must be the policy's coupon or its minimum spend."""
    if "券" not in sentence or "退" in sentence:
        return []
    allowed = {facts.coupon_fen, facts.coupon_min_spend_fen}
    return [said for said, fen in _amounts(sentence) if fen not in allowed]


@dataclass(frozen=True)
class Problem:
    check: str  # the id of the check in scripts.yml
    message: str


def find_problems(text: str, detail: RequestDetail, policy: Policy, *,
                  received_at: datetime | None = None) -> list[Problem]:
    """Every check of scripts.yml that `text` fails for this request, with the agent-facing reason."""
    data = load_templates()
    facts = facts_for(detail, policy, received_at=received_at)
    values = _values(facts, data)
    holds = _conditions(facts)
    values["law"] = data["labels"]["law"].get(facts.law or "", "")
    sentences = [s for s in _SENTENCE_END.split(text) if s.strip()]
    negations = tuple(data.get("negations", []))
    counted = {"amount": _amount_problems, "coupon_amount": _coupon_problems}
    problems: list[Problem] = []
    for check in data["checks"]:
        if not holds[check["when"]]:
            continue
        if check["id"] in counted:
            found = [a for s in sentences for a in counted[check["id"]](s, facts)]
            if found:
                problems.append(Problem(check["id"], check["message"].format_map({**values, "found": "、".join(found)})))
            continue
        for sentence in sentences:
            if check.get("unless_negated") and any(word in sentence for word in negations):
                continue
            if any(re.search(p, sentence) for p in check["patterns"]):
                problems.append(Problem(check["id"], check["message"].format_map(values)))
                break
    return problems


def check_script(text: str, detail: RequestDetail, policy: Policy, *, received_at: datetime | None = None) -> list[str]:
    """Why `text` may not be sent to this buyer (empty: it may). Each problem is one Chinese sentence."""
    return [p.message for p in find_problems(text, detail, policy, received_at=received_at)]


def received_at_of(svc: Services, request_id: int) -> datetime | None:
    """When the request's order was received (None if it never was): decides the legal 7 days."""
    with svc.sessions() as session:
        return session.scalar(select(Order.received_at).join(AfterSale, AfterSale.order_id == Order.id)
                              .where(AfterSale.id == request_id))


def record_sent(svc: Services, request_id: int, *, actor: Actor, text: str, script_id: str | None) -> None:
    """Audit an agent's message to the buyer of a request (the words themselves go through Rasa)."""
    with svc.sessions() as session, session.begin():
        row = session.get(AfterSale, request_id)
        if row is None:
            raise RequestNotFound("找不到这个售后单", request_id=request_id)
        audit(session, at=svc.clock.now(), actor=actor, action="agent_message", rule="console.script",
              request=row, from_status=row.status, to_status=row.status,
              data={"script_id": script_id or "", "text": text[:2000]})
