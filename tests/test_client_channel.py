"""The SDK's HTTP exchange (``lastgood.client.channel``) against a scripted HTTP peer.

The real server is covered by ``tests/test_client.py``; here a raw socket server answers with
exactly the bytes a test scripts (kept-alive, chunked, HTTP/1.0 ended by closing, truncated,
not HTTP at all), counts the connections it accepted and keeps every request it read, so the
tests see what the SDK does on the wire: one connection for a whole follow, the report headers,
a reconnect only when safe, and a clear error (never a half-applied config) otherwise.
"""

from __future__ import annotations

import json
import re
import select
import socket
import threading
import time
from collections.abc import Iterator
from typing import NamedTuple

import pytest

from lastgood.client import LiveConfig, channel, content_hash_of
from lastgood.client.payload import encode_files
from lastgood.errors import ServerError, UsageError
from tests.conftest import eventually

CLOSE = b""  # a scripted answer of nothing: close the connection without answering


class Paced(NamedTuple):
    """A scripted answer sent in parts, ``pause`` seconds apart (a slow or chatty server)."""

    parts: list[bytes]
    pause: float


class Hold(NamedTuple):
    """A scripted answer of silence: hold the request ``seconds``, then close without a byte."""

    seconds: float


def payload(version: int, text: str) -> bytes:
    files = {"app.yaml": text.encode()}
    return json.dumps({"env": "staging", "version": version, "content_hash": content_hash_of(
        files), "drifted": False, "files": encode_files(files)}).encode()  # fmt: skip


def ok(body: bytes, *extra: str) -> bytes:
    head = "".join(f"{line}\r\n" for line in extra)
    return f"HTTP/1.1 200 OK\r\ncontent-length: {len(body)}\r\n{head}\r\n".encode() + body


def chunked(body: bytes) -> bytes:
    half = len(body) // 2
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:half], body[half:]))
    return b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n"


NOT_MODIFIED = b'HTTP/1.1 304 Not Modified\r\netag: "x"\r\n\r\n'


class Peer:
    """A one-thread HTTP peer on 127.0.0.1 answering each request with the next scripted bytes.

    After an answer that is HTTP/1.0 or says ``connection: close``, or after ``CLOSE``, it
    closes the connection; otherwise it keeps it for the next request."""

    def __init__(self, answers: list[bytes | Paced | Hold]) -> None:
        self.answers = list(answers)
        self.requests: list[str] = []
        self.connections = 0
        self.closed = 0  # connections this peer has closed
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self.answers:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            with connection:
                self._converse(connection)
            self.closed += 1

    def _converse(self, connection: socket.socket) -> None:
        buffer = b""
        while self.answers:
            while b"\r\n\r\n" not in buffer:
                data = connection.recv(65536)
                if not data:
                    return
                buffer += data
            request, _, buffer = buffer.partition(b"\r\n\r\n")
            self.requests.append(request.decode())
            answer = self.answers.pop(0)
            if answer is CLOSE:
                return
            if isinstance(answer, Hold):
                time.sleep(answer.seconds)
                return
            parts, pause = answer if isinstance(answer, Paced) else ([answer], 0.0)
            try:
                for number, part in enumerate(parts):
                    time.sleep(pause if number else 0)
                    connection.sendall(part)
            except OSError:  # the client gave up on this answer and closed
                return
            whole = b"".join(parts)
            if whole.startswith(b"HTTP/1.0") or b"connection: close" in whole:
                return

    def header(self, number: int, name: str) -> str | None:
        for line in self.requests[number].split("\r\n")[1:]:
            key, _, value = line.partition(":")
            if key.lower() == name.lower():
                return value.strip()
        return None

    def close(self) -> None:
        self.answers.clear()
        self.listener.close()


@pytest.fixture
def peer() -> Iterator[type[Peer]]:
    made: list[Peer] = []

    class Made(Peer):
        def __init__(self, answers: list[bytes | Paced | Hold]) -> None:
            super().__init__(answers)
            made.append(self)

    yield Made
    for each in made:
        each.close()


def live(peer: Peer, **options: object) -> LiveConfig:
    return LiveConfig(peer.url, "staging", token="lg_secret", cache=False, start=False,
                      consumer_id="c-1", name="api-1", **options)  # type: ignore[arg-type]  # fmt: skip


