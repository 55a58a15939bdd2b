"""Consumers that cost little CPU: many long-polls of live config driven by one selector loop.

``bench/consumers.py`` measures SDK consumers (``LiveConfig``, one thread each). On a 2-core
machine that runs the server too, 10,000 of them spend most of the machine's CPU on their own
threads, and the figure says more about thread switching than about the server. These
consumers speak the same protocol and check what arrives the same way (the SDK's own
:func:`lastgood.client.payload.verify_payload`: every file decoded, the content hash
recomputed), but one process drives hundreds of them from one :mod:`selectors` loop, so the
figure is what it takes the server to reach a fleet.

Each consumer: reads the config, then long-polls (``?wait=30`` with its ETag and the usual
``X-Lastgood-Consumer`` / ``-Name`` / ``-Serving`` headers, so the fleet view learns what it
serves); a ``200`` is verified and its arrival time noted, and the next long-poll goes out at
once. The parent drives it over stdin as it drives the SDK workers: ``expect V`` answers with
every consumer's arrival time of version V (JSON), ``quit`` ends it.
"""

from __future__ import annotations

import json
import os
import selectors
import socket
import sys
import time

import httptools

from lastgood.client.payload import verify_payload

WAIT = 30


class Consumer:
    """One long-polling connection and what it has applied."""

    def __init__(self, host: str, port: int, path: str, token: str, name: str) -> None:
        self.sock = socket.create_connection((host, port))
        self.sock.setblocking(False)
        self.path = path
        self.common = (
            f"Host: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
            f"X-Lastgood-Consumer: {name}\r\nX-Lastgood-Consumer-Name: {name}\r\n"
        )
        self.parser = httptools.HttpResponseParser(self)
        self.body: list[bytes] = []
        self.complete = False
        self.etag: str | None = None
        self.serving = "none"
        self.applied: dict[int, float] = {}

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"etag":
            self.etag = value.decode()

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.complete = True

    def ask(self) -> None:
        """The next read: plain at first, then a long-poll against what it holds."""
        if self.etag is None:
            request = f"GET {self.path} HTTP/1.1\r\n{self.common}\r\n"
        else:
            request = (
                f"GET {self.path}?wait={WAIT} HTTP/1.1\r\n{self.common}"
                f"X-Lastgood-Serving: {self.serving}\r\nIf-None-Match: {self.etag}\r\n\r\n"
            )
        self.sock.sendall(request.encode())

    def readable(self) -> None:
        data = self.sock.recv(262144)
        if not data:
            raise ConnectionError("the server closed a consumer's connection")
        self.parser.feed_data(data)
        if not self.complete:
            return
        status = self.parser.get_status_code()
        if status == 200:
            now = time.time()
            snapshot = verify_payload(json.loads(b"".join(self.body)), received_at=now)
            self.serving = snapshot.serving
            self.applied.setdefault(snapshot.version, now)
        elif status != 304:
            raise ConnectionError(f"the server answered {status}: {b''.join(self.body)[:200]!r}")
        self.body, self.complete = [], False
        self.ask()


def run(url: str, count: int, tag: str) -> None:
    """``count`` consumers of ``url``'s staging, answering the parent on stdin (see above)."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    token = os.environ["LASTGOOD_TOKEN"]
    path = "/api/v1/envs/staging/config"
    selector = selectors.DefaultSelector()
    consumers = [Consumer(host, int(port), path, token, f"{tag}-{i}") for i in range(count)]
    for consumer in consumers:
        selector.register(consumer.sock, selectors.EVENT_READ, consumer)
        consumer.ask()
    selector.register(sys.stdin, selectors.EVENT_READ, None)
    print(f"ready {count}", flush=True)
    expecting: tuple[int, float] | None = None
    while True:
        for key, _ in selector.select(timeout=0.5):
            if key.data is not None:
                key.data.readable()
                continue
            words = sys.stdin.readline().split()
            if not words or words[0] == "quit":
                for consumer in consumers:
                    consumer.sock.close()
                return
            expecting = (int(words[1]), time.monotonic() + 60)
        if expecting is not None and _answered(expecting, consumers):
            expecting = None


def _answered(expecting: tuple[int, float], consumers: list[Consumer]) -> bool:
    """Print the arrival times once every consumer has ``version`` (or the wait is over)."""
    version, deadline = expecting
    have = [c.applied[version] for c in consumers if version in c.applied]
    if len(have) < len(consumers) and time.monotonic() < deadline:
        return False
    for consumer in consumers:
        consumer.applied.pop(version, None)
    print(json.dumps({"applied": have, "missing": len(consumers) - len(have)}), flush=True)
    return True
