"""One step on one change request, as the API and the web page both take it.

A step (approve, reject, update, withdraw, sign off, apply) is judged on the request's
environment before any verb runs: the caller's token must hold the step's role there. Then one
verb runs as the token, so the store records the token's name as who took the step. A step that
put the request live (an apply, the approval that completes a request on an environment that
applies on approval) has its environment's live config published at once, so a consumer asking
next reads the switch.

What differs stays at each edge: the API answers with the request as JSON
(:mod:`lastgood.server.requests_api`); the page checks its CSRF code and the content it showed,
shows a verb's refusal on the request's page and waits for a served environment's consumers
(:mod:`lastgood.server.web_requests`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from lastgood import tokens
from lastgood.server.app import ServerState

if TYPE_CHECKING:
    from lastgood.project import Project
    from lastgood.rows import ApiToken, ChangeRequest

Result = TypeVar("Result")


def request_scope(state: ServerState, token: ApiToken, number: int, role: str) -> str:
    """The environment of request ``number``, once ``token`` holds ``role`` there (reads;
    ForbiddenError, 403, otherwise; NotFoundError, 404, when there is no such request)."""
    from lastgood.operations.requests import request_env

    env = request_env(state.project, number)
    tokens.require(token, role, env)
    return env


def run_step(
    state: ServerState,
    token: ApiToken,
    number: int,
    role: str,
    verb: Callable[[Project, int], Result],
) -> Result:
    """``verb(project, number)`` as ``token``, once it holds ``role`` on the request's
    environment; writes what the verb writes, and nothing when the role is missing."""
    request_scope(state, token, number, role)
    return verb(state.acting(token), number)


def publish_if_applied(state: ServerState, request: ChangeRequest) -> bool:
    """Publish the live config of ``request``'s environment now if the request was put live,
    so a read that follows the answer gets the new version; whether it was."""
    if request.deployment is None:
        return False
    state.feeds.publish_now(request.env)
    return True
