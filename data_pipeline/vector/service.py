"""Vector table backups outside the steps (ours): list the backup sets, restore one, back up."""
from __future__ import annotations

from config import Settings
from data_pipeline.db.databases import store_url
from data_pipeline.vector.restore import create_global_backup, list_backups, restore_backup


class VectorBackups:
    def __init__(self, settings: Settings):
        self.settings = settings

    def list_backups(self, *, task_id: str | None, global_only: bool) -> dict:
        return list_backups(self.settings.training_data_dir, task_id=task_id, global_only=global_only)

    def restore(self, *, backup_path: str, timestamp: str, tables: list[str] | None,
                truncate_before_restore: bool) -> dict:
        return restore_backup(store_url(self.settings), self.settings.training_data_dir, backup_path=backup_path,
                              timestamp=timestamp, tables=tables, truncate_before_restore=truncate_before_restore)

    def backup(self) -> dict:
        """Both vector tables into `<training data dir>/vector_bak/`."""
        return create_global_backup(store_url(self.settings), self.settings.training_data_dir)
