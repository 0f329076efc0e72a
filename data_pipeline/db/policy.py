"""Which servers a caller's `db_connection` may reach: never the service's own store, and, when
DATA_PIPELINE_ALLOWED_DB_HOSTS is set, only the hosts, networks and socket directories it names.

A target is resolved before any connection is made — its socket directories (real paths) or its IP
addresses, its port and its database — and compared with the store's (what the store server says
it listens on, plus the URL the service uses; loopback names and addresses are one machine). A host
name is resolved once: the URL that is then used pins the checked address (`hostaddr`), so the
name cannot resolve elsewhere when the connection is made. Whatever way a connection still finds
to the store (a forwarded port) is closed by `connection.connect`, which compares the database it
reached with the store's identity registered here.
"""
from __future__ import annotations

import functools
import ipaddress
import logging
import os
import socket
from dataclasses import dataclass

import psycopg
from psycopg.conninfo import conninfo_to_dict

from config import Settings
from data_pipeline.db.connection import forbid_database, server_identity, validate_url, with_parameter
from data_pipeline.db.databases import store_url
from data_pipeline.errors import ConnectionNotAllowedError, DatabaseError

logger = logging.getLogger("ConnectionPolicy")

DEFAULT_PORT = 5432
# Where libpq looks when a URL names no host (builds differ: Debian's, and upstream's default).
DEFAULT_SOCKET_DIRS = ("/var/run/postgresql", "/run/postgresql", "/tmp")
LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


@dataclass(frozen=True)
class Endpoint:
    kind: str       # "unix" (address: a socket directory's real path) or "tcp" (address: an IP)
    address: str
    port: int


@dataclass(frozen=True)
class Target:
    hosts: tuple[str, ...]          # as the URL names them ("" for the default socket)
    endpoints: tuple[Endpoint, ...]
    database: str
    unresolved: tuple[str, ...] = ()  # host names that did not resolve
    pinned: tuple[str, ...] = ()      # per host: the checked IP to connect to ("" for sockets and literals)
    addresses: tuple[tuple[str, ...], ...] = ()  # per host: the IPs it resolved to (empty for sockets)


def _socket_dir(path: str) -> str:
    return os.path.realpath(path) if path.startswith("/") else path


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def resolve(url: str) -> Target:
    """The endpoints a URL leads to (host names resolved now)."""
    params = conninfo_to_dict(url)
    hosts = (params.get("host") or "").split(",")
    ports = (params.get("port") or "").split(",")
    endpoints, unresolved, pinned, resolved = [], [], [], []
    for index, host in enumerate(hosts):
        raw_port = (ports[index] if len(ports) == len(hosts) else ports[0]).strip()
        port = int(raw_port) if raw_port.isdigit() else DEFAULT_PORT
        host = host.strip()
        addresses = []
        if not host:
            endpoints += [Endpoint("unix", _socket_dir(d), port) for d in DEFAULT_SOCKET_DIRS]
            pinned.append("")
        elif host.startswith(("/", "@")):
            endpoints.append(Endpoint("unix", _socket_dir(host), port))
            pinned.append("")
        else:
            addresses = _addresses(host, port)
            if not addresses:
                unresolved.append(host)
            endpoints += [Endpoint("tcp", address, port) for address in addresses]
            pinned.append(addresses[0] if addresses and not _is_ip(host) else "")
        resolved.append(tuple(addresses))
    database = params.get("dbname") or params.get("user") or ""
    return Target(tuple(hosts), tuple(endpoints), database, tuple(unresolved), tuple(pinned), tuple(resolved))


def _addresses(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError):
        return []
    addresses = []
    for info in infos:
        address = str(ipaddress.ip_address(info[4][0].split("%", 1)[0]))
        if address not in addresses:
            addresses.append(address)
    return addresses


