"""What an object keeps per asyncio event loop (``asyncio.Lock``s, httpx clients), bounded.

An ``asyncio.Lock`` or an httpx client belongs to the loop it was first used in; one object may
serve several loops (a test suite's ``asyncio.run`` after ``asyncio.run``, worker threads each
with a loop). A ``WeakKeyDictionary`` keyed by the loop would not release it: the values hold
the loop themselves (a lock keeps its ``_loop``), so the key never dies. Kept here instead: the
state of the most recent ``MAX_LOOPS`` loops, the oldest dropped first (and a closed loop's
whenever another one comes). A server runs one loop; nothing is ever dropped there.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
MAX_LOOPS = 8


class PerLoop(Generic[T]):
    """``get()``: the running loop's value, made by ``factory`` the first time."""

    def __init__(self, factory: Callable[[], T]):
        self._factory = factory
        self._values: OrderedDict[asyncio.AbstractEventLoop, T] = OrderedDict()
        self._lock = threading.Lock()

    def get(self) -> T:
        loop = asyncio.get_running_loop()
        with self._lock:
            value = self._values.get(loop)
            if value is None:
                for gone in [other for other in self._values if other.is_closed()]:
                    del self._values[gone]
                value = self._values[loop] = self._factory()
                while len(self._values) > MAX_LOOPS:
                    self._values.popitem(last=False)
            else:
                self._values.move_to_end(loop)
            return value
