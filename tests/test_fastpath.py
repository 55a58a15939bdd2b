"""The config read answered inside the server's HTTP protocol (lastgood.server.fastpath), from
the outside: what a consumer sees must be what the FastAPI route answers, held long-polls must
all be answered by one switch and stay usable, pipelined requests keep their order, and a
connection that goes away while held leaves the server well. Real ``lastgood serve``
processes, raw sockets on 127.0.0.1 (so the bytes are exactly what a client gets)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable

import httptools
import pytest

from tests.conftest import Workspace
from tests.serving import Server
from tests.test_serve import served

CONFIG = "/api/v1/envs/staging/config"


class Answer:
    """One HTTP answer as a raw client reads it."""

    def __init__(self) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body = b""
        self.done = False


class Reader:
    """Answers read off one socket, in order (httptools parses them)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.answers: list[Answer] = []
        self.parser = httptools.HttpResponseParser(self)

    def on_message_begin(self) -> None:
        self.answers.append(Answer())

    def on_header(self, name: bytes, value: bytes) -> None:
        self.answers[-1].headers[name.decode().lower()] = value.decode()

    def on_headers_complete(self) -> None:
        self.answers[-1].status = self.parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        self.answers[-1].body += body

    def on_message_complete(self) -> None:
        self.answers[-1].done = True

    def read(self, count: int, timeout: float = 10) -> list[Answer]:
        """Read until ``count`` answers are complete; returns them and forgets them."""
        self.sock.settimeout(timeout)
        while sum(answer.done for answer in self.answers) < count:
            data = self.sock.recv(65536)
            assert data, "the server closed the connection"
            self.parser.feed_data(data)
        done, self.answers = self.answers[:count], self.answers[count:]
        return done


