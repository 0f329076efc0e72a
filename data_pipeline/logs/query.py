"""The advanced log query (§5.2): filters, sorting and pagination over a task log, streamed.

Memory is bounded by page * page_size (the best entries so far) and one mapped segment, never by
the file. Speed comes from facts about the task log:
- times only grow down the file, so a time range becomes a byte range found by binary search,
  widened by a margin because records of concurrent threads can reach the file slightly out of
  order (every entry in the range is still checked exactly);
- a keyword is searched in the raw bytes of each segment, and only the entries around its hits
  are looked at;
- filters and sort keys are computed for all candidate entries of a segment at once (numpy), and
  only the entries of the page asked for are decoded.
"""
from __future__ import annotations

import heapq
import math
import os
import stat
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from data_pipeline.errors import ValidationError
from data_pipeline.logs.entries import (BOUNDARY_BYTES_RE, BOUNDARY_LENGTH, LEVEL_RANKS, LogEntry, canonical_time,
                                        message_text, parse_entry_bytes, shift_time)
from data_pipeline.logs.fields import HeaderFields, equals_at, find_literal, gather, header_fields
from data_pipeline.logs.segments import (Segment, count_lines, first_boundary_from, iter_segments, next_newline,
                                         timestamp_number, timestamps)
from data_pipeline.tasks.statuses import STEP_NAMES
from data_pipeline.logs.task_log import CONTINUATION_INDENT

SORT_FIELDS = ("timestamp", "level", "logger", "step", "line_number")
SORT_ORDERS = ("asc", "desc")
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
# How deep pagination may reach (page * page_size): the bound on the query's memory.
MAX_DEPTH = 100_000
# How far out of order (seconds) two records may reach the file; the binary search widens by it.
TIME_DISORDER_SECONDS = 60
INDENT = CONTINUATION_INDENT.encode()


@dataclass(frozen=True)
class LogQuery:
    page: int = 1
    page_size: int = DEFAULT_PAGE_SIZE
    level: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    keyword: str | None = None
    logger_name: str | None = None
    step_name: str | None = None
    sort_by: str = "timestamp"
    sort_order: str = "desc"

    def __post_init__(self):
        if not 1 <= self.page_size <= MAX_PAGE_SIZE:
            raise ValidationError(f"page_size 必须在 1 到 {MAX_PAGE_SIZE} 之间", invalid_params=["page_size"])
        if self.page < 1 or self.page * self.page_size > MAX_DEPTH:
            raise ValidationError(f"page 必须 >= 1，且 page * page_size 不超过 {MAX_DEPTH}", invalid_params=["page"])
        if self.sort_by not in SORT_FIELDS:
            raise ValidationError(f"sort_by 必须是 {', '.join(SORT_FIELDS)} 之一", invalid_params=["sort_by"])
        if self.sort_order not in SORT_ORDERS:
            raise ValidationError("sort_order 必须是 asc 或 desc", invalid_params=["sort_order"])
        if self.step_name is not None and self.step_name not in STEP_NAMES:
            raise ValidationError(f"step_name 必须是 {', '.join(STEP_NAMES)} 之一", invalid_params=["step_name"],
                                  error_code="INVALID_STEP_NAME")
        if self.keyword is not None and ("\n" in self.keyword or "\r" in self.keyword):
            raise ValidationError("keyword 不能包含换行", invalid_params=["keyword"])
        if self.start_time and self.end_time and self.start_time > self.end_time:
            raise ValidationError("start_time 不能晚于 end_time", invalid_params=["start_time", "end_time"])