def test_a_follow_keeps_one_connection_and_reports_what_it_serves(peer: type[Peer]) -> None:
    first, second = payload(1, "a: 1\n"), payload(2, "a: 2\n")
    script = peer([ok(first), NOT_MODIFIED, ok(second), chunked(payload(3, "a: 3\n"))])
    config = live(script)
    assert config.version == 1 and not config.refresh()
    assert config.refresh() and config.get("app.yaml") == {"a": 2}
    assert config.refresh() and config.get("app.yaml") == {"a": 3}  # chunked
    config.close()
    assert script.connections == 1  # kept alive across 200s and 304s
    assert script.requests[0].startswith("GET /api/v1/envs/staging/config HTTP/1.1")
    assert script.header(0, "X-Lastgood-Serving") == "none"
    assert script.header(0, "If-None-Match") is None
    assert script.header(0, "Authorization") == "Bearer lg_secret"
    assert script.header(0, "Host") == script.url.removeprefix("http://")
    assert (script.header(0, "X-Lastgood-Consumer"), script.header(0, "X-Lastgood-Consumer-Name")) \
        == ("c-1", "api-1")  # fmt: skip
    hash_one = json.loads(first)["content_hash"]
    assert script.header(1, "X-Lastgood-Serving") == f"1:{hash_one}"
    assert script.header(1, "If-None-Match") == f'"{hash_one}"'
    assert script.header(3, "X-Lastgood-Serving") == f"2:{json.loads(second)['content_hash']}"


def test_answers_ended_by_closing_and_idle_closes_reconnect(peer: type[Peer]) -> None:
    http10 = b"HTTP/1.0 200 OK\r\n\r\n" + payload(1, "a: 1\n")  # no length: ends at close
    script = peer([http10, ok(payload(2, "a: 2\n")), CLOSE, ok(payload(3, "a: 3\n"))])
    config = live(script)
    assert config.version == 1
    assert config.refresh() and config.version == 2  # a new connection after the HTTP/1.0 one
    assert config.refresh() and config.version == 3  # closed while idle: retried once, safely
    config.close()
    assert script.connections == 3 and len(script.requests) == 4


def test_a_truncated_or_foreign_answer_is_an_error_and_changes_nothing(
    peer: type[Peer],
) -> None:
    body = payload(2, "a: 2\n")
    torn = f"HTTP/1.1 200 OK\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n"
    script = peer([ok(payload(1, "a: 1\n")), torn.encode() + body[:20],
                   b"SSH-2.0-OpenSSH_9.2\r\n\r\n", ok(body)])  # fmt: skip
    config = live(script)
    with pytest.raises(ServerError, match="mid-answer") as torn_error:
        config.refresh()
    assert script.url in str(torn_error.value) and "lg_secret" not in str(torn_error.value)
    assert config.version == 1
    with pytest.raises(ServerError, match="answered something that is not HTTP"):
        config.refresh()
    assert config.version == 1
    assert config.refresh() and config.version == 2  # and the next answer is taken again
    config.close()


def test_header_values_that_could_forge_a_header_are_refused(peer: type[Peer]) -> None:
    script = peer([ok(payload(1, "a: 1\n")), ok(payload(1, "a: 1\n"))])
    with pytest.raises(UsageError, match="token has characters"):
        LiveConfig(script.url, "staging", token="lg_x\r\nX-Admin: yes", cache=False)
    with pytest.raises(UsageError, match="name must be"):
        LiveConfig(script.url, "staging", name="api\n1", cache=False)
    with live(script) as config:  # the peer reads requests in order: this one must be the first
        assert config.version == 1
    reads = [request for request in script.requests if request.startswith("GET ")]
    assert len(reads) == 1  # refused before anything was sent (then close() says it leaves)
    assert script.header(0, "Authorization") == "Bearer lg_secret"


def test_a_read_that_times_out_says_so() -> None:
    listener = socket.create_server(("127.0.0.1", 0))  # accepts, never answers
    try:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        started = time.monotonic()
        with pytest.raises(ServerError, match="timed out"):
            LiveConfig(url, "staging", cache=False, timeout=0.3, start=False)
        assert time.monotonic() - started < 5
    finally:
        listener.close()


