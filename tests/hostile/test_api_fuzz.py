"""Property-based fuzzing of the JSON API (every operation of the OpenAPI schema) and the evidence upload.

For every input: no 5xx, no stack trace or SQL in the answer, errors in the documented JSON shape, and
nothing of another buyer in a buyer's answers. After all inputs: the database still holds only consistent
requests (each on its own buyer's order, no refund larger than what was paid, at most one payout each).
"""

import json
import re
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text

from tests.hostile.conftest import TRIED, signed_in_buyer, staff_headers
from tests.hostile.strategies import hostile_scalar, hostile_text, value_for

TRACE = re.compile(r"Traceback|File \"/|sqlalchemy|psycopg|IntegrityError|OperationalError|SELECT .* FROM", re.I)
OTHER_BUYER = ("202611200000000201", "202611200000000202", "13900002222", "王先生")  # buyer 2's
FUZZ = settings(max_examples=1500, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much])


def no_nul(value):  # type: ignore[no-untyped-def]
    """NUL is left to its own test below (it is a known failure, reported to the owner)."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, list):
        return [no_nul(v) for v in value]
    if isinstance(value, dict):
        return {no_nul(k): no_nul(v) for k, v in value.items()}
    return value


def check_answer(response, *, as_buyer: bool, strict_shape: bool = False) -> None:  # type: ignore[no-untyped-def]
    body = response.text
    assert response.status_code < 500, f"{response.status_code}: {body[:300]}"
    assert not TRACE.search(body), body[:500]
    ctype = response.headers.get("content-type", "")
    if response.status_code >= 400 and ctype.startswith("application/json"):
        payload = response.json()
        if not strict_shape and response.status_code in (400, 404, 405) and set(payload) == {"detail"}:
            pass  # Starlette's own "no such route" / "bad body" (a known gap, see test_unknown_route_error_shape)
        else:
            error = payload.get("error") if isinstance(payload, dict) else None
            assert isinstance(error, dict) and error.get("code") and error.get("message"), body[:300]
    if as_buyer:
        for secret in OTHER_BUYER:
            assert secret not in body, f"buyer 1 saw {secret}"


@pytest.fixture(scope="module")
def operations(app):  # type: ignore[no-untyped-def]
    spec = app.openapi()
    ops = [(path, method, op) for path, item in spec["paths"].items() for method, op in item.items()
           if path != "/api/me/evidence"]
    return spec, ops


@pytest.fixture(scope="module")
def identities(app):  # type: ignore[no-untyped-def]
    buyer = signed_in_buyer(app, 1)
    anonymous = signed_in_buyer(app, 3)
    anonymous.cookies.clear()
    staff = {name: staff_headers(buyer, name) for name in ("li", "zhou", "sun", "xiaoer")}
    return buyer, anonymous, staff


def test_every_operation_survives_hostile_input(operations, identities):
    spec, ops = operations
    buyer, anonymous, staff = identities

    @FUZZ
    @given(st.data())
    def one(data):  # type: ignore[no-untyped-def]
        path, method, op = data.draw(st.sampled_from(ops), label="operation")
        who = data.draw(st.sampled_from(["buyer", "anonymous", "li", "zhou", "sun", "xiaoer", "forged"]))
        client = anonymous if who in ("anonymous", "forged") else buyer
        headers = dict(staff.get(who, {}))
        if who == "forged":
            headers["Authorization"] = "Bearer " + no_nul(data.draw(hostile_text(60))).encode("ascii", "replace").decode()
        url, query = path, {}
        for p in op.get("parameters", []):
            if p["in"] == "path":
                value = no_nul(data.draw(st.one_of(value_for(p["schema"], spec), st.integers(1, 12))))
                url = url.replace("{" + p["name"] + "}", quote(str(value)[:300], safe="") or "x")
            elif p["in"] == "query" and data.draw(st.booleans()):
                query[p["name"]] = no_nul(str(data.draw(value_for(p["schema"], spec))))[:1500]
            elif p["in"] == "header" and p["name"] == "x-api-key" and data.draw(st.booleans()):
                headers["X-Api-Key"] = "hostile-integration-key"
        kwargs: dict = {"params": query, "headers": headers}
        if "requestBody" in op:
            schema = op["requestBody"]["content"].get("application/json", {}).get("schema", {})
            body = no_nul(data.draw(st.one_of(value_for(schema, spec), hostile_scalar()), label="body"))
            raw = json.dumps(body, ensure_ascii=data.draw(st.booleans()), allow_nan=True)
            kwargs["content"] = raw.encode()
            kwargs["headers"] = {**headers, "Content-Type": "application/json"}
        response = client.request(method.upper(), url, **kwargs)
        TRIED[f"api {method.upper()} {path}"] += 1
        check_answer(response, as_buyer=who == "buyer")

    one()


def test_malformed_bodies(client):
    bodies = [b"", b"{", b"[1,2", b"\xff\xfe\x00", b"null", b'{"order_no": {"$ne": null}}', b"a" * 2_000_000,
              b'{"order_no": "' + b"9" * 100_000 + b'"}', json.dumps({"x": [[[[[[[[[[[]]]]]]]]]]]}).encode()]
    buyer = signed_in_buyer(client.app, 1)
    for path in ("/api/me/after-sales", "/api/staff/token", "/api/integrations/warehouse/shipped"):
        for body in bodies:
            for ctype in ("application/json", "text/plain", "application/x-www-form-urlencoded"):
                r = buyer.post(path, content=body, headers={"Content-Type": ctype})
                TRIED["api malformed body"] += 1
                check_answer(r, as_buyer=True)
                assert r.status_code in (400, 401, 413, 415, 422), (path, ctype, r.status_code)


JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 200 + b"\xff\xd9"


@pytest.mark.parametrize("name,content,ctype,ok", [
    ("ok.jpg", JPEG, "image/jpeg", True),
    ("huge.jpg", JPEG[:-2] + b"\x00" * (5 * 1024 * 1024 + 10), "image/jpeg", False),
    ("fake.jpg", b"<?php system($_GET['c']); ?>" + b" " * 100, "image/jpeg", False),
    ("fake.png", b"\x89PNG\r\n\x1a\n", "image/png", False),  # too small to be a picture
    ("x.svg", b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'>" + b" " * 80 + b"</svg>",
     "image/svg+xml", False),
    ("../../../etc/passwd.jpg", JPEG, "image/jpeg", True),  # the name is ignored: stored under a random one
    ("empty.jpg", b"", "image/jpeg", False),
    ("html.jpg", b"<html><script>alert(1)</script></html>" + b" " * 64, "text/html", False),
    ("riff.webp", b"RIFF\x00\x00\x00\x00WEBPVP8 " + b"\x00" * 100, "image/webp", True),
    ("zip.jpg", b"PK\x03\x04" + b"\x00" * 200, "image/jpeg", False),
])
def test_evidence_upload_hostile_files(app, app_env, name, content, ctype, ok):
    buyer = signed_in_buyer(app, 1)
    r = buyer.post("/api/me/evidence", files={"file": (name, content, ctype)})
    TRIED["evidence upload"] += 1
    check_answer(r, as_buyer=True)
    assert (r.status_code == 201) is ok, (r.status_code, r.text[:200])
    if ok:  # the name is ignored: the bytes go into the database, nothing is written under var/
        assert not list(__import__("pathlib").Path(app_env["BOT_VAR_DIR"]).rglob("*.jpg"))
        assert not (__import__("pathlib").Path(app_env["BOT_VAR_DIR"]) / "evidence").exists()


def test_evidence_upload_without_sign_in(client):
    r = client.post("/api/me/evidence", files={"file": ("a.jpg", JPEG, "image/jpeg")})
    TRIED["evidence upload"] += 1
    assert r.status_code == 401


def test_database_consistent_after_fuzzing(app_env, operations, identities):
    """Runs after the fuzzers (same module): whatever they did, the books still add up."""
    engine = create_engine(app_env["BOT_DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        wrong_owner = conn.execute(text(
            "SELECT count(*) FROM after_sales a JOIN orders o ON o.id = a.order_id WHERE a.buyer_id <> o.buyer_id"
        )).scalar()
        overpaid = conn.execute(text(
            "SELECT count(*) FROM (SELECT o.id, o.paid_fen, sum(a.refund_fen + a.freight_refund_fen) AS r "
            "FROM after_sales a JOIN orders o ON o.id = a.order_id WHERE a.status = 'refunded' "
            "GROUP BY o.id, o.paid_fen) x WHERE x.r > x.paid_fen")).scalar()
        double_payouts = conn.execute(text(
            "SELECT count(*) FROM (SELECT after_sale_id FROM payouts GROUP BY after_sale_id HAVING count(*) > 1) x"
        )).scalar()
        unaudited = conn.execute(text(
            "SELECT count(*) FROM after_sales a WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.after_sale_id = a.id)"
        )).scalar()
        too_many = conn.execute(text(
            "SELECT count(*) FROM (SELECT ai.order_item_id, sum(ai.quantity) q, max(oi.quantity) b "
            "FROM after_sale_items ai JOIN after_sales a ON a.id = ai.after_sale_id "
            "JOIN order_items oi ON oi.id = ai.order_item_id "
            "WHERE a.status NOT IN ('cancelled', 'closed', 'rejected') GROUP BY ai.order_item_id) x WHERE x.q > x.b"
        )).scalar()
    engine.dispose()
    assert (wrong_owner, overpaid, double_payouts, unaudited, too_many) == (0, 0, 0, 0, 0)


def test_nul_bytes_are_refused_politely(app):
    buyer = signed_in_buyer(app, 1)
    answers = [
        buyer.post("/api/me/orders/%00/cancel"),
        buyer.post("/api/me/after-sales", json={"order_no": "2026\x00", "reason": "quality"}),
        buyer.post("/api/staff/token", json={"username": "li\x00", "password": "x"}),
    ]
    TRIED["api NUL byte"] += len(answers)
    for r in answers:
        check_answer(r, as_buyer=True, strict_shape=True)


def test_unknown_route_error_shape(client):
    answers = [client.get("/api/no/such/route"),
               client.post("/api/staff/token", content=b"{", headers={"Content-Type": "application/json"})]
    TRIED["api unknown route / bad body"] += len(answers)
    for r in answers:
        check_answer(r, as_buyer=False, strict_shape=True)


def test_out_of_range_integers(app):
    buyer = signed_in_buyer(app, 1)
    staff = staff_headers(buyer, "li")
    answers = [
        buyer.get(f"/api/me/after-sales/{2**31}/timeline"),
        buyer.post(f"/api/me/after-sales/{2**40}/cancel"),
        buyer.get(f"/api/staff/requests/{2**31}", headers=staff),
        buyer.post("/api/me/after-sales", json={"order_no": "202611200000000104", "reason": "quality",
                                                "items": [{"order_item_id": 2**40, "quantity": 1}]}),
    ]
    TRIED["api out-of-range integer"] += len(answers)
    for r in answers:
        check_answer(r, as_buyer=True, strict_shape=True)
