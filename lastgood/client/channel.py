"""The HTTP side of the SDK: kept-alive connections to ``GET …/envs/{env}/config``.

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

What a careful HTTP client does, this one does too:

- an exchange is bounded as a whole (``wait`` + ``timeout`` seconds for the answer, ``timeout``
  for connecting and the TLS handshake), and an answer over :data:`MAX_ANSWER` bytes is refused;
- a kept-alive connection is reused only if it is quiet: one the server closed, or on which it
  sent something nobody asked for (a ``408`` before closing, say), is replaced before the
  request is sent, and bytes after a complete answer end the connection but not the answer;
- a request is sent again only when no byte of an answer (or only a ``408``) arrived on a
  reused connection, so the server never took it, and within the first try's deadline;
- each exchange checks a connection out, so a :meth:`~lastgood.client.LiveConfig.refresh` from
  the application while the follower holds a long-poll opens a second connection rather than
  mixing two answers on one;
- :meth:`Channel.close` breaks whatever is in flight from another thread, connecting and the TLS
  handshake included, by shutting the TCP socket down (never by sending anything in the clear).

Name resolution is the one wait neither bound covers: ``getaddrinfo`` answers within the
resolver's own limits (``/etc/resolv.conf``) and cannot be interrupted.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import ssl
import threading
import time
from typing import Any
from urllib.parse import quote

import httptools

from lastgood import __version__
from lastgood.address import parse_server_url
from lastgood.errors import AuthError, ForbiddenError, NotFoundError, ServerError, UsageError

NOT_MODIFIED = None
READ_SIZE = 65536
MAX_ANSWER = 512 * 1024 * 1024  # bytes; the server refuses versions over 64 MiB of files

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


class _TooLarge(Exception):
    """The answer passed :data:`MAX_ANSWER` bytes."""


class _Trailing(Exception):
    """A second message began after the answer (raised inside the parser, never escapes)."""


class Answer:
    """One response, as httptools' callbacks hand it over."""

    __slots__ = (
        "body", "complete", "delimited", "headers_done", "keep_alive", "oversized", "parser",
        "received", "trailing",
    )  # fmt: skip

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.keep_alive = False
        self.body: list[bytes] = []
        self.complete = False
        self.delimited = False  # Content-Length or chunked; else the body ends at EOF
        self.headers_done = False
        self.trailing = False  # bytes came after the answer: the connection is out of step
        self.oversized = False  # its Content-Length passes MAX_ANSWER: refused before the body
        self.received = 0  # bytes so far

    def on_message_begin(self) -> None:
        if self.complete:  # a second message nobody asked for: stop before its body is taken
            self.trailing = True
            raise _Trailing

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(name) not in (14, 17):  # called for every header: most are neither of the two
            return
        name = name.lower()
        if name in (b"content-length", b"transfer-encoding"):
            self.delimited = True
        if name == b"content-length" and value.strip().isdigit() and int(value) > MAX_ANSWER:
            self.oversized = True
            raise _TooLarge

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

    def take(self, data: bytes) -> bool:
        """Take what one ``recv`` returned (``b""``: the server closed); True when the answer
        ended with the connection (no length: the body is what came before the close)."""
        if not data:
            if not self.received:
                raise _Stale("the server closed the connection")
            if self.headers_done and not self.delimited:
                return True  # an answer without a length ends where the connection does
            raise ConnectionAbortedError("the server closed the connection mid-answer")
        self.received += len(data)
        if self.received > MAX_ANSWER:
            raise _TooLarge
        self.feed(data)
        return False

    def result(self) -> tuple[int, bytes, bool]:
        """Status, body, and whether the connection may carry the next request; the answer is
        done with. The parser holds this answer (its callbacks) and this answer the parser:
        letting go of it here frees a finished answer at once. Otherwise each was freed only by
        a garbage collection, and a rollback that finishes a thousand answers in a process
        made its full collections come often, each a pause in the middle of a fan-out."""
        keep = self.complete and self.keep_alive and not self.trailing
        status = self.parser.get_status_code()
        del self.parser
        return status, b"".join(self.body), keep

    def feed(self, data: bytes) -> None:
        """Parse ``data``; bytes after a complete answer mark it ``trailing`` instead of
        failing it (the answer is whole, only the connection is spoiled)."""
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.oversized:
                raise _TooLarge from None
            if not self.complete:
                raise
            self.trailing = True


