"""The production profile's conversation lock (bot/ops/rasa_lock.py) on the machine's Redis: one message of a
conversation at a time across replicas, first come first served, a long turn keeps the lock, and a killed
replica's lock is free again after one lease instead of Rasa's 60 s."""

import asyncio
import time
import uuid

import pytest
import redis

from bot.ops.rasa_lock import LeaseLockStore

LEASE_S = 0.6


@pytest.fixture
def prefix():
    tag = "t" + uuid.uuid4().hex[:10]
    yield tag
    client = redis.Redis(host="127.0.0.1", port=6379, db=1)
    keys = list(client.scan_iter(f"{tag}:*"))
    if keys:
        client.delete(*keys)
    client.close()


def replica(prefix: str) -> LeaseLockStore:
    """One Rasa replica's lock store (each replica has its own connection)."""
    return LeaseLockStore(host="127.0.0.1", port=6379, db=1, key_prefix=prefix, lease_s=LEASE_S)


def test_messages_of_one_conversation_run_one_at_a_time_in_arrival_order_across_replicas(prefix):
    async def scenario() -> tuple[list, int]:
        replicas = [replica(prefix), replica(prefix)]
        order: list[int] = []
        inside = 0
        most = 0

        async def message(n: int) -> None:
            nonlocal inside, most
            async with replicas[n % 2].lock("buyer-1"):
                inside += 1
                most = max(most, inside)
                order.append(n)
                await asyncio.sleep(0.01)  # the turn awaits (database, action server): others may run
                inside -= 1

        tasks = []
        for n in range(12):  # arrivals 5 ms apart, alternating between the replicas
            tasks.append(asyncio.ensure_future(message(n)))
            await asyncio.sleep(0.005)
        await asyncio.gather(*tasks)
        return order, most

    order, most = asyncio.run(scenario())
    assert most == 1
    assert order == list(range(12))


def test_other_conversations_are_not_held_up(prefix):
    async def scenario() -> float:
        store = replica(prefix)
        async with store.lock("buyer-1"):
            started = time.monotonic()
            async with store.lock("buyer-2"):
                return time.monotonic() - started

    assert asyncio.run(scenario()) < 0.2


def test_a_turn_longer_than_the_lease_keeps_the_lock(prefix):
    async def scenario() -> list[str]:
        a, b = replica(prefix), replica(prefix)
        events: list[str] = []

        async def slow() -> None:
            async with a.lock("buyer-1"):
                events.append("slow in")
                await asyncio.sleep(4 * LEASE_S)  # renewed all along
                events.append("slow out")

        async def next_message() -> None:
            await asyncio.sleep(0.05)
            async with b.lock("buyer-1"):
                events.append("next in")

        await asyncio.gather(slow(), next_message())
        return events

    assert asyncio.run(scenario()) == ["slow in", "slow out", "next in"]


def test_a_killed_replicas_lock_is_free_after_one_lease(prefix):
    """The first replica takes the lock and dies (no release, no renewals): the next message of the
    conversation, on the other replica, goes through once the lease has run out."""
    async def scenario() -> float:
        dead, alive = replica(prefix), replica(prefix)
        nxt, serving, held = dead._keys("buyer-1")
        ticket, served = await dead._take(keys=[nxt, serving, held], args=[dead.lease_ms, 60_000])
        assert served == 1  # it held the lock when it died
        started = time.monotonic()
        async with alive.lock("buyer-1"):
            return time.monotonic() - started

    waited = asyncio.run(scenario())
    assert LEASE_S * 0.5 < waited < LEASE_S + 1.0


def test_a_message_that_fails_gives_the_turn_to_the_next_at_once(prefix):
    async def scenario() -> float:
        store = replica(prefix)
        with pytest.raises(RuntimeError):
            async with store.lock("buyer-1"):
                raise RuntimeError("the turn failed")
        started = time.monotonic()
        async with store.lock("buyer-1"):
            return time.monotonic() - started

    assert asyncio.run(scenario()) < 0.2


def test_endpoints_file_builds_the_store_as_rasa_does(prefix, tmp_path):
    from rasa.core.lock_store import LockStore
    from rasa.utils.endpoints import read_endpoint_config

    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text("lock_store:\n  type: bot.ops.rasa_lock.LeaseLockStore\n  url: 127.0.0.1\n  port: 6379\n"
                         f"  db: 1\n  key_prefix: {prefix}\n")
    store = LockStore.create(read_endpoint_config(str(endpoints), "lock_store"))
    assert isinstance(store, LeaseLockStore) and store.prefix == f"{prefix}:lease:"

    async def scenario() -> None:
        async with store.lock("buyer-1"):
            pass

    asyncio.run(scenario())
