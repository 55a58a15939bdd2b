"""The HTTP side of the SDK: one keep-alive connection to ``GET …/envs/{env}/config``.

Every request carries the consumer's identity and what it serves (``X-Lastgood-Consumer``,
``X-Lastgood-Consumer-Name``, ``X-Lastgood-Serving``): that is how the server's fleet view learns
that a rollback reached this process. Server errors become :mod:`lastgood.errors` classes with
the server's own message; the token is sent in the ``Authorization`` header only and never
appears in a message or a log line.

Why :mod:`http.client` and not httpx: one GET costs about 0.2 ms of CPU here against 0.7 to
0.9 ms through httpx (measured on this project's 2-core machine), and a rollback fans out to a
whole fleet at once, where that CPU is the time to reach the last consumer; it also keeps
``import lastgood.client`` about 90 ms lighter. The SDK needs nothing httpx adds (no proxies,
no redirects, no HTTP/2).

A long-poll blocks in ``recv`` for up to ``wait`` seconds. :meth:`Channel.abort` shuts the socket
down from another thread, so ``LiveConfig.close()`` returns at once instead of after the poll.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import ssl
import threading
from typing import Any
from urllib.parse import quote, urlsplit

from lastgood import __version__
from lastgood.errors import AuthError, ForbiddenError, NotFoundError, ServerError, UsageError

NOT_MODIFIED = None

_tls: ssl.SSLContext | None = None
_tls_lock = threading.Lock()


def shared_tls_context() -> ssl.SSLContext:
    """The system's CA store (``SSL_CERT_FILE`` honoured), loaded once per process: loading it
    costs tens of milliseconds, which a fleet of consumers in one process must not pay each."""
    global _tls
    with _tls_lock:
        if _tls is None:
            _tls = ssl.create_default_context()
        return _tls


class Channel:
    """Requests for one consumer of one environment, one at a time (the follower's thread)."""

    def __init__(
        self,
        url: str,
        env: str,
        *,
        token: str | None,
        consumer_id: str,
        name: str,
        timeout: float,
        verify: ssl.SSLContext | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(f"the server URL must be http(s)://host[:port], got {url[:100]!r}")
        self.url = url
        self.env = env
        self.timeout = timeout
        self.path = f"{parts.path.rstrip('/')}/api/v1/envs/{quote(env, safe='')}/config"
        self._host, self._port = parts.hostname, parts.port
        self._tls = (verify or shared_tls_context()) if parts.scheme == "https" else None
        self._headers = {
            "User-Agent": f"lastgood-client/{__version__}",
            "Accept": "application/json",
            "X-Lastgood-Consumer": consumer_id,
            "X-Lastgood-Consumer-Name": name,
        }
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._connection: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()  # guards _connection against abort() from another thread
        self._closed = False

    def fetch(self, *, serving: str, etag: str | None, wait: float) -> Any:
        """The payload (decoded JSON) when the config differs from ``etag``, else
        :data:`NOT_MODIFIED`. With ``wait``, the server holds the request until a change or
        ``wait`` seconds. Raises AuthError, ForbiddenError, NotFoundError or ServerError."""
        headers = {**self._headers, "X-Lastgood-Serving": serving}
        if etag is not None:
            headers["If-None-Match"] = f'"{etag}"'
        target = f"{self.path}?wait={wait:g}" if wait else self.path
        try:
            status, body = self._exchange(target, headers, read_timeout=wait + self.timeout)
        except (OSError, http.client.HTTPException) as exc:
            self._drop()
            raise ServerError(
                f"cannot reach the lastgood server at {self.url}: "
                f"{type(exc).__name__}: {str(exc).rstrip('.') or 'no detail'}",
                hint="is 'lastgood serve' running there, and is the URL right?",
            ) from exc
        return self._answer(status, body)

    def _exchange(
        self, target: str, headers: dict[str, str], read_timeout: float
    ) -> tuple[int, bytes]:
        """One request and its whole answer. A kept-alive connection that the server closed
        while idle is reopened once: the request never reached the server, so it is safe."""
        connection = self._connection_for_request()
        reused = connection.sock is not None
        try:
            return self._send(connection, target, headers, read_timeout)
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            if not reused or self._closed:
                raise
        self._drop()
        return self._send(self._connection_for_request(), target, headers, read_timeout)

    def _connection_for_request(self) -> http.client.HTTPConnection:
        with self._lock:
            if self._closed:
                raise ServerError("this LiveConfig is closed")
            if self._connection is None:
                if self._tls is not None:
                    self._connection = http.client.HTTPSConnection(
                        self._host, self._port, timeout=self.timeout, context=self._tls
                    )
                else:
                    self._connection = http.client.HTTPConnection(
                        self._host, self._port, timeout=self.timeout
                    )
            return self._connection

    @staticmethod
    def _send(
        connection: http.client.HTTPConnection,
        target: str,
        headers: dict[str, str],
        read_timeout: float,
    ) -> tuple[int, bytes]:
        if connection.sock is None:
            connection.connect()  # bounded by the connect timeout, not the long-poll's
        assert connection.sock is not None
        connection.sock.settimeout(read_timeout)
        connection.request("GET", target, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()

    def _answer(self, status: int, body: bytes) -> Any:
        if status == 304:
            return NOT_MODIFIED
        if status == 200:
            try:
                return json.loads(body)
            except ValueError as exc:
                raise ServerError(f"{self.url} answered config that is not JSON: {exc}") from exc
        message, hint = _error_of(status, body)
        where = f"{self.url} (environment {self.env!r})"
        if status == 401:
            hint = hint or "pass token= or set LASTGOOD_TOKEN to a viewer token"
            raise AuthError(f"{where} refused the token: {message}", hint=hint)
        if status == 403:
            raise ForbiddenError(f"{where} refused the token: {message}", hint=hint)
        if status == 404:
            raise NotFoundError(f"{where}: {message}", hint=hint)
        raise ServerError(f"{where} answered {status}: {message}", hint=hint)

    def _drop(self) -> None:
        """Forget the connection (after an error: the next request opens a fresh one)."""
        with self._lock:
            connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    def abort(self) -> None:
        """Break a request in flight (from any thread): it fails at once with ServerError."""
        with self._lock:
            sock = self._connection.sock if self._connection is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self.abort()
        self._drop()


def _error_of(status: int, body: bytes) -> tuple[str, str | None]:
    """The server's ``{"error", "hint"}``, or the start of whatever it sent instead."""
    try:
        data = json.loads(body)
        return str(data["error"]), (str(data["hint"]) if data.get("hint") else None)
    except (ValueError, KeyError, TypeError):
        text = body[:200].decode("utf-8", "replace").strip()
        return text or f"HTTP {status}", None
