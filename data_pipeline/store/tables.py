"""SQLAlchemy Core descriptions of the store tables (their DDL lives in migrations.py)."""
from sqlalchemy import BigInteger, Column, DateTime, Integer, MetaData, SmallInteger, String, Table, Text
from sqlalchemy.dialects.postgresql import JSONB

from data_pipeline.tasks.statuses import StepStatus

metadata = MetaData()

tasks = Table(
    "dp_tasks", metadata,
    Column("task_id", String(64), primary_key=True),
    Column("task_name", Text),
    Column("status", String(32), nullable=False),
    Column("created_at", DateTime(timezone=True)),
    Column("started_at", DateTime(timezone=True)),
    Column("completed_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True)),
    Column("created_by", Text),
    Column("db_name", Text),
    Column("business_context", Text),
    Column("db_connection", Text),
    Column("parameters", JSONB),
    Column("error_message", Text),
    Column("current_execution_id", String(160)),
    Column("error_code", String(64)),
)

steps = Table(
    "dp_task_steps", metadata,
    Column("task_id", String(64), primary_key=True),
    Column("step_name", String(64), primary_key=True),
    Column("step_order", SmallInteger),
    Column("status", String(32)),
    Column("started_at", DateTime(timezone=True)),
    Column("completed_at", DateTime(timezone=True)),
    Column("error_message", Text),
    Column("result", JSONB),
    Column("progress", JSONB),
    Column("execution_id", String(160)),
)

executions = Table(
    "dp_task_executions", metadata,
    Column("execution_id", String(160), primary_key=True),
    Column("task_id", String(64)),
    Column("execution_mode", String(16)),
    Column("step_name", String(64)),
    Column("status", String(32)),
    Column("options", JSONB),
    Column("created_at", DateTime(timezone=True)),
    Column("started_at", DateTime(timezone=True)),
    Column("completed_at", DateTime(timezone=True)),
    Column("pid", Integer),
    Column("hostname", Text),
    Column("heartbeat_at", DateTime(timezone=True)),
    Column("exit_code", Integer),
    Column("error_message", Text),
    Column("error_code", String(64)),
    Column("queue_seq", BigInteger),
    Column("worker", Text),
    Column("run_queue", Text),
)

# A step about to (re)run, or after the ones a run restarts from: as a new task's steps are.
STEP_RESET = {"status": StepStatus.PENDING, "started_at": None, "completed_at": None,
              "error_message": None, "result": None, "progress": None, "execution_id": None}
