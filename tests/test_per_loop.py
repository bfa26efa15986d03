"""What the token providers and downstream APIs keep per event loop is released with the loop."""

from __future__ import annotations

import asyncio
import gc
import weakref

from entra_auth.client.per_loop import MAX_LOOPS, PerLoop


def test_a_closed_loops_state_and_the_loop_itself_are_released() -> None:
    locks: PerLoop[asyncio.Lock] = PerLoop(asyncio.Lock)
    seen: list[weakref.ref[asyncio.AbstractEventLoop]] = []

    async def use() -> None:
        lock = locks.get()
        async with lock:  # bound to this loop from here on (it keeps a reference to it)
            await asyncio.sleep(0)
        assert locks.get() is lock  # one per loop
        seen.append(weakref.ref(asyncio.get_running_loop()))

    for _ in range(20):
        asyncio.run(use())
    gc.collect()
    alive = [ref for ref in seen if ref() is not None]
    assert len(alive) <= 1  # only the last loop, until another comes
    assert len(locks._values) <= 1


def test_open_loops_are_bounded() -> None:
    values: PerLoop[object] = PerLoop(object)
    loops = [asyncio.new_event_loop() for _ in range(MAX_LOOPS + 3)]

    async def use() -> object:
        return values.get()

    try:
        for loop in loops:
            loop.run_until_complete(use())
        assert len(values._values) == MAX_LOOPS
        assert loops[0] not in values._values  # the oldest went first
    finally:
        for loop in loops:
            loop.close()
