"""Times as the API shows and accepts them: ISO 8601 to the second, server local time."""
from __future__ import annotations

import datetime as dt


def iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone()
    return value.replace(tzinfo=None, microsecond=0).isoformat()


def parse_time(text: str) -> dt.datetime:
    """`2025-06-01T00:00:00`, `2025-06-01 00:00:00`, `2025-06-01` or with an offset; an aware
    datetime (naive input is server local time). ValueError when the text is not a time."""
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"时间格式无效: {text[:40]!r}（应为 YYYY-MM-DDTHH:MM:SS 或 YYYY-MM-DD HH:MM:SS）") from None
    return parsed if parsed.tzinfo else parsed.astimezone()
