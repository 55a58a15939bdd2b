"""The server's hottest request, answered at the protocol level: a consumer reading its config.

A following consumer (the SDK, an agent) reads ``GET /api/v1/envs/{env}/config``, plain or
``?wait=N`` to long-poll, over and over; when a rollback lands, every consumer of the fleet
reads at once. Through ASGI each read costs a task, a scope, the ASGI message dictionaries and
uvicorn's response writer: several times the read itself. So the read is taken here, inside
uvicorn's own HTTP protocol (:class:`FastProtocol` subclasses uvicorn's ``httptools``
protocol):

- a read that arrives whole in one segment, in the shape every consumer sends, is parsed in one
  pass by two regular expressions (:func:`plain_read`) instead of a Python callback per header
  from ``httptools``; anything else is fed to ``httptools`` as before, and its read is taken
  right after its headers are parsed; a client polling with its ETag sends the same bytes
  read after read, and a read that repeats the connection's last one is answered as it was
  (:meth:`FastProtocol._answered_again`) while the version, the cached token and the ``Date``
  are the same and it records no consumer report;

- an answer is one prepared buffer per published version (status line, headers, body), written
  to the socket with the current ``Date``;
- a long-poll holds no task and no coroutine: the connection registers with the environment's
  feed (:meth:`lastgood.server.live.Feed.hold`), and the feed's refresh writes the new version
  to every holder whose version changed; ``304`` is answered at the deadline, which waits with
  every other in :mod:`lastgood.server.deadlines` (one loop timer, not one per read). One
  switch reaching ten thousand held consumers is ten thousand writes of the same bytes;
- an answer arms no keep-alive timer: it notes its time, and the connections left idle are
  closed by one sweep (:mod:`lastgood.server.keepalive`).

Only the plain case is taken: a ``GET`` over keep-alive HTTP/1.1 with no other parameter, a
token the server has cached that may read the environment, report headers that parse, a
version published, and no earlier request on the connection still being answered. Anything
else goes on to uvicorn and FastAPI unchanged (the same read, answered by the ``config`` route
of :mod:`lastgood.server.config_api`), which stay the one place that words errors. What is
answered here is what that route answers: the same status, headers, body, consumer report and
long-poll rules.

When the server stops, a held read is answered ``503`` at once ("the server is stopping"), as
:class:`lastgood.server.runner.GracefulStop` answers the held reads that run as tasks, and the
connection is closed; the SDK moves to its next server.
"""

from __future__ import annotations

import json
import re
import time
from asyncio import AbstractEventLoop, Transport
from collections.abc import Collection
from typing import TYPE_CHECKING, Any, ClassVar

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from lastgood.errors import UsageError
from lastgood.rows import ApiToken
from lastgood.server.access import log_access
from lastgood.server.config_api import report_from, still_there
from lastgood.server.deadlines import Deadlines
from lastgood.server.keepalive import KeepAlive
from lastgood.server.live import Canary, Feed, Served, etag_matches
from lastgood.tokens import allows

if TYPE_CHECKING:
    from lastgood.server.app import ServerState

PREFIX = b"/api/v1/envs/"
SUFFIX = b"/config"
MAX_WAIT = 60.0
# the request headers a read looks at (uvicorn hands them over lower-cased)
READ_BY = frozenset((b"authorization", b"if-none-match", b"x-lastgood-consumer",
                     b"x-lastgood-consumer-name", b"x-lastgood-serving",
                     b"x-lastgood-consumer-kind", b"x-lastgood-health",
                     b"x-lastgood-metrics"))  # fmt: skip


Plain = tuple[str, float, dict[str, str]]
"""A plain read: its environment, long-poll seconds and the headers it is read by."""

