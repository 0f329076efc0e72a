"""What introspection learns about a table, and the comments chosen for its documentation."""
from __future__ import annotations

from dataclasses import dataclass, field

from data_pipeline.schema.names import TableName


@dataclass
class Column:
    name: str
    position: int
    type: str                      # short spelling, valid in DDL (`varchar(32)`, `timestamptz`)
    data_type: str                 # without modifiers (`varchar`)
    nullable: bool
    max_length: int | None = None
    numeric_precision: int | None = None
    numeric_scale: int | None = None
    default: str | None = None
    identity: str = ""             # "" | "always" | "by default"
    generated: str | None = None   # expression of a generated column
    generated_kind: str = ""       # "stored" | "virtual" (PostgreSQL 18)
    collation: str | None = None   # a collation other than the type's own, as written after COLLATE
    comment: str | None = None
    type_category: str = ""        # pg_type.typcategory (S string, A array, ...), or "integer"
    type_oid: int = 0
    enum_labels: list[str] | None = None   # labels of a PostgreSQL enum type (through domains too)
    domain_checks: list[str] = field(default_factory=list)   # CHECKs of the column's domain(s)
    # A `nextval(...)` default whose sequence this column does not own (not `serial`): the types file
    # creates the sequence so that the default works on an empty database.
    default_sequence: tuple[str, str] | None = None
    # A default the DDL leaves out because it calls a function of the database's own (not of an
    # extension), which an empty database lacks; the MD still states it.
    omitted_default: str | None = None
    stats_distinct: float | None = None    # pg_stats.n_distinct when the table has been analysed
    # Filled by sampling:
    samples: list[str] = field(default_factory=list)
    enum_values: list[str] | None = None


@dataclass
class ForeignKey:
    columns: tuple[str, ...]
    ref_schema: str
    ref_table: str
    ref_columns: tuple[str, ...]


@dataclass
class CheckConstraint:
    name: str
    definition: str                # as pg_get_constraintdef writes it: `CHECK ((amount > 0))`
    portable: bool = True          # False: calls a function of the database's own, kept as a comment


@dataclass
class UniqueIndex:
    name: str
    definition: str                # as pg_get_indexdef writes it (ON ONLY dropped)
    portable: bool = True


@dataclass
class TableInfo:
    oid: int
    schema: str
    name: str
    kind: str                      # "table", "partitioned table", "view", "materialized view", "foreign table"
    comment: str | None
    columns: list[Column]
    primary_key: tuple[str, ...] = ()
    unique_keys: list[tuple[str, ...]] = field(default_factory=list)
    foreign_keys: list[ForeignKey] = field(default_factory=list)
    # pg_get_constraintdef of each unique key: `UNIQUE NULLS NOT DISTINCT (a)`, `... DEFERRABLE`.
    unique_definitions: dict[tuple[str, ...], str] = field(default_factory=dict)
    check_constraints: list[CheckConstraint] = field(default_factory=list)
    unique_indexes: list[UniqueIndex] = field(default_factory=list)
    partition_key: str | None = None      # pg_get_partkeydef of a partitioned table: `RANGE (paid_on)`
    # Extensions whose functions its defaults, expressions, checks and indexes call.
    extensions: set[str] = field(default_factory=set)
    estimated_rows: float = -1     # pg_class.reltuples (-1: never analysed)
    # Filled by sampling:
    row_count: int | None = None
    row_count_exact: bool = False
    row_count_method: str | None = None   # "exact" | "planner_estimate" | "sample_estimate"
    sampled_rows: int = 0
    sampling_error: str | None = None

    @property
    def table_name(self) -> TableName:
        return TableName(self.schema, self.name)

    @property
    def full_name(self) -> str:
        """`schema.table` (parts quoted when needed), as in table lists and API responses."""
        return self.table_name.full_name

    @property
    def file_stem(self) -> str:
        return self.table_name.file_stem

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)

    def foreign_key_of(self, column: str) -> ForeignKey | None:
        return next((fk for fk in self.foreign_keys if column in fk.columns), None)


@dataclass
class TableComments:
    """The words of a table's documentation, after merging database, LLM and dictionary sources."""
    chinese_name: str
    description: str
    table_comment: str | None              # what `comment on table` says
    column_comments: dict[str, str]        # column name -> comment (columns without one are absent)
    llm_used: bool = False
