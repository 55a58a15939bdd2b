"""Running the server process: uvicorn with an access log that sees every request, and a stop
that ends held requests at once instead of waiting for them.

Two ASGI wrappers sit outside everything else, so what they do applies to every request the
ASGI app answers; the config reads taken inside the HTTP protocol (see
:mod:`lastgood.server.fastpath`, which uvicorn runs as its protocol) do the same by themselves:
they write the same access line, and a held one is answered ``503`` when the server stops.

- :class:`AccessLog` (only with ``--access-log``) writes one line per request to the
  ``lastgood.access`` logger: client, method, path, status and duration. Never a query string,
  a header or a body, so never a token.
- :class:`GracefulStop` ends, when the server stops, the GET requests that are still waiting
  (long-polls, event streams, which never end by themselves): a clean ``503`` for one that had
  not started its answer, the end of the body for a stream. Uvicorn would otherwise wait
  ``timeout_graceful_shutdown`` seconds, then cancel them and log a traceback for each.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import uvicorn

from lastgood.errors import UsageError
from lastgood.server.access import access_log, log_access

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send


# A GET still running this long after the stop began is held (a long-poll, an event stream):
# ended then. Reads that are merely in progress finish well within it.
READ_GRACE = 0.25
# Anything else (a deploy or rollback through the API) gets this long to finish.
WRITE_GRACE = 2  # whole seconds: uvicorn takes timeout_graceful_shutdown as an int
_HELD = frozenset(("GET", "HEAD"))


class AccessLog:
    """ASGI wrapper: log each HTTP request when it ends, with its status and duration."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status: int | None = None

        async def noted(message: Message) -> None:
            nonlocal status
            await send(message)
            if message["type"] == "http.response.start":  # sent: a refused one does not count
                status = message["status"]

        try:
            await self.app(scope, receive, noted)
        finally:
            _log_request(scope, status, time.perf_counter() - started)


def _log_request(scope: Scope, status: int | None, seconds: float) -> None:
    log_access(scope.get("client"), scope.get("method", "-"), scope.get("path", ""), status,
               seconds)  # fmt: skip


class GracefulStop:
    """ASGI wrapper that can end, cleanly, every request still running when the server stops.

    :meth:`stop` cancels the running GET requests; ``stopping`` is then true, and a request
    whose task is cancelled (by :meth:`stop`, or by uvicorn once its grace is over) answers
    ``503`` with a JSON error if it had not started answering, or ends its body if it had,
    instead of raising into uvicorn (which logs a traceback)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.stopping = False
        self._running: dict[asyncio.Task[Any], str] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        task = asyncio.current_task()
        if scope["type"] != "http" or task is None:
            return await self.app(scope, receive, send)
        self._running[task] = scope["method"]  # send is not wrapped: this is the hot path too
        try:
            await self.app(scope, receive, send)
        except asyncio.CancelledError:
            if not self.stopping:
                raise  # not a stop: not ours to hide
            task.uncancel()
            await _end(send)
        finally:
            del self._running[task]

    def stop(self) -> None:
        """Cancel the GET requests still running; later cancellations end requests cleanly."""
        self.stopping = True
        for task, method in list(self._running.items()):
            if method in _HELD:
                task.cancel()


async def _end(send: Send) -> None:
    """Finish a request the stop interrupted: a 503 if it had not begun to answer, else the end
    of its body (uvicorn refuses a second start with RuntimeError). A broken connection is
    ignored: it is going anyway."""
    error = {"error": "the server is stopping and did not answer this request",
             "hint": "ask again when it is back", "exit_code": 1}  # fmt: skip
    body = json.dumps(error).encode()
    headers = [(b"content-type", b"application/json"), (b"connection", b"close"),
               (b"content-length", str(len(body)).encode())]  # fmt: skip
    try:
        await send({"type": "http.response.start", "status": 503, "headers": headers})
    except RuntimeError:
        with contextlib.suppress(OSError, RuntimeError):
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        return
    with contextlib.suppress(OSError, RuntimeError):
        await send({"type": "http.response.body", "body": body})


class StoppingServer(uvicorn.Server):
    """Uvicorn's server, which ends held requests shortly after a stop begins (SIGTERM,
    SIGINT) instead of waiting out its grace period for them."""

    def __init__(self, config: uvicorn.Config, stopper: GracefulStop) -> None:
        super().__init__(config)
        self.stopper = stopper

    async def shutdown(self, sockets: Any = None) -> None:
        """Close the listeners and idle connections (uvicorn), then end held reads; a deploy
        running in a thread stops at its next pause (see lastgood.termination)."""
        from lastgood import termination

        termination.request_stop()
        asyncio.get_running_loop().call_later(READ_GRACE, self.stopper.stop)
        await super().shutdown(sockets)


def run(
    app: Any, *, host: str, port: int, access: bool, sock: socket.socket | None = None,
    **options: Any,
) -> int | None:  # fmt: skip
    """Serve ``app`` until SIGTERM or SIGINT; writes nothing but the logs. ``options`` go to
    :class:`uvicorn.Config` (TLS files). ``sock``: a listening socket to accept from instead
    of binding ``host:port`` (a worker of ``serve --workers``). The signal that stopped it
    (returned, never raised: see :func:`_stop_signals`), or None. UsageError when it cannot
    listen on ``host:port``."""
    stopper = GracefulStop(app)
    outermost: Any = stopper
    if access:  # outside the stopper, so that the 503s it answers are logged too
        _log_access_to_stderr()
        outermost = AccessLog(stopper)
    from lastgood.server.fastpath import protocol_for

    config = uvicorn.Config(
        outermost,
        http=protocol_for(app.state.lastgood, access=access),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,  # ours above sees every request, the fast path's included
        server_header=False,  # no need to tell the world which server software answers
        timeout_graceful_shutdown=WRITE_GRACE,
        **options,
    )
    server = StoppingServer(config, stopper)
    with _stop_signals(server) as received:
        try:
            server.run(sockets=[sock] if sock is not None else None)
        except SystemExit:  # uvicorn's way out when it cannot start; it has logged why
            if server.started:
                raise
    if not server.started:
        raise UsageError(
            f"lastgood serve could not listen on {host}:{port}",
            hint="stop what uses that port, or give another --port or --host",
        )
    return received[-1] if received else None


@contextlib.contextmanager
def _stop_signals(server: uvicorn.Server) -> Iterator[list[int]]:
    """While ``server`` runs, SIGTERM and SIGINT stop it and are noted, never raised.

    Uvicorn handles them while it serves, then sends each one it handled to itself again, for
    the handlers it found to act on (last first, so the first signal is noted last). Those
    would make a stop that was asked for and done look like a failure: the CLI's raises it
    (``terminated``, exit 143), a worker's default ends it as killed. This one notes it and
    lets the command end as it chooses (see ``lastgood serve``); one that comes before uvicorn
    took over stops the server as soon as it has started. Yields the signals noted, in order;
    outside the main thread (where no handler can be set) none."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def note(signum: int, frame: object) -> None:
        received.append(signum)
        server.should_exit = True

    previous = {sig: signal.signal(sig, note) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _log_access_to_stderr() -> None:
    """Access lines go to stderr, with the time, whatever the root logger does."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    access_log.addHandler(handler)
    access_log.setLevel(logging.INFO)
    access_log.propagate = False