# A whole plain read, as one string (the bytes decoded as latin-1): ``GET``, the config path
# with an optional query, ``HTTP/1.1``, header lines whose names are tokens and whose values hold
# only the characters httptools accepts (no obs-fold, no control character), and the blank line
# ending the request, with nothing after it. Anything else goes to httptools.
_NOT_IN_TARGET = r"\x00-\x20\x7f-\xff"
PLAIN_READ = re.compile(
    rf"GET /api/v1/envs/([^/%?#{_NOT_IN_TARGET}]+)/config(?:\?([^#{_NOT_IN_TARGET}]*))?"
    r" HTTP/1\.1\r\n((?:[-!#$%&'*+.^_`|~0-9A-Za-z]+:[\t\x20-\x7e\x80-\xff]*\r\n)*)\r\n"
)
HEADER_LINE = re.compile(r"([^:]+):([^\r]*)\r\n")  # within a block PLAIN_READ has checked
READ_BY_NAME = frozenset(name.decode() for name in READ_BY)
# headers that say how the request is framed or what the connection becomes: a read that
# sends one (but "Connection: keep-alive") is left to httptools and uvicorn
FRAMING = frozenset(("connection", "proxy-connection", "content-length", "transfer-encoding",
                     "upgrade", "expect"))  # fmt: skip
PLAIN_START = b"GET " + PREFIX
MAX_PLAIN = 16 * 1024  # a read's bytes, at most (the SDK's are about 400)


def plain_read(data: bytes) -> Plain | None:
    """The environment, long-poll seconds (:func:`plain_wait`) and read headers
    (:data:`READ_BY`, lower-case names, values stripped as uvicorn strips them) of ``data`` when
    it is exactly one plain read; else None.

    A consumer sends each read whole in one segment: this replaces the Python callbacks
    httptools makes for it (one per header, and four more) by two regular-expression calls. It
    is strict on purpose: whatever it does not accept is parsed by httptools as any request
    is."""
    match = PLAIN_READ.fullmatch(data.decode("latin-1"))
    if match is None:
        return None
    env, query, block = match.groups()
    wait = plain_wait(query or "")
    if wait is None:
        return None
    headers: dict[str, str] = {}
    for name, value in HEADER_LINE.findall(block):
        name = name.lower()
        if name in READ_BY_NAME:
            if name in headers:  # sent twice: FastAPI decides which one counts
                return None
            headers[name] = value.strip(" \t")
        elif name in FRAMING and (
            not name.endswith("connection") or value.strip(" \t").lower() != "keep-alive"
        ):
            return None
    return env, wait, headers


def read_headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str] | None:
    """:func:`plain_read`'s headers, from the pairs uvicorn collected (names lower-cased);
    None when one of them is sent twice."""
    pairs = [(name.decode(), value.decode("latin-1")) for name, value in raw if name in READ_BY]
    headers = dict(pairs)
    return headers if len(headers) == len(pairs) else None


def parsed_read(
    parser: httptools.HttpRequestParser, url: bytes, raw: list[tuple[bytes, bytes]]
) -> Plain | None:
    """:func:`plain_read` for a request httptools has parsed up to its headers: its target
    ``url`` and the header pairs uvicorn collected."""
    if parser.get_method() != b"GET" or parser.get_http_version() != "1.1":
        return None
    if not parser.should_keep_alive() or parser.should_upgrade():
        return None
    parsed = httptools.parse_url(url)
    path = parsed.path
    if not (path.startswith(PREFIX) and path.endswith(SUFFIX)):
        return None
    env = path[len(PREFIX) : -len(SUFFIX)]
    if not env.isascii() or b"/" in env or b"%" in env:
        return None
    wait = plain_wait((parsed.query or b"").decode("latin-1"))
    headers = read_headers(raw)
    if wait is None or headers is None:
        return None
    return env.decode(), wait, headers


def plain_wait(query: str) -> float | None:
    """The long-poll seconds of a query taken here (none: 0), or None to let FastAPI answer
    (any other parameter, or a value it must refuse with its own words)."""
    if not query:
        return 0.0
    name, _, value = query.partition("=")
    if name != "wait" or "&" in value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if 0 <= seconds <= MAX_WAIT else None


