"""Versioned migrations of the task store, applied idempotently at start.

Each migration runs once, in order, inside one transaction that holds an advisory lock, so
starting the service twice — or two processes at once — is safe. Append new migrations; never
edit an applied one.
"""
from __future__ import annotations

import logging

from sqlalchemy import Engine, text

logger = logging.getLogger("TaskStore")

_MIGRATION_LOCK_KEY = 8_084_000_001

MIGRATIONS: list[tuple[int, str, str]] = [
    (1, "task, step and execution tables", """
        create table dp_tasks (
            task_id varchar(64) primary key,
            task_name text,
            status varchar(32) not null,
            created_at timestamptz not null default now(),
            started_at timestamptz,
            completed_at timestamptz,
            updated_at timestamptz not null default now(),
            created_by text not null default 'guest',
            db_name text,
            business_context text,
            db_connection text,
            parameters jsonb not null default '{}'::jsonb,
            error_message text,
            current_execution_id varchar(160)
        );
        create index dp_tasks_status_created_idx on dp_tasks (status, created_at desc);
        create index dp_tasks_created_idx on dp_tasks (created_at desc);
        create index dp_tasks_created_by_idx on dp_tasks (created_by, created_at desc);
        create index dp_tasks_db_name_idx on dp_tasks (db_name, created_at desc);

        create table dp_task_steps (
            task_id varchar(64) not null references dp_tasks(task_id) on delete cascade,
            step_name varchar(64) not null,
            step_order smallint not null,
            status varchar(32) not null default 'pending',
            started_at timestamptz,
            completed_at timestamptz,
            error_message text,
            result jsonb,
            progress jsonb,
            execution_id varchar(160),
            primary key (task_id, step_name)
        );

        create table dp_task_executions (
            execution_id varchar(160) primary key,
            task_id varchar(64) not null references dp_tasks(task_id) on delete cascade,
            execution_mode varchar(16) not null,
            step_name varchar(64),
            status varchar(32) not null,
            options jsonb not null default '{}'::jsonb,
            created_at timestamptz not null default now(),
            started_at timestamptz,
            completed_at timestamptz,
            pid integer,
            hostname text,
            heartbeat_at timestamptz,
            exit_code integer,
            error_message text
        );
        create index dp_task_executions_task_idx on dp_task_executions (task_id, created_at desc);
        create index dp_task_executions_running_idx on dp_task_executions (status) where status = 'running';
    """),
    (2, "error_code of failed tasks and executions", """
        alter table dp_tasks add column error_code varchar(64);
        alter table dp_task_executions add column error_code varchar(64);
    """),
    (3, "run queue order and the worker of an execution", """
        create sequence dp_execution_queue_seq;
        alter table dp_task_executions
            add column queue_seq bigint not null default nextval('dp_execution_queue_seq'),
            add column worker text;
        create index dp_task_executions_queued_idx on dp_task_executions (queue_seq) where status = 'queued';
    """),
    (4, "the run queue an execution waits in", """
        alter table dp_task_executions add column run_queue text;
    """),
]


def migrate(engine: Engine) -> int:
    """Apply every migration not yet applied; returns the schema version."""
    with engine.begin() as conn:
        conn.execute(text("select pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
        conn.execute(text("""
            create table if not exists dp_schema_migrations (
                version integer primary key,
                name text not null,
                applied_at timestamptz not null default now()
            )"""))
        applied = {row[0] for row in conn.execute(text("select version from dp_schema_migrations"))}
        for version, name, sql in MIGRATIONS:
            if version in applied:
                continue
            logger.info("applying store migration %d: %s", version, name)
            conn.exec_driver_sql(sql)
            conn.execute(text("insert into dp_schema_migrations (version, name) values (:v, :n)"),
                         {"v": version, "n": name})
    return MIGRATIONS[-1][0]
