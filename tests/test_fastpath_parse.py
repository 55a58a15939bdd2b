"""The one-pass parse of a plain config read (lastgood.server.fastpath.plain_read), held
against httptools, which parses every other request: whatever the one pass takes, httptools
reads as exactly one request with the same environment, long-poll and headers; what it does
not take is left to httptools."""

from __future__ import annotations

import random

import httptools
import pytest

from lastgood.client.channel import Channel
from lastgood.server.fastpath import Plain, parsed_read, plain_read

TOKEN = "lg_-uI8N_2qLJdyHPfoJFnyWabi3w4yylcVlezYkmqcJTA"
TAG = "6257dcf8d87bc4ad6da0f6ea31668ca10ff0d124f750136a737a9880d2387bec"
ETAG = f'"{TAG}"'
# what the SDK sends to follow an environment (and an agent, with its kind and health)
SDK = Channel(
    "http://127.0.0.1:8080",
    "staging",
    token=TOKEN,
    consumer_id="3f6c-worker-1",
    name="scorer",
    timeout=5,
).request_for(serving="7:ab12cd", etag=TAG, wait=30)
AGENT = Channel("http://127.0.0.1:8080", "staging", token=TOKEN, consumer_id="web-1",
                name="web-1", timeout=5, kind="agent")  # fmt: skip
AGENT.set_health("failing", "disk full: 100%")
WRK = (
    f"GET /api/v1/envs/staging/config HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
    f"Authorization: Bearer {TOKEN}\r\nIf-None-Match: {ETAG}\r\n\r\n"
).encode()


def with_header(line: bytes, body: bytes = b"") -> bytes:
    """:data:`WRK` with one more header line (and a body after it)."""
    return WRK.removesuffix(b"\r\n") + line + b"\r\n\r\n" + body


class Parsed:
    """What httptools makes of some bytes: the requests it completed, each taken or not by
    the server's parsed path (:func:`parsed_read`); ``error`` when it refused them."""

    def __init__(self, data: bytes) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.reads: list[Plain | None] = []
        self.complete = 0
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.error = False
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade):
            self.error = True

    def on_message_begin(self) -> None:
        self.url, self.headers = b"", []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:  # as uvicorn collects them
        self.headers.append((name.lower(), value.rstrip(b" \t")))

    def on_headers_complete(self) -> None:
        self.reads.append(parsed_read(self.parser, self.url, self.headers))

    def on_message_complete(self) -> None:
        self.complete += 1


def test_the_reads_consumers_send_are_taken_whole() -> None:
    assert plain_read(SDK) == ("staging", 30.0, {
        "x-lastgood-consumer": "3f6c-worker-1", "x-lastgood-consumer-name": "scorer",
        "authorization": f"Bearer {TOKEN}", "x-lastgood-serving": "7:ab12cd",
        "if-none-match": ETAG,
    })  # fmt: skip
    assert plain_read(WRK) == ("staging", 0.0, {"authorization": f"Bearer {TOKEN}",
                                                "if-none-match": ETAG})  # fmt: skip
    agent = AGENT.request_for(serving="none", etag=None, wait=30, metrics="leads=12")
    assert plain_read(agent) == ("staging", 30.0, {
        "x-lastgood-consumer": "web-1", "x-lastgood-consumer-name": "web-1",
        "x-lastgood-consumer-kind": "agent", "authorization": f"Bearer {TOKEN}",
        "x-lastgood-serving": "none", "x-lastgood-health": "failing: disk full: 100%25",
        "x-lastgood-metrics": "leads=12",
    })  # fmt: skip
    for data in (SDK, WRK, agent):
        parsed = Parsed(data)
        assert parsed.complete == 1 and parsed.reads == [plain_read(data)]


def test_header_names_are_read_in_any_case_and_values_without_surrounding_space() -> None:
    data = WRK.replace(b"Authorization: ", b"AUTHORIZATION:  \t").replace(
        b"If-None-Match: " + ETAG.encode(), b"if-none-match:" + ETAG.encode() + b" \t"
    )
    assert plain_read(data) == ("staging", 0.0, {"authorization": f"Bearer {TOKEN}",
                                                 "if-none-match": ETAG})  # fmt: skip
    assert plain_read(WRK.replace(b"HTTP/1.1\r\n", b"HTTP/1.1\r\nConnection: Keep-Alive\r\n"))


