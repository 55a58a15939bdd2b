"""The web page's buttons for a gradual rollout: promote it, or abort it.

Both are forms on the environment page, shown while a rollout is under way, posted with the
session's CSRF code by a deployer (as the page's deploy and rollback are). Abort answers with the
outcome page, which waits for the consumers to follow; promote goes back to the environment.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from lastgood.server.deps import State
from lastgood.server.web import deployer_form, message_text, outcome_page, page

router = APIRouter(include_in_schema=False)


@router.post("/envs/{env}/rollout/promote")
@page
def promote(
    env: str, state: State, request: Request, csrf: Annotated[str, Form()] = ""
) -> Response:
    from lastgood.operations.rollout_control import promote_rollout

    who = deployer_form(state, request, env, csrf)
    promote_rollout(state.acting(who.token), env)
    return RedirectResponse(f"/envs/{env}", status_code=303)


@router.post("/envs/{env}/rollout/abort")
@page
def abort(
    env: str,
    state: State,
    request: Request,
    csrf: Annotated[str, Form()] = "",
    message: Annotated[str, Form()] = "",
) -> Response:
    from lastgood.operations.rollout_control import abort_rollout

    who = deployer_form(state, request, env, csrf)
    outcome = abort_rollout(state.acting(who.token), env, reason=message_text(message))
    return outcome_page(state, who, env, outcome)
