"""The application's services, reachable from any request (one object per app)."""
from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from config import Settings
from data_pipeline.store import TaskStore
from data_pipeline.tasks.service import TaskService


@dataclass
class Services:
    settings: Settings
    store: TaskStore
    tasks: TaskService


def services() -> Services:
    return current_app.extensions["data_pipeline"]
