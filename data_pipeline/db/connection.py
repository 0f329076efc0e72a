"""The one module that opens connections to business databases (psycopg 3).

Connection strings carry passwords: `mask_url` is what any response, log or file may show, and
every error message that leaves this module is scrubbed of the password first.

A caller's `db_connection` may name the server (host, port, user, password, database) and only the
libpq options in ALLOWED_OPTIONS; anything else (`passfile`, `sslkey`, `service`, other `options`)
could make the service read its own files or send its own credentials, and is refused by
`validate_url`. A business connection never reads ~/.pgpass, PGPASSFILE or the service's own PG*
environment, and always runs with a statement timeout and TCP keepalives (`connection_params`).
"""
from __future__ import annotations

import logging
import os
import re
from contextlib import contextmanager
from typing import Iterator
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import pq
from psycopg.conninfo import conninfo_to_dict

from data_pipeline.errors import ConnectionNotAllowedError, DatabaseError, ValidationError

CONNECT_TIMEOUT_SECONDS = 5
MAX_CONNECT_TIMEOUT_SECONDS = 30
STATEMENT_TIMEOUT_MS = 30_000
# After connecting: a server that stops acknowledging (network gone) breaks the connection.
KEEPALIVES = {"keepalives": "1", "keepalives_idle": "10", "keepalives_interval": "5", "keepalives_count": "3",
              "tcp_user_timeout": "30000"}
_SCHEMES = ("postgresql", "postgres")
_SECRET_QUERY_KEYS = {"password", "sslpassword"}
# The parts of the address, which libpq also reads from the query string (`?host=/socket/dir`).
ADDRESS_KEYS = ("host", "port", "dbname", "user", "password")
ALLOWED_OPTIONS = ("sslmode", "connect_timeout", "application_name", "target_session_attrs", "options")
_SEARCH_PATH = re.compile(r"-c\s*search_path\s*=\s*([\w$,.\"]+)")
# A path that cannot exist (/dev/null is not a directory): libpq finds no password file there.
NO_PASSWORD_FILE = os.path.join(os.devnull, "pgpass")
# Read by libpq from the environment whatever the connection says; removed at start (isolate_environment).
_SERVICE_VARIABLES = ("PGSERVICE", "PGSERVICEFILE", "PGSYSCONFDIR")

logger = logging.getLogger("BusinessDatabase")


def _invalid(param: str, details: str) -> ValidationError:
    return ValidationError(f"参数 {param} {details}", invalid_params=[param], error_code="INVALID_DB_CONNECTION")


def _check_parameter(key: str, param: str) -> None:
    if key not in ADDRESS_KEYS and key not in ALLOWED_OPTIONS:
        raise _invalid(param, f"不允许的连接参数: {key[:64]}（允许: {', '.join(ALLOWED_OPTIONS)}）")


def validate_url(url: object, param: str = "db_connection") -> str:
    """A usable postgresql:// URL with only allowed parameters, or a ValidationError naming `param`."""
    if not isinstance(url, str) or not url.strip():
        raise ValidationError(f"参数 {param} 必须是非空字符串", invalid_params=[param])
    url = url.strip()
    if url.split("://", 1)[0] not in _SCHEMES or "://" not in url:
        raise ValidationError(f"参数 {param} 必须是 postgresql:// 连接字符串", invalid_params=[param])
    if "#" in url:
        # libpq knows no fragment: what follows "#" is still read as parameters, which urllib (the
        # masking and scrubbing helpers below) would not see. A "#" in a password is written %23.
        raise _invalid(param, "不能包含 #（密码中的 # 请写作 %23）")
    query = url.split("?", 1)[1] if "?" in url else ""
    for key, _ in parse_qsl(query, keep_blank_values=True):
        _check_parameter(key, param)  # named here first: libpq refuses an unknown one without its name
    try:
        urlsplit(url)  # the helpers below (mask_url, password_of) read it with urllib too
        params = conninfo_to_dict(url)
    except (ValueError, psycopg.Error):
        raise _invalid(param, "不是有效的 postgresql:// 连接字符串（主机、端口或编码有误）") from None
    for key in params:  # what libpq will use decides, not urllib's reading of the query
        _check_parameter(key, param)
    if params.get("password") and params["password"] != password_of(url):
        # e.g. an unencoded "?" in the password: the masked URL would show what libpq sends
        raise _invalid(param, "的密码写法有歧义（密码中的 ? @ / 请用百分号编码，且只给一个密码）")
    timeout = str(params.get("connect_timeout", "1"))
    if not (timeout.isdigit() and 0 < int(timeout) <= MAX_CONNECT_TIMEOUT_SECONDS):
        raise _invalid(param, f"的 connect_timeout 必须是 1 到 {MAX_CONNECT_TIMEOUT_SECONDS} 的整数")
    for port in str(params.get("port", "")).split(","):
        if port and not (port.isdigit() and 0 < int(port) < 65536):
            raise _invalid(param, f"的端口无效: {port[:16]}")
    if "options" in params and not _SEARCH_PATH.fullmatch(params["options"].strip()):
        raise _invalid(param, "的 options 只允许 -c search_path=...")
    if not params.get("dbname"):
        raise ValidationError(f"参数 {param} 缺少数据库名", invalid_params=[param])
    return url


