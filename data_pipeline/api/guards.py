"""What every request passes before its handler: the Host it names, the Origin of a change, the
API key. A page on another site can make a user's browser send requests to the service on
localhost; these checks are what stops it (docs/security.md):

- `Host` must be one of DATA_PIPELINE_ALLOWED_HOSTS (default: the localhost names and the bind
  address), so a DNS name rebound to 127.0.0.1 reaches nothing;
- a POST/PUT/PATCH/DELETE that carries an `Origin` must come from the service's own origin
  (browsers send Origin with every cross-site change; curl and the Python client send none);
- with DATA_PIPELINE_API_KEY set, `Authorization: Bearer <key>` (the scheme in any case, RFC 7235).
JSON bodies being `application/json` only is the endpoints' check (endpoints.py): that is what
makes a cross-site change need a CORS preflight, which the service never grants.
"""
from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from flask import Flask, request

from config import Settings
from data_pipeline.errors import AuthenticationError, ForbiddenError

LOCALHOST_NAMES = ("localhost", "127.0.0.1", "::1")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def allowed_hosts(settings: Settings) -> frozenset[str]:
    """Host names the service answers to; `*` among them turns the check off."""
    names = settings.allowed_hosts or (*LOCALHOST_NAMES, settings.host)
    return frozenset(_host_name(name) for name in names)


def install_request_guards(app: Flask, settings: Settings, public_endpoints: set[str]) -> None:
    hosts = allowed_hosts(settings)
    api_key = settings.api_key.encode() if settings.api_key else None

    @app.before_request
    def guard():
        if "*" not in hosts and _host_name(_split_host(request.host)[0]) not in hosts:
            raise ForbiddenError(f"不接受的 Host 请求头: {request.host[:100]!r}（可在 DATA_PIPELINE_ALLOWED_HOSTS 中配置）",
                                 error_code="HOST_NOT_ALLOWED", invalid_params=["Host"])
        origin = request.headers.get("Origin")
        if request.method not in SAFE_METHODS and origin is not None and not _same_origin(origin):
            raise ForbiddenError(f"不接受来自其他来源的修改请求: {origin[:100]!r}",
                                 error_code="ORIGIN_NOT_ALLOWED", invalid_params=["Origin"])
        if api_key is not None and request.path.startswith("/api/") and request.endpoint not in public_endpoints:
            if not hmac.compare_digest(_bearer_token(request.headers.get("Authorization", "")), api_key):
                raise AuthenticationError("缺少或无效的 API Key（需要 Authorization: Bearer <key>）")


def _bearer_token(header: str) -> bytes:
    scheme, _, token = header.strip().partition(" ")
    return token.strip().encode() if scheme.lower() == "bearer" else b""


def _same_origin(origin: str) -> bool:
    """Whether `origin` is the origin the request was sent to (scheme, host and port)."""
    try:
        parts = urlsplit(origin)
        given = (parts.scheme.lower(), parts.hostname or "", parts.port or _DEFAULT_PORTS.get(parts.scheme.lower()))
    except ValueError:
        return False
    name, port = _split_host(request.host)
    own = (request.scheme, _host_name(name), port or _DEFAULT_PORTS.get(request.scheme))
    return bool(parts.hostname) and not parts.path.strip("/") and given == own


def _split_host(host: str) -> tuple[str, int | None]:
    """`name[:port]` or `[v6]:port` into the name and the port (None if absent or not a number)."""
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        name, _, port = host.rpartition(":") if host.count(":") == 1 else (host, "", "")
    return name, int(port) if port.isdigit() else None


def _host_name(name: str) -> str:
    return name.strip().lower().rstrip(".")
