"""The request schemas of every endpoint, in one place; they also describe the API in OpenAPI.

Tasks (guide §3), task files (§4), task logs (§5), database tools (§6), vector backups (ours).
"""
from __future__ import annotations

from typing import Annotated, List, Literal, Optional

from pydantic import AfterValidator, BeforeValidator, Field, PlainSerializer

from data_pipeline.api.endpoints import QueryParameters, RequestBody
from data_pipeline.logs.query import DEFAULT_PAGE_SIZE, MAX_DEPTH, MAX_PAGE_SIZE, SORT_FIELDS
from data_pipeline.logs.tail import DEFAULT_LIMIT, MAX_LIMIT
from data_pipeline.tasks.statuses import STEP_NAMES, TaskStatus
from data_pipeline.tasks.table_list import MAX_TABLES
from data_pipeline.store import SORTABLE_COLUMNS
from data_pipeline.timeutil import parse_time

# The names as plain strings: a refused value is answered with the choices 'pending', ... (an enum
# member in a Literal would show as <TaskStatus.PENDING: 'pending'>).
TaskStatusName = Literal[tuple(map(str, TaskStatus))]  # type: ignore[valid-type]
# Read as text, held as an aware datetime, given back (e.g. in `filters_applied`) as ISO 8601 text.
TimeText = Annotated[str, Field(max_length=40, examples=["2025-06-01T00:00:00"]), AfterValidator(parse_time),
                     PlainSerializer(lambda value: value.isoformat(), return_type=str)]
SortColumn = Literal[SORTABLE_COLUMNS]  # type: ignore[valid-type]


# ---- tasks -------------------------------------------------------------------------------


class CreateTaskRequest(RequestBody):
    table_list_file: Optional[str] = Field(None, max_length=1024,
                                           description="表清单文件路径（相对项目根目录或训练数据目录），不提供则需要后续上传")
    business_context: Optional[str] = Field(None, max_length=20000, description="业务上下文描述")
    db_name: Optional[str] = Field(None, min_length=1, max_length=63, pattern=r"^[\w.\-]+$",
                                   description="数据库名称（用于文件命名与筛选），缺省取自连接字符串")
    db_connection: Optional[str] = Field(None, max_length=2048,
                                         description="业务数据库连接字符串 postgresql://...，不提供则使用默认配置")
    task_name: Optional[str] = Field(None, max_length=200, description="任务名称")
    created_by: str = Field("guest", min_length=1, max_length=100, description="创建者")
    enable_sql_validation: bool = Field(True, description="是否启用SQL验证")
    enable_llm_repair: bool = Field(True, description="是否启用LLM修复")
    modify_original_file: bool = Field(True, description="是否修改原始文件")
    validate_by_execution: bool = Field(True, description="SQL验证时是否执行通过EXPLAIN的SQL（只读、限时、限行数），"
                                                         "执行失败或筛选值无结果的问答对按无效处理")
    enable_training_data_load: bool = Field(True, description="是否启用训练数据加载")
    backup_vector_tables: bool = Field(False, description="是否备份vector表数据")
    truncate_vector_tables: bool = Field(False, description="是否清空vector表数据（自动启用备份）")


class ExecuteTaskRequest(RequestBody):
    execution_mode: str = Field("complete", json_schema_extra={"enum": ["complete", "step"]},
                                description="执行模式：complete/step")
    step_name: Optional[str] = Field(None, description=f"步骤名称，步骤模式时必需: {' / '.join(STEP_NAMES)}")
    backup_vector_tables: Optional[bool] = Field(None, description="是否备份vector表数据（覆盖任务设置）")
    truncate_vector_tables: Optional[bool] = Field(None, description="是否清空vector表数据（自动启用备份）")
    validate_by_execution: Optional[bool] = Field(None, description="SQL验证时是否执行SQL（覆盖任务设置，缺省为true）")


class ListTasksQuery(QueryParameters):
    limit: int = Field(50, ge=1, le=100, description="返回数量限制")
    offset: int = Field(0, ge=0, le=1_000_000_000, description="偏移量")
    status: Optional[TaskStatusName] = Field(None, description="状态过滤")


class QueryTasksRequest(RequestBody):
    page: int = Field(1, ge=1, le=1_000_000, description="页码")
    page_size: int = Field(20, ge=1, le=100, description="每页大小")
    status: Optional[TaskStatusName] = Field(None, description="任务状态筛选")
    task_name: Optional[str] = Field(None, max_length=200, description="任务名称模糊搜索")
    created_by: Optional[str] = Field(None, max_length=100, description="创建者精确匹配")
    db_name: Optional[str] = Field(None, max_length=63, description="数据库名称精确匹配")
    created_time_start: Optional[TimeText] = Field(None, description="创建时间范围开始")
    created_time_end: Optional[TimeText] = Field(None, description="创建时间范围结束")
    sort_by: SortColumn = Field("created_at", description="排序字段")
    sort_order: Literal["asc", "desc"] = Field("desc", description="排序顺序")


