"""Rule-based entity extraction for the after-sales bot, and its Rasa 3.6 component.

`extract(text)` finds order/tracking numbers, couriers, money, quantities, sizes, colours,
durations, the wanted resolution and refund accounts. Words are matched on the jieba-segmented
spaCy `Doc` by an `EntityRuler` (so "白" in "明白" or "紧" in "紧急" is never a colour or a fit);
numbers, codes and numeral+measure phrases are matched by regexes over the text, because jieba
cuts those unpredictably ("三十五块" + "五").
"""

from __future__ import annotations

import logging
import re
import threading
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, NamedTuple

import jieba
import spacy
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.extractors.extractor import EntityExtractorMixin
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message
from spacy.language import Language

from bot.domain.couriers import ANY_TRACKING_NUMBER, COURIERS, couriers_matching

logger = logging.getLogger(__name__)

EXTRACTOR_NAME = "ShopEntityExtractor"
_HERE = Path(__file__).resolve().parent
# The user dictionary moved into dictionary/; accept either place, and neither.
USERDICT_PATHS = (_HERE / "userdict.txt", _HERE / "dictionary" / "userdict.txt")

# ---------------------------------------------------------------------------------------------
# Text normalisation and numbers
# ---------------------------------------------------------------------------------------------

# Full-width ASCII (０-９, Ａ-Ｚ, ：…), the ideographic space and ￥ map one char to one char, so
# offsets found in the normalised text are offsets in the original.
_HALF_WIDTH = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)} | {0x3000: 0x20, 0xFFE5: 0xA5}
_ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")

_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "兩": 2, "三": 3, "四": 4,
              "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CN_UNITS = {"十": 10, "百": 100, "千": 1000, "万": 10000}
_CN = "".join(_CN_DIGITS) + "".join(_CN_UNITS)
_CN_D = "".join(_CN_DIGITS)


def normalize(text: str) -> str:
    """Full-width digits, letters and punctuation to ASCII; same length as `text`."""
    return text.translate(_HALF_WIDTH)


def cn_to_int(numeral: str) -> int | None:
    """'12', '十二', '一百零五', '两万五' … as an int; None if it is not a number."""
    if numeral.isascii() and numeral.isdigit():
        return int(numeral)
    if not numeral or numeral[0] in "百千万":
        return None  # "万一", "千万" are words, not numbers
    total = section = 0
    digit: int | None = None
    prev_unit = 0  # unit of the previous char, 0 if it was not a unit
    last_unit = 1
    for ch in numeral:
        if ch in _CN_DIGITS:
            if digit is not None and digit != 0:
                return None  # "一二" is not a number
            digit, prev_unit = _CN_DIGITS[ch], 0
        elif ch == "万":
            total += (section + (digit or 0)) * 10000
            section, digit, prev_unit, last_unit = 0, None, 10000, 10000
        elif ch in _CN_UNITS:
            section += (1 if digit is None else digit) * _CN_UNITS[ch]
            digit, prev_unit, last_unit = None, _CN_UNITS[ch], _CN_UNITS[ch]
        else:
            return None
    if digit and prev_unit == 0 and last_unit >= 100 and numeral[-2] in _CN_UNITS:
        digit *= last_unit // 10  # colloquial "一百二" = 120, "两万五" = 25000
    return total + section + (digit or 0)


def _to_decimal(numeral: str) -> Decimal | None:
    """'59.9', '三十五', '三十五点五' as a Decimal."""
    try:
        if numeral.isascii():
            return Decimal(numeral)
    except InvalidOperation:
        return None
    whole, _, frac = numeral.partition("点")
    value = cn_to_int(whole)
    if value is None or any(c not in _CN_DIGITS for c in frac):
        return None
    return Decimal(f"{value}.{''.join(str(_CN_DIGITS[c]) for c in frac) or 0}")


# ---------------------------------------------------------------------------------------------
# Regexes over the normalised text
# ---------------------------------------------------------------------------------------------

_NUM = rf"(?:\d+(?:\.\d+)?|[{_CN}]+(?:点[{_CN_D}]+)?)"
_MEASURE = "件个双条只套盒瓶包台支本顶副份张把袋箱"
_NOT_AFTER_NUM = rf"(?<![\d.{_CN}第几])"  # start of a number, not "第一件" or the tail of "十二"