def test_an_early_hint_before_the_answer_is_skipped(peer: type[Peer]) -> None:
    hint = b"HTTP/1.1 103 Early Hints\r\nlink: </app.css>; rel=preload\r\n\r\n"
    script = peer([hint + ok(payload(1, "a: 1\n")), NOT_MODIFIED])
    config = live(script)
    assert config.version == 1 and not config.refresh()  # the 304 is the second request's
    config.close()
    assert script.connections == 1


def test_a_host_that_is_not_ascii_is_refused_plainly() -> None:
    with pytest.raises(UsageError, match="xn--"):
        LiveConfig("http://bücher.example:8470", "staging", cache=False)


REQUEST_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


def test_bytes_after_an_answer_keep_the_answer_and_spoil_only_the_connection(
    peer: type[Peer],
) -> None:
    first, third = ok(payload(1, "a: 1\n")), ok(payload(3, "a: 3\n"))
    script = peer([first + REQUEST_TIMEOUT, ok(payload(2, "a: 2\n")), third + b"\x00garbage",
                   ok(payload(4, "a: 4\n"))])  # fmt: skip
    config = live(script)
    assert config.version == 1  # the 408 glued behind it did not spoil it
    assert config.refresh() and config.version == 2  # on a new connection, not answered 408
    assert config.refresh() and config.version == 3  # bytes that are not HTTP at all, the same
    assert config.refresh() and config.version == 4
    config.close()
    assert script.connections == 3 and len(script.requests) == 4


def test_an_idle_connection_the_server_spoke_on_is_not_reused(peer: type[Peer]) -> None:
    script = peer([Paced([ok(payload(1, "a: 1\n")), REQUEST_TIMEOUT], pause=0.2),
                   ok(payload(2, "a: 2\n"))])  # fmt: skip
    config = live(script)
    eventually(lambda: script.closed == 1)  # the server said 408 and closed while it was idle
    assert config.refresh() and config.version == 2  # asked on a new one, never read the 408
    config.close()
    assert script.connections == 2 and len(script.requests) == 2


def test_a_trickling_answer_times_out_as_a_whole() -> None:
    body = payload(1, "a: 1\n")
    head = f"HTTP/1.1 200 OK\r\ncontent-length: {len(body)}\r\n\r\n".encode()
    script = Peer([Paced([head, *(body[i : i + 1] for i in range(len(body)))], pause=0.05)])
    started = time.monotonic()
    try:
        with pytest.raises(ServerError, match=r"timed out: no whole answer within 0\.5 s"):
            live(script, timeout=0.5)  # each byte comes within 0.5 s; the answer never does
    finally:
        script.close()
    assert time.monotonic() - started < 3


