"""Per-port token buckets: the limit on packets a port may send to the controller."""

from __future__ import annotations

import pytest

from vlcp.pipeline.ratelimit import PortRateLimiter, TokenBucket


def test_a_bucket_allows_a_burst_then_the_rate() -> None:
    bucket = TokenBucket(rate=10, burst=3, now=0.0)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert not bucket.take(0.05)  # half a token
    assert bucket.take(0.1)
    assert not bucket.take(0.1)


def test_a_bucket_refills_up_to_its_burst_only() -> None:
    bucket = TokenBucket(rate=10, burst=3, now=0.0)
    assert bucket.take(0.0)
    assert bucket.full(1000.0)
    assert [bucket.take(1000.0) for _ in range(4)] == [True, True, True, False]


def test_a_clock_that_steps_back_refills_nothing() -> None:
    bucket = TokenBucket(rate=1, burst=1, now=10.0)
    assert bucket.take(10.0)
    assert not bucket.take(5.0)
    assert not bucket.take(10.5)  # the stamp stayed at 10
    assert bucket.take(11.0)


def test_ports_have_their_own_buckets() -> None:
    limiter = PortRateLimiter(rate=1, burst=2)
    assert [limiter.allow(1, 0.0) for _ in range(3)] == [True, True, False]
    assert limiter.allow(2, 0.0)  # port 1's flood costs port 2 nothing
    assert not limiter.allow(1, 0.5)
    assert limiter.allow(1, 1.0)


def test_long_run_rate() -> None:
    limiter = PortRateLimiter(rate=8, burst=2)
    allowed = sum(limiter.allow(7, t / 1024) for t in range(10 * 1024 + 1))  # 1024/s, 10 s
    assert allowed == 2 + 8 * 10


def test_prune_forgets_only_refilled_buckets() -> None:
    limiter = PortRateLimiter(rate=1, burst=2)
    limiter.allow(1, 0.0)
    limiter.allow(2, 0.0)
    limiter.allow(2, 0.0)
    limiter.prune(1.0)  # port 1 is full again; port 2 is not
    assert len(limiter) == 1
    assert [limiter.allow(2, 1.0) for _ in range(2)] == [True, False]


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (1, 0)])
def test_bad_limits_are_refused(rate: float, burst: int) -> None:
    with pytest.raises(ValueError):
        PortRateLimiter(rate, burst)