ORDER_NO_RE = re.compile(r"(?<![0-9A-Za-z])20\d{16}(?![0-9A-Za-z])")
PHONE = r"1[3-9]\d(?:[ -]?\d{4}){2}"
EMAIL = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
PHONE_RE = re.compile(rf"(?<![0-9A-Za-z])({PHONE})(?![0-9A-Za-z])")
ALIPAY_RE = re.compile(rf"支付宝[^0-9A-Za-z]{{0,12}}?(?<![0-9A-Za-z])({PHONE}(?![0-9A-Za-z@])|{EMAIL})")
BANK_RE = re.compile(r"(?:银行卡|银行|卡号)[^0-9]{0,12}?(\d{4}(?:[ -]?\d{4}){3}(?:[ -]?\d{1,3})?)(?![0-9])")
YEN_RE = re.compile(r"¥\s?(\d+(?:\.\d{1,2})?)(?![\d.])")
# "59元", "三十五块五", "2块5毛": an optional trailing jiao digit, unless it starts "5件" or "5天".
AMOUNT_RE = re.compile(
    rf"{_NOT_AFTER_NUM}(?:¥\s?)?({_NUM})\s?(?:元|块|圆|rmb|RMB)(?:钱)?"
    rf"(?:([{_CN_D}\d])[毛角]|([{_CN_D}\d])(?![\d{_CN}{_MEASURE}天周月年小分个]))?(?:钱)?"
)
QUANTITY_RE = re.compile(rf"{_NOT_AFTER_NUM}(\d{{1,3}}|[{_CN}]{{1,4}})([{_MEASURE}])(?!问题|事|人)")
DURATION_RE = re.compile(
    rf"{_NOT_AFTER_NUM}(\d{{1,3}}|[{_CN}]{{1,4}}|半)(个)?(半)?(分钟|小时|钟头|工作日|天|周|星期|礼拜|月|年)"
)
SIZE_RE = re.compile(r"(?<![A-Za-z0-9])(?:([2-6])XL|(X{1,4})L|(XS|S|M|L))(码|号)?(?![A-Za-z0-9])", re.I)
SHOE_RE = re.compile(r"(?<![\d.])(3[5-9]|4[0-6])(\.5)?\s?码|(三十[五六七八九]|四十[一二三四五六]?)码")


class _Span(NamedTuple):
    start: int
    end: int
    entity: str
    value: str
    priority: int  # breaks ties between spans of equal length: the more specific entity wins


def _fen(yuan: Decimal, jiao: int = 0) -> str:
    return str(int((yuan * 100).to_integral_value()) + jiao * 10)


def _amounts(text: str) -> list[_Span]:
    spans = [_Span(m.start(), m.end(), "amount", _fen(Decimal(m[1])), 60) for m in YEN_RE.finditer(text)]
    for m in AMOUNT_RE.finditer(text):
        yuan = _to_decimal(m[1])
        jiao_digit = m[2] or m[3]
        jiao = cn_to_int(jiao_digit) if jiao_digit else 0
        if yuan is not None and jiao is not None:
            spans.append(_Span(m.start(), m.end(), "amount", _fen(yuan, jiao), 60))
    return spans


def _iso_duration(halves: int, unit: str) -> str | None:
    """ISO-8601 for `halves`/2 of `unit`; weeks become days ("两周" -> P14D)."""
    whole, half = divmod(halves, 2)
    if unit in ("天", "工作日"):
        return f"P{whole}DT12H" if half and whole else ("PT12H" if half else f"P{whole}D")
    if unit in ("小时", "钟头"):
        return f"PT{halves * 30}M" if half else f"PT{whole}H"
    if unit == "分钟":
        return None if half else f"PT{whole}M"
    if unit in ("周", "星期", "礼拜"):
        return f"PT{halves * 84}H" if half else f"P{whole * 7}D"
    if unit == "月":
        return (f"P{whole}M15D" if whole else "P15D") if half else f"P{whole}M"
    return (f"P{whole}Y6M" if whole else "P6M") if half else f"P{whole}Y"  # 年