def query_log(path: Path, query: LogQuery) -> dict:
    """The §5.2 answer: logs, pagination, log_file_info, query_time. A missing file gives an
    empty result with `exists: false`."""
    began = time.perf_counter()
    total, entries = 0, []
    info = {"exists": False, "file_path": str(path), "file_size": 0, "last_modified": None}
    try:
        fd = os.open(path, os.O_RDONLY)
    except (FileNotFoundError, NotADirectoryError):
        fd = None
    if fd is not None:
        try:
            status = os.fstat(fd)
            if stat.S_ISREG(status.st_mode):
                info.update(exists=True, file_size=status.st_size,
                            last_modified=datetime.fromtimestamp(status.st_mtime).isoformat(timespec="seconds"))
                total, rows = _Scan(fd, status.st_size, query).run()
                entries = [_read_entry(fd, status.st_size, *row) for row in rows[(query.page - 1) * query.page_size:]]
        finally:
            os.close(fd)
    total_pages = math.ceil(total / query.page_size)
    return {
        "logs": [entry.to_dict() for entry in entries],
        "pagination": {"page": query.page, "page_size": query.page_size, "total": total,
                       "total_pages": total_pages, "has_next": query.page < total_pages,
                       "has_prev": query.page > 1},
        "log_file_info": info,
        "query_time": f"{time.perf_counter() - began:.3f}s",
    }


def _read_entry(fd: int, size: int, line: int, offset: int) -> LogEntry:
    """The entry starting at `offset`: up to the next entry boundary or `size`."""
    block, data = 4096, b""
    while True:
        data = os.pread(fd, min(block, size - offset), offset)
        boundary = BOUNDARY_BYTES_RE.search(data, 1)
        if boundary or offset + len(data) >= size:
            return parse_entry_bytes(data[:boundary.start()] if boundary else data, line)
        block *= 4