def _header_safe(label: str, value: str) -> str:
    """Header values must be printable ASCII: no line breaks that could forge a header."""
    if not value.isascii() or not value.isprintable():
        raise UsageError(f"the {label} has characters an HTTP header cannot carry")
    return value


def _unreachable(url: str, exc: BaseException) -> ServerError:
    """No exchange with ``url``, said in words (no ``[Errno 111]``), with the likely fix."""
    hint = "is 'lastgood serve' running there, and is the URL right?"
    if isinstance(exc, ConnectionRefusedError):
        detail = "nothing answers on that port (connection refused)"
    elif isinstance(exc, ssl.SSLError) and "WRONG_VERSION_NUMBER" in str(exc):
        detail = "it does not speak TLS (https)"
        hint = f"the server speaks http, not https: write {url.replace('https://', 'http://', 1)}"
    elif isinstance(exc, OSError) and exc.strerror:
        detail = exc.strerror
    else:
        detail = str(exc).rstrip(".") or "the server closed the connection"
        if not isinstance(exc, _Stale):
            detail = f"{type(exc).__name__}: {detail}"
    return ServerError(f"cannot reach the lastgood server at {url}: {detail}", hint=hint)


def _percent_encoded(text: str) -> str:
    """``text`` for a header (latin-1 on the wire): ``%`` and anything not printable ASCII
    percent-encoded as UTF-8, so ``→`` arrives as ``→`` (the server decodes it)."""
    return "".join(
        c if c.isascii() and c.isprintable() and c != "%" else quote(c if c.isprintable() else " ")
        for c in text
    )


