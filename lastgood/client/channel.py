"""The HTTP side of the SDK: one keep-alive connection to ``GET …/envs/{env}/config``.

Every request carries the consumer's identity and what it serves (``X-Lastgood-Consumer``,
``X-Lastgood-Consumer-Name``, ``X-Lastgood-Serving``): that is how the server's fleet view learns
that a rollback reached this process. Server errors become :mod:`lastgood.errors` classes with
the server's own message; the token is sent in the ``Authorization`` header only and never
appears in a message or a log line.

Why a socket and ``httptools`` rather than httpx or :mod:`http.client`: a rollback fans out to a
whole fleet at once, and the CPU each consumer spends on one exchange is what the last consumer
waits for when many share a machine. The SDK sends one request shape only, so its bytes are
built once and two values filled in; the answer is parsed by ``httptools`` (the C parser under
uvicorn, with chunked bodies and keep-alive rules done right). One exchange on a kept-alive
connection costs about 20 µs of CPU here, against about 90 µs through :mod:`http.client` (which
parses headers with the ``email`` package) and 700 to 900 µs through httpx; ``import
lastgood.client`` stays light. The SDK needs nothing more (no proxies, no redirects, no HTTP/2).

A long-poll blocks in ``recv`` for up to ``wait`` seconds. :meth:`Channel.abort` shuts the socket
down from another thread, so ``LiveConfig.close()`` returns at once instead of after the poll.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
from typing import Any
from urllib.parse import quote, urlsplit

import httptools

from lastgood import __version__
from lastgood.errors import AuthError, ForbiddenError, NotFoundError, ServerError, UsageError

NOT_MODIFIED = None
READ_SIZE = 65536

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


class _Stale(Exception):
    """A kept-alive connection was closed by the server before any byte of the answer."""


class _Answer:
    """One response, as httptools' callbacks hand it over."""

    __slots__ = ("body", "complete", "delimited", "headers_done", "keep_alive", "parser")

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.keep_alive = False
        self.body: list[bytes] = []
        self.complete = False
        self.delimited = False  # Content-Length or chunked; else the body ends at EOF
        self.headers_done = False

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() in (b"content-length", b"transfer-encoding"):
            self.delimited = True

    def on_headers_complete(self) -> None:
        self.headers_done = True
        self.keep_alive = self.parser.should_keep_alive()  # reset once the body is complete

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        if 100 <= self.parser.get_status_code() < 200:  # 100 Continue, 103 Early Hints: the
            self.body.clear()  # real answer follows on the same connection
            self.delimited = self.headers_done = False
            return
        self.complete = True


