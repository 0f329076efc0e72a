"""Task management endpoints (guide §3, plus cancel, delete and execution history)."""
from __future__ import annotations

import time

from flask import Blueprint

from data_pipeline.api.context import services
from data_pipeline.api.endpoints import endpoint
from data_pipeline.api.envelope import success
from data_pipeline.api.schemas import CreateTaskRequest, ExecuteTaskRequest, ListTasksQuery, QueryTasksRequest
from data_pipeline.tasks.serializers import execution_view

bp = Blueprint("tasks", __name__, url_prefix="/api/v0/data_pipeline")


@endpoint(bp, "/tasks", methods=["POST"], body=CreateTaskRequest, status=201, summary="创建任务", tag="tasks")
def create_task(body: CreateTaskRequest):
    task = services().tasks.create_task(**body.model_dump())
    return success(task, "任务创建成功", 201)


@endpoint(bp, "/tasks", methods=["GET"], query=ListTasksQuery, summary="获取任务列表", tag="tasks")
def list_tasks(query: ListTasksQuery):
    tasks, total = services().tasks.search(status=query.status, limit=query.limit, offset=query.offset)
    return success({"tasks": tasks, "total": total, "limit": query.limit, "offset": query.offset},
                   "获取任务列表成功")


@endpoint(bp, "/tasks/query", methods=["POST"], body=QueryTasksRequest, summary="高级任务查询", tag="tasks")
def query_tasks(body: QueryTasksRequest):
    started = time.perf_counter()
    tasks, total = services().tasks.search(
        status=body.status, task_name=body.task_name, created_by=body.created_by, db_name=body.db_name,
        created_from=body.created_time_start, created_to=body.created_time_end, sort_by=body.sort_by,
        sort_order=body.sort_order, limit=body.page_size, offset=(body.page - 1) * body.page_size)
    total_pages = (total + body.page_size - 1) // body.page_size
    return success({
        "tasks": tasks,
        "pagination": {"page": body.page, "page_size": body.page_size, "total": total, "total_pages": total_pages,
                       "has_next": body.page < total_pages, "has_prev": body.page > 1},
        "filters_applied": body.model_dump(exclude_defaults=True, mode="json"),
        "sort": {"sort_by": body.sort_by, "sort_order": body.sort_order},
        "query_time": f"{time.perf_counter() - started:.3f}s",
    }, "查询任务列表成功")


@endpoint(bp, "/tasks/<task_id>", methods=["GET"], summary="获取任务状态", tag="tasks", response="TaskStatusBody")
def get_task(task_id: str):
    return success(services().tasks.get_task(task_id), "获取任务状态成功")


@endpoint(bp, "/tasks/<task_id>", methods=["DELETE"], summary="删除任务（执行中的任务不能删除）", tag="tasks")
def delete_task(task_id: str):
    return success(services().tasks.delete_task(task_id), "任务删除成功")


@endpoint(bp, "/tasks/<task_id>/execute", methods=["POST"], body=ExecuteTaskRequest, status=202,
          summary="执行任务（完整工作流或单个步骤）；超出并发上限时排队 (queued)", tag="execution",
          response="ExecutionStarted")
def execute_task(task_id: str, body: ExecuteTaskRequest):
    started = services().tasks.execute_task(task_id, **body.model_dump())
    return success(started, "任务执行已启动", 202)


@endpoint(bp, "/tasks/<task_id>/cancel", methods=["POST"], summary="取消正在执行或排队的任务", tag="execution",
          response="TaskStatusBody")
def cancel_task(task_id: str):
    return success(services().tasks.cancel_task(task_id), "任务已取消")


@endpoint(bp, "/tasks/<task_id>/executions", methods=["GET"], summary="任务的执行历史", tag="execution",
          response="ExecutionHistory")
def list_executions(task_id: str):
    history = [execution_view(e) for e in services().tasks.list_executions(task_id)]
    return success({"task_id": task_id, "executions": history, "total": len(history)}, "获取执行历史成功")