def _remaining(deadline: float, late: str) -> float:
    """Seconds left before ``deadline``; TimeoutError(``late``) when none are."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError(late)
    return left


def _quiet(sock: socket.socket) -> bool:
    """True when an idle kept-alive connection has nothing to read: no close from the server,
    no bytes it sent unasked. One ``poll`` with no wait (``select`` where there is no poll)."""
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return False
    try:
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(sock.fileno(), select.POLLIN)
            return not poller.poll(0)
        readable, _, _ = select.select([sock], [], [], 0)
        return not readable
    except (OSError, ValueError):
        return False


class Channel:
    """Requests for one consumer of one environment. Safe to use from several threads: each
    exchange has a connection to itself, and one idle connection is kept for the next."""

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
        kind: str = "sdk",
    ) -> None:
        address = parse_server_url(url)
        host, port, path, tls = address.host, address.port, address.path, address.tls
        self.url = url
        self.env = env
        self.timeout = timeout
        self.consumer_id = consumer_id
        base = quote(path.rstrip("/"), safe="/%:@!$&'()*+,;=-._~")
        self.path = f"{base}/api/v1/envs/{quote(env, safe='')}/config"
        self._address = (host, port or (443 if tls else 80))
        self._tls = (verify or shared_tls_context()) if tls else None
        shown_host = f"[{host}]" if ":" in host else host
        lines = [
            f"Host: {shown_host}" if port is None else f"Host: {shown_host}:{port}",
            f"User-Agent: lastgood-client/{__version__}",
            "Accept: application/json",
            f"X-Lastgood-Consumer: {_header_safe('consumer id', consumer_id)}",
            f"X-Lastgood-Consumer-Name: {_header_safe('consumer name', name)}",
        ]
        if kind != "sdk":
            lines.append(f"X-Lastgood-Consumer-Kind: {_header_safe('consumer kind', kind)}")
        if token:
            lines.append(f"Authorization: Bearer {_header_safe('token', token)}")
        self._headers = "".join(f"{line}\r\n" for line in lines)
        self._health = ""  # a host agent's X-Lastgood-Health line (see set_health)
        self._lock = threading.Lock()  # guards the three below against other threads
        self._idle: socket.socket | None = None
        self._busy: set[socket.socket] = set()  # in an exchange, or connecting: close() breaks
        self._closed = False

    def set_health(self, health: str | None, detail: str | None = None) -> None:
        """Send ``X-Lastgood-Health: ok`` or ``failing: DETAIL`` on every later request (a host
        agent's checks); None sends nothing. The detail is made header-safe and cut short."""
        if health is None:
            self._health = ""
            return
        text = health
        if detail:
            text = f"{health}: {_percent_encoded(detail[:200])}"
        self._health = f"X-Lastgood-Health: {text}\r\n"

    def leave(self) -> None:
        """Tell the server this consumer stops now (``POST …/consumers`` with ``leaving``), so
        the fleet drops it at once rather than after 90 s of silence. Raises like fetch."""
        body = json.dumps({"consumer": self.consumer_id, "leaving": True}).encode()
        path = self.path.removesuffix("/config") + "/consumers"
        request = (
            f"POST {path} HTTP/1.1\r\n{self._headers}Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode("ascii") + body
        try:
            status, answer = self._exchange(request, answer_within=self.timeout)
        except (OSError, _Stale) as exc:
            raise _unreachable(self.url, exc) from exc
        if status != 204:
            self._answer(status, answer)

    def fetch(self, *, serving: str, etag: str | None, wait: float, metrics: str = "") -> Any:
        """The payload (decoded JSON) when the config differs from ``etag``, else
        :data:`NOT_MODIFIED`. With ``wait``, the server holds the request until a change or
        ``wait`` seconds. ``metrics`` is the ``X-Lastgood-Metrics`` value to send (see
        :mod:`lastgood.client.metrics`; empty: none). Raises AuthError, ForbiddenError,
        NotFoundError or ServerError."""
        request = self.request_for(serving=serving, etag=etag, wait=wait, metrics=metrics)
        try:
            status, body = self._exchange(request, answer_within=wait + self.timeout)
        except httptools.HttpParserUpgrade as exc:
            raise ServerError(
                f"{self.url} answered with a protocol upgrade (101 Switching Protocols) nobody "
                "asked for",
                hint="is that the address of 'lastgood serve', and not a proxy in front of "
                "something else?",
            ) from exc
        except httptools.HttpParserError as exc:
            raise ServerError(
                f"{self.url} answered something that is not HTTP: {str(exc)[:100]}",
                hint="is that the address of 'lastgood serve' (http or https, and the port)?",
            ) from exc
        except _TooLarge as exc:
            raise ServerError(
                f"{self.url} sent an answer over {MAX_ANSWER:,} bytes; refused",
                hint="is that the address of 'lastgood serve'?",
            ) from exc
        except ssl.SSLCertVerificationError as exc:
            raise ServerError(
                f"{self.url} has a certificate this process does not trust: "
                f"{exc.verify_message or exc.reason}",
                hint="pass verify=ssl.create_default_context(cafile='ca.pem'), or set "
                "SSL_CERT_FILE to the CA that signed the server's certificate",
            ) from exc
        except (OSError, _Stale) as exc:
            if self._closed:
                raise ServerError("this LiveConfig is closed") from exc
            if isinstance(exc, TimeoutError):
                raise ServerError(
                    f"the lastgood server at {self.url} {exc}",
                    hint="is 'lastgood serve' running there and not overloaded? a firewall "
                    "that drops packets also looks like this",
                ) from exc
            raise _unreachable(self.url, exc) from exc
        return self._answer(status, body)

    def request_for(
        self, *, serving: str, etag: str | None, wait: float, metrics: str = ""
    ) -> bytes:
        """The bytes of one read of the config (see :meth:`fetch`)."""
        target = f"{self.path}?wait={wait:g}" if wait else self.path
        match = f'If-None-Match: "{_header_safe("ETag", etag)}"\r\n' if etag is not None else ""
        reported = f"X-Lastgood-Metrics: {_header_safe('metrics', metrics)}\r\n" if metrics else ""
        return (
            f"GET {target} HTTP/1.1\r\n{self._headers}"
            f"X-Lastgood-Serving: {_header_safe('version', serving)}\r\n{self._health}{reported}"
            f"{match}\r\n"
        ).encode("ascii")

    # ---- a read whose answer another thread waits for (lastgood.client.hub) ---------------

    def lend(self) -> socket.socket | None:
        """The kept-alive plain-TCP connection, checked out for a read that the hub waits on;
        None when there is none (or it is TLS: the hub reads plain sockets only)."""
        sock = self._idle_connection()
        if sock is not None and isinstance(sock, ssl.SSLSocket):
            self._check_in(sock, keep=True)
            return None
        return sock

    def give_back(self, sock: socket.socket, keep: bool) -> None:
        """A lent connection is done with: kept for the next exchange when ``keep``."""
        if keep:
            sock.setblocking(True)
        self._check_in(sock, keep)

    def drop(self, sock: socket.socket) -> None:
        """A lent connection is out of step or broken: closed."""
        self._discard(sock)

    def decode(self, status: int, body: bytes) -> Any:
        """An answer as :meth:`fetch` returns it (or raises it)."""
        return self._answer(status, body)

    def config_of(self, body: bytes) -> Any:
        """A ``200`` answer's body as :meth:`fetch` returns it (or raises it)."""
        return self._answer(200, body)

    # ---- one exchange ---------------------------------------------------------------------

    def _exchange(self, request: bytes, answer_within: float) -> tuple[int, bytes]:
        """One request and its whole answer within ``answer_within`` seconds. If a reused
        connection turns out closed before any byte of the answer (or the server answers
        ``408``, having timed it out as the request went), the server never took the request:
        it is sent once more on a fresh connection, within the same deadline."""
        deadline = time.monotonic() + answer_within
        late = f"timed out: no whole answer within {answer_within:g} s"
        sock = self._idle_connection()
        reused = sock is not None
        while True:
            if sock is None:
                sock = self._connect()
            try:
                status, body, keep = self._round_trip(sock, request, deadline, late)
            except _Stale:
                self._discard(sock)
                if not reused or self._closed:
                    raise
                sock, reused = None, False
                continue
            except BaseException:
                self._discard(sock)
                raise
            if status == 408 and reused and not self._closed:
                self._discard(sock)
                sock, reused = None, False
                continue
            self._check_in(sock, keep)
            return status, body

    def _round_trip(
        self, sock: socket.socket, request: bytes, deadline: float, late: str
    ) -> tuple[int, bytes, bool]:
        """Status, body, and whether the connection may carry the next request."""
        sock.settimeout(_remaining(deadline, late))
        try:
            sock.sendall(request)
        except (ConnectionResetError, BrokenPipeError, ssl.SSLEOFError) as exc:
            raise _Stale("the server closed the connection") from exc
        answer = Answer()
        while not answer.complete:
            sock.settimeout(_remaining(deadline, late))
            try:
                data = sock.recv(READ_SIZE)
            except TimeoutError:
                raise TimeoutError(late) from None
            except (ConnectionResetError, ssl.SSLEOFError) as exc:
                if answer.received:
                    raise
                raise _Stale("the server closed the connection") from exc
            if answer.take(data):
                break
        return answer.result()

    def _answer(self, status: int, body: bytes) -> Any:
        if status == 304:
            return NOT_MODIFIED
        if status == 200:
            try:
                return json.loads(body)
            except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
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

    # ---- connections ----------------------------------------------------------------------

    def _idle_connection(self) -> socket.socket | None:
        """The kept-alive connection, checked out, if there is one and it is quiet."""
        with self._lock:
            if self._closed:
                raise ServerError("this LiveConfig is closed")
            sock, self._idle = self._idle, None
            if sock is None:
                return None
            if _quiet(sock):
                self._busy.add(sock)
                return sock
        sock.close()  # closed by the server while idle, or out of step: never reused
        return None

    def _connect(self) -> socket.socket:
        """A new connection (TLS if the URL is https), checked out. Each address the name
        resolves to is tried in turn, all within ``timeout`` seconds."""
        deadline = time.monotonic() + self.timeout
        host, port = self._address
        failure: OSError | None = None
        for family, kind, proto, _, address in socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM
        ):
            try:
                sock = socket.socket(family, kind, proto)
            except OSError as exc:  # this machine has no such family (no IPv6, say)
                failure = exc
                continue
            self._held(sock, replacing=None)
            try:
                late = f"timed out: not connected within {self.timeout:g} s"
                sock.settimeout(_remaining(deadline, late))
                try:
                    sock.connect(address)
                except TimeoutError:
                    raise TimeoutError(late) from None
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                return sock if self._tls is None else self._handshake(sock, deadline)
            except ssl.SSLError:
                raise  # a certificate or protocol problem: another address will not differ
            except OSError as exc:
                self._discard(sock)
                if self._closed:
                    raise
                failure = exc
        raise failure or OSError(f"{host} resolves to no address")

    def _handshake(self, sock: socket.socket, deadline: float) -> ssl.SSLSocket:
        assert self._tls is not None
        try:
            secure = self._tls.wrap_socket(
                sock, server_hostname=self._address[0], do_handshake_on_connect=False
            )
        except BaseException:
            self._discard(sock)
            raise
        self._held(secure, replacing=sock)  # wrap_socket took over sock's file descriptor
        try:
            late = f"timed out: no TLS handshake within {self.timeout:g} s"
            secure.settimeout(_remaining(deadline, late))
            try:
                secure.do_handshake()
            except TimeoutError:
                raise TimeoutError(late) from None
        except BaseException:
            self._discard(secure)
            raise
        return secure

    def _held(self, sock: socket.socket, replacing: socket.socket | None) -> socket.socket:
        """Register ``sock`` as in use, so that close() from another thread can break it."""
        with self._lock:
            if replacing is not None:
                self._busy.discard(replacing)
            self._busy.add(sock)
            closed = self._closed
        if closed:  # close() ran before sock was registered: it could not break it
            self._discard(sock)
            raise ServerError("this LiveConfig is closed")
        return sock

    def _check_in(self, sock: socket.socket, keep: bool) -> None:
        """Done with ``sock``: kept for the next exchange if it can carry one and none is."""
        with self._lock:
            self._busy.discard(sock)
            if keep and not self._closed and self._idle is None:
                self._idle = sock
                return
        sock.close()

    def _discard(self, sock: socket.socket) -> None:
        with self._lock:
            self._busy.discard(sock)
        sock.close()

    def _abort(self) -> None:
        """Break every exchange in flight (from any thread): each fails at once."""
        with self._lock:
            busy = list(self._busy)
        for sock in busy:
            with contextlib.suppress(OSError):  # the TCP socket itself: an SSLSocket's own
                socket.socket.shutdown(sock, socket.SHUT_RDWR)  # shutdown would talk TLS

    def close(self) -> None:
        """No more exchanges: those in flight fail at once, the idle connection is closed."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, None
        if idle is not None:
            idle.close()
        self._abort()


def _error_of(status: int, body: bytes) -> tuple[str, str | None]:
    """The server's ``{"error", "hint"}``, or the start of whatever it sent instead."""
    try:
        data = json.loads(body)
        return str(data["error"]), (str(data["hint"]) if data.get("hint") else None)
    except (ValueError, KeyError, TypeError, RecursionError):
        text = body[:200].decode("utf-8", "replace").strip()
        return text or f"HTTP {status}", None
