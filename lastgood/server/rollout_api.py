"""``/api/v1/envs/{env}/rollout``: a gradual rollout's status, and promote or abort it.

``GET`` answers what ``lastgood rollout status ENV --json`` prints (with the fleet per cohort
from this server's own view of its consumers); ``POST`` with ``{"action": "promote"}`` or
``{"action": "abort", "message": "why"}`` answers an outcome as ``rollback`` does. Reading needs
a viewer token; steering needs a deployer, as deploy and rollback do.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from lastgood.server.deps import Caller, State, allowed, known_env

router = APIRouter(prefix="/api/v1", tags=["operations"])


class SteerRequest(BaseModel):
    action: Literal["promote", "abort"] = Field(description="Move on now, or end the rollout")
    message: str = Field("", max_length=2000, description="Why (recorded; abort)")


@router.get("/envs/{env}/rollout", summary="Where the gradual rollout stands, fleet per cohort")
def rollout_status(env: str, state: State, token: Caller) -> dict[str, Any]:
    from lastgood.operations.rollout_control import rollout_status as read

    allowed(token, "viewer", known_env(state, env))
    state.consumers.gather()  # every worker's consumers, as the fleet view counts them
    return read(state.project, env, state.consumers.of(env)).to_json()


@router.post("/envs/{env}/rollout", summary="Promote the rollout to its next step, or abort it")
def steer_rollout(env: str, body: SteerRequest, state: State, token: Caller) -> dict[str, Any]:
    from lastgood.operations import rollout_control

    allowed(token, "deployer", known_env(state, env))
    project = state.acting(token)
    if body.action == "promote":
        outcome = rollout_control.promote_rollout(project, env)
    else:
        outcome = rollout_control.abort_rollout(project, env, reason=body.message)
        state.feeds.poke()
    return outcome.to_json()
