"""Rasa's calls to the action server (or its load balancer) reuse one kept connection per endpoint
(bot/ops/rasa_guard.py), and a connection the server closed while idle is never used again."""

import asyncio
import json

from rasa.utils.endpoints import EndpointConfig

import bot.ops.rasa_guard as guard


async def _serve(keepalive_s: float) -> tuple[asyncio.AbstractServer, str, list]:
    """An HTTP/1.1 server that answers like an action server, notes each call's client port, and closes a
    connection that stays idle for `keepalive_s`, as nginx and Sanic do."""
    ports: list = []

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        port = writer.get_extra_info("peername")[1]
        try:
            while True:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), keepalive_s)
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length"))
                body = json.loads(await reader.readexactly(length))
                ports.append(port)
                answer = json.dumps({"events": [], "responses": [{"text": body["next_action"]}]}).encode()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                             % (len(answer), answer))
                await writer.drain()
        except (asyncio.TimeoutError, asyncio.IncompleteReadError):
            pass
        writer.close()

    server = await asyncio.start_server(connection, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/webhook", ports


def test_calls_share_one_connection_and_the_session_is_closed_on_stop():
    async def scenario() -> tuple[list, list, bool]:
        server, url, ports = await _serve(keepalive_s=30)
        endpoint = EndpointConfig(url)
        answers = [await endpoint.request(json={"next_action": f"action_{n}"}) for n in range(5)]
        session = endpoint.__dict__["_bot_kept_session"][1]
        await guard.close_kept_sessions()
        server.close()
        return answers, ports, session.closed

    answers, ports, closed = asyncio.run(scenario())
    assert [a["responses"][0]["text"] for a in answers] == [f"action_{n}" for n in range(5)]
    assert len(ports) == 5 and len(set(ports)) == 1  # one connection for all five calls
    assert closed


def test_a_connection_the_server_closed_while_idle_is_not_reused():
    """The server closes idle connections after 0.3 s, as nginx (3 s) and Sanic (5 s) do after theirs: a call
    after that goes out on a new connection and is answered."""
    async def scenario() -> tuple[list, list]:
        server, url, ports = await _serve(keepalive_s=0.3)
        endpoint = EndpointConfig(url)
        answers = [await endpoint.request(json={"next_action": "first"})]
        await asyncio.sleep(0.8)
        answers.append(await endpoint.request(json={"next_action": "second"}))
        await guard.close_kept_sessions()
        server.close()
        return answers, ports

    answers, ports = asyncio.run(scenario())
    assert [a["responses"][0]["text"] for a in answers] == ["first", "second"]
    assert len(set(ports)) == 2


def test_the_client_lets_idle_connections_go_before_the_servers_do():
    assert guard.KEPT_CONNECTION_IDLE_S < 3  # nginx's upstream keepalive_timeout (bot/ops/prod.py), Sanic's 5 s


def test_an_action_calls_json_is_the_same_document_as_json_dumps_makes():
    """The calls are encoded by ujson: decoded, the same document as `json.dumps`'s (Chinese text, floats to the
    last digit, NaN, nesting); what ujson refuses goes to `json.dumps`, and what neither can encode fails as
    before. The body reaches the server that way."""
    parse = {"text": "这件衣服掉色了/要退货", "intent": {"name": "reason_quality", "confidence": 0.9958121180534363},
             "intent_ranking": [{"name": "deny", "confidence": 1e-07}, {"name": "x", "confidence": 5e-324}],
             "metadata": {"buyer_token": "a.b-c_d", "shop": None, "flags": (True, False)}, "big": 2 ** 70}
    for body in [parse, {"next_action": "validate_after_sale_form", "tracker": {"latest_message": parse,
                                                                                 "events": [parse] * 3}}, [], "",
                 {"nan": float("nan")}]:
        encoded = guard.action_call_json(body)
        assert json.dumps(json.loads(encoded)) == json.dumps(json.loads(json.dumps(body)))
    assert "这件衣服掉色了/要退货" in guard.action_call_json(parse)  # UTF-8, no \u escapes
    for unencodable in ({"s": {1, 2}}, {"o": object()}):
        try:
            json.dumps(unencodable)
        except TypeError as expected:
            raised = expected
        try:
            guard.action_call_json(unencodable)
            raise AssertionError("encoded what json.dumps refuses")
        except TypeError as exc:
            assert str(exc) == str(raised)

    async def scenario() -> list:
        seen: list = []

        async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length"))
            seen.append(await reader.readexactly(length))
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(connection, "127.0.0.1", 0)
        endpoint = EndpointConfig(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/webhook")
        await endpoint.request(json=parse)
        await guard.close_kept_sessions()
        server.close()
        return seen

    (sent,) = asyncio.run(scenario())
    assert sent.decode("utf-8") == guard.action_call_json(parse) and json.loads(sent)["text"] == parse["text"]
