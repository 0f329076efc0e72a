"""The pgvector tables of LangChain's `PGVector` — the tables a stock Vanna `PG_VectorStore` reads.

`langchain_pg_collection` (uuid, name, cmetadata) and `langchain_pg_embedding` (id, collection_id,
embedding, document, cmetadata). The schema, the extension and the collections are created by
`PGVector` itself (`ensure_collections`), so they are exactly what Vanna expects. Rows are written
here with COPY into a staging table and one `INSERT ... ON CONFLICT (id) DO UPDATE` — the
statement `PGVector.add_embeddings` runs, without its per-row statement building — so a load of
any size is a handful of round trips and one transaction.
"""
from __future__ import annotations

import uuid
from typing import Iterable

import numpy as np
import psycopg
from psycopg.types.json import Jsonb

from data_pipeline.db.databases import sqlalchemy_url
from data_pipeline.db.connection import CONNECT_TIMEOUT_SECONDS, describe_connection_error, mask_url, scrub
from data_pipeline.errors import DatabaseError, VectorStoreError

COLLECTION_TABLE = "langchain_pg_collection"
EMBEDDING_TABLE = "langchain_pg_embedding"
VECTOR_TABLES = (COLLECTION_TABLE, EMBEDDING_TABLE)


def psycopg_url(url: str) -> str:
    """A `postgresql://` URL for psycopg, whichever form (`postgresql+psycopg://`) it came in."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def connect_store(url: str, *, autocommit: bool = False) -> psycopg.Connection:
    """A connection to the service's own store (not a business database: no caller chose it)."""
    url = psycopg_url(url)
    try:
        return psycopg.connect(url, autocommit=autocommit, connect_timeout=CONNECT_TIMEOUT_SECONDS,
                               application_name="data_pipeline_vector")
    except psycopg.Error as exc:
        raise DatabaseError(f"无法连接数据库 {mask_url(url)}: {describe_connection_error(exc, url)}") from None


def store_engine(url: str):
    """A SQLAlchemy engine (psycopg 3 driver) on the store, for `PGVector`; dispose it after use."""
    from sqlalchemy import create_engine

    return create_engine(sqlalchemy_url(psycopg_url(url)), pool_pre_ping=True)


def ensure_collections(engine, embeddings, names: Iterable[str]) -> dict:
    """The extension, the two tables and the named collections, created by `PGVector` itself.

    Returns one `PGVector` per collection, as an assistant would open it at query time.
    """
    from langchain_postgres.vectorstores import PGVector

    try:
        return {name: PGVector(embeddings=embeddings, connection=engine, collection_name=name)
                for name in names}
    except Exception as exc:  # PGVector wraps driver errors in a bare Exception
        reason = scrub((str(exc).strip().splitlines() or [type(exc).__name__])[0][:300],
                       engine.url.render_as_string(hide_password=False))
        raise VectorStoreError(f"无法在存储数据库中创建向量表或集合: {reason}") from exc