def request(path: str, token: str, **headers: str) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", f"Authorization: Bearer {token}"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def connect(server: Server) -> tuple[socket.socket, Reader]:
    port = int(server.url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    return sock, Reader(sock)


def ask(server: Server, path: str, token: str, **headers: str) -> Answer:
    sock, reader = connect(server)
    with sock:
        sock.sendall(request(path, token, **headers))
        return reader.read(1)[0]


def comparable(answer: Answer) -> tuple[int, dict[str, str], bytes]:
    headers = {k: v for k, v in answer.headers.items() if k != "date"}
    return answer.status, headers, answer.body


def test_the_fast_answer_is_the_routes_answer_byte_for_byte(
    workspace: Callable[..., Workspace], serve: Callable[..., Server]
) -> None:
    """A plain read is answered by the protocol; one with an extra query parameter goes to
    FastAPI's route. Status, headers (but the date) and body are the same, 200 and 304."""
    server = serve(served(workspace))
    token = server.token("viewer")
    with server.client(token) as http:  # the first use of a token is checked by FastAPI
        assert http.get(CONFIG).status_code == 200
    fast, routed = ask(server, CONFIG, token), ask(server, CONFIG + "?via=route", token)
    assert fast.status == 200 and "date" in fast.headers
    assert comparable(fast) == comparable(routed)
    etag = fast.headers["etag"]
    fast = ask(server, CONFIG + "?wait=0", token, If_None_Match=etag)
    routed = ask(server, CONFIG + "?wait=0&via=route", token, If_None_Match=etag)
    assert fast.status == 304 and comparable(fast) == comparable(routed)


def test_a_read_sent_in_pieces_is_answered_as_one_sent_whole(
    workspace: Callable[..., Workspace], serve: Callable[..., Server]
) -> None:
    """A read that arrives in one segment is parsed in one pass; one that arrives in pieces is
    parsed by httptools. Both get the same answer, and the connection serves on: the next read,
    whole, is answered too."""
    server = serve(served(workspace))
    token = server.token("viewer")
    etag = ask(server, CONFIG, token).headers["etag"]
    for whole in (request(CONFIG, token, If_None_Match=etag, X_Lastgood_Consumer="pieces"),
                  request(CONFIG, token, If_None_Match=etag)):  # fmt: skip
        sock, reader = connect(server)
        with sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for cut in (5, 40, len(whole) - 2):
                for _ in range(2):  # the same first piece twice in a row is still only a piece
                    sock.sendall(whole[:cut])
                    time.sleep(0.05)  # its own segment: the server reads a part
                    sock.sendall(whole[cut:])
                    in_pieces = reader.read(1)[0]
                sock.sendall(whole)
                at_once = reader.read(1)[0]
                assert in_pieces.status == at_once.status == 304
                assert comparable(in_pieces) == comparable(at_once)


def second_live(
    workspace: Callable[..., Workspace], serve: Callable[..., Server]
) -> tuple[Workspace, Server, str, str]:
    """v2 live on a server that sees a switch within 50 ms; a viewer token and v2's ETag."""
    ws = served(workspace)
    ws.healthy("two")
    assert ws.run("deploy", "staging", "-m", "second").returncode == 0
    server = serve(ws, "--poll", "0.05")
    token = server.token("viewer")
    return ws, server, token, ask(server, CONFIG, token).headers["etag"]


def test_one_switch_answers_every_held_long_poll_and_the_connections_stay_usable(
    workspace: Callable[..., Workspace], serve: Callable[..., Server]
) -> None:
    ws, server, token, etag = second_live(workspace, serve)
    held = [connect(server) for _ in range(200)]
    for number, (sock, _reader) in enumerate(held):
        sock.sendall(request(CONFIG + "?wait=30", token, If_None_Match=etag,
                             X_Lastgood_Consumer=f"raw-{number}"))  # fmt: skip
    with server.client(token) as http:  # every one has reported before it is held
        deadline = time.monotonic() + 10
        while len(http.get("/api/v1/envs/staging/consumers").json()["consumers"]) < 200:
            assert time.monotonic() < deadline, "the server did not hold every long-poll"
            time.sleep(0.05)
    assert ws.run("rollback", "staging", "-m", "back").returncode == 0
    answers = [reader.read(1)[0] for _sock, reader in held]
    assert {answer.status for answer in answers} == {200}
    assert {answer.headers["x-lastgood-version"] for answer in answers} == {"1"}
    new = answers[0].headers["etag"]
    assert len({answer.body for answer in answers}) == 1
    for sock, _reader in held:  # the same connections: a plain read of the new version
        sock.sendall(request(CONFIG, token, If_None_Match=new))
    assert {reader.read(1)[0].status for _sock, reader in held} == {304}
    for sock, _reader in held:
        sock.close()


def test_the_same_read_sent_again_and_again_follows_a_switch_and_the_clock(
    workspace: Callable[..., Workspace], serve: Callable[..., Server]
) -> None:
    """A client polling with its ETag sends the very same bytes each time, and each is answered
    as the first was, without taking it apart again: until the version changes, when the same
    bytes get the new version at once (a second connection, reading without an ETag, tells
    when the server has it), and with the Date of the second it is answered in."""
    ws, server, token, etag = second_live(workspace, serve)
    same = request(CONFIG, token, If_None_Match=etag)
    sock, reader = connect(server)
    probe, probed = connect(server)
    with sock, probe:
        for _ in range(3):
            sock.sendall(same)
            assert reader.read(1)[0].status == 304
        done: list[int] = []
        rollback = threading.Thread(
            target=lambda: done.append(ws.run("rollback", "staging", "-m", "back").returncode)
        )
        rollback.start()
        deadline, seen = time.monotonic() + 20, "2"
        while seen == "2":  # the same bytes, and the probe, until either has the new version
            assert time.monotonic() < deadline, "the server did not publish v1 within 20 s"
            sock.sendall(same)
            (answer,) = reader.read(1)
            seen = answer.headers["x-lastgood-version"]
            if seen == "2":  # (bytes never sent before: this read is taken apart)
                probe.sendall(request(CONFIG, token, X_Probe=str(time.monotonic())))
                seen = probed.read(1)[0].headers["x-lastgood-version"]
        sock.sendall(same)  # at once: most likely in the same second as the reads before
        (answer,) = reader.read(1)
        assert answer.status == 200 and answer.headers["x-lastgood-version"] == "1"
        rollback.join(60)
        assert done == [0]
        dates: list[tuple[float, str]] = []  # the Date moves on every second or so (uvicorn)
        until = time.monotonic() + 3.5  # (a run of one Date then spans 1.6 s without the check)
        while time.monotonic() < until:
            sock.sendall(same)
            (again,) = reader.read(1)
            assert comparable(again) == comparable(answer)
            dates.append((time.monotonic(), again.headers["date"]))
            time.sleep(0.02)
        spans: dict[str, list[float]] = {}
        for moment, date in dates:
            spans.setdefault(date, []).append(moment)
        assert max(max(seen) - min(seen) for seen in spans.values()) < 1.6, spans.keys()


def test_a_held_long_poll_ends_with_304_at_its_deadline(
    workspace: Callable[..., Workspace], serve: Callable[..., Server]
) -> None:
    server = serve(served(workspace))
    token = server.token("viewer")
    etag = ask(server, CONFIG, token).headers["etag"]
    started = time.monotonic()
    answer = ask(server, CONFIG + "?wait=1", token, If_None_Match=etag)
    assert answer.status == 304 and answer.headers["etag"] == etag
    assert time.monotonic() - started >= 0.9  # held, not answered at once


def test_pipelined_requests_are_answered_in_their_order(
    workspace: Callable[..., Workspace], serve: Callable[..., Server]
) -> None:
    """A held read followed on the same connection by two more requests: the held one is
    answered first (at its deadline), then the others, each with its own answer."""
    server = serve(served(workspace))
    token = server.token("viewer")
    etag = ask(server, CONFIG, token).headers["etag"]
    sock, reader = connect(server)
    with sock:
        sock.sendall(request(CONFIG + "?wait=0.3", token, If_None_Match=etag)
                     + request("/healthz", token) + request(CONFIG, token))  # fmt: skip
        first, second, third = reader.read(3)
    assert (first.status, second.status, third.status) == (304, 200, 200)
    assert b"ok" in second.body
    assert third.headers["etag"] == etag and third.body


def test_a_consumer_gone_while_held_leaves_the_server_well(
    workspace: Callable[..., Workspace], serve: Callable[..., Server]
) -> None:
    ws, server, token, etag = second_live(workspace, serve)
    for _ in range(20):  # held, then dropped without a word
        sock, _reader = connect(server)
        sock.sendall(request(CONFIG + "?wait=30", token, If_None_Match=etag))
        sock.close()
    time.sleep(0.2)
    assert ws.run("rollback", "staging", "-m", "back").returncode == 0
    deadline = time.monotonic() + 10
    while ask(server, CONFIG, token).headers["x-lastgood-version"] != "1":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert "Traceback" not in server.log.read_text()


def test_a_connection_is_judged_by_the_token_of_each_read_and_a_revocation_reaches_it(
    workspace: Callable[..., Workspace], serve: Callable[..., Server]
) -> None:
    """The fast path remembers what a connection's last read proved about its token; another
    token on the same connection is judged on its own, and a token revoked while its connection
    stays open is refused within the cache's 5 s (plus the background refresh)."""
    ws = served(workspace)
    with (ws.root / "lastgood.toml").open("a") as config:
        config.write('\n[env.prod]\ntarget = { type = "served" }\n')
    server = serve(ws)
    reader_token, other = server.token("viewer", name="reader"), server.token("viewer", "prod")
    sock, reader = connect(server)
    with sock:
        for _ in range(3):  # the first read is FastAPI's, which caches the token; then fast
            sock.sendall(request(CONFIG, reader_token))
            assert reader.read(1)[0].status == 200
        sock.sendall(request(CONFIG, other))  # a token for prod only, on the same connection
        assert reader.read(1)[0].status == 403
        sock.sendall(request(CONFIG, reader_token))
        assert reader.read(1)[0].status == 200
        listed = json.loads(ws.run("token", "list", "--json").stdout)
        number = next(token["id"] for token in listed if token["name"] == "reader")
        assert ws.run("token", "revoke", str(number)).returncode == 0
        deadline, status = time.monotonic() + 10, 200
        while status == 200:
            assert time.monotonic() < deadline, "a revoked token still reads after 10 s"
            time.sleep(0.2)
            sock.sendall(request(CONFIG, reader_token))
            status = reader.read(1)[0].status
        assert status == 401


def test_held_reads_end_at_their_own_deadlines_and_a_passed_deadline_ends_no_later_read(
    workspace: Callable[..., Workspace], serve: Callable[..., Server]
) -> None:
    """Deadlines of several lengths share one timer (lastgood.server.deadlines): each read
    ends at its own, and the deadline of a read a switch answered does not end the read its
    connection holds next."""
    ws, server, token, etag = second_live(workspace, serve)
    (short, short_reader), (long, long_reader) = connect(server), connect(server)
    started = time.monotonic()
    long.sendall(request(CONFIG + "?wait=2", token, If_None_Match=etag))
    short.sendall(request(CONFIG + "?wait=1", token, If_None_Match=etag))
    assert short_reader.read(1)[0].status == 304
    assert 0.9 <= time.monotonic() - started < 1.9
    assert long_reader.read(1)[0].status == 304
    assert time.monotonic() - started >= 1.9
    # a read answered by a switch, then the next read on its connection held past the first
    # one's deadline
    short.sendall(request(CONFIG + "?wait=1.5", token, If_None_Match=etag))
    time.sleep(0.3)
    assert ws.run("rollback", "staging", "-m", "back").returncode == 0
    answered = short_reader.read(1)[0]
    assert answered.status == 200
    short.sendall(request(CONFIG + "?wait=3", token, If_None_Match=answered.headers["etag"]))
    held_at = time.monotonic()
    assert short_reader.read(1)[0].status == 304
    assert time.monotonic() - held_at >= 2.9  # not ended when the answered read's 1.5 s passed
    short.close()
    long.close()


def test_an_idle_connection_is_closed_after_the_keep_alive_timeout_counted_from_its_last_answer(
    workspace: Callable[..., Workspace], serve: Callable[..., Server]
) -> None:
    """uvicorn's keep-alive rule (5 s), kept with the deadlines on the shared timer: a
    connection idle since its last answer is closed; one that asked again meanwhile is not."""
    server = serve(served(workspace))
    token = server.token("viewer")
    ask(server, CONFIG, token)  # FastAPI caches the token: the reads below are fast ones
    (idle, idle_reader), (busy, busy_reader) = connect(server), connect(server)
    with idle, busy:
        for sock, reader in ((idle, idle_reader), (busy, busy_reader)):
            sock.sendall(request(CONFIG, token))
            assert reader.read(1)[0].status == 200
        time.sleep(3)
        busy.sendall(request(CONFIG, token))
        assert busy_reader.read(1)[0].status == 200
        idle.settimeout(4)
        assert idle.recv(1) == b""  # closed by the server about 5 s after its answer
        busy.setblocking(False)
        with pytest.raises(BlockingIOError):  # still open: nothing to read, no close
            busy.recv(1)


def test_a_busy_connection_is_never_closed_as_idle(
    workspace: Callable[..., Workspace], serve: Callable[..., Server]
) -> None:
    """Idle connections are closed 5 s after their last answer (lastgood.server.keepalive),
    never one that is busy longer: a read held 6 s, by the fast path or by FastAPI's route, and
    a request begun (its first half sent) while the one before it was held."""
    server = serve(served(workspace))
    token = server.token("viewer")
    etag = ask(server, CONFIG, token).headers["etag"]
    (fast, fast_reader), (routed, routed_reader), (pair, pair_reader) = (
        connect(server) for _ in range(3)
    )
    with fast, routed, pair:
        started = time.monotonic()
        fast.sendall(request(CONFIG + "?wait=6", token, If_None_Match=etag))
        routed.sendall(request(CONFIG + "?wait=6&via=route", token, If_None_Match=etag))
        second = request(CONFIG, token)
        pair.sendall(request(CONFIG + "?wait=1", token, If_None_Match=etag) + second[:20])
        assert pair_reader.read(1)[0].status == 304  # the first, at its deadline
        assert fast_reader.read(1)[0].status == 304
        assert routed_reader.read(1)[0].status == 304
        assert time.monotonic() - started >= 5.9
        time.sleep(0.7)  # the second request began 6.5 s ago and is still being sent
        pair.sendall(second[20:])
        assert pair_reader.read(1)[0].status == 200
        for sock, reader in ((fast, fast_reader), (routed, routed_reader)):
            sock.sendall(request(CONFIG, token, If_None_Match=etag))
            assert reader.read(1)[0].status == 304
