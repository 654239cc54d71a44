"""In-process throttling of sign-in attempts per client address.

Per-account lockout lives in the database (identity.service); this sliding window stops
one address from trying many accounts (NIST SP 800-63B 5.2.2). It is per process: behind
several processes, put the same limit in the reverse proxy as well (docs/WEB.md).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class LoginThrottle:
    def __init__(
        self,
        *,
        limit: int = 30,
        window_seconds: float = 900.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window_seconds
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _trim(self, key: str, now: float) -> deque[float]:
        entries = self._failures.setdefault(key, deque())
        while entries and entries[0] <= now - self.window:
            entries.popleft()
        return entries

    def blocked(self, key: str) -> bool:
        with self._lock:
            return len(self._trim(key, self._clock())) >= self.limit

    def failure(self, key: str) -> None:
        with self._lock:
            now = self._clock()
            self._trim(key, now).append(now)
            if len(self._failures) > 100_000:  # bound memory under a spray
                self._failures.clear()