def _header_lines(pairs: list[tuple[bytes, bytes]]) -> bytes:
    return b"".join(name + b": " + value + b"\r\n" for name, value in pairs)


class Answers:
    """The 200 and 304 answers of one published version, as bytes after the status line and
    the server's default headers (``Date``), which change every second."""

    def __init__(self, served: Served) -> None:
        self.served = served
        common = [(b"etag", served.etag.encode()),
                  (b"x-lastgood-version", str(served.version).encode()),
                  (b"cache-control", b"no-cache")]  # fmt: skip
        self.not_modified = _header_lines(common) + b"\r\n"  # a 304 has no body, by definition
        length = str(len(served.body)).encode()
        full = [*common, (b"content-type", b"application/json"), (b"content-length", length)]
        self.full = _header_lines(full) + b"\r\n" + served.body
        self.dated = (b"", b"")  # (the Date lines, the whole 200 answer with them)


class Read:
    """One read taken here: what to answer, and what a long-poll holds against."""

    __slots__ = ("consumer", "cycle", "env", "feed", "headers", "holds", "served", "started",
                 "wait")  # fmt: skip

    def __init__(self, feed: Feed, served: Served, headers: dict[str, str], wait: float) -> None:
        self.feed, self.env, self.served = feed, feed.env, served
        self.headers, self.wait = headers, wait
        self.consumer = headers.get("x-lastgood-consumer")
        self.started = time.perf_counter()
        # what uvicorn's protocol sees of this request: a read answered at once shares one
        # that is complete; a held read gets its own (see FastProtocol._take)
        self.cycle = ANSWERED
        # whether the consumer already has what is live for it (its If-None-Match)
        self.holds = etag_matches(headers.get("if-none-match"), served.etag)

    def fresh(self, served: Served) -> bool:
        """Whether the consumer already holds ``served`` (its ``If-None-Match``)."""
        if served is self.served:
            return self.holds
        return etag_matches(self.headers.get("if-none-match"), served.etag)


