"""Request dependencies shared by the routers: the server state, the caller, the environment."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import Depends, Header, Request

from lastgood import tokens
from lastgood.errors import NotFoundError
from lastgood.rows import ApiToken
from lastgood.server.app import ServerState


async def server_state(request: Request) -> ServerState:
    """Async on purpose, as is :func:`caller`: FastAPI runs a plain ``def`` dependency in its
    thread pool, and those two hops cost more than the whole config read they serve."""
    return request.app.state.lastgood  # type: ignore[no-any-return]


State = Annotated[ServerState, Depends(server_state)]


async def caller(
    state: State,
    authorization: Annotated[str | None, Header(description="Bearer TOKEN")] = None,
) -> ApiToken:
    """The token of the request (``Authorization: Bearer …``); 401 without a valid one.

    A cached token is answered on the event loop; only a lookup in the store (at most once
    per token every few seconds) goes to a thread, so a slow store never stalls the loop."""
    token = state.auth.cached(authorization)
    if token is None:
        token = await asyncio.to_thread(state.auth.by_header, authorization)
    return token


Caller = Annotated[ApiToken, Depends(caller)]


def known_env(state: ServerState, env: str) -> str:
    """``env`` when lastgood.toml defines it; a 404 naming the known ones otherwise."""
    if env not in state.project.config.environments:
        known = ", ".join(state.project.config.environments) or "none"
        raise NotFoundError(f"no environment named {env[:100]!r}",
                            hint=f"known environments: {known}")  # fmt: skip
    return env


def allowed(token: ApiToken, role: str, env: str | None = None) -> None:
    tokens.require(token, role, env)


def allowed_somewhere(token: ApiToken, role: str) -> None:
    """For what belongs to no environment (versions, diffs): the role on any of them will do."""
    if tokens.rank(token.role) < tokens.rank(role):
        tokens.require(token, role)  # raises, naming what is missing