def _durations(text: str) -> list[_Span]:
    spans = []
    for m in DURATION_RE.finditer(text):
        number, ge, half, unit = m.groups()
        if unit == "月" and not (ge or half or number == "半"):
            continue  # "三月" is March, only "三个月" is a duration
        if unit == "年" and number.isascii() and int(number) >= 10:
            continue  # "23年" is a year
        count = 1 if number == "半" else cn_to_int(number)
        if count is None or (number == "半" and half):
            continue
        halves = 1 if number == "半" else count * 2 + (1 if half else 0)
        if iso := _iso_duration(halves, unit):
            spans.append(_Span(m.start(), m.end(), "duration", iso, 60))
    return spans


def _sizes(text: str) -> list[_Span]:
    spans = []
    for m in SIZE_RE.finditer(text):
        digit, xs, plain, suffix = m.groups()
        if plain and not suffix and not plain.isupper():
            continue  # a lone lower-case "m"/"s" is rarely a size ("I'm")
        if digit:
            value = f"{digit}XL"
        elif xs:
            value = "XL" if len(xs) == 1 else f"{len(xs)}XL"  # XXL and 2XL are one size
        else:
            value = plain.upper()
        spans.append(_Span(m.start(), m.end(), "size", value, 50))
    for m in SHOE_RE.finditer(text):
        value = m[1] + (m[2] or "") if m[1] else str(cn_to_int(m[3]))
        spans.append(_Span(m.start(), m.end(), "size", value, 50))
    return spans


def _codes_and_accounts(text: str) -> list[_Span]:
    upper = text.translate(_ASCII_UPPER)  # tracking numbers are typed "sf123…" too
    spans = [_Span(m.start(), m.end(), "order_no", m[0], 80) for m in ORDER_NO_RE.finditer(text)]
    spans += [_Span(m.start(1), m.end(1), "tracking_no", m[1], 80) for m in ANY_TRACKING_NUMBER.finditer(upper)]
    spans += [
        _Span(m.start(1), m.end(1), "phone", re.sub(r"\D", "", m[1]), 55) for m in PHONE_RE.finditer(text)
    ]
    for m in ALIPAY_RE.finditer(text):
        account = m[1] if "@" in m[1] else re.sub(r"\D", "", m[1])
        spans.append(_Span(m.start(1), m.end(1), "account", f"alipay:{account}", 90))
    for m in BANK_RE.finditer(text):
        digits = re.sub(r"\D", "", m[1])
        if not 16 <= len(digits) <= 19:
            continue
        if len(digits) == 18 and digits.startswith("20") and "订单" in text:
            continue  # an order number that merely sits near the word 卡号/银行
        spans.append(_Span(m.start(1), m.end(1), "account", f"bank:{digits}", 90))
    return spans


def _regex_spans(text: str) -> list[_Span]:
    spans = _codes_and_accounts(text) + _amounts(text) + _durations(text) + _sizes(text)
    for m in QUANTITY_RE.finditer(text):
        if (count := cn_to_int(m[1])) is not None and count > 0:
            spans.append(_Span(m.start(), m.end(), "quantity", str(count), 40))
    return spans


# ---------------------------------------------------------------------------------------------
# Lexicon matched on jieba tokens by an EntityRuler (the pattern id carries the value)
# ---------------------------------------------------------------------------------------------

# Single characters count only as a whole token ("白", "白的", "白色"), never inside "明白".
_COLOR_CHARS = ("黑", "白", "红", "蓝", "绿", "黄", "紫", "粉", "灰", "棕")
_COLOR_WORDS = ("藏青", "卡其", "酒红", "米白", "米黄", "浅灰", "深灰", "浅蓝", "深蓝", "天蓝", "宝蓝",
                "藏蓝", "军绿", "墨绿", "玫红", "粉红", "桃红", "枣红", "奶白", "银灰", "姜黄", "雾霾蓝")
# Only with 色: "咖啡", "金", "香槟" alone are not colours.
_COLOR_NEED_SE = ("咖啡", "驼", "杏", "香槟", "焦糖", "燕麦", "金", "银", "橙", "肤")

