from data_pipeline.store.tasks import SORTABLE_COLUMNS, TaskStore

__all__ = ["TaskStore", "SORTABLE_COLUMNS"]
