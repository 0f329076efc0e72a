"""API system logs (guide §7.2, §7.3): logs/app.log and logs/data_pipeline.log, rotating.

app.log takes every record of the API process at FLASK_LOG_LEVEL, including one access line per
request; data_pipeline.log takes the pipeline's own components at DATA_PIPELINE_LOG_LEVEL. Both
pass through a scrubber, so configured secrets never reach a file.
"""
from __future__ import annotations

import logging
import sys
from logging.handlers import RotatingFileHandler

from config import Settings
from data_pipeline.db.connection import password_of
from data_pipeline.logs.task_log import DATE_FORMAT, SecretScrubber

FORMAT = "%(asctime)s [%(levelname)s] %(name)s: %(message)s"
MAX_BYTES = 10 * 1024 * 1024
BACKUPS = 5
_HTTP_LOGGERS = ("unified_api", "waitress", "werkzeug")


class _NotHttp(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.startswith(_HTTP_LOGGERS)


def configure_logging(settings: Settings) -> None:
    """(Re)configure the process's log handlers; calling it again replaces the previous ones."""
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "data_pipeline_handler", False)]:
        root.removeHandler(handler)
        handler.close()
    secrets = (*settings.secrets(), password_of(settings.db_url or ""), password_of(settings.default_db_connection or ""))
    scrubber = SecretScrubber(secrets)
    formatter = logging.Formatter(FORMAT, DATE_FORMAT)
    app_handler = RotatingFileHandler(settings.log_dir / "app.log", maxBytes=MAX_BYTES, backupCount=BACKUPS,
                                      encoding="utf-8")
    app_handler.setLevel(settings.flask_log_level)
    pipeline_handler = RotatingFileHandler(settings.log_dir / "data_pipeline.log", maxBytes=MAX_BYTES,
                                           backupCount=BACKUPS, encoding="utf-8")
    pipeline_handler.setLevel(settings.log_level)
    pipeline_handler.addFilter(_NotHttp())
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.WARNING)
    for handler in (app_handler, pipeline_handler, console):
        handler.setFormatter(formatter)
        handler.addFilter(scrubber)
        handler.data_pipeline_handler = True
        root.addHandler(handler)
    root.setLevel(min(logging.getLevelName(settings.log_level), logging.getLevelName(settings.flask_log_level)))
