"""Task log entries: the format the executor writes, and how one entry is read back.

One entry per record, `YYYY-MM-DD HH:MM:SS [LEVEL] LoggerName: message`; lines that do not start
like that (tracebacks, multi-line messages, indented by the writer) continue the entry above. The executor prefixes the
logger of a step's records with the step (`ddl_generation.DDLGenerator`), so every entry can be
attributed to its step exactly.

Timestamps stay strings in the fixed 19-character form: that form sorts like the times it
denotes, so filters convert their bounds to it once (`canonical_time`) instead of parsing a
million timestamps.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from data_pipeline.tasks.statuses import STEP_NAMES
from data_pipeline.logs.task_log import CONTINUATION_INDENT

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
# An entry starts at every line that begins with a timestamp and " [".
BOUNDARY_LENGTH = 21
_BOUNDARY = r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} \["
BOUNDARY_RE = re.compile(_BOUNDARY)
BOUNDARY_BYTES_RE = re.compile(b"^" + _BOUNDARY.encode(), re.MULTILINE)
# Its fields: `[LEVEL] name: ` (the name has no whitespace; the message may be empty). Whitespace
# is ASCII whitespace here, as in the byte-level scanner (data_pipeline.logs.fields).
_FIELDS = r"([0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}) \[([A-Za-z]+)\] ([^ \t\n\r\f\v]+?):(?: |$)"
HEADER_RE = re.compile(_FIELDS)
HEADER_BYTES_RE = re.compile(_FIELDS.encode())

LEVEL_RANKS = {"DEBUG": 10, "INFO": 20, "WARN": 30, "WARNING": 30, "ERROR": 40, "FATAL": 50, "CRITICAL": 50}


@dataclass(frozen=True, slots=True)
class LogEntry:
    timestamp: str | None
    level: str | None
    logger: str | None
    step: str | None
    message: str
    line_number: int | None = None

    def to_dict(self, *, with_line_number: bool = True) -> dict:
        data = {"timestamp": self.timestamp, "level": self.level, "logger": self.logger,
                "step": self.step, "message": self.message}
        if with_line_number:
            data["line_number"] = self.line_number
        return data


def split_logger(name: str) -> tuple[str | None, str]:
    """(step, logger) of a logger name: `ddl_generation.DDLGenerator` -> (ddl_generation, DDLGenerator)."""
    head, dot, rest = name.partition(".")
    if head in STEP_NAMES:
        return head, rest or name
    return None, name


def parse_entry(lines: list[str], line_number: int | None = None) -> LogEntry:
    """The entry made of a first line and its continuation lines (all without line ends).

    A first line with a timestamp but no readable `[LEVEL] name:` keeps its timestamp, with no
    level or logger; lines before the first entry of a file make an entry with neither."""
    first = lines[0]
    match = HEADER_RE.match(first)
    if match:
        step, logger = split_logger(match.group(3))
        timestamp, level, text = match.group(1), match.group(2), first[match.end():]
    elif BOUNDARY_RE.match(first):
        timestamp, level, step, logger, text = first[:19], None, None, None, first[BOUNDARY_LENGTH - 1:]
    else:
        timestamp, level, step, logger, text = None, None, None, None, first
    message = text if len(lines) == 1 else "\n".join([text, *(continuation(line) for line in lines[1:])])
    return LogEntry(timestamp, level, logger, step, message, line_number)


def continuation(line: str) -> str:
    """A continuation line as the message had it: the writer indents them (see task_log)."""
    return line[len(CONTINUATION_INDENT):] if line.startswith(CONTINUATION_INDENT) else line


def message_text(raw: bytes) -> str:
    """The message from its raw bytes (from the message start to the end of the entry)."""
    lines = raw.decode("utf-8", "replace").split("\n")
    if len(lines) > 1 and lines[-1] == "":
        lines.pop()
    lines = [line.removesuffix("\r") for line in lines]
    return "\n".join([lines[0], *(continuation(line) for line in lines[1:])])


def parse_entry_bytes(data: bytes, line_number: int | None = None) -> LogEntry:
    """`parse_entry` over the raw bytes of one entry (undecodable bytes replaced)."""
    text = data.decode("utf-8", errors="replace")
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return parse_entry([line.removesuffix("\r") for line in lines] or [""], line_number)


def canonical_time(moment: datetime, *, round_up: bool = False) -> str:
    """The log's timestamp form of `moment`; log times have whole seconds, so a lower bound with a
    fraction rounds up (14:30:00.5 admits 14:30:01, not 14:30:00) and an upper bound rounds down."""
    if moment.tzinfo is not None:  # log times are server local time
        moment = moment.astimezone().replace(tzinfo=None)
    if round_up and moment.microsecond:
        moment = moment + timedelta(seconds=1)
    return moment.replace(microsecond=0).strftime(TIME_FORMAT)


def shift_time(timestamp: str, seconds: int) -> str:
    return (datetime.strptime(timestamp, TIME_FORMAT) + timedelta(seconds=seconds)).strftime(TIME_FORMAT)
