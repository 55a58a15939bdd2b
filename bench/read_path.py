"""How much Python does the server spend on one live config read, with no socket?

``bench/config_reads.py`` measures reads through the kernel's loopback beside nginx, where the
socket's own cost and ``wrk``'s share of the two cores move from run to run. This one takes
them away: it builds the server of ``lastgood serve`` on a served workspace (the real app and
the protocol class uvicorn runs, ``lastgood.server.fastpath``) and hands requests straight to
the protocol's ``data_received`` on a transport that keeps what is written, on uvloop, timing
the whole of the server's Python for one read:

- a read as ``wrk`` sends it in ``bench/config_reads.py`` (``If-None-Match``, answered
  ``304``), and as the SDK sends it (its consumer headers, so the report is recorded too);
- each sent whole, which is parsed in one pass, and in two pieces, which ``httptools`` parses
  with a Python callback per header, as every read was before the one-pass parse: the
  baseline, in the same run.

Each row is timed in rounds; the table gives the fastest and the median round. Run from the
repository root::

    .venv/bin/python bench/read_path.py           # about 15 s
    .venv/bin/python bench/read_path.py --quick   # about 5 s, for smoke tests

It prints figures and never asserts on them.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import uvicorn
import uvloop
from config_reads import ENV, Servers
from uvicorn.server import ServerState

from lastgood.client.channel import Channel
from lastgood.project import Project
from lastgood.server.app import create_app
from lastgood.server.fastpath import protocol_for

HEADING = "server Python per live config read, no socket"


class Kept:
    """A transport that keeps the last answer written and counts them."""

    def __init__(self) -> None:
        self.written = 0
        self.last = b""

    def write(self, data: bytes) -> None:
        self.written += 1
        self.last = data

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 8470)}.get(name)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def timed(
    send: Callable[[], None], reads: int, rounds: int, fresh: Callable[[], None]
) -> list[float]:
    """Microseconds per read of ``rounds`` rounds of ``reads`` calls of ``send``."""
    figures = []
    for _ in range(rounds):
        fresh()
        started = time.perf_counter()
        for _ in range(reads):
            send()
        figures.append((time.perf_counter() - started) / reads * 1e6)
    return figures


async def measure(root: Path, token: str, reads: int, rounds: int) -> dict[str, list[float]]:
    app = create_app(Project.open(root))
    state = app.state.lastgood
    await state.feeds.refresh_all()
    feed = state.feeds.get(ENV)
    assert feed is not None and feed.current is not None
    etag = feed.current.etag
    authorization = f"Bearer {token}"

    def fresh() -> None:  # the token cached, as the background refresh keeps it while used
        state.auth.by_header(authorization)
        state.auth.refresh_used()  # (no loop runs here: the cache entry would age past 5 s)

    fresh()
    protocol_class = protocol_for(state)
    config = uvicorn.Config(app, http=protocol_class, log_level="warning", access_log=False)
    config.load()
    server_state = ServerState()
    server_state.default_headers = [(b"date", b"Sun, 06 Dec 2026 23:00:00 GMT")]
    protocol = protocol_class(config=config, server_state=server_state, app_state={})
    kept = Kept()
    protocol.connection_made(kept)  # type: ignore[arg-type]
    plain = (f"GET /api/v1/envs/{ENV}/config HTTP/1.1\r\nHost: 127.0.0.1:8470\r\n"
             f"Authorization: {authorization}\r\nIf-None-Match: {etag}\r\n\r\n")  # fmt: skip
    channel = Channel("http://127.0.0.1:8470", ENV, token=token, consumer_id="bench-1",
                      name="bench", timeout=5)  # fmt: skip
    serving = f"{feed.current.version}:{feed.current.content_hash}"
    sdk = channel.request_for(serving=serving, etag=etag.strip('"'), wait=0)

    def whole(data: bytes) -> Callable[[], None]:
        return lambda: protocol.data_received(data)

    def in_pieces(data: bytes) -> Callable[[], None]:
        head, tail = data[:40], data[40:]

        def send() -> None:
            protocol.data_received(head)
            protocol.data_received(tail)

        return send

    rows = {}
    for shape, data in (("wrk's", plain.encode()), ("the SDK's", sdk)):
        rows[f"{shape}, whole"] = whole(data)
        rows[f"{shape}, in two pieces"] = in_pieces(data)
    figures = {}
    for name, send in rows.items():
        written = kept.written
        fresh()
        send()
        if kept.written != written + 1 or not kept.last.startswith(b"HTTP/1.1 304"):
            raise SystemExit(f"{name}: the fast path did not answer 304: {kept.last[:80]!r}")
        figures[name] = timed(send, reads, rounds, fresh)
    protocol.connection_lost(None)
    return figures


def report(figures: dict[str, list[float]]) -> None:
    print(f"\n== {HEADING} (µs per read, answered 304; uvloop; python {sys.version.split()[0]}; "
          "in two pieces = parsed by httptools, the baseline) ==")  # fmt: skip
    print(f"{'read':<26}  {'fastest':>8}  {'median':>8}  {'vs in two pieces':>16}")
    print(f"{'-' * 26}  {'-' * 8}  {'-' * 8}  {'-' * 16}")
    for name, each in figures.items():
        baseline = statistics.median(figures[name.replace("whole", "in two pieces")])
        median = statistics.median(each)
        print(f"{name:<26}  {min(each):>8.2f}  {median:>8.2f}  {median / baseline:>15.2f}x")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run, for smoke tests")
    args = parser.parse_args(argv)
    reads, rounds = (2_000, 3) if args.quick else (20_000, 15)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lastgood-bench-read-path-") as folder:
        servers = Servers(Path(folder))
        root = servers.prepare()  # the very workspace bench/config_reads.py serves
        token = servers.token
        report(uvloop.run(measure(root, token, reads, rounds)))
    print(f"\ntotal benchmark time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
