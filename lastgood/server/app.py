"""The FastAPI application: state shared by every request, error translation, background tasks.

Everything a request needs hangs off :class:`ServerState` (``request.app.state.lastgood``): the
project (one store connection pool for all), the live-config feeds, the consumer registry and the
authenticator. Errors leave as ``{"error": …, "hint": …, "exit_code": …}`` with the status that
:mod:`lastgood.errors` assigns, so the CLI acting through the server exits exactly as it would
locally; nothing unexpected ever shows a traceback or a secret.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from lastgood import __version__
from lastgood.errors import LastgoodError, RefusedError
from lastgood.events import Event, EventKind
from lastgood.project import Project
from lastgood.rows import ApiToken
from lastgood.server.auth import Authenticator
from lastgood.server.collection import Collection
from lastgood.server.consumers import Consumers
from lastgood.server.live import Feeds
from lastgood.server.quiet import Quiet

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from lastgood.server.siblings import Board

log = logging.getLogger("lastgood.server")

# The largest request body accepted. Uvicorn sets no limit, and an upload is parsed whole in
# memory; a workspace of configuration is far smaller (files are capped at max_file_size).
MAX_BODY = 64 * 1024 * 1024


class ServerState:
    """What the server holds between requests."""

    def __init__(
        self, project: Project, *, poll: float = 0.05, flush_every: float = 0.5,
        fleet_wait: float = 5.0, wake_others: Callable[[], None] | None = None,
        board: Board | None = None,
    ) -> None:  # fmt: skip
        self.project = project
        self.wake_others = wake_others  # a worker of ``serve --workers``: wakes its siblings
        self.quiet = Quiet()  # the report flush waits while a switch reaches the fleet
        self.feeds = Feeds(project, poll, self.quiet)
        # a worker of ``serve --workers``: the board says which sibling holds unwritten reports
        self.consumers = Consumers(project.store, flush_every, board=board, quiet=self.quiet)
        self.auth = Authenticator(project)
        self.fleet_wait = fleet_wait
        self._config_read = _digest(project.config.path)

    def stale_config(self) -> str | None:
        """Why the server's configuration is older than ``lastgood.toml`` on disk, or None.

        The server reads the file once, when it starts: a check added since would not guard a
        deploy made through it, which must not pass in silence."""
        if _digest(self.project.config.path) == self._config_read:
            return None
        return (
            f"{self.project.config.path} changed since this server started: it still runs "
            "with the environments and checks it read then; restart 'lastgood serve' to load it"
        )

    def require_current_config(self, doing: str) -> None:
        """Refuse a ``doing`` (deploy, drill, check) that would run on an older configuration
        than the file's; a rollback is never refused for it."""
        stale = self.stale_config()
        if stale is not None:
            raise RefusedError(
                f"refused to {doing} through this server: {stale}",
                hint="restart the server (a rollback through it still works meanwhile), or run "
                "the command without --server where the workspace is",
            )

    def acting(self, token: ApiToken) -> Project:
        """The project acting for ``token``: its actions are recorded under the token's name,
        and a switch it makes reaches the feeds at once."""
        project = self.project.acting_as(token.name)
        project.events.subscribe(self._on_event)
        return project

    def _on_event(self, event: Event) -> None:
        if event.kind in _SWITCHES:
            self.feeds.poke()
            if self.wake_others is not None:
                self.wake_others()


# what makes a consumer's version change: this server looks at its targets at once
_SWITCHES = frozenset((EventKind.ACTIVATED, EventKind.ROLLBACK_PERFORMED, EventKind.ROLLOUT_STEP,
                       EventKind.ROLLOUT_STOPPED, EventKind.ROLLOUT_ABORTED,
                       EventKind.ROLLOUT_INTERRUPTED))  # fmt: skip


