"""A real TCP forwarder for tests: in front of PostgreSQL (a link a test can cut) or of a unix
socket (a way to a server that no address check can see)."""
from __future__ import annotations

import socket
import threading


class TcpProxy:
    """A real TCP forwarder in front of PostgreSQL that a test can cut: dropping every open
    connection (a network blip) or refusing all new ones too (the database is gone)."""

    def __init__(self, host: str, port: int | None = None):
        """Upstream `host:port`, or the unix socket at `host` when no port is given."""
        self.upstream = host if port is None else (host, port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> "TcpProxy":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop_listening()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = self._connect_upstream()
            with self._lock:
                self._sockets += [client, upstream]
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _connect_upstream(self) -> socket.socket:
        if isinstance(self.upstream, str):
            upstream = socket.socket(socket.AF_UNIX)
            upstream.connect(self.upstream)
            return upstream
        return socket.create_connection(self.upstream)

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def drop_connections(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def stop_listening(self) -> None:
        self._listener.close()
        self.drop_connections()