class _Scan:
    """One pass over the relevant part of the file, keeping the count and the best rows."""

    def __init__(self, fd: int, size: int, query: LogQuery):
        self.fd, self.size, self.query = fd, size, query
        self.start_bound = canonical_time(query.start_time, round_up=True) if query.start_time else None
        self.end_bound = canonical_time(query.end_time) if query.end_time else None
        self.needle = self.folded_keyword = None
        if query.keyword:
            if all(char.isascii() or char.lower() == char.upper() for char in query.keyword):
                self.needle = query.keyword.encode()
            else:  # É, Ж: no byte-level lower-casing covers them; compare case-folded text
                self.folded_keyword = query.keyword.casefold()
        self.frequencies: np.ndarray | None = None
        self.best = _Best(query.page * query.page_size, query.sort_order == "desc", query.sort_by == "logger")
        self.total = 0

    def run(self) -> tuple[int, list[tuple[int, int]]]:
        begin, end = 0, self.size
        if self.start_bound:
            begin = self._first_entry_at_or_after(shift_time(self.start_bound, -TIME_DISORDER_SECONDS))
        if self.end_bound:
            end = self._first_entry_at_or_after(shift_time(self.end_bound, TIME_DISORDER_SECONDS + 1))
        if begin < end:
            first_line = count_lines(self.fd, begin) + 1
            for segment in iter_segments(self.fd, begin, end, first_line):
                self._scan_segment(segment)
                del segment  # before the next one is mapped
        return self.total, self.best.rows()

    def _first_entry_at_or_after(self, timestamp: str) -> int:
        """Byte offset of the first entry whose time is >= `timestamp` (binary search by offset)."""
        low, high = 0, self.size
        while low < high:
            middle = (low + high) // 2
            found = first_boundary_from(self.fd, middle, self.size)
            if found is None or found[1] >= timestamp:
                high = middle
            else:
                low = found[0] + 1
        found = first_boundary_from(self.fd, low, self.size)
        return found[0] if found else self.size

    def _scan_segment(self, segment: Segment) -> None:
        query, data = self.query, segment.data
        if self.needle:
            starts, lines = self._entries_with_keyword(segment)
        else:
            starts, lines = segment.all_entries()
        headless = (starts == 0) & segment.headless_start
        stamps = np.full(len(starts), -1, dtype=np.int64)
        stamps[~headless] = timestamps(data, starts[~headless])
        keep = np.ones(len(starts), dtype=bool)
        if self.start_bound:
            keep &= ~headless & (stamps >= timestamp_number(self.start_bound))
        if self.end_bound:
            keep &= ~headless & (stamps <= timestamp_number(self.end_bound))
        if query.level:  # a cheap first cut; header_fields confirms the rest of the header
            keep &= equals_at(data, starts + 21, query.level.upper().encode() + b"] ")
        starts, lines, stamps, headless = starts[keep], lines[keep], stamps[keep], headless[keep]
        fields = None
        if query.level or query.step_name or query.logger_name or query.sort_by in ("level", "step", "logger"):
            fields = header_fields(data, starts)
            fields.valid &= ~headless
            keep = self._header_filters(data, starts, fields)
            if self.folded_keyword:
                keep &= self._casefolded_keyword(segment, starts, fields, headless, keep)
            starts, lines, stamps, fields = starts[keep], lines[keep], stamps[keep], fields.select(keep)
        elif self.folded_keyword:
            keep = self._casefolded_keyword(segment, starts, header_fields(data, starts), headless,
                                            np.ones(len(starts), dtype=bool))
            starts, lines, stamps = starts[keep], lines[keep], stamps[keep]
        self.total += len(starts)
        if len(starts) == 0:
            return
        offsets = segment.offset + starts
        sort_by = query.sort_by
        if sort_by == "logger":
            names = [_logger_of(bytes(data[a:b])) if ok else b""
                     for a, b, ok in zip(fields.name_start, fields.name_end, fields.valid)]
            self.best.add_python(names, lines, offsets)
        elif sort_by == "timestamp":
            self.best.add(stamps, lines, offsets)
        elif sort_by == "line_number":
            self.best.add(lines, lines, offsets)
        elif sort_by == "level":
            self.best.add(_level_ranks(data, starts, fields), lines, offsets)
        else:
            self.best.add(_step_ids(data, fields), lines, offsets)

    def _entries_with_keyword(self, segment: Segment) -> tuple[np.ndarray, np.ndarray]:
        """(starts, line numbers) of the entries whose message contains the keyword (ASCII case ignored)."""
        data = segment.data
        if self.frequencies is None:
            self.frequencies = np.bincount(data[:1 << 16], minlength=256)  # a sample is enough to rank bytes
        hits = find_literal(data, self.needle, True, self.frequencies)
        if len(hits) == 0:
            return hits, hits
        starts, lines, on_first_line = segment.entries_at(hits)
        # Continuation lines are shown without the writer's indent: a hit starting inside it is no hit.
        hit_line_starts = segment.line_starts[np.searchsorted(segment.line_starts, hits, side="right") - 1]
        accepted = on_first_line | (hits - hit_line_starts >= len(INDENT)) | ~equals_at(data, hit_line_starts, INDENT)
        # A hit on an entry's first line counts only inside the message, not in the header.
        check = on_first_line & ~((starts == 0) & segment.headless_start)
        if check.any():
            checked, where = np.unique(starts[check], return_inverse=True)
            fields = header_fields(data, checked)
            message_start = np.where(fields.valid, fields.message_start, checked + 20)
            accepted[check] = hits[check] >= message_start[where]
        starts, first = np.unique(starts[accepted], return_index=True)
        return starts, lines[accepted][first]

    def _header_filters(self, data: np.ndarray, starts: np.ndarray, fields: HeaderFields) -> np.ndarray:
        query, keep = self.query, np.ones(len(starts), dtype=bool)
        if query.level:
            level = query.level.upper().encode() + b"] "
            keep &= fields.valid & (fields.level_end - starts - 21 == len(level) - 2) & equals_at(data, starts + 21, level)
        if query.step_name:
            keep &= _step_matches(data, fields, query.step_name.encode())
        if query.logger_name:
            keep &= _logger_matches(data, fields, query.logger_name.encode())
        return keep

    def _casefolded_keyword(self, segment, starts, fields, headless, keep) -> np.ndarray:
        data, result = segment.data, np.zeros(len(starts), dtype=bool)
        for index in np.flatnonzero(keep):
            start = int(starts[index])
            if headless[index]:
                message_start = start
            else:
                message_start = int(fields.message_start[index]) if fields.valid[index] else start + 20
            text = message_text(bytes(data[message_start:_entry_end(data, start)]))
            result[index] = self.folded_keyword in text.casefold()
        return result


