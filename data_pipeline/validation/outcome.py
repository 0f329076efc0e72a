"""What validating one SQL gives, and the classes its errors fall into.

A class names what went wrong in terms a reader of the report can act on; the database's
SQLSTATE decides it where the database answered.
"""
from __future__ import annotations

from dataclasses import dataclass


class ErrorClass:
    EMPTY = "empty_sql"
    MULTIPLE_STATEMENTS = "multiple_statements"
    NOT_A_QUERY = "not_a_query"
    WRITES_OR_LOCKS = "writes_or_locks"
    FUNCTION_NOT_ALLOWED = "function_not_allowed"   # outside allowed_functions: a repair may replace it
    RELATION_NOT_ALLOWED = "relation_not_allowed"   # a system catalog or another database
    SYNTAX = "syntax_error"
    UNDEFINED_COLUMN = "undefined_column"
    UNDEFINED_TABLE = "undefined_table"
    AMBIGUOUS_COLUMN = "ambiguous_column"
    UNDEFINED_FUNCTION = "undefined_function"
    TYPE_MISMATCH = "type_mismatch"
    GROUPING = "grouping_error"
    PERMISSION = "permission_denied"
    TIMEOUT = "timeout"
    DATABASE = "database_error"
    EXECUTION = "execution_error"            # passed EXPLAIN, failed when run (division by zero, bad cast)
    EMPTY_RESULT = "empty_result"            # no rows while filtering on a value the question names


# Refused before the database is reached: rewriting them is not a repair but a different request.
NOT_REPAIRABLE = frozenset({ErrorClass.EMPTY, ErrorClass.MULTIPLE_STATEMENTS, ErrorClass.NOT_A_QUERY,
                            ErrorClass.WRITES_OR_LOCKS, ErrorClass.RELATION_NOT_ALLOWED, ErrorClass.TIMEOUT,
                            ErrorClass.PERMISSION})

_BY_SQLSTATE = {
    "42601": ErrorClass.SYNTAX,
    "42703": ErrorClass.UNDEFINED_COLUMN,
    "42P01": ErrorClass.UNDEFINED_TABLE,
    "3F000": ErrorClass.UNDEFINED_TABLE,     # invalid schema name
    "42702": ErrorClass.AMBIGUOUS_COLUMN,
    "42P09": ErrorClass.AMBIGUOUS_COLUMN,    # ambiguous alias
    "42725": ErrorClass.UNDEFINED_FUNCTION,  # ambiguous function
    "42883": ErrorClass.UNDEFINED_FUNCTION,
    "42804": ErrorClass.TYPE_MISMATCH,
    "42846": ErrorClass.TYPE_MISMATCH,       # cannot coerce
    "22P02": ErrorClass.TYPE_MISMATCH,       # invalid text representation of a literal
    "22007": ErrorClass.TYPE_MISMATCH,       # invalid datetime literal
    "22008": ErrorClass.TYPE_MISMATCH,
    "42803": ErrorClass.GROUPING,
    "42501": ErrorClass.PERMISSION,
    "57014": ErrorClass.TIMEOUT,
    "25006": ErrorClass.WRITES_OR_LOCKS,     # read-only transaction refused a write
}


def classify_sqlstate(sqlstate: str | None) -> str:
    return _BY_SQLSTATE.get(sqlstate or "", ErrorClass.DATABASE)


@dataclass
class ValidationOutcome:
    valid: bool
    error: str | None = None
    error_class: str | None = None
    sqlstate: str | None = None
    seconds: float = 0.0
    retries: int = 0
    explain_valid: bool = False       # the statement check and EXPLAIN passed
    executed: bool = False            # the execution check ran it to the end (within the row limit)
    row_count: int | None = None      # rows it returned, at most the row limit

    @classmethod
    def ok(cls, seconds: float, retries: int = 0, *, executed: bool = False,
           row_count: int | None = None) -> "ValidationOutcome":
        return cls(valid=True, seconds=seconds, retries=retries, explain_valid=True, executed=executed,
                   row_count=row_count)

    @classmethod
    def failed(cls, error_class: str, error: str, *, sqlstate: str | None = None, seconds: float = 0.0,
               retries: int = 0, explain_valid: bool = False, executed: bool = False,
               row_count: int | None = None) -> "ValidationOutcome":
        return cls(valid=False, error=error, error_class=error_class, sqlstate=sqlstate, seconds=seconds,
                   retries=retries, explain_valid=explain_valid, executed=executed, row_count=row_count)

    @property
    def repairable(self) -> bool:
        return not self.valid and self.error_class not in NOT_REPAIRABLE
