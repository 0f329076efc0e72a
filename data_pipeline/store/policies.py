"""How the store's methods meet a store that went away: one retry for a stale pooled connection,
and, for status changes, a wait through an outage (see TaskStore.outage_seconds)."""
from __future__ import annotations

import functools
from typing import Callable, TypeVar

from sqlalchemy.exc import DBAPIError

from data_pipeline.errors import DatabaseError
from data_pipeline.retries import retrying

T = TypeVar("T")


class StoreUnavailable(DatabaseError):
    """The store server cannot be reached (down, restarting): worth waiting for, unlike a bad query."""


def connection_was_lost(exc: BaseException) -> bool:
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def retry_on_lost_connection(method: Callable[..., T]) -> Callable[..., T]:
    """Retry once, at once, when the pool handed out a connection the server had closed (store restart)."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return retrying(retry_on=connection_was_lost, attempts=2, first_delay=0.0)(method, self, *args, **kwargs)
        except DBAPIError as exc:
            raise self.store_error(exc) from None
    return wrapper


def outlives_outages(method: Callable[..., T]) -> Callable[..., T]:
    """A status change waits (with backoff) up to `store.outage_seconds` for an unreachable store.

    An executor's step outcome must not be lost because the store restarts while the step ends;
    the API keeps outage_seconds at 0 and answers DATABASE_CONNECTION_ERROR at once instead.
    The writes are conditional updates, so repeating one whose commit did reach the store is harmless.
    """
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        policy = retrying(retry_on=lambda exc: isinstance(exc, StoreUnavailable), within_seconds=self.outage_seconds,
                          first_delay=0.25, max_delay=5.0)
        return policy(method, self, *args, **kwargs)
    return wrapper
