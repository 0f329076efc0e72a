"""The database tools behind /api/v0/database (guide §6): the request's database, or the default
business database, documented with the LLM and the column mask the settings configure."""
from __future__ import annotations

from config import Settings
from data_pipeline.db.connection import validate_url
from data_pipeline.db.databases import default_business_url
from data_pipeline.db.policy import ConnectionPolicy
from data_pipeline.llm.client import LLMClient
from data_pipeline.schema.pool import ToolPool
from data_pipeline.schema.secret_columns import ColumnMask
from data_pipeline.schema.tools import list_tables, table_document


class SchemaTools:
    """Each call runs in the tools' own bounded pool (name resolution and connecting included)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.mask = ColumnMask.from_settings(settings)
        self.policy = ConnectionPolicy(settings)
        self.pool = ToolPool(settings.db_tools_workers, settings.db_tools_queue, settings.db_tools_timeout_seconds)

    def list_tables(self, *, db_connection: str | None, schema: str | None, table_name_pattern: str | None,
                    include_views: bool) -> dict:
        _refuse_malformed(db_connection)
        return self.pool.run(lambda: list_tables(self._business_url(db_connection), schema_list(schema),
                                                 table_name_pattern, include_views))

    def table_document(self, *, db_connection: str | None, table: str, output_type: str,
                       business_context: str | None) -> dict:
        _refuse_malformed(db_connection)
        return self.pool.run(lambda: table_document(self._business_url(db_connection), table, output_type,
                                                    business_context, LLMClient.from_settings(self.settings),
                                                    self.mask))

    def _business_url(self, db_connection: str | None) -> str:
        if db_connection is not None:
            return self.policy.admit(db_connection)
        return default_business_url(self.settings)


def _refuse_malformed(db_connection: str | None) -> None:
    """Bad input is answered at once, without taking a place in the pool."""
    if db_connection is not None:
        validate_url(db_connection)


def schema_list(text: str | None) -> list[str] | None:
    """`public, "My Schema", ODS` -> ["public", "My Schema", "ods"] (unquoted names fold to lower case)."""
    names = []
    for part in (text or "").split(","):
        part = part.strip()
        if len(part) > 1 and part.startswith('"') and part.endswith('"'):
            names.append(part[1:-1].replace('""', '"'))
        elif part:
            names.append(part.lower())
    return names or None
