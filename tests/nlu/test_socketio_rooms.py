"""The socket.io fix (bot/ops/rasa_guard.py, imported by every profile's credentials): a buyer's socket joins
its conversation's room although Rasa 3.6 calls the coroutine `enter_room` without awaiting it, so what the
bot sends on its own (an agent's reply, a timer's outcome, a follow-up) reaches the open chat page."""

import asyncio

import socketio

import bot.ops.rasa_guard  # noqa: F401  (applies the fix on import, as `rasa run` does through credentials.yml)


def test_a_socket_joins_its_room_when_enter_room_is_not_awaited():
    async def scenario() -> tuple[str, list]:
        sio = socketio.AsyncServer(async_mode="asgi")
        sid = await sio.manager.connect("eio-1", "/")
        sio.enter_room(sid, "buyer-1")  # exactly as rasa/core/channels/socketio.py calls it
        await asyncio.sleep(0.01)
        return sid, [participant for participant, _ in sio.manager.get_participants("/", "buyer-1")]

    sid, in_room = asyncio.run(scenario())
    assert in_room == [sid]