class FastReads:
    """The server's side of the fast path: which reads it takes, and their prepared answers."""

    def __init__(self, state: ServerState, access: bool = False) -> None:
        self.state = state
        self.access = access  # log each read as the access log does (``serve --access-log``)
        self._answers: list[Answers] = []  # the newest first: two during a gradual rollout
        self._date_source: object = None
        self._date = b""
        self._deadlines: Deadlines | None = None
        self._keep_alive: KeepAlive | None = None

    def take(self, env: str, wait: float, headers: dict[str, str], caller: Caller) -> Read | None:
        """The read of ``env`` with this long-poll and these headers (:data:`READ_BY`), its
        report recorded; or None, before anything is recorded or sent, when FastAPI must answer
        it. ``caller`` is what the connection's earlier reads proved about who sends them."""
        feed = self.state.feeds.get(env)
        if feed is None:
            return None
        served = feed.pick(headers.get("x-lastgood-consumer"))
        if served is None or not self._may_read(caller, headers.get("authorization"), env):
            return None
        try:
            report_from(self.state, env, headers)
        except UsageError:
            return None
        return Read(feed, served, headers, wait)

    def deadlines(self, loop: AbstractEventLoop) -> Deadlines:
        """The deadlines of held reads, on the loop this process serves with."""
        if self._deadlines is None or self._deadlines.loop is not loop:
            self._deadlines = Deadlines(loop)
        return self._deadlines

    def keep_alive(
        self, loop: AbstractEventLoop, connections: Collection[Any], timeout: float
    ) -> KeepAlive:
        """What closes the idle connections among ``connections`` (uvicorn's set of this
        server's), on the loop this process serves with."""
        if self._keep_alive is None or self._keep_alive.loop is not loop:
            self._keep_alive = KeepAlive(loop, connections, timeout)
        return self._keep_alive

    def _may_read(self, caller: Caller, authorization: str | None, env: str) -> bool:
        """Whether the cached token of ``authorization`` may read ``env``. A consumer sends
        the same header on every read of its connection: while the cache hands back the very
        token object the last read was allowed with, neither the hash nor the role is worked
        out again (a token read again from the store, or revoked, is a new object or none)."""
        auth = self.state.auth
        if caller.authorization == authorization and caller.env == env and caller.token_hash:
            token = auth.cached_hash(caller.token_hash)
            if token is not None and token is caller.token:
                return True
        token_hash = auth.hash_of(authorization)
        token = None if token_hash is None else auth.cached_hash(token_hash)
        if token is None or not allows(token, "viewer", env):
            return False
        caller.authorization, caller.env, caller.token_hash = authorization, env, token_hash
        caller.token = token
        return True

    def answer(
        self, read: Read, served: Served, default_headers: list[tuple[bytes, bytes]]
    ) -> bytes:
        """The whole answer to ``read`` with ``served`` live for it: ``304`` when it holds it."""
        answers = self._answers_of(served)
        if default_headers is not self._date_source:
            self._date_source, self._date = default_headers, _header_lines(default_headers)
        if read.fresh(served):
            return b"HTTP/1.1 304 Not Modified\r\n" + self._date + answers.not_modified
        if answers.dated[0] is not self._date:  # one buffer per version and second, however
            answers.dated = (self._date, b"HTTP/1.1 200 OK\r\n" + self._date + answers.full)
        return answers.dated[1]  # many consumers it reaches

    def _answers_of(self, served: Served) -> Answers:
        for answers in self._answers:
            if answers.served is served:
                return answers
        answers = Answers(served)
        self._answers = [answers, *self._answers[:1]]
        return answers

    def still_there(self, read: Read) -> None:
        """A long-poll ended unchanged: the consumer is alive."""
        still_there(self.state, read.env, read.headers)


class Caller:
    """What a connection's last allowed read proved (see :meth:`FastReads._may_read`)."""

    __slots__ = ("authorization", "env", "token", "token_hash")

    def __init__(self) -> None:
        self.authorization: str | None = None
        self.env = ""
        self.token_hash: str | None = None
        self.token: ApiToken | None = None


# a read answered at once, as FastProtocol._answered_again checks it: the feed, the version and
# rollout step it published, the token object, uvicorn's default headers (the Date) and the answer
_Again = tuple[Feed, Served | None, Canary | None, ApiToken | None, object, bytes]


class _Cycle:
    """What uvicorn's protocol looks at of the request it is answering, for a read taken here
    (its ``connection_lost``, ``on_body`` and pipelining read these attributes)."""

    __slots__ = ("body", "disconnected", "keep_alive", "more_body", "response_complete")

    message_event: ClassVar[Any]  # set below: an event nobody waits on

    def __init__(self) -> None:
        self.response_complete = False
        self.keep_alive = True
        self.disconnected = False
        self.more_body = False
        self.body = b""


class _Unwatched:
    def set(self) -> None:
        pass


_Cycle.message_event = _Unwatched()
ANSWERED = _Cycle()  # the cycle of every read answered at once (never changed: it is complete)
ANSWERED.response_complete = True


def _stopping_answer() -> bytes:
    error = {"error": "the server is stopping and did not answer this request",
             "hint": "ask again when it is back", "exit_code": 1}  # fmt: skip
    body = json.dumps(error).encode()
    head = _header_lines([(b"content-type", b"application/json"), (b"connection", b"close"),
                          (b"content-length", str(len(body)).encode())])  # fmt: skip
    return b"HTTP/1.1 503 Service Unavailable\r\n" + head + b"\r\n" + body


STOPPING = _stopping_answer()