class VectorTables:
    """Reads and writes the two tables on one connection (its transaction); counts statements."""

    def __init__(self, conn: psycopg.Connection):
        self.conn = conn
        self.statements = 0

    def execute(self, query: str, params=None) -> psycopg.Cursor:
        self.statements += 1
        return self.conn.execute(query, params)

    def require_pgvector(self) -> None:
        """VectorStoreError unless the `vector` extension is installed or can be created."""
        if self.execute("select 1 from pg_extension where extname = 'vector'").fetchone():
            return
        if self.execute("select 1 from pg_available_extensions where name = 'vector'").fetchone():
            return
        raise VectorStoreError(
            "存储数据库没有安装 pgvector 扩展（vector），无法写入向量数据。"
            "请在该PostgreSQL上安装pgvector，或不设置 DATA_PIPELINE_DB_URL 以使用内置数据库。",
            error_code="PGVECTOR_NOT_AVAILABLE")

    def tables_exist(self) -> bool:
        row = self.execute("select to_regclass(%s) is not null and to_regclass(%s) is not null",
                           VECTOR_TABLES).fetchone()
        return bool(row[0])

    def create_tables(self) -> None:
        """The extension and both tables, if missing, in this transaction — with the DDL compiled
        from PGVector's own table model, so the schema is exactly the one PGVector creates."""
        from langchain_postgres.vectorstores import _get_embedding_collection_store
        from sqlalchemy.dialects import postgresql
        from sqlalchemy.schema import CreateIndex, CreateTable

        self.execute("create extension if not exists vector")
        dialect = postgresql.dialect()
        for model in reversed(_get_embedding_collection_store()):  # collections first (foreign key)
            table = model.__table__
            self.execute(str(CreateTable(table, if_not_exists=True).compile(dialect=dialect)))
            for index in table.indexes:
                self.execute(str(CreateIndex(index, if_not_exists=True).compile(dialect=dialect)))

    def register_vector_type(self) -> None:
        """Let psycopg send numpy arrays as `vector` (the extension must exist by now)."""
        from pgvector.psycopg.vector import register_vector_info
        from psycopg.types import TypeInfo

        self.statements += 1
        register_vector_info(self.conn, TypeInfo.fetch(self.conn, "vector"))

    def foreign_dimensions(self, collections: Iterable[str], dimension: int,
                           *, except_owner: dict | None = None) -> dict[str, list[int]]:
        """Per collection, the vector dimensions other than `dimension` already stored there.

        Rows whose metadata contains `except_owner` are left out: a load replaces or removes
        all of its own rows in the same transaction, so they cannot end up beside the new ones.
        """
        if not self.tables_exist():
            return {}
        exclusion = ""
        params: list = [list(collections), dimension]
        if except_owner is not None:
            exclusion = "and not e.cmetadata @> %s"
            params.append(Jsonb(except_owner))
        rows = self.execute(
            f"""select c.name, array_agg(distinct vector_dims(e.embedding))
                  from {EMBEDDING_TABLE} e join {COLLECTION_TABLE} c on c.uuid = e.collection_id
                 where c.name = any(%s) and vector_dims(e.embedding) <> %s {exclusion}
                 group by c.name""", params).fetchall()
        return {name: sorted(dims) for name, dims in rows}

    def collection_ids(self, names: Iterable[str]) -> dict[str, uuid.UUID]:
        rows = self.execute(f"select name, uuid from {COLLECTION_TABLE} where name = any(%s)",
                            [list(names)]).fetchall()
        return dict(rows)

    def owned_rows(self, owner: dict, collection_ids: Iterable[uuid.UUID]) -> dict[str, uuid.UUID]:
        """id -> collection uuid of the rows whose metadata contains `owner`, in those collections."""
        rows = self.execute(
            f"""select id, collection_id from {EMBEDDING_TABLE}
                 where cmetadata @> %s and collection_id = any(%s)""",
            [Jsonb(owner), list(collection_ids)]).fetchall()
        return dict(rows)

    def upsert(self, rows: Iterable[tuple[str, uuid.UUID, np.ndarray, str, dict]]) -> int:
        """Insert or replace rows (id, collection uuid, vector, document, metadata) by id."""
        self.execute("create temp table if not exists dp_staged_embedding "
                     f"(like {EMBEDDING_TABLE} including defaults) on commit drop")
        self.execute("truncate dp_staged_embedding")
        self.statements += 1
        with self.conn.cursor().copy(
                "copy dp_staged_embedding (id, collection_id, embedding, document, cmetadata) "
                "from stdin (format binary)") as copy:
            copy.set_types(["varchar", "uuid", "vector", "varchar", "jsonb"])
            for row_id, collection_id, vector, document, metadata in rows:
                copy.write_row((row_id, collection_id, vector, document, Jsonb(metadata)))
        cursor = self.execute(
            f"""insert into {EMBEDDING_TABLE} (id, collection_id, embedding, document, cmetadata)
                select id, collection_id, embedding, document, cmetadata from dp_staged_embedding
                on conflict (id) do update set embedding = excluded.embedding,
                    document = excluded.document, cmetadata = excluded.cmetadata""")
        return cursor.rowcount

    def delete(self, ids: list[str]) -> int:
        if not ids:
            return 0
        return self.execute(f"delete from {EMBEDDING_TABLE} where id = any(%s)", [ids]).rowcount
