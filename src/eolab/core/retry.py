"""Retries: one full-jitter exponential backoff policy and one retry loop.

The CDSE intake (`eolab.intake.s3`) and the downloaders (`eolab.download.fetch`,
`eolab.download.url_to_s3`) wait the same way between attempts: a uniform draw in
``[0, min(cap, base * 2**(attempt - 1))]`` ("full jitter", so many clients retrying at once
spread out), or a server's ``Retry-After`` when it asks for longer.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter: sleep U(0, min(cap, base * 2**n)).

    ``attempts`` counts every try, the first included (``attempts=1``: no retry).
    """

    attempts: int = 6
    base: float = 0.5
    cap: float = 30.0
    max_retry_after: float = 300.0

    def delay(self, attempt: int, retry_after: float | None = None, rng=random) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based)."""
        backoff = rng.uniform(0, min(self.cap, self.base * 2 ** (attempt - 1)))
        if retry_after is not None:
            return min(self.max_retry_after, max(retry_after, backoff))
        return backoff


def backoff_delay(attempt: int, base: float = 0.5, cap: float = 30.0) -> float:
    """Full-jitter exponential backoff for retry ``attempt`` (1, 2, …)."""
    return RetryPolicy(base=base, cap=cap).delay(attempt)


def retry_call(
    attempt_once: Callable[[], T],
    policy: RetryPolicy,
    retryable: type[BaseException] | tuple[type[BaseException], ...],
    give_up: Callable[[BaseException, int], BaseException],
    *,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[BaseException, int], None] | None = None,
) -> T:
    """``attempt_once()`` until it returns, at most ``policy.attempts`` times.

    A ``retryable`` exception is retried after the policy's delay (its ``retry_after``
    attribute, when it has one, is honoured); after the last attempt ``give_up(exc, attempts)``
    is raised from it. Any other exception propagates at once.
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            return attempt_once()
        except retryable as exc:
            if attempt >= policy.attempts:
                raise give_up(exc, attempt) from exc
            if on_retry is not None:
                on_retry(exc, attempt)
            sleep(policy.delay(attempt, getattr(exc, "retry_after", None)))
