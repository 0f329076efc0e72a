"""What `training_load` puts into the vector store, read from a task directory.

One document per `*.ddl` file and for the types file `schema_types.sql` (collection `ddl`), per
`*_detail.md` file (`documentation`) and per question/SQL pair of the newest top-level `*_pair.json` (`sql`). Documents are in the exact
form a stock Vanna `PG_VectorStore` writes and reads:

- `sql`: `json.dumps({"question": q, "sql": s}, ensure_ascii=False)` (Vanna reads it back with
  `ast.literal_eval`, which accepts that JSON because it holds only strings);
- `ddl` / `documentation`: the file's raw text — except the values of secret columns (sample and
  enum values an uploaded `_detail.md` may list for a password, token... column), which are cut;
- ids `<uuid>-sql|-ddl|-doc`, the same as `cmetadata["id"]` (Vanna classifies rows by the suffix).

The uuid is uuid5 over the collection, the task and the logical key (the file name, or the
pair's question and SQL), so loading the same task again addresses the same rows.
"""
from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from data_pipeline.errors import StepFailed
from data_pipeline.qa.documents import withhold_secret_values
from data_pipeline.schema.secret_columns import BUILTIN_MASK, ColumnMask
from data_pipeline.schema.types_file import TYPES_FILE
from data_pipeline.validation.pair_file import find_pair_file
from data_pipeline.validation.statement_check import check_statement

COLLECTIONS = ("sql", "ddl", "documentation")
ID_SUFFIXES = {"sql": "-sql", "ddl": "-ddl", "documentation": "-doc"}
SOURCE = "data_pipeline"
_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "data_pipeline/training_load")
_IDENTIFIER = r'(?:"(?:[^"]|"")+"|[^\s(."]+)'
_DDL_TABLE = re.compile(rf"^\s*create\s+table\s+(?:if\s+not\s+exists\s+)?({_IDENTIFIER}(?:\.{_IDENTIFIER})?)",
                        re.IGNORECASE | re.MULTILINE)
_MD_TITLE = re.compile(r"^##\s+([^（\n]+?)\s*(?:（.*)?$", re.MULTILINE)  # `## <name>（<中文名>）`


@dataclass(frozen=True)
class TrainingDocument:
    collection: str
    id: str
    text: str
    metadata: dict = field(hash=False)


@dataclass
class TaskDocuments:
    documents: list[TrainingDocument]
    ddl_files: list[str]
    documentation_files: list[str]
    pair_file: str | None
    skipped_pairs: int
    duplicate_pairs: int
    refused_pairs: int = 0

    def count(self, collection: str) -> int:
        return sum(1 for document in self.documents if document.collection == collection)


def document_id(collection: str, task_id: str, key: str) -> str:
    name = "\n".join((collection, task_id, key))
    return f"{uuid.uuid5(_ID_NAMESPACE, name)}{ID_SUFFIXES[collection]}"


def owner_metadata(task_id: str) -> dict:
    """The metadata every row this service loads for a task contains (rows of others lack it)."""
    return {"source": SOURCE, "task_id": task_id}


def sql_document(question: str, sql: str) -> str:
    return json.dumps({"question": question, "sql": sql}, ensure_ascii=False)


def collect(task_dir: Path, task_id: str, embedding_model: str, mask: ColumnMask = BUILTIN_MASK) -> TaskDocuments:
    """Every document of the task, in a stable order; StepFailed if the pair file is unusable."""
    task_dir = Path(task_dir)
    base = {**owner_metadata(task_id), "embedding_model": embedding_model}
    documents: list[TrainingDocument] = []

    ddl_files = sorted(path for path in task_dir.glob("*.ddl") if path.is_file())
    if (task_dir / TYPES_FILE).is_file():
        # The enums' labels and the domains' checks are schema knowledge a text-to-SQL model uses.
        ddl_files.insert(0, task_dir / TYPES_FILE)
    for path in ddl_files:
        text = _read_text(path)
        if text.strip():
            documents.append(_file_document("ddl", task_id, path, text, _DDL_TABLE, base))

    md_files = sorted(path for path in task_dir.glob("*_detail.md") if path.is_file())
    for path in md_files:
        text = withhold_secret_values(_read_text(path), mask)
        if text.strip():
            documents.append(_file_document("documentation", task_id, path, text, _MD_TITLE, base))

    pair_path = find_pair_file(task_dir)
    skipped = duplicates = refused = 0
    if pair_path is not None:
        seen: set[str] = set()
        for question, sql in _read_pairs(pair_path):
            if not question.strip() or not sql.strip():
                skipped += 1
                continue
            if not check_statement(sql).ok:
                # An assistant retrieves these as examples of what to run: only SQL the guard
                # admits (one read-only query of allowed functions), validated or not.
                refused += 1
                continue
            doc_id = document_id("sql", task_id, f"{question}\n{sql}")
            if doc_id in seen:
                duplicates += 1
                continue
            seen.add(doc_id)
            metadata = {"id": doc_id, **base, "file": pair_path.name}
            documents.append(TrainingDocument("sql", doc_id, sql_document(question, sql), metadata))

    return TaskDocuments(documents=documents, ddl_files=[p.name for p in ddl_files],
                         documentation_files=[p.name for p in md_files],
                         pair_file=pair_path.name if pair_path else None,
                         skipped_pairs=skipped, duplicate_pairs=duplicates, refused_pairs=refused)


def _file_document(collection: str, task_id: str, path: Path, text: str, title: re.Pattern,
                   base: dict) -> TrainingDocument:
    doc_id = document_id(collection, task_id, path.name)
    metadata = {"id": doc_id, **base, "file": path.name}
    match = title.search(text)
    if match:
        metadata["table"] = match.group(1).strip()
    return TrainingDocument(collection, doc_id, text, metadata)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise StepFailed(f"文件不是UTF-8编码: {path.name}") from None


def _read_pairs(path: Path) -> list[tuple[str, str]]:
    try:
        data = json.loads(_read_text(path))
    except (json.JSONDecodeError, RecursionError) as exc:
        raise StepFailed(f"问答对文件不是有效的JSON: {path.name}: {exc}") from None
    if not isinstance(data, list):
        raise StepFailed(f"问答对文件应为JSON数组: {path.name}")
    pairs = []
    for item in data:
        if isinstance(item, dict) and isinstance(item.get("question"), str) and isinstance(item.get("sql"), str):
            pairs.append((item["question"], item["sql"]))
        else:
            pairs.append(("", ""))
    return pairs
