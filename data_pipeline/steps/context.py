"""What a step receives: the task, its directory, the settings, a logger, connections, progress."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from data_pipeline.schema.secret_columns import ColumnMask

if TYPE_CHECKING:
    from config import Settings
    from data_pipeline.llm.client import LLMClient
    from data_pipeline.schema.names import TableName


def _no_progress(done: int, total: int, unit: str) -> None:
    return None


@dataclass
class StepContext:
    task_id: str
    task_dir: Path
    settings: "Settings"
    # Business database URL, with its password: pass it to drivers, never to a log or a file.
    db_url: str
    db_name: str
    business_context: str
    tables: "list[TableName]"
    # The task's parameters as created (flags such as enable_llm_repair, modify_original_file).
    params: dict
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("data_pipeline.step"))
    llm: "LLMClient | None" = None
    # The store database (task tables and the pgvector tables); a SQLAlchemy URL string.
    store_url: str | None = None
    backup_vector_tables: bool = False
    truncate_vector_tables: bool = False
    report_progress: Callable[[int, int, str], None] = _no_progress

    def param(self, name: str, default=None):
        return self.params.get(name, default)

    @property
    def column_mask(self) -> ColumnMask:
        """The columns whose values no step may read or write (secret_columns)."""
        return ColumnMask.from_settings(self.settings)
