"""Live config for applications: ``/api/v1/envs/{env}/config`` and how consumers follow it.

- ``GET …/config`` answers the whole live version (files, version, content hash) with an
  ``ETag``; ``If-None-Match`` with the current tag answers ``304``. Add ``?wait=30`` to
  long-poll: the answer comes the moment the version changes, or ``304`` after 30 s.
- ``GET …/config/files/{path}`` answers one file's bytes.
- ``GET …/config/stream`` is a server-sent event stream: one ``config`` event now and one per
  change, with a comment every 15 s to keep proxies from closing it.
- Consumers say what they serve in headers on every read (see
  :mod:`lastgood.server.consumers`), or with ``POST …/consumers``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field

from lastgood.errors import NotFoundError
from lastgood.rows import ApiToken
from lastgood.server.app import ServerState
from lastgood.server.consumers import (
    MAX_VERSION,
    checked_metrics,
    parse_health,
    parse_metrics,
    parse_serving,
)
from lastgood.server.deps import Caller, State, allowed, known_env
from lastgood.server.live import Feed, Served, etag_matches

router = APIRouter(prefix="/api/v1/envs/{env}", tags=["live config"])

KEEPALIVE = 15.0


class ConsumerReport(BaseModel):
    consumer: str = Field(min_length=1, max_length=200, description="Stable id of the consumer")
    name: str = Field("", max_length=200, description="Who it is, for people: host:pid, app")
    version: int | None = Field(None, ge=1, le=MAX_VERSION, description="The version it serves now")
    content_hash: str | None = Field(None, max_length=64)
    kind: Literal["sdk", "agent"] = Field("sdk", description="sdk, or agent for lastgood agent")
    health: Literal["ok", "failing"] | None = Field(None, description="An agent's host checks")
    detail: str | None = Field(None, max_length=200, description="What failed on the host")
    leaving: bool = Field(False, description="It stops now: drop it from the fleet at once")
    metrics: dict[str, float] | None = Field(
        None, description="Business metrics measured on the version it serves: {name: number}"
    )


def _feed(state: ServerState, env: str, token: ApiToken) -> Feed:
    allowed(token, "viewer", known_env(state, env))
    feed = state.feeds.get(env)
    if feed is None:
        raise NotFoundError(
            f"{env} is not a served environment, so the server has no live config for it",
            hint=f'set target = {{ type = "served" }} under [env.{env}] and restart the server',
        )
    return feed


def _published(feed: Feed, consumer: str | None = None) -> Served:
    """What ``consumer`` gets (see :meth:`Feed.pick`); NotFoundError when nothing is live."""
    served = feed.pick(consumer)
    if served is None:
        raise NotFoundError(
            f"nothing is live on {feed.env} yet",
            hint=f"deploy a version first: 'lastgood deploy {feed.env}'",
        )
    return served


def _headers(served: Served) -> dict[str, str]:
    return {"ETag": served.etag, "X-Lastgood-Version": str(served.version),
            "Cache-Control": "no-cache"}  # fmt: skip


def _report(state: ServerState, env: str, request: Request) -> None:
    report_from(state, env, request.headers)


def report_from(state: ServerState, env: str, headers: Mapping[str, str]) -> None:
    """Record the consumer's report headers, if it sent them (lower-case names). Raises
    UsageError for a malformed one: FastAPI answers 400 with its words, the fast path hands the
    request to FastAPI."""
    consumer = headers.get("x-lastgood-consumer")
    if consumer is None:
        return
    version, content_hash = parse_serving(headers.get("x-lastgood-serving"))
    name = headers.get("x-lastgood-consumer-name") or consumer
    kind = headers.get("x-lastgood-consumer-kind") or "sdk"
    health = parse_health(headers.get("x-lastgood-health"))
    metrics = parse_metrics(headers.get("x-lastgood-metrics"))
    state.consumers.report(env, consumer, name=name, version=version, content_hash=content_hash,
                           kind=kind, health=health, metrics=metrics)  # fmt: skip


def still_there(state: ServerState, env: str, headers: Mapping[str, str]) -> None:
    """A long-poll ended unchanged: the consumer is alive. Only its time is recorded when it is
    known, since a report it sent while this request was held (an agent's new host health)
    is newer than this request's headers."""
    consumer = headers.get("x-lastgood-consumer")
    if consumer is not None and not state.consumers.touch(env, consumer):
        report_from(state, env, headers)


@router.get("/config", summary="The live config: every file, the version and its content hash",
            responses={304: {"description": "Not modified (If-None-Match matched)"}})  # fmt: skip
async def config(
    env: str,
    request: Request,
    state: State,
    token: Caller,
    wait: Annotated[float, Query(ge=0, le=60, description="Long-poll up to this many s")] = 0,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    feed = _feed(state, env, token)
    _report(state, env, request)
    consumer = request.headers.get("x-lastgood-consumer")
    picked = feed.pick(consumer)
    if wait and (picked is None or etag_matches(if_none_match, picked.etag)):
        await feed.wait_change(picked.etag if picked else None, wait, consumer)
        still_there(state, env, request.headers)
    served = _published(feed, consumer)
    if etag_matches(if_none_match, served.etag):
        return Response(status_code=304, headers=_headers(served))
    return Response(served.body, media_type="application/json", headers=_headers(served))


@router.get("/config/files/{path:path}", summary="One file of the live config, as bytes",
            responses={304: {"description": "Not modified"}})  # fmt: skip
async def config_file(
    env: str,
    path: str,
    state: State,
    token: Caller,
    if_none_match: Annotated[str | None, Header()] = None,
    x_lastgood_consumer: Annotated[str | None, Header()] = None,
) -> Response:
    served = _published(_feed(state, env, token), x_lastgood_consumer)
    if path not in served.files:
        raise NotFoundError(f"v{served.version} on {env} has no file {path[:200]!r}",
                            hint=f"GET /api/v1/envs/{env}/config lists the files")  # fmt: skip
    if etag_matches(if_none_match, served.etag):
        return Response(status_code=304, headers=_headers(served))
    return Response(served.files[path], media_type="application/octet-stream",
                    headers=_headers(served))  # fmt: skip


@router.get("/config/stream", summary="Server-sent events: one per change of the live version",
            response_class=StreamingResponse)  # fmt: skip
async def config_stream(env: str, request: Request, state: State, token: Caller) -> Response:
    feed = _feed(state, env, token)
    consumer = request.headers.get("x-lastgood-consumer")

    async def events() -> AsyncIterator[str]:
        sent: str | None = None
        while not await request.is_disconnected():
            current = feed.pick(consumer)
            if current is not None and current.etag != sent:
                sent = current.etag
                yield f"event: config\ndata: {json.dumps(current.summary())}\n\n"
                continue
            before = current.etag if current else None
            waiter = asyncio.create_task(feed.wait_change(before, KEEPALIVE, consumer))
            await waiter
            current = feed.pick(consumer)
            if current is None or current.etag == sent:
                yield ": keepalive\n\n"

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.post("/consumers", summary="A consumer reports the version it serves", status_code=204,
             response_class=Response)  # fmt: skip
def report_consumer(env: str, body: ConsumerReport, state: State, token: Caller) -> Response:
    _feed(state, env, token)
    if body.leaving:
        state.consumers.leave(env, body.consumer)
        return Response(status_code=204)
    metrics = checked_metrics(body.metrics or {})
    state.consumers.report(env, body.consumer, name=body.name or body.consumer,
                           version=body.version, content_hash=body.content_hash, kind=body.kind,
                           health=(body.health, body.detail), metrics=metrics)  # fmt: skip
    return Response(status_code=204)