def _header_safe(label: str, value: str) -> str:
    """Header values must be printable ASCII: no line breaks that could forge a header."""
    if not value.isascii() or not value.isprintable():
        raise UsageError(f"the {label} has characters an HTTP header cannot carry")
    return value


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
        if not parts.hostname.isascii():
            raise UsageError(
                f"the server URL's host must be ASCII, got {parts.hostname[:100]!r}",
                hint="write an internationalized name in its xn-- (IDNA) form",
            )
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:
            raise UsageError(f"the server URL has a bad port: {url[:100]!r}") from exc
        self.url = url
        self.env = env
        self.timeout = timeout
        base = quote(parts.path.rstrip("/"), safe="/%:@!$&'()*+,;=-._~")
        self.path = f"{base}/api/v1/envs/{quote(env, safe='')}/config"
        self._address = (parts.hostname, port)
        self._server_name = parts.hostname
        self._tls = (verify or shared_tls_context()) if parts.scheme == "https" else None
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        lines = [
            f"Host: {host}" if parts.port is None else f"Host: {host}:{parts.port}",
            f"User-Agent: lastgood-client/{__version__}",
            "Accept: application/json",
            f"X-Lastgood-Consumer: {_header_safe('consumer id', consumer_id)}",
            f"X-Lastgood-Consumer-Name: {_header_safe('consumer name', name)}",
        ]
        if token:
            lines.append(f"Authorization: Bearer {_header_safe('token', token)}")
        self._headers = "".join(f"{line}\r\n" for line in lines)
        self._socket: socket.socket | None = None
        self._lock = threading.Lock()  # guards _socket against abort() from another thread
        self._closed = False

    def fetch(self, *, serving: str, etag: str | None, wait: float) -> Any:
        """The payload (decoded JSON) when the config differs from ``etag``, else
        :data:`NOT_MODIFIED`. With ``wait``, the server holds the request until a change or
        ``wait`` seconds. Raises AuthError, ForbiddenError, NotFoundError or ServerError."""
        target = f"{self.path}?wait={wait:g}" if wait else self.path
        match = f'If-None-Match: "{_header_safe("ETag", etag)}"\r\n' if etag is not None else ""
        request = (
            f"GET {target} HTTP/1.1\r\n{self._headers}"
            f"X-Lastgood-Serving: {_header_safe('version', serving)}\r\n{match}\r\n"
        ).encode("ascii")
        try:
            status, body = self._exchange(request, read_timeout=wait + self.timeout)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            self._drop()
            raise ServerError(
                f"{self.url} answered something that is not HTTP: {str(exc)[:100]}",
                hint="is that the address of 'lastgood serve' (http or https, and the port)?",
            ) from exc
        except (OSError, _Stale) as exc:
            self._drop()
            detail = str(exc).rstrip(".") or "the server closed the connection"
            kind = "" if isinstance(exc, _Stale) else f"{type(exc).__name__}: "
            raise ServerError(
                f"cannot reach the lastgood server at {self.url}: {kind}{detail}",
                hint="is 'lastgood serve' running there, and is the URL right?",
            ) from exc
        return self._answer(status, body)

    def _exchange(self, request: bytes, read_timeout: float) -> tuple[int, bytes]:
        """One request and its whole answer. A kept-alive connection that the server closed
        while idle is reopened once: the request never reached the server, so it is safe."""
        sock, reused = self._socket_for_request()
        try:
            return self._round_trip(sock, request, read_timeout)
        except _Stale:  # nothing of an answer arrived: the request never reached the server
            if not reused or self._closed:
                raise
        self._drop()
        sock, _ = self._socket_for_request()
        return self._round_trip(sock, request, read_timeout)

    def _socket_for_request(self) -> tuple[socket.socket, bool]:
        """The kept-alive socket and True, or a new connection and False."""
        with self._lock:
            if self._closed:
                raise ServerError("this LiveConfig is closed")
            if self._socket is not None:
                return self._socket, True
        sock = socket.create_connection(self._address, timeout=self.timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._tls is not None:
                sock = self._tls.wrap_socket(sock, server_hostname=self._server_name)
        except BaseException:
            sock.close()
            raise
        with self._lock:
            if self._closed:
                sock.close()
                raise ServerError("this LiveConfig is closed")
            self._socket = sock
        return sock, False

    def _round_trip(
        self, sock: socket.socket, request: bytes, read_timeout: float
    ) -> tuple[int, bytes]:
        sock.settimeout(read_timeout)
        try:
            sock.sendall(request)
        except (ConnectionResetError, BrokenPipeError, ssl.SSLEOFError) as exc:
            raise _Stale("the server closed the connection") from exc
        answer = _Answer()
        started = False
        while not answer.complete:
            try:
                data = sock.recv(READ_SIZE)
            except (ConnectionResetError, ssl.SSLEOFError) as exc:
                if started:
                    raise
                raise _Stale("the server closed the connection") from exc
            if not data:
                if not started:
                    raise _Stale("the server closed the connection")
                if answer.headers_done and not answer.delimited:
                    break  # an answer without a length ends where the connection does
                raise ConnectionAbortedError("the server closed the connection mid-answer")
            started = True
            answer.parser.feed_data(data)
        if not answer.complete or not answer.keep_alive:
            self._drop()
        return answer.parser.get_status_code(), b"".join(answer.body)

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
            sock, self._socket = self._socket, None
        if sock is not None:
            sock.close()

    def abort(self) -> None:
        """Break a request in flight (from any thread): it fails at once with ServerError."""
        with self._lock:
            sock = self._socket
        if sock is not None:
            with contextlib.suppress(OSError):  # the TCP socket itself: an SSLSocket's own
                socket.socket.shutdown(sock, socket.SHUT_RDWR)  # shutdown drops TLS first

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
