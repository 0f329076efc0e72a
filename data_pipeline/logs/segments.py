"""A task log as a sequence of memory-mapped segments of whole entries, located with numpy.

Scanning a 150 MB log line by line in Python takes seconds; comparing bytes in numpy over a
mapped file runs at memory speed, close to `grep`. Each segment (a few megabytes, cut at an entry
boundary) is mapped, searched, and dropped, so the process never holds more than one segment,
whatever the size of the file. Task logs are append-only: a log may grow or be deleted while it
is read (the mapping keeps the old inode), but is never truncated in place.
"""
from __future__ import annotations

import mmap
import os
from functools import cached_property
from typing import Iterator

import numpy as np

from data_pipeline.logs.entries import BOUNDARY_BYTES_RE, BOUNDARY_LENGTH

SEGMENT_BYTES = 4 * 1024 * 1024
_PROBE_BYTES = 8 * 1024
_BLOCK_BYTES = 256 * 1024
_BATCH = 4096  # entries per vectorised step: bounds the temporary arrays (< 1 MB)
_POWERS = 10 ** np.arange(13, -1, -1, dtype=np.int64)

# Byte offsets inside "YYYY-MM-DD HH:MM:SS [" holding digits, and those holding fixed characters.
DIGIT_OFFSETS = np.array([0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18])
_FIXED = ((4, ord("-")), (7, ord("-")), (10, ord(" ")), (13, ord(":")), (16, ord(":")), (19, ord(" ")), (20, ord("[")))


