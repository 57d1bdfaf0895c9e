"""The conversation lock of the production profile: first come, first served per conversation, on Redis,
held as a lease that the holder keeps renewing (imported by the Rasa server only, through the endpoints file).

Why not Rasa's `RedisLockStore`: its tickets live 60 s whatever happens, so a replica killed in the middle of
a message blocked that buyer's next messages for up to a minute; every step of it reads, changes and writes
back one JSON value, so two replicas taking a ticket at the same moment could overwrite each other's; a
waiting message polled once a second; and each message cost seven blocking round trips.

Here each step is one Lua script, atomic in Redis. Per conversation there is a ticket counter, the ticket
being served and one lease key per ticket, which expires unless renewed. A message takes a ticket (and its
lease), waits until the tickets before it are done or their leases have run out (a dead replica's or a
dead waiter's), and gives its turn to the next ticket when it is finished. While it waits or runs, its lease
is renewed every third of the lease time, so a long turn (a slow action) keeps the lock, and the lock of a
killed replica is free again after at most one lease time (`BOT_LOCK_LEASE_S`, 10 s by default).
"""

from __future__ import annotations

import asyncio
import logging
import os
from contextlib import asynccontextmanager
from typing import AsyncGenerator, Optional, Text

from rasa.core.lock import TicketLock
from rasa.core.lock_store import LockError, LockStore
from rasa.utils.endpoints import EndpointConfig

logger = logging.getLogger(__name__)

LEASE_S = float(os.environ.get("BOT_LOCK_LEASE_S", "10"))
POLL_S = 0.02  # a waiting message checks its turn this often (Rasa: once a second)
KEYS_TTL_MS = 24 * 3600 * 1000  # counters of a conversation nobody writes to any more go away

# KEYS: next, serving, lease prefix. ARGV: lease ms, keys ttl ms. Returns the ticket and whether it is served.
_TAKE = """
local ticket = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('SET', KEYS[3] .. ticket, '1', 'PX', ARGV[1])
if not redis.call('GET', KEYS[2]) then
  redis.call('SET', KEYS[2], ticket, 'PX', ARGV[2])
end
local serving = tonumber(redis.call('GET', KEYS[2]))
if serving > ticket then serving = ticket end  -- the counter expired and started again
while serving < ticket and redis.call('EXISTS', KEYS[3] .. serving) == 0 do
  serving = serving + 1
end
redis.call('SET', KEYS[2], serving, 'PX', ARGV[2])
return {ticket, serving == ticket and 1 or 0}
"""
# KEYS: serving, lease prefix. ARGV: ticket, lease ms, keys ttl ms.
# Returns 1 when it is this ticket's turn, 0 to wait, -1 when its lease ran out and its turn passed.
_TRY = """
local ticket = tonumber(ARGV[1])
if redis.call('PEXPIRE', KEYS[2] .. ticket, ARGV[2]) == 0 then return -1 end
local serving = tonumber(redis.call('GET', KEYS[1]) or ticket)
if serving > ticket then return -1 end
while serving < ticket and redis.call('EXISTS', KEYS[2] .. serving) == 0 do
  serving = serving + 1
end
redis.call('SET', KEYS[1], serving, 'PX', ARGV[3])
return serving == ticket and 1 or 0
"""
# KEYS: lease prefix. ARGV: ticket, lease ms. Returns 1 if the lease was still there.
_RENEW = "return redis.call('PEXPIRE', KEYS[1] .. ARGV[1], ARGV[2])"
# KEYS: serving, lease prefix. ARGV: ticket, keys ttl ms. The next ticket's turn.
_RELEASE = """
redis.call('DEL', KEYS[2] .. ARGV[1])
if tonumber(redis.call('GET', KEYS[1]) or -1) == tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], tonumber(ARGV[1]) + 1, 'PX', ARGV[2])
end
return 1
"""


class LeaseLockStore(LockStore):
    """Per-conversation FIFO lock on Redis with renewed leases (see the module's docstring).

    Only `lock()` is implemented: it is all Rasa's server calls. LockStore's TicketLock methods (get_lock,
    save_lock, delete_lock) keep their base behaviour, NotImplementedError: there are no TicketLock objects."""

    def __init__(self, endpoint_config: Optional[EndpointConfig] = None, *, host: Text = "localhost",
                 port: int = 6379, db: int = 1, key_prefix: Optional[Text] = None, password: Optional[Text] = None,
                 lease_s: float | None = None) -> None:
        import redis.asyncio as redis

        if endpoint_config is not None:
            kwargs = endpoint_config.kwargs
            host = endpoint_config.url or host
            port, db = int(kwargs.get("port", port)), int(kwargs.get("db", db))
            key_prefix, password = kwargs.get("key_prefix", key_prefix), kwargs.get("password", password)
        self.prefix = f"{key_prefix}:lease:" if key_prefix else "lease:"
        self.lease_ms = int(1000 * (lease_s or LEASE_S))
        self.red = redis.Redis(host=host, port=int(port), db=int(db), password=password, socket_timeout=5)
        self._take = self.red.register_script(_TAKE)
        self._try = self.red.register_script(_TRY)
        self._renew = self.red.register_script(_RENEW)
        self._release = self.red.register_script(_RELEASE)
        super().__init__()

    def _keys(self, conversation_id: Text) -> tuple[str, str, str]:
        base = self.prefix + conversation_id
        return base + ":next", base + ":serving", base + ":held:"

    @asynccontextmanager
    async def lock(self, conversation_id: Text, lock_lifetime: float = 0,
                   wait_time_in_seconds: float = POLL_S) -> AsyncGenerator[TicketLock, None]:
        """Hold the conversation's lock for the block; `lock_lifetime` is unused (leases are renewed)."""
        nxt, serving, held = self._keys(conversation_id)
        try:
            ticket, served = await self._take(keys=[nxt, serving, held], args=[self.lease_ms, KEYS_TTL_MS])
        except Exception as exc:
            raise LockError(f"could not take a ticket for the conversation: {type(exc).__name__}") from exc
        keeper = asyncio.ensure_future(self._keep(held, int(ticket)))
        try:
            while not served:
                await asyncio.sleep(min(wait_time_in_seconds, POLL_S))
                state = await self._try(keys=[serving, held], args=[ticket, self.lease_ms, KEYS_TTL_MS])
                if state == -1:
                    raise LockError(f"the lease of a message of '{conversation_id}' ran out while it waited")
                served = state == 1
            yield TicketLock(conversation_id)
        finally:
            keeper.cancel()
            try:
                await self._release(keys=[serving, held], args=[ticket, KEYS_TTL_MS])
            except Exception as exc:  # the lease runs out by itself: the next message waits at most that long
                logger.error("could not release the lock of a conversation: %s", type(exc).__name__)

    async def _keep(self, held: str, ticket: int) -> None:
        """Renew the lease while the message waits or is handled."""
        while True:
            await asyncio.sleep(self.lease_ms / 3000)
            try:
                if not await self._renew(keys=[held], args=[ticket, self.lease_ms]):
                    logger.error("the lease of a conversation's lock ran out before it was renewed")
                    return
            except Exception as exc:  # Redis away for a moment: try again at the next beat
                logger.warning("could not renew a conversation lock: %s", type(exc).__name__)
