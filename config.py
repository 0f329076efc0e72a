"""Every setting of the service, read once from the environment (and an optional `.env`).

`Settings.from_env()` is the only reader of the environment; everything else receives a
`Settings` object, so a test can build one with its own values. Relative paths resolve against
the project root, never the current directory.
"""
from __future__ import annotations

import base64
import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Mapping

PROJECT_ROOT = Path(__file__).resolve().parent

EMBEDDING_PROVIDERS = ("hash", "local", "openai")
EXECUTORS = ("local", "celery")
# Runs at a time on the local executor unless DATA_PIPELINE_MAX_RUNNING says otherwise.
DEFAULT_MAX_RUNNING = max(2, os.cpu_count() or 2)
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class ConfigError(ValueError):
    """A setting has a value the service cannot run with; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8084
    db_url: str | None = None
    embedded_pg_dir: Path = PROJECT_ROOT / "data" / "pg"
    embedded_pg_keep_running: bool = False
    default_db_connection: str | None = None
    training_data_dir: Path = PROJECT_ROOT / "data_pipeline" / "training_data"
    log_dir: Path = PROJECT_ROOT / "logs"
    log_level: str = "INFO"
    flask_log_level: str = "INFO"
    api_key: str | None = None
    allowed_hosts: tuple[str, ...] = ()
    secret_key: str | None = None
    allowed_db_hosts: tuple[str, ...] = ()
    db_tools_workers: int = 4
    db_tools_queue: int = 4
    db_tools_timeout_seconds: float = 120.0
    max_content_length: int = 12 * 1024 * 1024

    llm_base_url: str | None = None
    llm_api_key: str | None = None
    llm_model: str | None = None
    llm_concurrency: int = 4
    llm_timeout: float = 120.0
    llm_max_retries: int = 3
    llm_max_output_tokens: int = 4096
    llm_step_timeout: float = 1800.0
    llm_reasoning_tokens: int = 0

    embedding_provider: str = "hash"
    embedding_base_url: str | None = None
    embedding_api_key: str | None = None
    embedding_model: str | None = None
    embedding_dimensions: int | None = None
    embedding_batch_size: int = 64

    qa_theme_count: int = 5
    qa_pairs_per_theme: int = 10
    sql_validation_concurrency: int = 8
    sql_statement_timeout_ms: int = 30_000
    sql_explain_timeout_ms: int = 2_000
    sql_repair_rounds: int = 2
    # The execution check of sql_validation (after EXPLAIN): its own timeout and row limit.
    sql_execution_timeout_ms: int = 5_000
    sql_execution_row_limit: int = 1_000
    # More bookkeeping column names or fnmatch patterns (beyond last_update, updated_at, ...).
    bookkeeping_columns: tuple[str, ...] = ()

    heartbeat_seconds: float = 2.0
    heartbeat_timeout_seconds: float = 30.0
    cancel_grace_seconds: float = 5.0
    max_running: int = DEFAULT_MAX_RUNNING
    executor: str = "local"
    broker_url: str | None = None
    step_modules: tuple[str, ...] = ()
    mask_columns: tuple[str, ...] = ()

    @property
    def llm_configured(self) -> bool:
        return bool(self.llm_base_url and self.llm_model)

    @property
    def uses_embedded_pg(self) -> bool:
        return self.db_url is None

    @property
    def secret_key_file(self) -> Path:
        """Where the key that encrypts stored passwords is kept when DATA_PIPELINE_SECRET_KEY is unset:
        the data directory (the embedded server's parent directory, `data/` by default)."""
        return self.embedded_pg_dir.parent / "secret.key"

    def to_env(self) -> dict[str, str]:
        """These settings as environment variables, so a subprocess reads the same values."""
        env = {}
        for name, (variable, kind) in _VARIABLES.items():
            value = getattr(self, name)
            if value is None:
                continue
            env[variable] = _to_text(value, kind)
        return env

    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in a response, a log or a file."""
        from urllib.parse import urlsplit

        broker_password = urlsplit(self.broker_url).password if self.broker_url else None
        return tuple(s for s in (self.api_key, self.llm_api_key, self.embedding_api_key, broker_password,
                                     self.secret_key) if s)

    def with_overrides(self, **changes) -> "Settings":
        return replace(self, **changes).validated()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, dotenv_path: Path | None = None) -> "Settings":
        """Build settings from `env` (default: os.environ) over the values in `.env`."""
        values: dict[str, str] = {}
        dotenv_file = dotenv_path or PROJECT_ROOT / ".env"
        if dotenv_file.is_file():
            from dotenv import dotenv_values

            values.update({k: v for k, v in dotenv_values(dotenv_file).items() if v is not None})
        values.update(os.environ if env is None else env)

        kwargs: dict[str, object] = {}
        for name, (variable, kind) in _VARIABLES.items():
            raw = values.get(variable)
            if raw is None or raw.strip() == "":
                continue
            kwargs[name] = _convert(variable, raw.strip(), kind)
        return cls(**kwargs).validated()

    def validated(self) -> "Settings":
        for name, (variable, kind) in _VARIABLES.items():
            value = getattr(self, name)
            if kind in ("int", "float", "optional_int") and value is not None and value <= 0:
                raise ConfigError(f"{variable} must be a positive number, got {value!r}")
            if kind == "count" and value < 0:
                raise ConfigError(f"{variable} must be zero or more, got {value!r}")
        if not 0 < self.port < 65536:
            raise ConfigError(f"DATA_PIPELINE_PORT must be between 1 and 65535, got {self.port}")
        if self.embedding_provider not in EMBEDDING_PROVIDERS:
            raise ConfigError(
                f"EMBEDDING_PROVIDER must be one of {', '.join(EMBEDDING_PROVIDERS)}, "
                f"got {self.embedding_provider!r}"
            )
        if self.embedding_provider == "openai" and not (self.embedding_base_url and self.embedding_model):
            raise ConfigError("EMBEDDING_PROVIDER=openai needs EMBEDDING_BASE_URL and EMBEDDING_MODEL")
        for level_name, variable in (("log_level", "DATA_PIPELINE_LOG_LEVEL"), ("flask_log_level", "FLASK_LOG_LEVEL")):
            if getattr(self, level_name) not in LOG_LEVELS:
                raise ConfigError(f"{variable} must be one of {', '.join(LOG_LEVELS)}")
        for url_name, variable in (("db_url", "DATA_PIPELINE_DB_URL"),
                                   ("default_db_connection", "DATA_PIPELINE_DEFAULT_DB_CONNECTION")):
            url = getattr(self, url_name)
            if url is not None and not url.startswith(("postgresql://", "postgres://")):
                raise ConfigError(f"{variable} must be a postgresql:// URL")
        if self.secret_key is not None and not _is_fernet_key(self.secret_key):
            raise ConfigError("DATA_PIPELINE_SECRET_KEY must be a Fernet key (32 url-safe base64-encoded bytes), e.g. "
                              "from: python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'")
        if self.executor not in EXECUTORS:
            raise ConfigError(f"DATA_PIPELINE_EXECUTOR must be one of {', '.join(EXECUTORS)}, got {self.executor!r}")
        if self.executor == "celery" and not self.broker_url:
            raise ConfigError("DATA_PIPELINE_EXECUTOR=celery needs DATA_PIPELINE_BROKER_URL (e.g. redis://host:6379/0)")
        if bool(self.llm_base_url) != bool(self.llm_model):
            raise ConfigError("LLM_BASE_URL and LLM_MODEL must be set together (or neither, for the offline generator)")
        return self


# field name -> (environment variable, kind)
_VARIABLES: dict[str, tuple[str, str]] = {
    "host": ("DATA_PIPELINE_HOST", "str"),
    "port": ("DATA_PIPELINE_PORT", "int"),
    "db_url": ("DATA_PIPELINE_DB_URL", "str"),
    "embedded_pg_dir": ("DATA_PIPELINE_EMBEDDED_PG_DIR", "path"),
    "embedded_pg_keep_running": ("DATA_PIPELINE_EMBEDDED_PG_KEEP_RUNNING", "bool"),
    "default_db_connection": ("DATA_PIPELINE_DEFAULT_DB_CONNECTION", "str"),
    "training_data_dir": ("DATA_PIPELINE_TRAINING_DATA_DIR", "path"),
    "log_dir": ("DATA_PIPELINE_LOG_DIR", "path"),
    "log_level": ("DATA_PIPELINE_LOG_LEVEL", "level"),
    "flask_log_level": ("FLASK_LOG_LEVEL", "level"),
    "api_key": ("DATA_PIPELINE_API_KEY", "str"),
    "allowed_hosts": ("DATA_PIPELINE_ALLOWED_HOSTS", "list"),
    "secret_key": ("DATA_PIPELINE_SECRET_KEY", "str"),
    "allowed_db_hosts": ("DATA_PIPELINE_ALLOWED_DB_HOSTS", "list"),
    "db_tools_workers": ("DATA_PIPELINE_DB_TOOLS_WORKERS", "int"),
    "db_tools_queue": ("DATA_PIPELINE_DB_TOOLS_QUEUE", "count"),
    "db_tools_timeout_seconds": ("DATA_PIPELINE_DB_TOOLS_TIMEOUT_SECONDS", "float"),
    "max_content_length": ("DATA_PIPELINE_MAX_CONTENT_LENGTH", "int"),
    "llm_base_url": ("LLM_BASE_URL", "str"),
    "llm_api_key": ("LLM_API_KEY", "str"),
    "llm_model": ("LLM_MODEL", "str"),
    "llm_concurrency": ("LLM_CONCURRENCY", "int"),
    "llm_timeout": ("LLM_TIMEOUT", "float"),
    "llm_max_retries": ("LLM_MAX_RETRIES", "count"),
    "llm_max_output_tokens": ("LLM_MAX_OUTPUT_TOKENS", "int"),
    "llm_step_timeout": ("LLM_STEP_TIMEOUT", "float"),
    "llm_reasoning_tokens": ("LLM_REASONING_TOKENS", "count"),
    "embedding_provider": ("EMBEDDING_PROVIDER", "lower"),
    "embedding_base_url": ("EMBEDDING_BASE_URL", "str"),
    "embedding_api_key": ("EMBEDDING_API_KEY", "str"),
    "embedding_model": ("EMBEDDING_MODEL", "str"),
    "embedding_dimensions": ("EMBEDDING_DIMENSIONS", "optional_int"),
    "embedding_batch_size": ("EMBEDDING_BATCH_SIZE", "int"),
    "qa_theme_count": ("DATA_PIPELINE_QA_THEMES", "int"),
    "qa_pairs_per_theme": ("DATA_PIPELINE_QA_PAIRS_PER_THEME", "int"),
    "sql_validation_concurrency": ("DATA_PIPELINE_SQL_VALIDATION_CONCURRENCY", "int"),
    "sql_statement_timeout_ms": ("DATA_PIPELINE_SQL_STATEMENT_TIMEOUT_MS", "int"),
    "sql_explain_timeout_ms": ("DATA_PIPELINE_SQL_EXPLAIN_TIMEOUT_MS", "int"),
    "sql_repair_rounds": ("DATA_PIPELINE_SQL_REPAIR_ROUNDS", "count"),
    "sql_execution_timeout_ms": ("DATA_PIPELINE_SQL_EXECUTION_TIMEOUT_MS", "int"),
    "sql_execution_row_limit": ("DATA_PIPELINE_SQL_EXECUTION_ROW_LIMIT", "int"),
    "bookkeeping_columns": ("DATA_PIPELINE_BOOKKEEPING_COLUMNS", "list"),
    "heartbeat_seconds": ("DATA_PIPELINE_HEARTBEAT_SECONDS", "float"),
    "heartbeat_timeout_seconds": ("DATA_PIPELINE_HEARTBEAT_TIMEOUT_SECONDS", "float"),
    "cancel_grace_seconds": ("DATA_PIPELINE_CANCEL_GRACE_SECONDS", "float"),
    "max_running": ("DATA_PIPELINE_MAX_RUNNING", "int"),
    "executor": ("DATA_PIPELINE_EXECUTOR", "lower"),
    "broker_url": ("DATA_PIPELINE_BROKER_URL", "str"),
    "step_modules": ("DATA_PIPELINE_STEP_MODULES", "list"),
    "mask_columns": ("DATA_PIPELINE_MASK_COLUMNS", "list"),
}

assert set(_VARIABLES) == {f.name for f in fields(Settings)}, "every setting needs an environment variable"


def _is_fernet_key(key: str) -> bool:
    try:
        return len(base64.urlsafe_b64decode(key.encode("ascii"))) == 32
    except (ValueError, UnicodeEncodeError):
        return False


def _to_text(value, kind: str) -> str:
    """A setting's value as its environment variable writes it (the inverse of `_convert`)."""
    if kind == "list":
        return ",".join(value)
    if kind == "bool":
        return "1" if value else "0"
    return str(value)


def _convert(variable: str, raw: str, kind: str):
    try:
        if kind in ("int", "optional_int", "count"):
            return int(raw)
        if kind == "float":
            return float(raw)
    except ValueError:
        raise ConfigError(f"{variable} must be a number, got {raw!r}") from None
    if kind == "path":
        path = Path(raw).expanduser()
        return path if path.is_absolute() else PROJECT_ROOT / path
    if kind == "level":
        return raw.upper()
    if kind == "lower":
        return raw.lower()
    if kind == "list":
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    if kind == "bool":
        if raw.strip().lower() not in _BOOLEANS:
            raise ConfigError(f"{variable} must be one of {', '.join(_BOOLEANS)}, got {raw[:40]!r}")
        return _BOOLEANS[raw.strip().lower()]
    return raw


_BOOLEANS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False,
             "": False}

