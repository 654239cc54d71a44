"""Per-channel send rate limits (token buckets), per worker process.

Providers throttle (Twilio long codes ~1 message/s per number, SMTP relays per minute);
sending faster only earns 429s. A worker asks `delay(channel)` before it takes the debtor's
lock; a positive answer snoozes the job (no attempt consumed). With N workers the
configured rate is divided by N (`per_worker`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RateLimiter:
    def __init__(self, rates: dict[str, float] | None = None, *, burst_seconds: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rates = dict(rates or {})
        self.burst = burst_seconds
        self.clock = clock
        self._tokens: dict[str, float] = {}
        self._at: dict[str, float] = {}
        self._lock = threading.Lock()

    def delay(self, channel: str) -> float:
        """0.0 and one token taken, or the seconds to wait before a token is free."""
        rate = self.rates.get(channel)
        if not rate:
            return 0.0
        with self._lock:
            now = self.clock()
            cap = max(1.0, rate * self.burst)
            tokens = min(cap, self._tokens.get(channel, cap)
                         + (now - self._at.get(channel, now)) * rate)
            self._at[channel] = now
            if tokens >= 1.0:
                self._tokens[channel] = tokens - 1.0
                return 0.0
            self._tokens[channel] = tokens
            return (1.0 - tokens) / rate
