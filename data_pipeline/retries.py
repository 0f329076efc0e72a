"""The one retry policy: exponential backoff with jitter, honouring Retry-After, bounded by a
number of attempts or by a time budget.

Everything that retries builds its tenacity `Retrying` here and says only what differs: which
failures are worth another attempt, how many attempts (or how many seconds), the first delay,
and what to log before waiting. Users: LLM chat calls, embedding batches, task-store writes that
outlive a store restart, store calls on a connection the server had closed, EXPLAIN checks on a
broken connection.
"""
from __future__ import annotations

import random
from typing import Callable

import tenacity

# A server may ask for a longer pause (HTTP 429/503 Retry-After); longer requests are not honoured,
# as the `openai` client does.
MAX_RETRY_AFTER_SECONDS = 60.0


def retry_after_seconds(exc: BaseException | None) -> float | None:
    """The pause an HTTP error's Retry-After header asks for (seconds form), if any."""
    headers = getattr(getattr(exc, "response", None), "headers", None)
    value = headers.get("retry-after") if headers is not None else None
    try:
        seconds = float(value) if value is not None else None
    except ValueError:  # the HTTP-date form: fall back to our own backoff
        return None
    return seconds if seconds is not None and 0 < seconds <= MAX_RETRY_AFTER_SECONDS else None


def backoff(first_delay: float, max_delay: float) -> Callable[[tenacity.RetryCallState], float]:
    """first_delay, doubled per retry up to max_delay, times a jitter of 0.5-1.5 so concurrent
    callers spread out; a Retry-After the failure carries wins when it asks for more."""
    def wait(state: tenacity.RetryCallState) -> float:
        delay = min(max_delay, first_delay * 2 ** (state.attempt_number - 1)) * (0.5 + random.random())
        requested = retry_after_seconds(state.outcome.exception() if state.outcome else None)
        return max(delay, requested or 0.0)
    return wait


def retrying(*, retry_on: Callable[[BaseException], bool], attempts: int | None = None,
             within_seconds: float | None = None, first_delay: float, max_delay: float = 30.0,
             on_retry: Callable[[int, BaseException, float], None] | None = None) -> tenacity.Retrying:
    """A Retrying that calls again while `retry_on(exception)` holds, up to `attempts` calls or
    until the next pause would end after `within_seconds`; then the last exception is raised as is.

    `on_retry(retry_number, exception, delay)` runs before each pause (for the log line).
    """
    stops = []
    if attempts is not None:
        stops.append(tenacity.stop_after_attempt(max(1, attempts)))
    if within_seconds is not None:
        stops.append(tenacity.stop_before_delay(within_seconds))
    if not stops:
        raise ValueError("a retry policy needs a bound: attempts or within_seconds")

    def before_sleep(state: tenacity.RetryCallState) -> None:
        if on_retry is not None:
            on_retry(state.attempt_number, state.outcome.exception(), state.upcoming_sleep)

    return tenacity.Retrying(retry=tenacity.retry_if_exception(retry_on), stop=tenacity.stop_any(*stops),
                             wait=backoff(first_delay, max_delay), before_sleep=before_sleep, reraise=True)
