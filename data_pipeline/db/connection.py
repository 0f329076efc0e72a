"""The one module that opens connections to business databases (psycopg 3).

Connection strings carry passwords: `mask_url` is what any response, log or file may show, and
every error message that leaves this module is scrubbed of the password first.
"""
from __future__ import annotations

import re
from contextlib import contextmanager
from typing import Iterator
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

import psycopg

from data_pipeline.errors import DatabaseError, ValidationError

CONNECT_TIMEOUT_SECONDS = 5
_SCHEMES = ("postgresql", "postgres")
_SECRET_QUERY_KEYS = {"password", "sslpassword"}


def validate_url(url: object, param: str = "db_connection") -> str:
    """A usable postgresql:// URL, or a ValidationError naming `param`."""
    if not isinstance(url, str) or not url.strip():
        raise ValidationError(f"参数 {param} 必须是非空字符串", invalid_params=[param])
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in _SCHEMES:
        raise ValidationError(f"参数 {param} 必须是 postgresql:// 连接字符串", invalid_params=[param])
    if not database_name(url):
        raise ValidationError(f"参数 {param} 缺少数据库名", invalid_params=[param])
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise ValidationError(f"参数 {param} 的端口无效", invalid_params=[param]) from None
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
    parts = urlsplit(url)
    name = unquote(parts.path.lstrip("/"))
    if not name:
        name = dict(parse_qsl(parts.query)).get("dbname", "")
    return name


def with_database(url: str, database: str) -> str:
    """The same server and credentials, another database."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + quote(database), parts.query, parts.fragment))


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


def connect(url: str, *, autocommit: bool = True, connect_timeout: int = CONNECT_TIMEOUT_SECONDS,
            application_name: str = "data_pipeline", **kwargs) -> psycopg.Connection:
    """A connection to a business database; DatabaseError (DATABASE_CONNECTION_ERROR) if it fails."""
    try:
        return psycopg.connect(url, autocommit=autocommit, connect_timeout=connect_timeout,
                               application_name=application_name, **kwargs)
    except psycopg.Error as exc:
        raise DatabaseError(f"无法连接数据库 {mask_url(url)}: {describe_connection_error(exc, url)}") from None


@contextmanager
def connection(url: str, **kwargs) -> Iterator[psycopg.Connection]:
    conn = connect(url, **kwargs)
    try:
        yield conn
    finally:
        conn.close()
