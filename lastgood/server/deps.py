"""Request dependencies shared by the routers: the server state, the caller, the environment."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from lastgood import tokens
from lastgood.errors import NotFoundError
from lastgood.records import ApiToken
from lastgood.server.app import ServerState


def server_state(request: Request) -> ServerState:
    return request.app.state.lastgood  # type: ignore[no-any-return]


State = Annotated[ServerState, Depends(server_state)]


def caller(
    state: State,
    authorization: Annotated[str | None, Header(description="Bearer TOKEN")] = None,
) -> ApiToken:
    """The token of the request (``Authorization: Bearer …``); 401 without a valid one."""
    return state.auth.by_header(authorization)


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