def test_an_answer_too_large_is_refused(peer: type[Peer], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(channel, "MAX_ANSWER", 4096)  # rather than sending 512 MiB
    script = peer([ok(payload(1, "a: 1\n" * 2000)), ok(payload(2, "a: 2\n"))])
    with pytest.raises(ServerError, match="over 4,096 bytes"):
        live(script)
    with live(script) as config:
        assert config.version == 2  # the next answer is taken again, on a new connection
    assert script.connections == 2


def filled_listener() -> tuple[socket.socket, list[socket.socket]]:
    """A listener whose accept queue is full: a new connection hangs in the handshake."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=0)
    queued = []
    for _ in range(4):
        waiting = socket.socket()
        waiting.setblocking(False)
        waiting.connect_ex(listener.getsockname())
        queued.append(waiting)
    _, connected, _ = select.select([], queued, [], 10)  # writable: its handshake is done
    assert connected, "no connection reached the accept queue"
    return listener, queued


@pytest.mark.parametrize("stage", ["connecting", "tls handshake", "long-poll"])
def test_close_breaks_an_exchange_at_any_stage(stage: str) -> None:
    """close() from another thread ends fetch() at once, whatever it is waiting for."""
    if stage == "connecting":
        listener, held = filled_listener()
    else:  # accepted by the kernel, never answered: TLS never starts, the poll never ends
        listener, held = socket.create_server(("127.0.0.1", 0)), []
    scheme = "https" if stage == "tls handshake" else "http"
    url = f"{scheme}://127.0.0.1:{listener.getsockname()[1]}"
    wire = channel.Channel(url, "staging", token="lg_secret", consumer_id="c-1", name="api-1",
                           timeout=30)  # fmt: skip
    failures: list[BaseException] = []

    def fetch() -> None:
        try:
            wire.fetch(serving="none", etag=None, wait=30 if stage == "long-poll" else 0)
        except BaseException as exc:
            failures.append(exc)

    worker = threading.Thread(target=fetch)
    worker.start()
    time.sleep(0.3)  # the thing under test: after a while it is still blocked, not finished
    assert worker.is_alive() and not failures  # still waiting, as a blackholed server makes it
    wire.close()
    worker.join(5)
    listener.close()
    for each in held:
        each.close()
    assert not worker.is_alive(), f"close() did not break the {stage}"
    assert len(failures) == 1 and isinstance(failures[0], ServerError)
    assert "closed" in str(failures[0]) and "lg_secret" not in str(failures[0])


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://ops:hunter2@127.0.0.1:8470", "carries a user name or password"),
        ("http://127.0.0.1:8470/?env=x", "has a query or fragment"),
        ("http://127.0.0.1:0", "port 0"),
        ("http://[fe80::1%25eth0]:8470", "IPv6 zone"),
        ("http://ops:hunter2#x@127.0.0.1:8470", "carries a user name or password"),
        ("http://ops:hunter2/x@127.0.0.1:8470", "carries a user name or password"),
        ("http://127.0.0.1:99999", "a port that is not a number from 1 to 65535"),
        ("http://[::1]8470", "a port that is not a number"),
        ("http://[zz::1]:8470", "is not a URL"),
        ("http://lastgood\x00internal:8470", "has '\\x00', which no host name"),
        ("http://lastgood%2Einternal:8470", "has '%', which no host name"),
        ("ftp://127.0.0.1", "must be http(s)://host"),
        ("http://lastgood..internal:8470", "not a valid host name"),
    ],
)
def test_a_server_url_the_sdk_cannot_use_is_refused_plainly(url: str, message: str) -> None:
    with pytest.raises(UsageError, match=re.escape(message)) as refused:
        LiveConfig(url, "staging", cache=False)
    assert "hunter2" not in str(refused.value)


def test_an_oversized_length_is_refused_before_the_body(
    peer: type[Peer], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(channel, "MAX_ANSWER", 4096)
    head = b"HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\n\r\n"  # and no body follows
    script = peer([head, ok(payload(1, "a: 1\n"))])
    with pytest.raises(ServerError, match="over 4,096 bytes"):  # not "timed out" waiting for it
        live(script, timeout=10)
    with live(script) as config:
        assert config.version == 1


def test_json_nested_too_deep_is_an_error_not_a_crash(peer: type[Peer]) -> None:
    deep = b"[" * 200_000 + b"]" * 200_000
    failing = f"HTTP/1.1 500 Oops\r\ncontent-length: {len(deep)}\r\n\r\n".encode() + deep
    script = peer([ok(payload(1, "a: 1\n")), ok(deep), failing])
    config = live(script)
    with pytest.raises(ServerError, match="answered config that is not JSON"):
        config.refresh()
    with pytest.raises(ServerError, match=r"answered 500: \[\[\["):
        config.refresh()
    assert config.version == 1 and config.get("app.yaml") == {"a": 1}
    config.close()


def test_a_408_on_a_reused_connection_is_asked_again(peer: type[Peer]) -> None:
    """The server timed the idle connection out as the request went: it never took it."""
    script = peer([ok(payload(1, "a: 1\n")), REQUEST_TIMEOUT, ok(payload(2, "a: 2\n"))])
    config = live(script)
    assert config.refresh() and config.version == 2
    config.close()
    assert script.connections == 2 and len(script.requests) == 3


def test_a_protocol_upgrade_is_refused_plainly(peer: type[Peer]) -> None:
    upgrade = (
        b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n"
    )
    script = peer([upgrade])
    with pytest.raises(ServerError, match=r"protocol upgrade \(101 Switching Protocols\)"):
        live(script)


def test_a_request_asked_again_shares_the_first_ones_deadline(peer: type[Peer]) -> None:
    """A reused connection closed without a byte gets the request once more, but not a second
    full timeout: the answer is due within ``timeout`` of the first try."""
    script = peer([ok(payload(1, "a: 1\n")), Hold(1.2), Hold(4)])
    config = live(script, timeout=2)
    started = time.monotonic()
    with pytest.raises(ServerError, match=r"no whole answer within 2 s"):
        config.refresh()
    assert time.monotonic() - started < 3.0  # a fresh deadline for the retry would be 3.2 s
    config.close()
    assert script.connections == 2
