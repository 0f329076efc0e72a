"""Output budgets: how many tokens each kind of answer may take (the request's `max_tokens`).

Sized to what a complete answer needs, with room to spare; the client caps every budget at
LLM_MAX_OUTPUT_TOKENS. An answer that reaches its budget is cut off and counts as malformed, so a
model that rambles costs at most its budget (and one shorter re-ask), never a whole context.
"""
from __future__ import annotations

# One pair: a question and a SQL of up to a few joins, a CTE or a window function.
TOKENS_PER_PAIR = 250
TOKENS_PER_THEME = 200
TOKENS_PER_COLUMN = 60


def table_comments(columns: int) -> int:
    """A table's Chinese name and description, and a short comment (with enum meanings) per column."""
    return 300 + TOKENS_PER_COLUMN * columns


def theme_plan(themes: int) -> int:
    return 200 + TOKENS_PER_THEME * themes


def business_scope(tables: int) -> int:
    return 400 + 80 * min(tables, 20)


def theme_pairs(pairs: int) -> int:
    return 200 + TOKENS_PER_PAIR * pairs


def repair() -> int:
    """One corrected SQL."""
    return 600