def _digest(path: Path) -> str | None:
    """The file's SHA-256, or None when it cannot be read (gone, or unreadable now)."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def error_body(exc: LastgoodError) -> dict[str, Any]:
    return {"error": exc.message, "hint": exc.hint, "exit_code": exc.exit_code}


def create_app(project: Project, **options: Any) -> FastAPI:
    """The whole server on ``project``: API, live config, metrics and the web page."""
    state = ServerState(project, **{k: v for k, v in options.items() if k != "max_body"})

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await state.feeds.refresh_all()  # no read before the server knows what is live
        collection = Collection()
        collection.start()
        tasks = [asyncio.create_task(state.feeds.run()),
                 asyncio.create_task(state.consumers.run()),
                 asyncio.create_task(state.auth.run()),
                 asyncio.create_task(collection.run())]  # fmt: skip
        if state.wake_others is not None:  # a sibling worker switched something: look now
            from lastgood.server.workers import WAKE

            asyncio.get_running_loop().add_signal_handler(WAKE, state.feeds.poke)
        if state.consumers.board is not None:  # a sibling answers from the fleet: write now
            from lastgood.server.siblings import FLUSH

            asyncio.get_running_loop().add_signal_handler(FLUSH, state.consumers.flush_soon)
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            collection.stop()
            with contextlib.suppress(Exception):  # the last reports, at once: it stops
                await asyncio.to_thread(state.consumers.flush, stand_aside=False)

    app = FastAPI(
        **_without_telemetry(),
        title="lastgood",
        version=__version__,
        description="The undo button for business operations: versions, deploys, rollbacks, "
        "health, and live configuration for applications. Every endpoint under /api/v1 takes "
        "'Authorization: Bearer TOKEN' (create one with 'lastgood token create').",
        lifespan=lifespan,
        docs_url=None,  # ours, with Swagger UI served from the package: see api_docs
        redoc_url=None,  # ReDoc would load its script from a CDN: one API browser is enough
        swagger_ui_oauth2_redirect_url=None,  # tokens are pasted, never obtained by OAuth2
    )
    app.state.lastgood = state
    app.add_middleware(BodyLimit, limit=options.get("max_body", MAX_BODY))
    _install_error_handlers(app)

    _include_routers(app)
    return app


def _include_routers(app: FastAPI) -> None:
    """Every part of the server: the API, its documentation, live config, metrics, the page."""
    from lastgood.server import (
        api,
        api_docs,
        config_api,
        metrics,
        requests_api,
        rollout_api,
        web,
        web_propose,
        web_requests,
        web_rollout,
    )

    for part in (api, requests_api, rollout_api, api_docs, config_api, metrics, web,
                 web_requests, web_propose, web_rollout):  # fmt: skip
        app.include_router(part.router)


def _without_telemetry() -> dict[str, Any]:
    """FastAPI's built-in OpenTelemetry hooks ask, on every request, whether anyone listens:
    about 30 µs a read for nothing (lastgood exports /metrics itself). Off where it exists."""
    import inspect

    if "telemetry" in inspect.signature(FastAPI.__init__).parameters:
        return {"telemetry": {"tracing": False, "metrics": False, "logs": False}}
    return {}


def _wants_page(request: Request) -> bool:
    """A browser asking for something outside the API: answer errors as the web page does."""
    path = request.url.path
    api = path.startswith(("/api/", "/metrics", "/healthz", "/openapi.json", "/docs"))
    return not api and "text/html" in request.headers.get("accept", "")


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LastgoodError)
    async def lastgood_error(request: Request, exc: LastgoodError) -> JSONResponse:
        return JSONResponse(error_body(exc), status_code=exc.http_status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for error in exc.errors()[:5]:
            where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
            problems.append(f"{where}: {error.get('msg', 'invalid')}")
        return JSONResponse(
            {"error": "bad request: " + "; ".join(problems),
             "hint": "see /docs for what this endpoint takes", "exit_code": 2},
            status_code=422,
        )  # fmt: skip

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if _wants_page(request):  # a person's browser on a page URL: a page, not JSON
            from lastgood.server.web import render

            page = LastgoodError(str(exc.detail), hint="check the address, or start from /")
            return render("error.html", None, exc.status_code, error=page)
        return JSONResponse(
            {"error": str(exc.detail), "hint": None, "exit_code": 2},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(OverflowError)
    async def too_large(request: Request, exc: OverflowError) -> JSONResponse:
        # a number from the request (a version like v99999999999999999999) beyond the store's
        # 64-bit integers: it names nothing, and the caller should hear so, not "unexpected"
        return JSONResponse(
            {"error": "a number in this request is too large to name anything",
             "hint": "versions and ids are at most 9223372036854775807", "exit_code": 2},
            status_code=404,
        )  # fmt: skip

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected %s on %s %s", type(exc).__name__, request.method, request.url.path,
                  exc_info=exc)  # fmt: skip
        return JSONResponse(
            {"error": f"unexpected error: {type(exc).__name__}",
             "hint": "the server log has the details", "exit_code": 1},
            status_code=500,
        )  # fmt: skip


class BodyTooLarge(Exception):
    """Raised inside ``receive`` when a body without Content-Length grows past the limit."""


class BodyLimit:
    """ASGI middleware: 413 ``{"error"}`` for a request body over ``limit`` bytes.

    A declared Content-Length is judged before anything is read; a chunked body is counted as
    it arrives and stopped at the limit, so a huge upload never sits whole in memory."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > self.limit:
            return await self._refuse(send, declared.isdigit())
        seen, refused = 0, False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise BodyTooLarge  # FastAPI may turn this into its own 400: see sending()
            return message

        async def sending(message: Message) -> None:
            nonlocal refused
            if seen <= self.limit:
                await send(message)
            elif not refused:  # whatever the app answers to the aborted read, it is a 413
                refused = True
                await self._refuse(send, True)

        try:
            await self.app(scope, counted, sending)
        except BodyTooLarge:
            if not refused:
                await self._refuse(send, True)

    async def _refuse(self, send: Send, too_large: bool) -> None:
        status = 413 if too_large else 400
        error = (f"the request body is larger than {self.limit:,} bytes" if too_large
                 else "the Content-Length header is not a number")  # fmt: skip
        body = json.dumps({"error": error, "hint": "send less, in several requests if need be",
                           "exit_code": 2}).encode()  # fmt: skip
        headers = [(b"content-type", b"application/json"),
                   (b"content-length", str(len(body)).encode())]  # fmt: skip
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