_FIT = {"偏大": "too_big", "太大": "too_big", "大了": "too_big", "偏肥": "too_big", "太肥": "too_big",
        "偏松": "too_big", "太松": "too_big", "松了": "too_big",
        "偏小": "too_small", "太小": "too_small", "小了": "too_small", "紧": "too_small",
        "偏紧": "too_small", "太紧": "too_small", "紧了": "too_small", "偏瘦": "too_small",
        "挤脚": "too_small", "夹脚": "too_small"}
_FIT_ADJ = {"大": "too_big", "肥": "too_big", "松": "too_big", "小": "too_small", "紧": "too_small"}
_FIT_MODIFIERS = ["有点", "有些", "稍微", "略", "比较", "很", "特别", "非常", "偏", "太"]
_FIT_TAILS = ["一码", "半码", "一号", "一个码"]

_RESOLUTIONS = {
    "退货": "return_refund", "退货退款": "return_refund", "退款退货": "return_refund",
    "无理由退货": "return_refund", "七天无理由退货": "return_refund",
    "仅退款": "refund_only", "只退款": "refund_only", "退款": "refund_only", "退钱": "refund_only",
    "退款不退货": "refund_only",
    "换货": "exchange", "换一件": "exchange", "换一个": "exchange", "换个码": "exchange",
    "换码": "exchange", "换尺码": "exchange", "换个尺码": "exchange", "换大一码": "exchange",
    "换小一码": "exchange", "换大一号": "exchange", "换小一号": "exchange", "换个颜色": "exchange",
    "换颜色": "exchange", "换新": "exchange",
}
# Plain 退款/退钱 in a message that also says 退货 is the refund of that return, not refund-only.
_WEAK_REFUND = {"退款", "退钱"}
_NEGATIONS = ["不", "不用", "不想", "不要", "无需", "不需要", "免", "没"]
_SIZE_WORDS = {"均码": "均码", "大码": "大码", "小码": "小码", "加大码": "大码"}
_TYPO_COURIERS = {"顺风": "SF", "园通": "YTO"}


def _lexicon() -> list[tuple[str, str, str]]:
    """(label, phrase, value) for every phrase the ruler matches."""
    rows = [("color", w, c + "色") for c in _COLOR_CHARS + _COLOR_WORDS for w in (c, c + "色", c + "的")]
    rows += [("color", c + "色", c + "色") for c in _COLOR_NEED_SE]
    rows += [("size_fit", w + tail, v) for w, v in _FIT.items() for tail in ("", "了", *_FIT_TAILS)
             if not (tail == "了" and w.endswith("了"))]
    rows += [("resolution", w, v) for w, v in _RESOLUTIONS.items()]
    rows += [("size", w, v) for w, v in _SIZE_WORDS.items()]
    rows += [("courier", a, c.code) for c in COURIERS for a in c.aliases]
    rows += [("courier", a, code) for a, code in _TYPO_COURIERS.items()]
    return rows


def _token_patterns() -> list[dict[str, Any]]:
    """Patterns over several tokens: modifier + adjective, negated 退货, ignored phrases."""
    patterns: list[dict[str, Any]] = [
        {"label": "size_fit", "id": v, "pattern": [{"TEXT": {"IN": _FIT_MODIFIERS}}, {"TEXT": adj}]}
        for adj, v in _FIT_ADJ.items()
    ]
    patterns.append({"label": "resolution", "id": "refund_only",
                     "pattern": [{"TEXT": {"IN": _NEGATIONS}}, {"TEXT": "退货"}]})
    # Swallowed and dropped: "退货地址" asks for an address, it does not choose a resolution.
    patterns.append({"label": "_ignore", "id": "",
                     "pattern": [{"TEXT": {"IN": ["退货", "退款"]}},
                                 {"TEXT": {"IN": ["地址", "运费", "单号", "进度", "物流"]}}]})
    patterns.append({"label": "_ignore", "id": "", "pattern": "退货地址"})
    # "不退款？" complains that no refund came; it does not ask for one.
    patterns.append({"label": "_ignore", "id": "", "pattern": [{"TEXT": {"IN": _NEGATIONS}}, {"TEXT": "退款"}]})
    return patterns


_NLP: Language | None = None
_NLP_LOCK = threading.Lock()


