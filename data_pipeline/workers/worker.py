"""A Celery worker: `python -m data_pipeline worker [--concurrency N] [--hostname NAME]`.

For each message the worker claims the execution in the store (the claim, not the broker,
decides who runs a task: a message delivered twice, or for a task cancelled or deleted while it
waited, finds nothing queued and is ignored), then runs the same executor as the local executor
in a child process and waits for it. While it waits it sends the run's heartbeat; a heartbeat
refused means the run was cancelled (or settled as lost), and the worker stops the executor. A
child that dies without recording its outcome (kill -9) is settled here at once; a worker that
dies takes its children with it, and the API settles the run as `WORKER_LOST` once the heartbeat
is older than DATA_PIPELINE_HEARTBEAT_TIMEOUT_SECONDS.
"""
from __future__ import annotations

import logging
import subprocess

from config import Settings
from data_pipeline.db.databases import store_url
from data_pipeline.errors import DatabaseError, PipelineError
from data_pipeline.store import TaskStore
from data_pipeline.tasks import executor_processes
from data_pipeline.tasks.service import TaskService
from data_pipeline.workers.celery_app import QUEUE, RUN_EXECUTION, make_celery

logger = logging.getLogger("CeleryWorker")

STORE_RETRY_SECONDS = 10
STORE_RETRIES = 60


def run_execution(service: TaskService, execution_id: str, worker: str) -> str:
    """Run one queued execution on this worker; what became of it ("ignored" when not queued)."""
    store, settings = service.store, service.settings
    execution = store.claim_queued(execution_id, worker=worker, hostname=executor_processes.HOSTNAME)
    if execution is None:
        logger.info("执行 %s 不在队列中 (已取消、已删除或已执行)，忽略该消息", execution_id)
        return "ignored"
    directory = service.directory(execution.task_id)
    command = executor_processes.executor_command(execution, exit_with_parent=True)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        process = executor_processes.start_process(settings, directory, command)
    except OSError as exc:
        service.fail_unstarted(execution, exc)
        return "failed"
    store.record_executor(execution_id, process.pid, executor_processes.HOSTNAME)
    logger.info("任务 %s 开始执行 (%s), 执行器进程 %d", execution.task_id, execution_id, process.pid)
    stopping = False
    while True:
        try:
            returncode = process.wait(timeout=settings.heartbeat_seconds)
            break
        except subprocess.TimeoutExpired:
            pass
        try:
            alive = store.heartbeat(execution_id)
        except PipelineError as exc:
            logger.warning("心跳写入失败，稍后重试: %s", exc.details)
            continue
        if not alive and not stopping:
            stopping = True  # cancelled, or settled as lost: stop the executor (it may be stopping itself)
            executor_processes.terminate_executor(process.pid, execution.task_id, settings.cancel_grace_seconds)
    service.settle_exit(execution_id, returncode)
    logger.info("任务 %s 的执行 %s 结束 (exit %s)", execution.task_id, execution_id, returncode)
    return "ran"


def start_worker(settings: Settings, *, concurrency: int, hostname: str | None, loglevel: str = "INFO") -> None:
    """Serve the broker's queue until stopped (blocks). Threads, not processes, take the messages:
    each run is its own executor process already."""
    store = TaskStore(store_url(settings), pool_size=max(2, concurrency))
    store.migrate()
    service = TaskService(settings, store)
    app = make_celery(settings.broker_url)

    @app.task(name=RUN_EXECUTION, bind=True, acks_late=True)
    def run(task, execution_id: str) -> str:
        try:
            return run_execution(service, execution_id, task.request.hostname)
        except DatabaseError as exc:
            # The store is down: try the message again later (the claim keeps a retry from running
            # anything twice) rather than acknowledge it and leave the task queued for ever.
            raise task.retry(exc=exc, countdown=STORE_RETRY_SECONDS, max_retries=STORE_RETRIES) from None

    argv = ["worker", "--pool", "threads", "--concurrency", str(concurrency), "--queues", QUEUE,
            "--loglevel", loglevel, "--without-gossip", "--without-mingle"]
    if hostname:
        argv += ["--hostname", hostname]
    app.worker_main(argv)