def _is_local(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if getattr(ip, "ipv4_mapped", None):
        ip = ip.ipv4_mapped
    return ip.is_loopback or ip.is_unspecified or str(ip) in _machine_addresses()


@functools.lru_cache(maxsize=1)
def _machine_addresses() -> frozenset[str]:
    """Every address of this machine's interfaces (a server listening on `*` answers on each), and
    what its own names resolve to."""
    import psutil

    found = {str(ipaddress.ip_address(a.address.split("%", 1)[0]))
             for addresses in psutil.net_if_addrs().values() for a in addresses
             if a.family in (socket.AF_INET, socket.AF_INET6)}
    for name in {socket.gethostname(), socket.getfqdn()}:
        found.update(_addresses(name, DEFAULT_PORT))
    return frozenset(found)


class ConnectionPolicy:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.allowed = AllowedHosts(settings.allowed_db_hosts) if settings.allowed_db_hosts else None
        self._store: StoreIdentity | None = None

    def vet(self, db_connection: object, param: str = "db_connection") -> str:
        """The caller's URL, validated and checked (a host name that does not resolve yet may
        resolve when the task runs, and is checked again then)."""
        url = validate_url(db_connection, param)
        self.check(resolve(url), param)
        return url

    def admit(self, db_connection: object, param: str = "db_connection") -> str:
        """The caller's URL, validated and checked, with resolved host names pinned: the URL to
        connect with. ValidationError for a bad URL, ConnectionNotAllowedError (403) for a refused
        target, DatabaseError when a host name does not resolve."""
        url = validate_url(db_connection, param)
        target = resolve(url)
        self.check(target, param)
        if target.unresolved:
            raise DatabaseError(f"无法连接数据库: could not connect to {', '.join(target.unresolved)[:200]}"
                                "（无法解析主机名）")
        if any(target.pinned):
            url = with_parameter(url, "hostaddr", ",".join(target.pinned))
        return url

    def check(self, target: Target, param: str = "db_connection") -> None:
        """Refuse the store's own database, and anything outside DATA_PIPELINE_ALLOWED_DB_HOSTS."""
        if self.allowed is not None:
            refused = self.allowed.refused_hosts(target)
            if refused:
                raise ConnectionNotAllowedError(
                    f"参数 {param} 的主机不在 DATA_PIPELINE_ALLOWED_DB_HOSTS 之内: {', '.join(refused)[:200]}",
                    invalid_params=[param])
        if target.database == self.store.database and any(
                endpoint in self.store.endpoints or self._same_local_server(endpoint)
                for endpoint in target.endpoints):
            raise ConnectionNotAllowedError(f"参数 {param} 指向服务自己的任务存储数据库，不允许访问",
                                            invalid_params=[param])

    def _same_local_server(self, endpoint: Endpoint) -> bool:
        """A TCP address of this machine on a port the store server listens on, when the store is local."""
        return endpoint.kind == "tcp" and endpoint.port in self.store.local_tcp_ports and _is_local(endpoint.address)

    @property
    def store(self) -> "StoreIdentity":
        if self._store is None or not self._store.complete:
            self._store = StoreIdentity.of(store_url(self.settings))
        return self._store


@dataclass(frozen=True)
class StoreIdentity:
    database: str
    endpoints: frozenset[Endpoint]
    local_tcp_ports: frozenset[int]

    complete: bool = True   # False: the store server could not be asked (compared with its URL only)

    @classmethod
    def of(cls, url: str) -> "StoreIdentity":
        """From the store's URL, and from what the store server says it listens on."""
        target = resolve(url)
        endpoints = set(target.endpoints)
        ports = {e.port for e in target.endpoints}
        listens, dirs, complete = "", "", True
        try:
            with psycopg.connect(url, connect_timeout=5, autocommit=True) as conn:
                forbid_database(server_identity(conn))
                ports.add(int(conn.execute("select current_setting('port')").fetchone()[0]))
                listens = conn.execute("select current_setting('listen_addresses')").fetchone()[0]
                try:
                    dirs = conn.execute("select current_setting('unix_socket_directories')").fetchone()[0]
                except psycopg.Error:
                    dirs = ",".join(DEFAULT_SOCKET_DIRS)  # not readable: assume every usual place
        except psycopg.Error as exc:
            logger.warning("store server settings unreadable (%s); comparing with its URL only", type(exc).__name__)
            complete = False
        for directory in filter(None, (d.strip() for d in dirs.split(","))):
            endpoints.update(Endpoint("unix", _socket_dir(directory), port) for port in ports)
        local = all(e.kind == "unix" or _is_local(e.address) for e in target.endpoints)
        over_tcp = bool(listens.strip()) or any(e.kind == "tcp" for e in target.endpoints)
        return cls(target.database, frozenset(endpoints), frozenset(ports) if local and over_tcp else frozenset(),
                   complete)


class AllowedHosts:
    """DATA_PIPELINE_ALLOWED_DB_HOSTS: host names, IP addresses or CIDR networks, socket directories."""

    def __init__(self, entries: tuple[str, ...]):
        self.names: set[str] = set()
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        self.socket_dirs: set[str] = set()
        for entry in entries:
            if entry.startswith("/"):
                self.socket_dirs.add(_socket_dir(entry))
                continue
            try:
                self.networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                self.names.add(entry.lower().rstrip("."))

    def refused_hosts(self, target: Target) -> list[str]:
        """The hosts of `target` outside the list, judged by the addresses `resolve` found (and
        pinned): a second lookup could answer otherwise (DNS rebinding)."""
        refused = []
        for host, addresses in zip(target.hosts, target.addresses):
            host = host.strip()
            if not self._allows(host, addresses):
                refused.append(host or "(默认本地套接字)")
        return refused

    def _allows(self, host: str, addresses: tuple[str, ...]) -> bool:
        if not host:
            return any(_socket_dir(d) in self.socket_dirs for d in DEFAULT_SOCKET_DIRS)
        if host.startswith(("/", "@")):
            return _socket_dir(host) in self.socket_dirs
        if host.lower().rstrip(".") in self.names:
            return True
        return bool(addresses) and all(
            any(ipaddress.ip_address(a) in network for network in self.networks) for a in addresses)
