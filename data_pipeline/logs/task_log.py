"""Writing the task log `<task dir>/data_pipeline.log`.

One entry per record: `YYYY-MM-DD HH:MM:SS [LEVEL] LoggerName: message`. While a step runs, the
logger name is prefixed with the step (`ddl_generation.DDLGenerator`), so every entry's step can
be read back from the entry alone — exact `step_name` filtering, even from the end of the file.
Continuation lines (tracebacks, multi-line messages) are indented, so no text inside a message
can ever pass for the start of an entry.
"""
from __future__ import annotations

import datetime as dt
import logging
import sys
from pathlib import Path

from data_pipeline.tasks.directory import TASK_LOG_FILE

DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
CONTINUATION_INDENT = "    "

_current_step: str | None = None


def set_current_step(step_name: str | None) -> None:
    """The step whose records follow (steps run one at a time in an executor)."""
    global _current_step
    _current_step = step_name


def format_entry(when: dt.datetime, level: str, logger_name: str, message: str, step: str | None) -> str:
    name = f"{step}.{logger_name}" if step else logger_name
    body = message.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\n" + CONTINUATION_INDENT)
    return f"{when:{DATE_FORMAT}} [{level}] {name}: {body}\n"


class SecretScrubber(logging.Filter):
    """Replaces known secrets in a record's final message with ***."""

    def __init__(self, secrets=()):
        super().__init__()
        self.secrets = sorted({s for s in secrets if s and len(s) >= 3}, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = self.scrub(record.getMessage())
            record.msg, record.args = message, None
        return True


class TaskLogFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            message = f"{message}\n{self.formatException(record.exc_info).rstrip()}"
        when = dt.datetime.fromtimestamp(record.created)
        return format_entry(when, record.levelname, record.name, message, _current_step).rstrip("\n")


def attach_task_log(directory: Path, level: int, scrubber: SecretScrubber) -> None:
    """Send every record of this process to the task log, and a plain copy to stderr (which the
    executor's output file keeps); both scrubbed of secrets."""
    task_handler = logging.FileHandler(directory / TASK_LOG_FILE, encoding="utf-8")
    task_handler.setFormatter(TaskLogFormatter())
    stderr_handler = logging.StreamHandler(sys.stderr)
    stderr_handler.setFormatter(logging.Formatter("%(asctime)s [%(levelname)s] %(name)s: %(message)s"))
    root = logging.getLogger()
    for handler in (task_handler, stderr_handler):
        handler.addFilter(scrubber)
        handler.setLevel(level)
        root.addHandler(handler)
    root.setLevel(level)


def append_entry(directory: Path, level: str, logger_name: str, message: str, step: str | None = None) -> None:
    """Append one entry from outside the executor (the API settling or cancelling a run)."""
    if not directory.is_dir():
        return
    with open(directory / TASK_LOG_FILE, "a", encoding="utf-8") as handle:
        handle.write(format_entry(dt.datetime.now(), level, logger_name, message, step))
