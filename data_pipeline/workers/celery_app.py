"""The one place the Celery app is built from settings, and how the API sends a run to the workers.

A message carries only an execution id: the store holds everything else, and the store's atomic
claim decides whether the message still has anything to run (see worker.py). Messages are
acknowledged late — after the run — so a worker lost mid-run does not lose the message; a
redelivery finds the execution no longer queued and is ignored.
"""
from __future__ import annotations

import functools
import logging

from celery import Celery

from config import Settings
from data_pipeline.errors import BrokerUnavailable

RUN_EXECUTION = "data_pipeline.run_execution"
QUEUE = "data_pipeline"

logger = logging.getLogger("CeleryExecutor")


def make_celery(broker_url: str) -> Celery:
    app = Celery("data_pipeline", broker=broker_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,       # a worker takes a message only when it can run it
        task_default_queue=QUEUE,
        task_ignore_result=True,            # the outcome is in the store
        task_serializer="json", accept_content=["json"],
        broker_connection_retry_on_startup=True,
        broker_transport_options={"max_retries": 1},
    )
    return app


@functools.lru_cache(maxsize=4)
def _app(broker_url: str) -> Celery:
    return make_celery(broker_url)


def send_execution(settings: Settings, execution_id: str) -> None:
    """Put a queued execution on the broker for whichever worker is free first."""
    try:
        _app(settings.broker_url).send_task(RUN_EXECUTION, args=[execution_id], queue=QUEUE)
    except Exception as exc:  # kombu/redis raise many kinds; all mean the message is not on the broker
        raise BrokerUnavailable(f"无法把任务放入队列 (broker unreachable): {type(exc).__name__}") from None
    logger.info("执行 %s 已放入队列", execution_id)
