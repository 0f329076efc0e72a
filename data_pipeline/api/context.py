"""The application's services, built once by `create_app` and reachable from any request."""
from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from config import Settings
from data_pipeline.files.service import TaskFiles
from data_pipeline.logs.service import TaskLogs
from data_pipeline.schema.service import SchemaTools
from data_pipeline.store import TaskStore
from data_pipeline.tasks.service import TaskService
from data_pipeline.vector.service import VectorBackups


@dataclass(frozen=True)
class Services:
    settings: Settings
    store: TaskStore
    tasks: TaskService
    files: TaskFiles
    logs: TaskLogs
    schema_tools: SchemaTools
    vectors: VectorBackups

    @classmethod
    def build(cls, settings: Settings, store: TaskStore) -> "Services":
        tasks = TaskService(settings, store)
        return cls(settings=settings, store=store, tasks=tasks, files=TaskFiles(tasks), logs=TaskLogs(tasks),
                   schema_tools=SchemaTools(settings), vectors=VectorBackups(settings))


def services() -> Services:
    return current_app.extensions["data_pipeline"]
