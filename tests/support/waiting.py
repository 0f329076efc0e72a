"""Waiting on a condition instead of sleeping a fixed time."""
from __future__ import annotations

import time


def wait_until(predicate, timeout: float = 30, interval: float = 0.05, what: str = "condition"):
    """Call `predicate` until it returns something truthy, and return that; fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s")
        time.sleep(interval)
