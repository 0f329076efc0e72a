"""Request schemas of the task endpoints (guide §3); they also describe the API in OpenAPI."""
from __future__ import annotations

from typing import Annotated, Literal, Optional

from pydantic import AfterValidator, Field

from data_pipeline.api.endpoints import QueryParameters, RequestBody
from data_pipeline.tasks.statuses import STEP_NAMES, TaskStatus
from data_pipeline.store import SORTABLE_COLUMNS
from data_pipeline.timeutil import parse_time

# The names as plain strings: a refused value is answered with the choices 'pending', ... (an enum
# member in a Literal would show as <TaskStatus.PENDING: 'pending'>).
TaskStatusName = Literal[tuple(map(str, TaskStatus))]  # type: ignore[valid-type]
TimeText = Annotated[str, Field(max_length=40, examples=["2025-06-01T00:00:00"]), AfterValidator(parse_time)]
SortColumn = Literal[SORTABLE_COLUMNS]  # type: ignore[valid-type]


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
    enable_training_data_load: bool = Field(True, description="是否启用训练数据加载")
    backup_vector_tables: bool = Field(False, description="是否备份vector表数据")
    truncate_vector_tables: bool = Field(False, description="是否清空vector表数据（自动启用备份）")


class ExecuteTaskRequest(RequestBody):
    execution_mode: str = Field("complete", json_schema_extra={"enum": ["complete", "step"]},
                                description="执行模式：complete/step")
    step_name: Optional[str] = Field(None, description=f"步骤名称，步骤模式时必需: {' / '.join(STEP_NAMES)}")
    backup_vector_tables: Optional[bool] = Field(None, description="是否备份vector表数据（覆盖任务设置）")
    truncate_vector_tables: Optional[bool] = Field(None, description="是否清空vector表数据（自动启用备份）")


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

