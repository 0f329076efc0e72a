"""The last entries of a task log, read backwards from the end of the file.

The cost depends on how far back the wanted entries lie, not on the size of the file: with no
level filter, reading `limit` entries touches only the last few blocks of even a huge log.
"""
from __future__ import annotations

from pathlib import Path

from data_pipeline.logs.entries import BOUNDARY_BYTES_RE, LogEntry, parse_entry_bytes

BLOCK_BYTES = 64 * 1024
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def read_last_entries(path: Path, limit: int = DEFAULT_LIMIT, level: str | None = None) -> list[LogEntry]:
    """Up to `limit` last entries (of exactly `level`, if given), oldest first; [] if no file."""
    if limit <= 0:
        return []
    wanted_level = level.upper() if level else None
    level_marker = f" [{wanted_level}] ".encode() if wanted_level else None
    newest_first: list[LogEntry] = []
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        return []
    with handle:
        position = handle.seek(0, 2)
        # Bytes after `position` not yet turned into entries: the lines of the entry whose header
        # lies further up, and (at the start) possibly a partial first line of the block.
        carried = b""
        while position > 0 and len(newest_first) < limit:
            size = min(BLOCK_BYTES, position)
            position -= size
            handle.seek(position)
            data = handle.read(size) + carried
            # Entries starting at line starts inside `data`; the first line is whole only at the file start.
            first_line_start = 0 if position == 0 else data.find(b"\n") + 1
            if first_line_start == 0 and position > 0:
                carried = data  # one line longer than the block: keep reading
                continue
            starts = [m.start() for m in BOUNDARY_BYTES_RE.finditer(data, first_line_start)]
            if position == 0 and (not starts or starts[0] != 0) and data.strip():
                starts.insert(0, 0)  # lines before the first header form an entry of their own
            if not starts:
                carried = data
                continue
            ends = starts[1:] + [len(data)]
            if level_marker is None or level_marker in data:
                for start, end in zip(reversed(starts), reversed(ends)):
                    entry = parse_entry_bytes(data[start:end])
                    if wanted_level is None or entry.level == wanted_level:
                        newest_first.append(entry)
                        if len(newest_first) == limit:
                            break
            carried = data[:starts[0]]
    newest_first.reverse()
    return newest_first
