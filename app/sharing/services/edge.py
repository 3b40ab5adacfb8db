"""School edge node settings: the mirror window and the bandwidth limit.

The window is local wall-clock time (``BABEL_DEFAULT_TIMEZONE``, the school's own) as
``HH:MM-HH:MM``; a window whose end is before its start runs past midnight
("22:00-06:00" = 22:00 to 06:00 the next morning); an empty window means any time.
The bandwidth limit is a token bucket over the bytes read from the upstream.
"""

from __future__ import annotations

import re
import threading
import time as _time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

_WINDOW = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


class BadWindow(ValueError):
    """The configured mirror window cannot be read."""


@dataclass(frozen=True)
class Window:
    start: time
    end: time

    def contains(self, moment: datetime | time) -> bool:
        now = moment.time() if isinstance(moment, datetime) else moment
        now = now.replace(tzinfo=None)
        if self.start == self.end:
            return True  # "00:00-00:00": the whole day
        if self.start < self.end:
            return self.start <= now < self.end
        return now >= self.start or now < self.end  # past midnight

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


def parse_window(text: str | None) -> Window | None:
    """``"22:00-06:00"`` → Window; empty → None (no restriction); anything else refused."""
    if text is None or not str(text).strip():
        return None
    match = _WINDOW.match(str(text))
    if not match:
        raise BadWindow(f"mirror window {text!r} is not HH:MM-HH:MM")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if not (0 <= h1 <= 23 and 0 <= h2 <= 23 and 0 <= m1 <= 59 and 0 <= m2 <= 59):
        raise BadWindow(f"mirror window {text!r} has an impossible time")
    return Window(time(h1, m1), time(h2, m2))


def in_window(window: Window | None, moment: datetime) -> bool:
    return window is None or window.contains(moment)


def local_now(timezone: str) -> datetime:
    return datetime.now(ZoneInfo(timezone))


class TokenBucket:
    """At most ``rate`` bytes per second on average, bursts up to ``capacity`` bytes.

    ``consume(n)`` takes n tokens, sleeping until the bucket has refilled enough; a
    request larger than the capacity is paid for in capacity-sized steps.  ``rate`` 0
    means no limit.  The clock and the sleep are injectable so the arithmetic is tested
    without waiting.  Thread-safe (one bucket may be shared by parallel downloads).
    """

    def __init__(
        self,
        rate: int,
        capacity: int | None = None,
        clock: Callable[[], float] = _time.monotonic,
        sleep: Callable[[float], None] = _time.sleep,
    ):
        if rate < 0:
            raise ValueError("rate must be >= 0")
        self.rate = rate
        # One second's worth by default: smooth enough, without a syscall per chunk.
        self.capacity = capacity or max(rate, 1)
        self.clock, self.sleep = clock, sleep
        self.tokens = float(self.capacity)
        self.updated = clock()
        self.slept = 0.0
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def read_size(self, preferred: int) -> int:
        """How many bytes a download should read at a time: ``preferred``, but never more
        than one burst, since bytes are paid for after they are read (a 1 MiB read under
        a 100 kB/s limit would run ten seconds ahead of it)."""
        return preferred if self.rate <= 0 else max(1, min(preferred, self.capacity))

    def consume(self, amount: int) -> None:
        if self.rate <= 0 or amount <= 0:
            return
        with self._lock:
            remaining = amount
            while remaining > 0:
                step = min(remaining, self.capacity)
                self._refill()
                if self.tokens < step:
                    wait = (step - self.tokens) / self.rate
                    self.sleep(wait)
                    self.slept += wait
                    self._refill()
                self.tokens -= step
                remaining -= step
