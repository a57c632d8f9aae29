"""eolab.core.retry: the one full-jitter backoff and the retry loop intake and download share."""

import random

import pytest

from eolab.core.retry import RetryPolicy, backoff_delay, retry_call


def test_backoff_is_exponential_with_full_jitter_and_capped():
    policy = RetryPolicy(base=0.5, cap=4.0)
    rng = random.Random(1)
    for attempt in range(1, 10):
        delays = [policy.delay(attempt, rng=rng) for _ in range(200)]
        bound = min(4.0, 0.5 * 2 ** (attempt - 1))
        assert all(0 <= d <= bound for d in delays)
        assert max(delays) > 0.8 * bound  # jitter spans the whole window
    assert policy.delay(1, retry_after=42, rng=rng) == 42
    assert RetryPolicy(max_retry_after=10).delay(1, retry_after=3600) == 10


def test_backoff_grows_and_is_capped():
    assert all(0 <= backoff_delay(1) <= 0.5 for _ in range(50))
    assert all(0 <= backoff_delay(20, cap=3.0) <= 3.0 for _ in range(50))


class Flaky(Exception):
    def __init__(self, retry_after=None):
        super().__init__("flaky")
        self.retry_after = retry_after


class GaveUp(Exception):
    pass


def _failing(failures: list[BaseException], result="ok"):
    calls = []

    def once():
        calls.append(1)
        if len(calls) <= len(failures):
            raise failures[len(calls) - 1]
        return result

    return once, calls


def test_retry_call_retries_then_returns_and_honours_retry_after():
    once, calls = _failing([Flaky(), Flaky(retry_after=7)])
    slept, seen = [], []
    policy = RetryPolicy(attempts=3, base=0.01, cap=0.05)
    got = retry_call(
        once, policy, Flaky, lambda e, n: GaveUp(n), sleep=slept.append,
        on_retry=lambda e, n: seen.append(n),
    )  # fmt: skip
    assert got == "ok" and len(calls) == 3 and seen == [1, 2]
    assert 0 <= slept[0] <= 0.01 and slept[1] == 7


def test_retry_call_gives_up_after_the_last_attempt():
    once, calls = _failing([Flaky()] * 5)
    slept = []
    with pytest.raises(GaveUp) as info:
        retry_call(once, RetryPolicy(attempts=3), Flaky, lambda e, n: GaveUp(n), sleep=slept.append)
    assert info.value.args == (3,) and isinstance(info.value.__cause__, Flaky)
    assert len(calls) == 3 and len(slept) == 2


def test_retry_call_lets_other_errors_through_at_once():
    once, calls = _failing([KeyError("x")])
    with pytest.raises(KeyError):
        retry_call(once, RetryPolicy(attempts=5), Flaky, lambda e, n: GaveUp(n), sleep=print)
    assert len(calls) == 1