@pytest.mark.parametrize(
    ("why", "data"),
    [
        ("the first part of a read", WRK[:-2]),
        ("two reads at once (pipelined)", WRK + WRK),
        ("a read and the start of another", WRK + WRK[:10]),
        ("HTTP/1.0", WRK.replace(b"HTTP/1.1", b"HTTP/1.0")),
        ("another method", WRK.replace(b"GET", b"HEAD")),
        ("a method in lower case", WRK.replace(b"GET", b"get")),
        ("the connection closes after it", with_header(b"Connection: close")),
        ("a proxy's connection closes", with_header(b"Proxy-Connection: close")),
        ("a body", with_header(b"Content-Length: 2", b"hi")),
        ("an empty body's length", with_header(b"Content-Length: 0")),
        ("a chunked body", with_header(b"Transfer-Encoding: chunked")),
        ("an upgrade", with_header(b"Upgrade: websocket")),
        ("an expectation", with_header(b"Expect: 100-continue")),
        ("a folded header line", WRK.replace(b"\r\nIf-None-Match", b"\r\n x\r\nIf-None-Match")),
        ("a control character in a value", WRK.replace(b"Bearer ", b"Bearer \x01")),
        ("a header line without a colon", WRK.replace(b"Host: ", b"Host ")),
        ("a space before the colon", WRK.replace(b"Host: ", b"Host : ")),
        ("a bare line feed", WRK.replace(b"\r\nHost", b"\nHost")),
        ("another query parameter", WRK.replace(b"/config", b"/config?wait=1&via=route")),
        ("a wait FastAPI refuses", WRK.replace(b"/config", b"/config?wait=61")),
        ("an encoded query", WRK.replace(b"/config", b"/config?wait=%31")),
        ("a fragment", WRK.replace(b"/config", b"/config#x")),
        ("an encoded environment", WRK.replace(b"staging", b"stag%69ng")),
        ("another path", WRK.replace(b"/config", b"/config/app.yaml")),
        ("an absolute target", WRK.replace(b"GET /", b"GET http://127.0.0.1/")),
        ("a token sent twice", WRK.replace(b"Host:", b"Authorization: Bearer other\r\nHost:")),
    ],
)  # fmt: skip
def test_anything_but_one_whole_plain_read_is_left_to_httptools(why: str, data: bytes) -> None:
    assert plain_read(data) is None, why


def mutated(data: bytes, chance: random.Random) -> bytes:
    """``data`` with a few bytes changed, inserted, deleted or lines repeated."""
    alphabet = b"\r\n\t :;,?#%/=&\x00\x01\x7f\x80\xffaZ9-_\"'"
    out = bytearray(data)
    for _ in range(chance.randint(1, 3)):
        at = chance.randrange(len(out))
        action = chance.randrange(5)
        if action == 0:
            out[at] = chance.choice(alphabet)
        elif action == 1:
            out.insert(at, chance.choice(alphabet))
        elif action == 2:
            del out[at]
        elif action == 3:  # a line repeated
            start = out.rfind(b"\r\n", 0, at) + 2
            end = out.find(b"\r\n", at)
            if end > start:
                out[end + 2 : end + 2] = out[start : end + 2]
        else:
            out[at : at + 1] = out[at : at + 1].swapcase()
    return bytes(out)


def test_whatever_the_one_pass_takes_httptools_reads_the_same_way() -> None:
    """Thousands of near-misses of both shapes: each one taken is one complete request to
    httptools, taken by the parsed path with the same environment, long-poll and headers."""
    chance = random.Random(16)
    taken = 0
    for number in range(6000):
        data = mutated(SDK if number % 2 else WRK, chance)
        plain = plain_read(data)
        if plain is None:
            continue
        taken += 1
        parsed = Parsed(data)
        assert not parsed.error and parsed.complete == 1, data
        assert parsed.reads == [plain], data
    assert taken > 500  # enough of them were plain reads to have proved something
