"""Hypothesis strategies for hostile text and for JSON shaped (or mis-shaped) after an OpenAPI schema."""

from hypothesis import strategies as st

FIXED_HOSTILE = [
    "", " ", "\x00", "a\x00b", "\x1b[31mred\x1b[0m", "\r\n\r\nX-Injected: 1", "\u202e\u202dabc", "\u200b\u200c\u200d",
    "\ufeff", "\ud7ff", "😀" * 50, "👩‍👩‍👧‍👦🇨🇳🏳️‍🌈", "退货 refund возврат إرجاع 返品 반품 ✓", "ＡＢＣ１２３（全角）",
    "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "\"><svg/onload=alert(1)>", "{{7*7}}", "${7*7}",
    "{% raw %}", "'; DROP TABLE after_sales; --", "' OR '1'='1", "1; SELECT pg_sleep(5)--", "%00", "%s%s%s%n",
    "../../etc/passwd", "..\\..\\windows\\win.ini", "/inform{\"order_no\":\"202611200000000201\"}",
    "/restart", "/session_start", "/EXTERNAL_request_update{\"request_id\": 1}", "null", "true", "[]", "{}",
    "9" * 400, "-1", "1e309", "NaN", "0x41", "我的电话13812345678，卡号6222021234567890128，地址杭州市文三路100号",
    "A" * 5000, "退" * 3000,
]

_controls = st.characters(min_codepoint=0, max_codepoint=31)
_emoji = st.characters(min_codepoint=0x1F300, max_codepoint=0x1FAFF)
_cjk = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF)
_mixed = st.characters(blacklist_categories=("Cs",))


def hostile_text(max_size: int = 200) -> st.SearchStrategy[str]:
    pieces = st.one_of(st.sampled_from(FIXED_HOSTILE), st.text(_mixed, max_size=max_size),
                       st.text(st.one_of(_controls, _emoji, _cjk), max_size=max_size))
    long_ = st.builds(lambda s, n: (s or "退") * n, st.text(st.one_of(_cjk, _emoji, _mixed), max_size=5),
                      st.integers(200, 4000))
    return st.one_of(pieces, st.lists(pieces, max_size=4).map("".join), long_)


# Integers beyond PostgreSQL's int4 are a known failure (reported to the owner, see test_api_fuzz.py), so the
# fuzzers stay inside it and test_out_of_range_integers covers the rest.
INT32 = 2**31 - 1
_ints = st.one_of(st.integers(-INT32, INT32), st.sampled_from([0, -1, 1, 3, 999, 1000, INT32, -INT32]))
_floats = st.one_of(st.floats(-1e9, 1e9), st.sampled_from([float("nan"), float("inf"), float("-inf"), 0.5, -0.0]))


def hostile_scalar() -> st.SearchStrategy[object]:
    return st.one_of(hostile_text(40), _ints, _floats, st.booleans(), st.none())


def _resolve(schema: dict, spec: dict) -> dict:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = spec["components"]["schemas"][name]
    return schema


def value_for(schema: dict, spec: dict, depth: int = 0) -> st.SearchStrategy[object]:
    """Mostly the right shape with hostile values; sometimes anything at all."""
    schema = _resolve(schema, spec)
    if depth > 3:
        return hostile_scalar()
    choices = schema.get("anyOf") or schema.get("oneOf")
    if choices:
        return st.one_of(*(value_for(c, spec, depth + 1) for c in choices))
    kind = schema.get("type")
    if kind == "string":
        right = hostile_text()
        if "enum" in schema:
            right = st.one_of(st.sampled_from(schema["enum"]), right)
    elif kind == "integer":
        right = _ints
    elif kind == "number":
        right = _floats
    elif kind == "boolean":
        right = st.booleans()
    elif kind == "array":
        right = st.lists(value_for(schema.get("items", {}), spec, depth + 1), max_size=5)
    elif kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        right = st.fixed_dictionaries({}, optional={k: value_for(v, spec, depth + 1) for k, v in props.items()})
    else:
        right = hostile_scalar()
    return st.one_of(right, right, right, hostile_scalar())