class FastProtocol(HttpToolsProtocol):
    """Uvicorn's ``httptools`` protocol, taking the plain config read itself (see the module
    docstring). :func:`protocol_for` makes the subclass that knows the server's state."""

    reads: ClassVar[FastReads]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._held: Read | None = None
        self._caller = Caller()
        # the loop time of the last answer, until a request begins (see keepalive.KeepAlive)
        self.idle_since: float | None = None
        self._between = True  # httptools is between requests: none begun, or the last one ended
        # the last plain read parsed here: a consumer sends the same bytes read after read
        self._last: tuple[bytes, Plain | None] = (b"", None)
        self._again: _Again | None = None  # how the last of them was answered, if at once

    def data_received(self, data: bytes) -> None:
        """A plain read that arrives whole is answered without httptools (see
        :func:`plain_read`); the rest is parsed by it. Only between requests: a request
        httptools has begun is ended by httptools."""
        self.idle_since = None  # the client is sending: not idle (as uvicorn's timer is cancelled)
        if self._between and len(data) <= MAX_PLAIN and data.startswith(PLAIN_START):
            last, plain = self._last
            if data != last:
                plain = plain_read(data)
                self._last, self._again = (data, plain), None
            elif self._answered_again():
                return
            if plain is not None and self._take(*plain, whole=True):
                return
        super().data_received(data)

    def _answered_again(self) -> bool:
        """Answer the same bytes as the last read the way it was answered, when nothing that
        answer depends on has changed: the same version published (and rollout step), the
        same token object in the cache (a token read again or revoked is another object or
        none), the same ``Date``, and nothing else being answered. A client polling with its
        ETag sends the same read again and again; this skips taking it apart once more."""
        again = self._again
        if again is None:
            return False
        feed, current, canary, token, dated, answer = again
        cycle, caller = self.cycle, self._caller
        if (
            feed.current is not current
            or feed.canary is not canary
            or self.server_state.default_headers is not dated
            or (cycle is not None and not cycle.response_complete)
            or caller.token is not token
            or caller.token_hash is None
            or self.reads.state.auth.cached_hash(caller.token_hash) is not token
            or self.transport.is_closing()
        ):
            return False
        self.cycle = ANSWERED  # type: ignore[assignment]
        self.transport.write(answer)
        self.on_response_complete()
        return True

    def connection_made(self, transport: Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.reads.keep_alive(self.loop, self.connections, self.timeout_keep_alive).watch()

    def on_response_complete(self) -> None:
        """uvicorn's, but no keep-alive timer: the answer's time is noted, and
        :class:`lastgood.server.keepalive.KeepAlive` closes the connection if no request
        follows in time. A consumer asks again at once, so nearly every keep-alive timer
        uvicorn arms here would be cancelled unused."""
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        if self.flow.read_paused:
            self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
            return
        if self._between:  # else the next request has begun, or this one is still being read
            self.idle_since = self.loop.time()  # (then on_message_complete notes the time)

    def on_message_begin(self) -> None:
        """What uvicorn's does, but the ASGI scope: a read taken here never needs one, so it is
        built in :meth:`on_headers_complete` for the requests that go on to FastAPI."""
        self.url, self.headers, self.expect_100_continue = b"", [], False
        self.idle_since, self._between = None, False
        self._again = None  # another request: let go of the last answer (a version's body)

    def on_message_complete(self) -> None:
        # after a request that ends the connection httptools takes nothing more
        self._between = self.parser.should_keep_alive()
        cycle = self.cycle  # None: an upgrade was the connection's first request
        if cycle is not None and cycle.response_complete:  # answered before it was all read
            self.idle_since = self.loop.time()
        super().on_message_complete()

    def on_headers_complete(self) -> None:
        if self._take_parsed():
            return
        url, headers, expect = self.url, self.headers, self.expect_100_continue
        super().on_message_begin()  # the scope, as uvicorn builds it; then what was parsed
        self.url, self.expect_100_continue = url, expect
        self.headers.extend(headers)  # the very list the scope holds
        super().on_headers_complete()

    def _take_parsed(self) -> bool:
        """:meth:`_take` for a request httptools parsed, if it is a plain read."""
        plain = parsed_read(self.parser, self.url, self.headers)
        return plain is not None and self._take(*plain)

    def _take(self, env: str, wait: float, headers: dict[str, str], whole: bool = False) -> bool:
        """Answer or hold the plain read of ``env``; False to let uvicorn run the request.
        ``whole``: the read is the bytes :meth:`data_received` last got, all of them (then
        the same bytes may be answered again the same way)."""
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            return False  # an earlier request on this connection is still being answered
        read = self.reads.take(env, wait, headers, self._caller)
        if read is None:
            return False
        self.idle_since = None
        if read.wait and read.holds:
            read.cycle = _Cycle()
            self.cycle = read.cycle  # type: ignore[assignment]
            self._hold(read)
        else:
            self.cycle = ANSWERED  # type: ignore[assignment]
            answer = self._send(read, read.served)
            if whole and answer is not None and read.consumer is None and not self.reads.access:
                feed = read.feed  # nothing to record or log: the same read is answered so again
                self._again = (feed, feed.current, feed.canary, self._caller.token,
                               self.server_state.default_headers, answer)  # fmt: skip
        return True

    def _hold(self, read: Read) -> None:
        self._held = read
        read.feed.hold(self, read.consumer, read.served.etag)
        self.reads.deadlines(self.loop).add(read.wait, self._deadline_passed, read)

    def _deadline_passed(self, read: object) -> None:
        if read is self._held:  # not answered meanwhile (then another read may be held)
            self._expired()

    def changed(self, served: Served) -> None:
        """The feed published a new version for this held read (see :meth:`Feed.hold`); it
        has let go of the read already."""
        read, self._held = self._held, None
        if read is not None:
            self._send(read, served)

    def _expired(self) -> None:
        read = self._release()
        if read is None:
            return
        served = read.feed.pick(read.consumer) or read.served
        if read.fresh(served):  # unchanged: the consumer is alive (after a change, it reports
            self.reads.still_there(read)  # on its next read, which follows at once)
        self._send(read, served)

    def _release(self) -> Read | None:
        read, self._held = self._held, None
        if read is not None:
            read.feed.release(self)
        return read

    def _send(self, read: Read, served: Served) -> bytes | None:
        """Write the answer to ``read`` with ``served`` live for it; the answer, or None when
        the connection is closing."""
        transport: Transport = self.transport
        if transport.is_closing():
            return None
        answer = self.reads.answer(read, served, self.server_state.default_headers)
        transport.write(answer)
        read.cycle.response_complete = True  # not self.cycle: pipelined requests may follow
        if self.reads.access:  # (the status is worked out only for the access log)
            self._logged(read, 304 if answer.startswith(b"HTTP/1.1 304") else 200)
        self.on_response_complete()
        return answer

    def connection_lost(self, exc: Exception | None) -> None:
        self._release()
        super().connection_lost(exc)

    def shutdown(self) -> None:
        """The server stops: a held read is answered ``503`` and its connection closed."""
        read = self._release()
        if read is not None and not self.transport.is_closing():
            self.transport.write(STOPPING)
            self.transport.close()
            self._logged(read, 503)
            return
        super().shutdown()

    def _logged(self, read: Read, status: int) -> None:
        """The access line of a read taken here, with ``serve --access-log``."""
        if self.reads.access:
            path = (PREFIX + read.env.encode() + SUFFIX).decode()
            log_access(self.client, "GET", path, status, time.perf_counter() - read.started)


def protocol_for(state: ServerState, access: bool = False) -> type[FastProtocol]:
    """The protocol class uvicorn runs for the server whose state is ``state``."""
    reads = FastReads(state, access)
    return type("ServerProtocol", (FastProtocol,), {"reads": reads})
