"""A small real HTTP service that behaves like a team's scoring admin API, for target tests.

A plain module (not a conftest): the command target tests import it. It holds one document, the
scoring threshold, behind a bearer token, with the version label it was given::

    PUT  /threshold          body = the document, header X-Version = the label   (auth)
    GET  /threshold          the document as it was put                          (auth)
    GET  /threshold/version  the label, or nothing                               (auth)

``mode`` makes it misbehave the way real ones do: ``"slow"`` answers after ``delay`` seconds,
``"slow-writes"`` only writes so (and still applies them after the client gave up), ``"error"``
answers 500 to every write. :meth:`ScoringApi.edit_by_hand` changes the document the
way someone clicking in the tool's admin page would.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler

from tests.http_fakes import running

TOKEN = "s3cr3t-scoring-token-7f2e"


class ScoringApi:
    """The service's state, shared with its handler threads."""

    def __init__(self) -> None:
        self.document = b""
        self.version = ""
        self.mode = "normal"
        self.delay = 0.0
        self.writes: list[str] = []
        self.lock = threading.Lock()
        self.url = ""

    def edit_by_hand(self, document: bytes, version: str | None = None) -> None:
        """Change what the tool serves, as a person in its admin page would."""
        with self.lock:
            self.document = document
            if version is not None:
                self.version = version


def _handler(api: ScoringApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return

        def _answer(self, code: int, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _allowed(self) -> bool:
            if api.mode == "slow" or (api.mode == "slow-writes" and self.command == "PUT"):
                time.sleep(api.delay)
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self._answer(401, b'{"error": "unauthorized"}\n')
                return False
            return True

        def do_GET(self) -> None:
            if not self._allowed():
                return
            with api.lock:
                document, version = api.document, api.version
            if self.path == "/threshold":
                self._answer(200, document)
            elif self.path == "/threshold/version":
                self._answer(200, version.encode() + (b"\n" if version else b""))
            else:
                self._answer(404, b"not found\n")

        def do_PUT(self) -> None:
            if not self._allowed():
                return
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            if api.mode == "error":
                self._answer(500, b'{"error": "database is read-only"}\n')
                return
            if self.path != "/threshold":
                self._answer(404, b"not found\n")
                return
            with api.lock:
                api.document = body
                api.version = self.headers.get("X-Version", "")
                api.writes.append(api.version)
            self._answer(200, b'{"ok": true}\n')

    return Handler


@contextmanager
def serving() -> Iterator[ScoringApi]:
    """Run the service on 127.0.0.1 (a free port) for the duration of the block."""
    api = ScoringApi()
    with running(_handler(api)) as url:
        api.url = url
        yield api
