"""Task log reading (library level): entries, the tail reader, and logs/query checked against a
brute-force reading of the same file, on logs with multi-line entries, odd lines and tiny
segments (so every entry boundary case crosses a segment boundary somewhere)."""
from __future__ import annotations

import datetime as dt
import random
import re

import pytest

from data_pipeline.errors import ValidationError
from data_pipeline.logs import LogQuery, query_log, read_last_entries
from data_pipeline.logs import segments, tail
from data_pipeline.logs.entries import LEVEL_RANKS, parse_entry
from data_pipeline.logs.task_log import format_entry
from data_pipeline.timeutil import parse_time
from tests.support.sample_logs import expected_entries, write_sample_log

STEPS = ("ddl_generation", "qa_generation", "sql_validation", "training_load")
_BOUNDARY = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \[")


# ---- the reference: read the whole file, the obvious way ----------------------------------------

def brute_force_entries(text: str) -> list[dict]:
    """Every entry of a log, by splitting lines at entry boundaries (fields from parse_entry)."""
    if not text:
        return []
    groups: list[tuple[int, list[str]]] = []
    for number, line in enumerate(text.removesuffix("\n").split("\n"), start=1):
        line = line.removesuffix("\r")
        if _BOUNDARY.match(line) or not groups:
            groups.append((number, [line]))
        else:
            groups[-1][1].append(line)
    return [parse_entry(lines, number).to_dict() for number, lines in groups]


def brute_force_query(entries: list[dict], query: LogQuery) -> tuple[int, list[dict]]:
    def ascii_lower(text: str) -> str:
        return "".join(c.lower() if c.isascii() else c for c in text)

    def keep(e: dict) -> bool:
        if query.level and e["level"] != query.level.upper():
            return False
        if query.step_name and e["step"] != query.step_name:
            return False
        if query.logger_name:
            full = f"{e['step']}.{e['logger']}" if e["step"] else e["logger"]
            if query.logger_name not in (e["logger"], full):
                return False
        if query.start_time and (e["timestamp"] is None or e["timestamp"] < local(query.start_time, True)):
            return False
        if query.end_time and (e["timestamp"] is None or e["timestamp"] > local(query.end_time, False)):
            return False
        if query.keyword:
            if all(c.isascii() or c.lower() == c.upper() for c in query.keyword):
                return ascii_lower(query.keyword) in ascii_lower(e["message"])
            return query.keyword.casefold() in e["message"].casefold()
        return True

    def local(moment: dt.datetime, lower: bool) -> str:
        if moment.tzinfo:
            moment = moment.astimezone().replace(tzinfo=None)
        if lower and moment.microsecond:
            moment += dt.timedelta(seconds=1)
        return moment.strftime("%Y-%m-%d %H:%M:%S")

    key = {
        "timestamp": lambda e: (e["timestamp"] or "", e["line_number"]),
        "level": lambda e: (LEVEL_RANKS.get(e["level"] or "", 0), e["line_number"]),
        "logger": lambda e: ((e["logger"] or "").encode(), e["line_number"]),
        "step": lambda e: (e["step"] or "", e["line_number"]),
        "line_number": lambda e: e["line_number"],
    }[query.sort_by]
    matching = sorted((e for e in entries if keep(e)), key=key, reverse=query.sort_order == "desc")
    start = (query.page - 1) * query.page_size
    return len(matching), matching[start:start + query.page_size]


# ---- logs to read --------------------------------------------------------------------------------

def tricky_log() -> str:
    """Lines before the first entry, multi-line entries written by the real writer (indented),
    unindented continuations, a boundary line without a readable header, long logger names,
    empty messages, CRLF line ends, a keyword inside a header, and no final newline."""
    rng = random.Random(3)
    start = dt.datetime(2025, 7, 1, 14, 0, 0)
    parts = ["stray output before logging started\n", "  second stray line\n"]
    loggers = ["WorkflowOrchestrator", "TaskDir_task_20250701_140000", "ddl_generation", "x" * 70,
               "name:with:colons", "SQLValidatorTraceback", "Résumé", "表生成器"]
    for index in range(400):
        when = start + dt.timedelta(seconds=index // 3)
        level = rng.choice(["INFO", "INFO", "DEBUG", "WARNING", "ERROR", "CRITICAL"])
        step = rng.choice([None, *STEPS])
        logger = rng.choice(loggers)
        message = rng.choice(["开始处理表: bss_company", "SQL验证失败: Column \"ÉTAT\" missing", "",
                              "Traceback in message", "    indented start", "ok", "sql验证失败 again"])
        if rng.random() < 0.15:
            message += "\nTraceback (most recent call last):\n  File \"x.py\", line 1\nValueError: 坏了"
        parts.append(format_entry(when, level, logger, message, step))
        roll = rng.random()
        if roll < 0.03:
            parts.append(f"{when:%Y-%m-%d %H:%M:%S} [no header here\n")
        elif roll < 0.06:
            parts.append("unindented continuation line\n")
        elif roll < 0.08:
            parts.append(f"{when:%Y-%m-%d %H:%M:%S} [INFO] CrLf: windows line\r\n")
    text = "".join(parts)
    return text.rstrip("\n")


@pytest.fixture
def tiny_segments(monkeypatch):
    monkeypatch.setattr(segments, "SEGMENT_BYTES", 4096)
    monkeypatch.setattr(tail, "BLOCK_BYTES", 256)


# ---- entries -------------------------------------------------------------------------------------

def test_entry_fields_and_step_attribution():
    entry = parse_entry(["2025-07-01 14:30:54 [INFO] ddl_generation.DDLGenerator: 开始处理表: bss_company"], 7)
    assert entry.to_dict() == {"timestamp": "2025-07-01 14:30:54", "level": "INFO", "logger": "DDLGenerator",
                               "step": "ddl_generation", "message": "开始处理表: bss_company", "line_number": 7}
    plain = parse_entry(["2025-07-01 14:30:52 [INFO] TaskDir_task_20250627_143052: 任务目录日志初始化完成"])
    assert (plain.step, plain.logger) == (None, "TaskDir_task_20250627_143052")
    dotted = parse_entry(["2025-07-01 14:30:52 [WARNING] urllib3.connectionpool: retry"])
    assert (dotted.step, dotted.logger) == (None, "urllib3.connectionpool")


def test_continuation_lines_lose_the_writers_indent():
    text = format_entry(dt.datetime(2025, 7, 1), "ERROR", "SQLValidator", "失败\n  File \"a.py\"\nboom", "sql_validation")
    entry = parse_entry(text.rstrip("\n").split("\n"))
    assert entry.message == "失败\n  File \"a.py\"\nboom"
    assert entry.step == "sql_validation" and entry.level == "ERROR"


def test_boundary_without_header_and_headless_lines():
    odd = parse_entry(["2025-07-01 14:30:54 [no header", "more"])
    assert (odd.timestamp, odd.level, odd.logger) == ("2025-07-01 14:30:54", None, None)
    assert odd.message == "[no header\nmore"
    stray = parse_entry(["printed by a library"])
    assert (stray.timestamp, stray.level, stray.message) == (None, None, "printed by a library")


# ---- tail (GET logs) -----------------------------------------------------------------------------

def test_tail_returns_the_last_entries_whole_and_in_order(tmp_path, tiny_segments):
    path = tmp_path / "data_pipeline.log"
    path.write_text(tricky_log(), encoding="utf-8")
    everything = brute_force_entries(path.read_text(encoding="utf-8"))
    without_lines = [{k: v for k, v in e.items() if k != "line_number"} for e in everything]
    for limit in (1, 7, 100, 1000):
        got = [e.to_dict(with_line_number=False) for e in read_last_entries(path, limit)]
        assert got == without_lines[-limit:]
    for level in ("ERROR", "CRITICAL", "DEBUG"):
        got = [e.to_dict(with_line_number=False) for e in read_last_entries(path, 25, level)]
        assert got == [e for e in without_lines if e["level"] == level][-25:]
        assert all(e["level"] == level for e in got)
    assert any("\n" in e.message for e in read_last_entries(path, 1000, "ERROR"))


def test_tail_of_missing_or_empty_log(tmp_path):
    assert read_last_entries(tmp_path / "missing.log", 100) == []
    (tmp_path / "empty.log").write_bytes(b"")
    assert read_last_entries(tmp_path / "empty.log", 100) == []


def test_tail_cost_does_not_depend_on_file_size(tmp_path, monkeypatch):
    """Reading the last 100 entries touches only the end of the file."""
    path = write_sample_log(tmp_path / "big.log", 50_000)
    reads = []
    original = open

    def counting_open(*args, **kwargs):
        handle = original(*args, **kwargs)
        real_read = handle.read

        def read(size=-1):
            data = real_read(size)
            reads.append(len(data))
            return data
        handle.read = read
        return handle

    monkeypatch.setattr(tail, "open", counting_open, raising=False)
    entries = read_last_entries(path, 100)
    assert len(entries) == 100
    assert 0 < sum(reads) <= 2 * tail.BLOCK_BYTES
    assert sum(reads) * 50 < path.stat().st_size


# ---- logs/query ----------------------------------------------------------------------------------

QUERIES = [
    {},
    {"level": "ERROR"},
    {"level": "info"},
    {"keyword": "sql验证失败"},
    {"keyword": "SQL验证"},
    {"keyword": "traceback"},
    {"keyword": "VALUEERROR: 坏了"},
    {"keyword": "ÉTAT"},
    {"keyword": "état"},
    {"keyword": "    indented"},
    {"keyword": "ddl_generation"},
    {"keyword": "no header"},
    {"keyword": "windows"},
    {"step_name": "sql_validation"},
    {"step_name": "ddl_generation", "level": "WARNING"},
    {"logger_name": "WorkflowOrchestrator"},
    {"logger_name": "sql_validation.name:with:colons"},
    {"logger_name": "x" * 70},
    {"logger_name": "表生成器", "keyword": "bss"},
    {"start_time": "2025-07-01T14:00:30", "end_time": "2025-07-01 14:01:10"},
    {"start_time": "2025-07-01T14:00:30.5"},
    {"end_time": "2025-07-01T06:01:00Z"},
    {"start_time": "2025-07-01T14:01:00", "keyword": "开始", "level": "INFO"},
    {"start_time": "2030-01-01T00:00:00"},
]


@pytest.mark.parametrize("filters", QUERIES, ids=lambda f: ",".join(f"{k}={v}"[:30] for k, v in f.items()) or "none")
def test_query_matches_brute_force(tmp_path, tiny_segments, filters):
    path = tmp_path / "data_pipeline.log"
    path.write_bytes(tricky_log().encode("utf-8"))
    entries = brute_force_entries(path.read_text(encoding="utf-8"))
    times = {k: parse_time(v) for k, v in filters.items() if k.endswith("_time")}
    for sort_by in ("timestamp", "level", "logger", "step", "line_number"):
        for sort_order in ("asc", "desc"):
            for page in (1, 3):
                query = LogQuery(page=page, page_size=20, sort_by=sort_by, sort_order=sort_order,
                                 **{**filters, **times})
                result = query_log(path, query)
                total, expected = brute_force_query(entries, query)
                assert result["pagination"]["total"] == total, (sort_by, sort_order)
                assert result["logs"] == expected, (sort_by, sort_order, page)


def test_query_pagination_block_and_file_info(tmp_path):
    path = write_sample_log(tmp_path / "data_pipeline.log", 1000)
    result = query_log(path, LogQuery(page=2, page_size=300, sort_order="asc"))
    assert result["pagination"] == {"page": 2, "page_size": 300, "total": 1000, "total_pages": 4,
                                    "has_next": True, "has_prev": True}
    assert [e["line_number"] for e in result["logs"]][:2] == [e["line_number"] for e in expected_entries(1000)][300:302]
    info = result["log_file_info"]
    assert info["exists"] is True and info["file_size"] == path.stat().st_size
    assert info["file_path"] == str(path) and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", info["last_modified"])
    assert re.fullmatch(r"\d+\.\d{3}s", result["query_time"])
    last = query_log(path, LogQuery(page=4, page_size=300))
    assert len(last["logs"]) == 100 and last["pagination"]["has_next"] is False
    beyond = query_log(path, LogQuery(page=5, page_size=300))
    assert beyond["logs"] == [] and beyond["pagination"]["total"] == 1000


def test_query_of_missing_log_is_empty(tmp_path):
    result = query_log(tmp_path / "nope" / "data_pipeline.log", LogQuery(keyword="x"))
    assert result["logs"] == [] and result["pagination"]["total"] == 0
    assert result["pagination"]["total_pages"] == 0 and result["log_file_info"]["exists"] is False
    (tmp_path / "empty.log").write_bytes(b"")
    assert query_log(tmp_path / "empty.log", LogQuery())["log_file_info"]["exists"] is True


def test_time_range_uses_binary_search_and_tolerates_small_disorder(tmp_path, tiny_segments):
    """Records of concurrent threads reach the file a little out of order: still exact."""
    start = dt.datetime(2025, 7, 1, 9, 0, 0)
    lines = []
    for index in range(3000):
        jitter = -1 if index % 7 == 0 else 0
        lines.append(format_entry(start + dt.timedelta(seconds=index // 2 + jitter), "INFO", "W", f"m{index}", None))
    path = tmp_path / "data_pipeline.log"
    path.write_text("".join(lines), encoding="utf-8")
    entries = brute_force_entries(path.read_text(encoding="utf-8"))
    query = LogQuery(start_time=dt.datetime(2025, 7, 1, 9, 10, 0), end_time=dt.datetime(2025, 7, 1, 9, 12, 0),
                     page_size=1000, sort_by="line_number")
    total, expected = brute_force_query(entries, query)
    result = query_log(path, query)
    assert result["pagination"]["total"] == total == sum(1 for i in range(3000) if 600 <= i // 2 - (i % 7 == 0) <= 720)
    assert result["logs"] == expected


@pytest.mark.parametrize("kwargs, param", [
    ({"page_size": 0}, "page_size"),
    ({"page_size": 1001}, "page_size"),
    ({"page": 0}, "page"),
    ({"page": 2000, "page_size": 100}, "page"),
    ({"sort_by": "message"}, "sort_by"),
    ({"sort_order": "up"}, "sort_order"),
    ({"step_name": "ddl"}, "step_name"),
    ({"keyword": "a\nb"}, "keyword"),
    ({"start_time": dt.datetime(2025, 1, 2), "end_time": dt.datetime(2025, 1, 1)}, "start_time"),
])
def test_query_parameters_are_validated(kwargs, param):
    with pytest.raises(ValidationError) as caught:
        LogQuery(**kwargs)
    assert param in caught.value.invalid_params


def test_sample_log_round_trip(tmp_path):
    path = write_sample_log(tmp_path / "data_pipeline.log", 2000)
    result = query_log(path, LogQuery(page_size=1000, sort_by="line_number", sort_order="asc"))
    assert result["logs"] == expected_entries(2000)[:1000]