class Segment:
    """Whole entries of the file, mapped. Line and entry positions are found only when asked
    for: a segment where a keyword does not occur costs one pass to count its lines."""

    def __init__(self, offset: int, data: np.ndarray, first_line: int):
        self.offset = offset          # file offset of data[0]
        self.data = data              # the mapped bytes (uint8)
        self.first_line = first_line  # file line number of data[0]
        self.line_count = count_byte(data, 10)
        # The file starts with lines that are no entry: they form an entry with no timestamp.
        self.headless_start = offset == 0 and not BOUNDARY_BYTES_RE.match(bytes(data[:BOUNDARY_LENGTH]))

    @cached_property
    def line_starts(self) -> np.ndarray:
        starts = np.concatenate(([0], positions_of(self.data, 10) + 1))
        return starts[starts < len(self.data)]

    def all_entries(self) -> tuple[np.ndarray, np.ndarray]:
        """(start positions, line numbers) of every entry."""
        entry_lines = np.flatnonzero(boundary_mask(self.data, self.line_starts))
        if self.headless_start:
            entry_lines = np.concatenate(([0], entry_lines))
        return self.line_starts[entry_lines], self.first_line + entry_lines

    def entries_at(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(start position, line number, whether on the first line) of the entry holding each position."""
        line_starts = self.line_starts
        lines = np.searchsorted(line_starts, positions, side="right") - 1
        first_line = boundary_mask(self.data, line_starts[lines])
        pending = np.flatnonzero(~first_line)
        while len(pending):  # continuation lines: walk up to the entry's first line
            at_top = lines[pending] == 0
            lines[pending[~at_top]] -= 1
            pending = pending[~at_top]
            pending = pending[~boundary_mask(self.data, line_starts[lines[pending]])]
        return line_starts[lines], self.first_line + lines, first_line


def iter_segments(fd: int, begin: int, end: int, first_line: int) -> Iterator[Segment]:
    """Segments covering [begin, end); `begin` and `end` must be entry boundaries (or 0 / EOF)."""
    position, line, size = begin, first_line, SEGMENT_BYTES
    while position < end:
        length = min(size, end - position)
        data = _map(fd, position, length)
        if position + length < end:
            cut = _last_entry_start(data)
            if cut <= 0:
                size *= 2  # one entry longer than a segment: map more
                continue
            data = data[:cut]
        segment = Segment(position, data, line)
        position, line, size = position + len(data), line + segment.line_count, SEGMENT_BYTES
        del data  # the mapping is released once the consumer drops the segment too
        yield segment
        del segment


def _last_entry_start(data: np.ndarray) -> int:
    """Position of the last entry boundary after position 0, or -1."""
    tail_length = 1 << 16
    while True:
        tail_start = max(len(data) - tail_length, 0)
        tail = bytes(data[tail_start:])
        line_end = len(tail)
        while True:
            newline = tail.rfind(b"\n", 0, line_end)
            if newline < 0:
                break
            if tail_start + newline + 1 < len(data) and BOUNDARY_BYTES_RE.match(tail, newline + 1):
                return tail_start + newline + 1
            line_end = newline
        if tail_start == 0:
            return -1
        tail_length *= 16


def boundary_mask(data: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Which of `starts` begin an entry (a line starting "YYYY-MM-DD HH:MM:SS [")."""
    mask = starts + BOUNDARY_LENGTH <= len(data)
    candidates = starts[mask]
    keep = np.ones(len(candidates), dtype=bool)
    for offset, char in _FIXED:
        keep &= data[candidates + offset] == char
    shaped = candidates[keep]
    digits_ok = np.empty(len(shaped), dtype=bool)
    for first in range(0, len(shaped), _BATCH):  # batches keep the gathered index arrays small
        digits = data[shaped[first:first + _BATCH, None] + DIGIT_OFFSETS] - np.uint8(48)
        digits_ok[first:first + _BATCH] = (digits <= 9).all(axis=1)
    keep[keep] = digits_ok
    mask[mask] = keep
    return mask


def timestamps(data: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """The entries' times as int64 YYYYMMDDHHMMSS (ordered like the times)."""
    result = np.empty(len(starts), dtype=np.int64)
    for first in range(0, len(starts), _BATCH):
        digits = data[starts[first:first + _BATCH, None] + DIGIT_OFFSETS].astype(np.int64) - 48
        result[first:first + _BATCH] = digits @ _POWERS
    return result


def timestamp_number(text: str) -> int:
    """`YYYY-MM-DD HH:MM:SS` as the int64 `timestamps` gives."""
    return int("".join(char for char in text if char.isdigit()))


def count_lines(fd: int, end: int) -> int:
    """Number of line ends in the first `end` bytes of the file."""
    count = 0
    for position in range(0, end, SEGMENT_BYTES):
        count += count_byte(_map(fd, position, min(SEGMENT_BYTES, end - position)), 10)
    return count


def positions_of(data: np.ndarray, byte: int, alternative: int | None = None) -> np.ndarray:
    """Positions where the data holds `byte` (or `alternative`)."""
    found = [hits + start for start, hits in _blockwise(data, byte, alternative, np.flatnonzero) if len(hits)]
    return np.concatenate(found) if found else np.zeros(0, dtype=np.int64)


def count_byte(data: np.ndarray, byte: int) -> int:
    return sum(int(count) for _, count in _blockwise(data, byte, None, np.count_nonzero))


def _blockwise(data: np.ndarray, byte: int, alternative: int | None, reduce):
    """(block start, reduce(mask)) per block of the data. Comparing block by block into reused
    buffers keeps the temporaries small: large fresh arrays would cost page faults on every
    segment, and would stay resident in each server thread's malloc arena."""
    mask = np.empty(min(_BLOCK_BYTES, len(data)), dtype=bool)
    other = np.empty_like(mask) if alternative is not None else None
    for start in range(0, len(data), _BLOCK_BYTES):
        block = data[start:start + _BLOCK_BYTES]
        block_mask = mask[:len(block)]
        np.equal(block, byte, out=block_mask)
        if other is not None:
            block_other = other[:len(block)]
            np.equal(block, alternative, out=block_other)
            np.logical_or(block_mask, block_other, out=block_mask)
        yield start, reduce(block_mask)


def first_boundary_from(fd: int, position: int, end: int) -> tuple[int, str] | None:
    """(offset, timestamp) of the first entry starting at or after `position` and before `end`."""
    base = max(position - 1, 0)  # the byte before `position` tells whether a line starts there
    window = b""
    line_start: int | None = 0 if position == 0 else None
    while True:
        wanted = min(_PROBE_BYTES, end - base - len(window))
        complete = True
        if wanted > 0:
            data = os.pread(fd, wanted, base + len(window))
            window += data
            complete = len(data) < wanted or base + len(window) >= end
        if line_start is None:
            newline = window.find(b"\n")
            if newline < 0:
                if complete:
                    return None
                continue
            line_start = newline + 1
        while True:
            newline = window.find(b"\n", line_start)
            if newline < 0 and not complete:
                break
            if BOUNDARY_BYTES_RE.match(window, line_start):
                return base + line_start, window[line_start:line_start + 19].decode()
            if newline < 0:
                return None
            line_start = newline + 1
        window, base, line_start = window[line_start:], base + line_start, 0


def next_newline(data: np.ndarray, position: int) -> int:
    """Position of the first b"\\n" at or after `position`, or len(data)."""
    width = 256
    while position < len(data):
        found = np.flatnonzero(data[position:position + width] == 10)
        if len(found):
            return position + int(found[0])
        position += width
        width *= 4
    return len(data)


def _map(fd: int, position: int, length: int) -> np.ndarray:
    """Bytes [position, position + length) of the file, mapped read-only. The mapping is released
    when the last array viewing it is dropped."""
    aligned = position - position % mmap.ALLOCATIONGRANULARITY
    mapping = mmap.mmap(fd, position - aligned + length, offset=aligned, access=mmap.ACCESS_READ)
    return np.frombuffer(mapping, dtype=np.uint8)[position - aligned:]
