"""What the small fake tool APIs of the target tests share (tests/scoring_api.py,
tests/tool_apis.py, tests/crm_api.py): a real threading HTTP server on a free port of
127.0.0.1 for the duration of a ``with`` block."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

POLL = 0.05
"""How often a test's ``serve_forever`` looks for a ``shutdown()``: the standard library's
0.5 s default made every stop wait up to half a second, about 0.45 s at each teardown of the
hundreds of tests that start one of these servers."""


@contextmanager
def running(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve ``handler`` on 127.0.0.1 (a free port); yields the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(POLL,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
