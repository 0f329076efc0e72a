"""Step 4, training_load: the task's DDL, documentation and question/SQL pairs into pgvector.

When asked (backup_vector_tables / truncate_vector_tables, the latter implying the former), the
vector tables are first backed up into `<task dir>/vector_bak/` and, for truncate, emptied after
the backup is verified. Then every `*.ddl`, every `*_detail.md` and the pairs of the newest
top-level `*_pair.json` are embedded and loaded in the format a stock Vanna `PG_VectorStore`
reads (see data_pipeline/vector/documents.py). The result counts this task's rows by collection.
Then every loaded pair's question is searched in the `sql` collection (self-recall at 1 and 5,
data_pipeline/vector/self_recall.py) and the quality report is refreshed with the figures.
"""
from __future__ import annotations

import json
import time

from data_pipeline.db.databases import store_url as settings_store_url
from data_pipeline.errors import StepFailed
from data_pipeline.qa.quality import write_quality_report
from data_pipeline.steps.context import StepContext
from data_pipeline.vector import documents as task_documents
from data_pipeline.vector.backup import backup_vector_tables
from data_pipeline.vector.embeddings import embeddings_from_settings
from data_pipeline.vector.loader import load_documents
from data_pipeline.vector.self_recall import self_recall

BACKUP_DIR = "vector_bak"


def run(ctx: StepContext) -> dict:
    logger = ctx.logger
    started = time.monotonic()
    store = ctx.store_url or settings_store_url(ctx.settings)

    # Everything that can fail without touching the store comes first: a malformed pair file or
    # an unreachable embedding service must not leave the vector tables truncated.
    embeddings = embeddings_from_settings(ctx.settings, logger=logger)
    dimension = embeddings.dimension
    collected = task_documents.collect(ctx.task_dir, ctx.task_id, embeddings.model_name, ctx.column_mask)
    if not collected.documents:
        raise StepFailed("任务目录中没有可加载的训练数据（*.ddl、*_detail.md 或 *_pair.json）")
    if collected.skipped_pairs:
        logger.warning("问答对文件 %s 中有 %d 条缺少 question 或 sql，已跳过",
                       collected.pair_file, collected.skipped_pairs)
    if collected.refused_pairs:
        logger.warning("问答对文件 %s 中有 %d 条SQL未通过语句检查（只加载单条只读查询，且只调用允许的函数），已跳过",
                       collected.pair_file, collected.refused_pairs)
    if collected.duplicate_pairs:
        logger.info("问答对文件 %s 中有 %d 条重复问答对，只加载一次",
                    collected.pair_file, collected.duplicate_pairs)

    vector_management = None
    if ctx.backup_vector_tables or ctx.truncate_vector_tables:
        logger.info("备份向量表到 %s%s", BACKUP_DIR,
                    "，校验后清空 langchain_pg_embedding" if ctx.truncate_vector_tables else "")
        managed = backup_vector_tables(store, ctx.task_dir / BACKUP_DIR, task_id=ctx.task_id,
                                       truncate=ctx.truncate_vector_tables)
        managed["backup"]["backup_dir"] = BACKUP_DIR
        vector_management = {"backup_performed": True,
                             "truncate_performed": managed["truncate"] is not None, **managed}

    logger.info("开始加载训练数据: DDL %d 个, 文档 %d 个, 问答对 %d 条 (文件 %s), embedding模型 %s (%d维)",
                collected.count("ddl"), collected.count("documentation"), collected.count("sql"),
                collected.pair_file or "无", embeddings.model_name, dimension)
    ctx.report_progress(0, len(collected.documents), "documents")

    loaded = load_documents(store, embeddings, ctx.task_id, collected.documents,
                            progress=ctx.report_progress, logger=logger)
    loaded_pairs = [json.loads(d.text) for d in collected.documents if d.collection == "sql"]
    retrieval = self_recall(store, embeddings, [(p["question"], p["sql"]) for p in loaded_pairs])
    logger.info("检索自召回: recall@1 %.3f, recall@5 %.3f（%d 条问答对）", retrieval["self_recall_at_1"],
                retrieval["self_recall_at_5"], len(loaded_pairs))
    write_quality_report(ctx.task_dir, ctx.settings, retrieval=retrieval)
    result = {
        "load_successful": True,
        "total_records": loaded["total_records"],
        "data_type_counts": loaded["data_type_counts"],
        "collections": loaded["collections"],
        "files": {"ddl": collected.ddl_files, "documentation": collected.documentation_files,
                  "pair_file": collected.pair_file},
        "skipped_pairs": collected.skipped_pairs,
        "duplicate_pairs": collected.duplicate_pairs,
        "refused_pairs": collected.refused_pairs,
        "embedding": {"provider": ctx.settings.embedding_provider, **loaded["embedding"]},
        "sql_round_trips": loaded["sql_round_trips"],
        "retrieval": retrieval,
        "duration": round(time.monotonic() - started, 3),
    }
    if vector_management is not None:
        result["vector_management"] = vector_management
    return result
