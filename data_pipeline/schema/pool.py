"""The database tools' own bounded pool: a slow or silent business database holds at most its
workers, never the threads that answer /health and status reads.

At most `workers` tool calls run and `queue` more wait; a request beyond that is answered at once
with 503 SERVICE_BUSY, and one that is not done within the deadline with 504 DEADLINE_EXCEEDED
(its call still ends on its own, bounded by the connection and statement timeouts).
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Callable, TypeVar

from data_pipeline.errors import DeadlineExceededError, ServiceBusyError

T = TypeVar("T")


class ToolPool:
    def __init__(self, workers: int, queue: int, deadline_seconds: float):
        self.deadline_seconds = deadline_seconds
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="db-tools")
        self._slots = threading.BoundedSemaphore(workers + queue)

    def run(self, call: Callable[..., T], *args, **kwargs) -> T:
        if not self._slots.acquire(blocking=False):
            raise ServiceBusyError("数据库工具请求过多（正在执行与排队的请求已满），请稍后重试")
        try:
            future = self._executor.submit(call, *args, **kwargs)
        except BaseException:
            self._slots.release()
            raise
        future.add_done_callback(lambda _: self._slots.release())
        try:
            return future.result(timeout=self.deadline_seconds)
        except FutureTimeout:
            raise DeadlineExceededError(f"数据库工具请求未在 {self.deadline_seconds:g} 秒内完成") from None