def password_of(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.password:
        return unquote(parts.password)
    for key, value in parse_qsl(parts.query):
        if key in _SECRET_QUERY_KEYS and value:
            return value
    return None


def mask_url(url: str | None) -> str | None:
    """`postgresql://user:***@host:5432/db`: the URL with any password replaced."""
    if not url:
        return url
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None and "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{host}"
    query = urlencode([(k, "***" if k in _SECRET_QUERY_KEYS else v) for k, v in parse_qsl(parts.query)],
                      safe="/*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def database_name(url: str) -> str:
    """The database libpq connects to (`?dbname=` wins over the path, as libpq reads it)."""
    try:
        return str(conninfo_to_dict(url).get("dbname") or "")
    except psycopg.Error:
        pass  # not a URL libpq reads: what it names, for a message
    parts = urlsplit(url)
    name = unquote(parts.path.lstrip("/"))
    if not name:
        name = dict(parse_qsl(parts.query)).get("dbname", "")
    return name


def with_database(url: str, database: str) -> str:
    """The same server and credentials, another database."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + quote(database), parts.query, parts.fragment))


def with_parameter(url: str, key: str, value: str) -> str:
    parts = urlsplit(url)
    query = "&".join(filter(None, [parts.query, urlencode({key: value}, safe="/,")]))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def scrub(text: str, url: str | None) -> str:
    """`text` with the URL's password (raw and URL-encoded) and the full URL removed."""
    if not url:
        return text
    password = password_of(url)
    if url in text:
        text = text.replace(url, mask_url(url))
    if password:
        for secret in {password, quote(password, safe="")}:
            text = text.replace(secret, "***")
    return text


def describe_connection_error(exc: Exception, url: str) -> str:
    message = str(exc).strip() or type(exc).__name__
    # libpq repeats the same failure once per resolved address; one line is enough.
    first = re.split(r"\n(?=connection to server)", message)[0].strip()
    return scrub(first, url)


def server_address(url: str) -> str:
    """`host:port` of a URL as a caller may see it (the socket directory for a local socket)."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.Error:
        return "?"
    host = params.get("host") or "localhost"
    return f"{host}:{params.get('port') or 5432}"


def connection_params(url: str, *, connect_timeout: int = CONNECT_TIMEOUT_SECONDS,
                      statement_timeout_ms: int = STATEMENT_TIMEOUT_MS,
                      application_name: str = "data_pipeline") -> dict[str, str]:
    """libpq parameters of a business connection: the URL's own, bounded, and nothing taken from the
    service's password file or PG* environment (an option the URL does not set, whose variable is
    set, gets libpq's built-in default instead)."""
    params = {key: str(value) for key, value in conninfo_to_dict(url).items()}
    for option in pq.Conninfo.get_defaults():
        keyword, variable = option.keyword.decode(), option.envvar and option.envvar.decode()
        if variable and variable in os.environ and keyword not in params and keyword != "service":
            params[keyword] = option.compiled.decode() if option.compiled is not None else ""
    params["passfile"] = NO_PASSWORD_FILE
    given_timeout = int(params.get("connect_timeout") or connect_timeout)
    params["connect_timeout"] = str(min(given_timeout, connect_timeout, MAX_CONNECT_TIMEOUT_SECONDS))
    if not params.get("application_name"):
        params["application_name"] = application_name
    params.update(KEEPALIVES)
    params["options"] = " ".join(filter(None, [params.get("options", "").strip(),
                                               f"-c statement_timeout={int(statement_timeout_ms)}"]))
    return params


def isolate_environment() -> None:
    """Forget the libpq variables that name service files (no connection option overrides them)."""
    for variable in _SERVICE_VARIABLES:
        if os.environ.pop(variable, None) is not None:
            logger.warning("ignoring %s: business connections never read service files", variable)


def connect(url: str, *, autocommit: bool = True, connect_timeout: int = CONNECT_TIMEOUT_SECONDS,
            statement_timeout_ms: int = STATEMENT_TIMEOUT_MS, application_name: str = "data_pipeline",
            **kwargs) -> psycopg.Connection:
    """A connection to a business database; DatabaseError (DATABASE_CONNECTION_ERROR) if it fails.

    The error says which server could not be reached, never why: the driver's reasons (refused,
    timed out, no such database, bad password) would tell a caller which ports are open."""
    params = connection_params(url, connect_timeout=connect_timeout, statement_timeout_ms=statement_timeout_ms,
                               application_name=application_name)
    try:
        conn = psycopg.connect(autocommit=autocommit, **params, **kwargs)
    except psycopg.Error as exc:
        # The reason only at DEBUG: an executor's records go to the task log, which callers read.
        logger.debug("could not connect to %s: %s", server_address(url), describe_connection_error(exc, url))
        raise connection_failed(url) from None
    if _forbidden_databases:
        _refuse_if_forbidden(conn, url)
    return conn


# (database, server identity) of the service's own store, registered by the connection policy: a
# connection that arrives there by a way the address check did not foresee is closed at once.
_forbidden_databases: set[tuple[str, str]] = set()


_IDENTITY_QUERY = "select current_database(), extract(epoch from pg_postmaster_start_time())::text"


def server_identity(conn: psycopg.Connection) -> set[tuple[str, str]]:
    """What identifies the database a connection reached: its name with the server's system
    identifier (stable across restarts), and with the server's start time (readable by anyone)."""
    try:  # one round trip where the role may read the system identifier (any role, by default)
        database, started, system = conn.execute(
            _IDENTITY_QUERY + ", (select system_identifier::text from pg_control_system())").fetchone()
    except psycopg.Error:
        if not conn.autocommit:
            conn.rollback()
        database, started = conn.execute(_IDENTITY_QUERY).fetchone()
        system = None  # not granted to this role: the start time still tells
    if not conn.autocommit:
        conn.rollback()
    identity = {(database, f"started {started}")}
    if system is not None:
        identity.add((database, f"system {system}"))
    return identity


def forbid_database(identity: set[tuple[str, str]]) -> None:
    _forbidden_databases.update(identity)


def _refuse_if_forbidden(conn: psycopg.Connection, url: str) -> None:
    try:
        reached = server_identity(conn)
    except (psycopg.errors.UndefinedFunction, psycopg.errors.InsufficientPrivilege):
        if not conn.autocommit:
            conn.rollback()
        return  # a server without these functions (a PostgreSQL look-alike) is not the store
    except psycopg.Error as exc:
        conn.close()
        logger.debug("could not connect to %s: %s", server_address(url), describe_connection_error(exc, url))
        raise connection_failed(url) from None
    if reached & _forbidden_databases:
        conn.close()
        raise ConnectionNotAllowedError("参数 db_connection 指向服务自己的任务存储数据库，不允许访问",
                                        invalid_params=["db_connection"])


def connection_failed(url: str) -> DatabaseError:
    return DatabaseError(f"无法连接数据库 {mask_url(url)}: could not connect to {server_address(url)}")


@contextmanager
def connection(url: str, **kwargs) -> Iterator[psycopg.Connection]:
    conn = connect(url, **kwargs)
    try:
        yield conn
    finally:
        conn.close()
