"""What the pair prompt asks for: a spread of SQL complexity in the four levels OmniSQL uses, and
of question styles, sized to the tables of the theme (no joins asked of a one-table theme)."""
from __future__ import annotations

from data_pipeline.qa.sql_shape import LEVELS

STYLES = ("formal", "colloquial", "imperative", "vague")

_ONE_TABLE_WEIGHTS = (3, 3, 2, 2)
_JOIN_WEIGHTS = (2, 3, 3, 2)


def level_descriptions(tables: int) -> dict[str, str]:
    joins = "" if tables <= 1 else "两表连接、" if tables == 2 else "多表连接（三个及以上的表）、"
    return {"simple": "简单：单表查询、简单过滤或排序",
            "moderate": "中等：聚合（COUNT/SUM/AVG）与分组" if tables <= 1 else "中等：表连接或聚合",
            "complex": f"复杂：{joins}分组配合HAVING、子查询或CTE",
            "highly_complex": "高度复杂：窗口函数（排名、累计、环比）、嵌套CTE或集合运算（UNION/EXCEPT）"}


STYLE_DESCRIPTIONS = {"formal": "正式书面语", "colloquial": "口语化", "imperative": "祈使句（如“列出……”）",
                      "vague": "表述模糊但意图明确（如“最近哪个卖得好？”）"}


def level_counts(pairs: int, tables: int) -> dict[str, int]:
    return dict(zip(LEVELS, _split(pairs, _ONE_TABLE_WEIGHTS if tables == 1 else _JOIN_WEIGHTS)))


def style_counts(pairs: int) -> dict[str, int]:
    return dict(zip(STYLES, _split(pairs, (1, 1, 1, 1))))


def spread_instructions(pairs: int, tables: int) -> str:
    """The prompt lines asking for the spread; every count given, summing to `pairs`."""
    descriptions = level_descriptions(tables)
    levels = "；".join(f"{level}（{descriptions[level]}）{count}个"
                      for level, count in level_counts(pairs, tables).items() if count)
    styles = "；".join(f"{style}（{STYLE_DESCRIPTIONS[style]}）{count}个"
                      for style, count in style_counts(pairs).items() if count)
    return (f"SQL复杂度分布（OmniSQL的四个等级，本主题涉及{tables}个表）：{levels}。\n"
            f"问题风格分布：{styles}。\n")


def _split(total: int, weights: tuple[int, ...]) -> list[int]:
    """`total` split by `weights`, largest remainders first (counts sum to `total`)."""
    shares = [total * w / sum(weights) for w in weights]
    counts = [int(s) for s in shares]
    for index in sorted(range(len(weights)), key=lambda i: shares[i] - counts[i], reverse=True)[:total - sum(counts)]:
        counts[index] += 1
    return counts
