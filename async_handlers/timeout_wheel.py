"""One timer for all the waiting polls of a process: deadlines in buckets, swept in ticks.

A loop timer (``TimerHandle``) per waiting poll costs an object and a place in
the loop's heap each; ten thousand parked polls made ten thousand. The wheel
keeps each item in the bucket of its deadline rounded UP to a tick
(:data:`TICK_SECS`), and arms ONE loop timer, at the earliest non-empty bucket.
Each sweep expires every bucket that is due (in deadline order) and re-arms.

Invariants (event-loop only):

* an item expires no earlier than its deadline and at most one tick late;
* an item is in at most one bucket; :meth:`TimeoutWheel.remove` takes it out
  at once (nothing is kept for a removed item), and an empty wheel holds no
  bucket and no loop timer;
* the wheel records an item's bucket on the item (``due``; 0: in no bucket),
  so it needs no index of its own;
* :meth:`TimeoutWheel.spread_timeout` never answers more than the longest timeout
  asked for, nor less than :data:`WIDEST_SPREAD_FRACTION` short of it.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

TICK_SECS = 0.2
# A timeout is drawn from its last LATE_SPREAD_FRACTION; when that tick already holds more
# than OVERLOAD_SHARE times its even share of the wheel, from its last WIDEST_SPREAD_FRACTION
# too, and the less loaded of the two is taken (a burst of parks spreads; a steady flow stays late).
LATE_SPREAD_FRACTION = 0.1
WIDEST_SPREAD_FRACTION = 0.5
OVERLOAD_SHARE = 2.0


class Timed(Protocol):
    """What the wheel holds: its bucket number is kept on the item."""

    due: int


T = TypeVar("T", bound=Timed)


class TimeoutWheel(Generic[T]):
    """Calls ``expire(item)`` once each item's deadline (loop time) has passed."""

    def __init__(self, expire: Callable[[T], object], tick_secs: float = TICK_SECS) -> None:
        self.expire = expire
        self.tick_secs = tick_secs
        self._buckets: dict[int, dict[T, None]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._armed_at = 0
        self._count = 0

    def add(self, item: T, deadline: float) -> None:
        """Put ``item`` in the bucket of ``deadline`` (taken out of any earlier one first)."""
        self.remove(item)
        due = max(1, math.ceil(deadline / self.tick_secs))
        bucket = self._buckets.get(due)
        if bucket is None:
            bucket = self._buckets[due] = {}
            if self._timer is None or due < self._armed_at:
                self._arm(due)
        bucket[item] = None
        item.due = due
        self._count += 1

    def remove(self, item: T) -> None:
        due, item.due = item.due, 0
        bucket = self._buckets.get(due) if due else None
        if bucket is None or item not in bucket:
            return
        del bucket[item]
        self._count -= 1
        if not bucket:
            del self._buckets[due]
            if not self._buckets and self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def __len__(self) -> int:
        return self._count

    def load_at(self, deadline: float) -> int:
        """How many items expire in the tick of ``deadline``."""
        return len(self._buckets.get(max(1, math.ceil(deadline / self.tick_secs)), ()))

    def spread_timeout(self, now: float, longest_secs: float, rng: random.Random | None = None) -> float:
        """A timeout for an item added at ``now``: late in ``[1 - LATE_SPREAD_FRACTION, 1]`` of
        ``longest_secs`` while its tick holds no more than ``OVERLOAD_SHARE`` times an even
        share of the wheel over that span; else the less loaded of it and a draw from
        ``[1 - WIDEST_SPREAD_FRACTION, 1]``. Thousands of polls parked in the same seconds
        (a restart, a reconnect) then time out over half a timeout instead of a tenth, and
        later re-park where the wheel is thin, so timeouts do not come back in waves."""
        draw = (rng or random).random
        late = longest_secs * (1.0 - LATE_SPREAD_FRACTION * draw())
        even_share = self._count * self.tick_secs / max(longest_secs, self.tick_secs)
        late_load = self.load_at(now + late)
        if late_load <= max(1.0, OVERLOAD_SHARE * even_share):
            return late
        wide = longest_secs * (1.0 - WIDEST_SPREAD_FRACTION * draw())
        return wide if self.load_at(now + wide) < late_load else late

    def armed(self) -> bool:
        return self._timer is not None

    def _arm(self, due: int) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._armed_at = due
        self._timer = asyncio.get_running_loop().call_at(due * self.tick_secs, self._sweep)

    def _sweep(self) -> None:
        self._timer = None
        now = asyncio.get_running_loop().time()
        for due in sorted(due for due in self._buckets if due * self.tick_secs <= now):
            bucket = self._buckets.pop(due, None) or {}
            self._count -= len(bucket)
            for item in bucket:
                item.due = 0
                self.expire(item)
        if self._buckets and self._timer is None:  # expire() may have added (and armed) already
            self._arm(min(self._buckets))
