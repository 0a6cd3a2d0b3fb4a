"""The per-tenant sliding-window rate limit, with simulated traffic from other integrations.

Lucca allows 50 requests per 60 s per tenant, shared by every integration of that tenant. The
window slides over accepted requests: a request is refused (429) while ``limit`` requests were
accepted in the last ``window`` seconds, and it may retry when the oldest of them leaves.

Another integration of the same tenant is simulated as ``external`` requests evenly spread over
each window. The window starts already holding a window's worth of them, so the shared budget is
in its steady state from the first request. Those requests are never refused: the other
integration is not ours to throttle, it just eats our budget.
"""

from __future__ import annotations

from collections import deque


class SlidingWindowLimiter:
    def __init__(self, limit: int, window: float, external: int, now: float) -> None:
        self._own: deque[float] = deque()
        self._external: deque[float] = deque()
        self._external_next = now
        self.external_total = 0
        self.reconfigure(limit, window, external, now)

    def reconfigure(self, limit: int, window: float, external: int, now: float) -> None:
        """Apply new settings; the external schedule restarts in its steady state."""
        self.limit, self.window, self.external = limit, window, external
        self._external.clear()
        if external:
            step = window / external
            # Spread a window's worth over (now - window, now], the next one a step later.
            self._external.extend(now - window + step * (k + 1) for k in range(external))
            self._external_next = now + step

    def retry_after(self, now: float) -> float | None:
        """None when a request may go now, else seconds until the oldest accepted one expires."""
        self._advance(now)
        if len(self._own) + len(self._external) < self.limit:
            return None
        oldest = min(stamps[0] for stamps in (self._own, self._external) if stamps)
        return max(oldest + self.window - now, 0.0)

    def record(self, now: float) -> None:
        self._own.append(now)

    def in_window(self, now: float) -> int:
        self._advance(now)
        return len(self._own) + len(self._external)

    def _advance(self, now: float) -> None:
        if self.external:
            step = self.window / self.external
            while self._external_next <= now:
                self._external.append(self._external_next)
                self._external_next += step
                self.external_total += 1
        horizon = now - self.window
        for stamps in (self._own, self._external):
            while stamps and stamps[0] <= horizon:
                stamps.popleft()
