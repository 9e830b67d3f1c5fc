"""Token buckets, one per switch port: how many packet-ins a port may cause.

A packet a module's flow sends to the controller costs the controller far more than a
flow on the switch does, and any VIF can send as many as it likes. So each kind of
packet-in (`module.PacketIn`) is limited per port: a bucket holds up to `burst` tokens,
refills at `rate` tokens a second, and a packet that finds it empty is dropped before it
reaches its handler. One noisy port then empties its own bucket and no one else's.

Pure: the caller passes the time (monotonic seconds), so tests need no clock.
"""

from __future__ import annotations


class TokenBucket:
    """Up to `burst` packets at once, `rate` a second on average."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        if not rate > 0 or burst < 1:
            raise ValueError(f"a token bucket needs rate > 0 and burst >= 1, not {rate}, {burst}")
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.stamp = now

    def _refill(self, now: float) -> None:
        if now > self.stamp:  # a clock that steps back refills nothing
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now

    def take(self, now: float) -> bool:
        """Spend one token if there is one: whether the packet may go on."""
        self._refill(now)
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False

    def full(self, now: float) -> bool:
        """Whether the bucket is as a new one would be (so it can be forgotten)."""
        self._refill(now)
        return self.tokens >= self.burst


class PortRateLimiter:
    """One `TokenBucket` per port, made on the port's first packet."""

    def __init__(self, rate: float, burst: int) -> None:
        TokenBucket(rate, burst, 0.0)  # the same checks, at declaration
        self.rate = rate
        self.burst = burst
        self._buckets: dict[int, TokenBucket] = {}

    def allow(self, port: int, now: float) -> bool:
        """Whether a packet from `port` at `now` is within the port's limit."""
        bucket = self._buckets.get(port)
        if bucket is None:
            bucket = self._buckets[port] = TokenBucket(self.rate, self.burst, now)
        return bucket.take(now)

    def prune(self, now: float) -> None:
        """Forget the ports whose buckets have refilled: a new bucket behaves the same,
        so memory follows the ports sending now, not every port that ever sent."""
        self._buckets = {p: b for p, b in self._buckets.items() if not b.full(now)}

    def __len__(self) -> int:
        return len(self._buckets)