def _build_nlp() -> Language:
    segmenter = jieba.Tokenizer()  # private: keeps our words out of the jieba Rasa's tokenizer shares
    segmenter.initialize()
    for path in USERDICT_PATHS:
        if path.is_file():
            try:
                segmenter.load_userdict(str(path))
            except (ValueError, UnicodeDecodeError) as exc:  # someone else's file: never fatal
                logger.warning("Ignoring jieba user dictionary %s: %s", path, exc)
            break
    for _, phrase, _ in _lexicon():
        if not phrase.isascii() and not segmenter.FREQ.get(phrase):
            segmenter.add_word(phrase)  # so "要白的" cuts as 要/白的 and "酒红色" stays whole
    nlp = spacy.blank("zh", config={"nlp": {"tokenizer": {"segmenter": "jieba"}}})
    nlp.tokenizer.jieba_seg = segmenter  # spaCy 3.4's ChineseTokenizer only calls `.cut()` on it
    ruler = nlp.add_pipe("entity_ruler", config={"phrase_matcher_attr": "LOWER"})
    ruler.add_patterns([{"label": label, "pattern": phrase, "id": value} for label, phrase, value in _lexicon()]
                       + _token_patterns())
    return nlp


def get_nlp() -> Language:
    """The shared spaCy pipeline, built on first use."""
    global _NLP
    if _NLP is None:
        with _NLP_LOCK:
            if _NLP is None:
                _NLP = _build_nlp()
    return _NLP


_PRIORITY = {"resolution": 70, "size_fit": 70, "size": 50, "color": 50, "courier": 50}


def _ruler_spans(text: str) -> list[_Span]:
    spans = []
    for ent in get_nlp()(text).ents:
        if ent.label_ == "_ignore":
            continue
        end = ent.end_char - 1 if ent.label_ == "color" and ent.text.endswith("的") else ent.end_char
        spans.append(_Span(ent.start_char, end, ent.label_, ent.ent_id_, _PRIORITY[ent.label_]))
    return spans


def _resolve(spans: list[_Span]) -> list[_Span]:
    """Longest span first, then the more specific entity; no two share a character."""
    chosen: list[_Span] = []
    for span in sorted(spans, key=lambda s: (s.start - s.end, -s.priority, s.start)):
        if all(span.end <= c.start or span.start >= c.end for c in chosen):
            chosen.append(span)
    return sorted(chosen)


def extract(text: str) -> list[dict[str, Any]]:
    """Rasa-style entity dicts found in `text`, ordered by position."""
    if not text or not text.strip():
        return []
    norm = normalize(text)
    spans = _resolve(_ruler_spans(norm) + _regex_spans(norm))
    if any(s.entity == "resolution" and s.value == "return_refund" for s in spans):
        spans = [s for s in spans if not (s.entity == "resolution" and norm[s.start:s.end] in _WEAK_REFUND)]
    if not any(s.entity == "courier" for s in spans):
        # No courier named: a number that only one courier issues names it.
        for s in [s for s in spans if s.entity == "tracking_no"]:
            if len(matching := couriers_matching(s.value)) == 1:
                spans.append(_Span(s.start, s.end, "courier", matching[0].code, 0))
    return [
        {"entity": s.entity, "value": s.value, "start": s.start, "end": s.end,
         "confidence": 1.0, "extractor": EXTRACTOR_NAME}
        for s in sorted(spans, key=lambda s: (s.start, s.entity != "tracking_no"))
    ]


# ---------------------------------------------------------------------------------------------
# Rasa component
# ---------------------------------------------------------------------------------------------


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR], is_trainable=False)
class ShopEntityExtractor(GraphComponent, EntityExtractorMixin):
    """Adds the entities of `extract()` to each message (config: `bot.nlu.entities.ShopEntityExtractor`)."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        """No options: the rules live in this module."""
        return {}

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> ShopEntityExtractor:
        """Creates the component (nothing to train or load)."""
        return cls(config)

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        self._config = {**self.get_default_config(), **(config or {})}

    def process(self, messages: list[Message]) -> list[Message]:
        """Appends the extracted entities to each message's `entities`."""
        for message in messages:
            entities = self.add_extractor_name(extract(message.get(TEXT) or ""))
            message.set(ENTITIES, message.get(ENTITIES, []) + entities, add_to_output=True)
        return messages