def _entry_end(data: np.ndarray, start: int) -> int:
    """End of the entry starting at `start` within a segment (the next boundary, or the end)."""
    position = start
    while True:
        newline = next_newline(data, position)
        if newline >= len(data) or BOUNDARY_BYTES_RE.match(bytes(data[newline + 1:newline + 1 + BOUNDARY_LENGTH])):
            return min(newline + 1, len(data))
        position = newline + 1


def _name_length(fields: HeaderFields) -> np.ndarray:
    return fields.name_end - fields.name_start


def _step_matches(data: np.ndarray, fields: HeaderFields, step: bytes) -> np.ndarray:
    """Entries whose logger name is `step` or `step.<anything>`."""
    length = _name_length(fields)
    prefix = fields.valid & (length >= len(step)) & equals_at(data, fields.name_start, step)
    dot = gather(data, fields.name_start + len(step), 1)[:, 0] == ord(".")
    return prefix & ((length == len(step)) | dot)


def _logger_matches(data: np.ndarray, fields: HeaderFields, logger: bytes) -> np.ndarray:
    """Entries whose logger (without the step) or whose full logger name is `logger`."""
    length = _name_length(fields)
    matches = (length == len(logger)) & equals_at(data, fields.name_start, logger)
    for step in STEP_NAMES:
        full = step.encode() + b"." + logger
        matches |= (length == len(full)) & equals_at(data, fields.name_start, full)
    return fields.valid & matches


def _level_ranks(data: np.ndarray, starts: np.ndarray, fields: HeaderFields) -> np.ndarray:
    ranks = np.zeros(len(starts), dtype=np.int64)
    level_length = fields.level_end - starts - 21
    for name, rank in LEVEL_RANKS.items():
        ranks[fields.valid & (level_length == len(name)) & equals_at(data, starts + 21, name.encode())] = rank
    return ranks


def _step_ids(data: np.ndarray, fields: HeaderFields) -> np.ndarray:
    """0 for entries of no step, else 1 + the step's position (which is also alphabetical)."""
    ids = np.zeros(len(fields.valid), dtype=np.int64)
    for position, step in enumerate(STEP_NAMES):
        ids[_step_matches(data, fields, step.encode())] = position + 1
    return ids


def _logger_of(name: bytes) -> bytes:
    head, _, rest = name.partition(b".")
    return rest if rest and head.decode("utf-8", "replace") in STEP_NAMES else name


class _Best:
    """The `size` best rows by (primary key, line number), ascending or descending."""

    def __init__(self, size: int, descending: bool, python_keys: bool):
        self.size, self.descending = size, descending
        self.arrays = [np.zeros(0, dtype=np.int64) for _ in range(3)]  # primary, line, offset
        self.python_rows: list[tuple] | None = [] if python_keys else None

    def add(self, primary: np.ndarray, lines: np.ndarray, offsets: np.ndarray) -> None:
        arrays = [np.concatenate((old, new)) for old, new in zip(self.arrays, (primary, lines, offsets))]
        order = np.lexsort((arrays[1], arrays[0]))
        order = order[::-1][:self.size] if self.descending else order[:self.size]
        self.arrays = [array[order] for array in arrays]

    def add_python(self, primary: list, lines: np.ndarray, offsets: np.ndarray) -> None:
        rows = self.python_rows + list(zip(primary, lines.tolist(), offsets.tolist()))
        pick = heapq.nlargest if self.descending else heapq.nsmallest
        self.python_rows = pick(self.size, rows, key=lambda row: (row[0], row[1]))

    def rows(self) -> list[tuple[int, int]]:
        """(line, offset) of the best rows, best first."""
        if self.python_rows is not None:
            return [row[1:] for row in self.python_rows]
        return list(zip(self.arrays[1].tolist(), self.arrays[2].tolist()))