# ---- task files --------------------------------------------------------------------------

class CreateTableListRequest(RequestBody):
    table_names: List[str] = Field(..., min_length=1, max_length=MAX_TABLES * 10,
                                   description=f"表名列表（schema.table 或 table，去重后最多 {MAX_TABLES} 个）")
    business_context: Optional[str] = Field(None, max_length=20000, description="业务上下文描述（更新任务）")


# ---- task logs ---------------------------------------------------------------------------

def _blank_as_none(value):
    """Frontends send "" for an unset filter."""
    return None if isinstance(value, str) and not value.strip() else value


def _upper(value):
    value = _blank_as_none(value)
    return value.upper() if isinstance(value, str) else value


LevelName = Annotated[Optional[Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]], BeforeValidator(_upper)]
Filter = Annotated[Optional[str], BeforeValidator(_blank_as_none)]


class RecentLogsQuery(QueryParameters):
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="返回最后多少条日志")
    level: LevelName = Field(None, description="日志级别（精确匹配）")


class LogQueryRequest(RequestBody):
    page: int = Field(1, ge=1, le=MAX_DEPTH, description=f"页码（page × page_size 不超过 {MAX_DEPTH}）")
    page_size: int = Field(DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE, description="每页大小")
    level: LevelName = Field(None, description="日志级别（精确匹配）")
    start_time: Annotated[Optional[TimeText], BeforeValidator(_blank_as_none)] = Field(
        None, description="开始时间（ISO 8601 或 YYYY-MM-DD HH:MM:SS）")
    end_time: Annotated[Optional[TimeText], BeforeValidator(_blank_as_none)] = Field(None, description="结束时间")
    keyword: Filter = Field(None, max_length=200, description="关键词（消息中搜索，不区分大小写）")
    logger_name: Filter = Field(None, max_length=200, description="记录器名称（精确匹配，可带或不带步骤前缀）")
    step_name: Annotated[Optional[Literal[STEP_NAMES]], BeforeValidator(_blank_as_none)] = Field(  # type: ignore[valid-type]
        None, description="步骤名称")
    sort_by: Literal[SORT_FIELDS] = Field("timestamp", description="排序字段")  # type: ignore[valid-type]
    sort_order: Literal["asc", "desc"] = Field("desc", description="排序顺序")


# ---- database tools ----------------------------------------------------------------------

class ListTablesRequest(RequestBody):
    db_connection: Optional[str] = Field(None, max_length=2048,
                                         description="数据库连接字符串 postgresql://...，不传则使用默认配置")
    schema_names: Optional[str] = Field(None, alias="schema", max_length=2000,
                                        description="Schema名称，支持多个用逗号分隔；不传则列出所有非系统schema")
    table_name_pattern: Optional[str] = Field(None, max_length=200,
                                              description="表名模式匹配（不区分大小写），支持通配符 * 和 ?")
    include_views: bool = Field(False, description="是否包含视图与物化视图")


class TableDocumentRequest(RequestBody):
    table: str = Field(..., min_length=1, max_length=300, description="表名（可包含schema），如 public.bss_company")
    db_connection: Optional[str] = Field(None, max_length=2048, description="数据库连接字符串")
    business_context: Optional[str] = Field(None, max_length=20000, description="业务上下文描述")
    type: Literal["ddl", "md", "both"] = Field("both", description="输出类型：ddl/md/both")


# ---- vector backups ----------------------------------------------------------------------

VectorTableName = Literal["langchain_pg_collection", "langchain_pg_embedding"]


class ListBackupsQuery(QueryParameters):
    task_id: Optional[str] = Field(None, max_length=40, description="只列出该任务目录中的备份")
    global_only: bool = Field(False, description="只列出全局备份目录 vector_bak/ 中的备份")


class RestoreRequest(RequestBody):
    backup_path: str = Field(..., min_length=1, max_length=1024,
                             description="备份目录，相对训练数据目录（取自 restore/list 的 relative_path）",
                             examples=["task_20250721_213627/vector_bak"])
    timestamp: str = Field(..., pattern=r"^\d{8}_\d{6}$", description="备份时间戳 YYYYMMDD_HHMMSS",
                           examples=["20250721_215758"])
    tables: Optional[list[VectorTableName]] = Field(None, min_length=1, description="要恢复的表，缺省为两张表")
    truncate_before_restore: bool = Field(False, description="恢复前清空 langchain_pg_embedding（同一事务）")


class BackupRequest(RequestBody):
    """No parameters: the backup goes into `<training data dir>/vector_bak/`."""
