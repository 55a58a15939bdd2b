"""Change requests under ``/api/v1``: open, list, show, approve, reject, update, withdraw, apply.

The token's name is the person: a request opened, approved or applied here is recorded as by
that name, so the verbs' rules (the requester never approves their own request, only the
approvers its routing names may review it) hold for the server as they do for the CLI. Roles
decide what a token may ask at all: ``viewer`` reads the requests of its environments,
``deployer`` opens, updates, withdraws and applies them, ``approver`` also approves and rejects.

The server has no folder: a request names a recorded version (upload files first with
``POST /api/v1/versions``, as a deploy through the server does). For the endpoints about one
request, the token's scope is judged on the request's environment before any verb runs, by the
step runner the web page shares (:mod:`lastgood.server.request_steps`).

A step that puts a request live (``apply``, an emergency, the approval that completes a request
on an environment that applies on approval) answers as the deploy endpoint does: once the bake
is done — the bake being the consumers' time to follow — without waiting for a served
environment's consumers the way a rollback or a revert does; ``GET …/consumers`` shows how far
they got. A script asks for what it needs; the web page, whose answer is all a person sees,
waits after those steps as its own deploy does (:mod:`lastgood.server.web_requests`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field, StrictBool

from lastgood.errors import UsageError
from lastgood.refs import LARGEST_VERSION
from lastgood.rows import REQUEST_STATES, ApiToken
from lastgood.server.api import Limit, Ref, with_fleet
from lastgood.server.app import ServerState
from lastgood.server.deps import Caller, State, allowed, allowed_somewhere, known_env
from lastgood.server.request_steps import publish_if_applied, request_scope, run_step

if TYPE_CHECKING:
    from lastgood.operations.requests import RequestView
    from lastgood.project import Project

router = APIRouter(prefix="/api/v1", tags=["change requests"])

Number = Annotated[
    int, Path(ge=1, le=LARGEST_VERSION, description="The request's number (#N, request list)")
]
Message = Annotated[str, Field(max_length=2000)]


class OpenBody(BaseModel):
    message: Message = Field(description="Why this change (required; recorded)")
    version: Ref | None = Field(
        None, description="The version proposed: v12, a hash prefix, staging:last-good … "
        "(required: upload files with POST /api/v1/versions first)",
    )  # fmt: skip
    apply_at: float | None = Field(
        None, ge=0, le=1e11,
        description="Apply it at this time (UNIX seconds), once approved: the watcher does",
    )  # fmt: skip
    emergency: StrictBool = Field(
        False, description="Apply at once with the reduced approval the environment allows, "
        "past a freeze; its review stays open until someone else signs it off",
    )  # fmt: skip


ContentHash = Annotated[
    str | None,
    Field(
        None, max_length=200,
        description="The content hash the reviewer saw (12 hex digits or more, as "
        "request show prints it): refused (409) if the request holds other content when the "
        "review is written. Optional, but scripts should always send it",
    ),
]  # fmt: skip


class ReviewBody(BaseModel):
    message: Message = Field("", description="What you checked (recorded)")
    content_hash: ContentHash = None


class SignOffBody(BaseModel):
    message: Message = Field("", description="What you checked (recorded)")


class RejectBody(BaseModel):
    message: Message = Field(description="Why (required, not blank: the verb says so; recorded)")
    content_hash: ContentHash = None


class UpdateBody(BaseModel):
    version: Ref = Field(description="The version the request proposes from now on")
    message: Message = Field("", description="What changed (recorded)")


class WithdrawBody(BaseModel):
    message: Message = Field("", description="Why (recorded)")


def _step(
    state: ServerState, token: ApiToken, number: int, role: str,
    verb: Callable[[Project, int], RequestView], *, publish: bool = True,
) -> dict[str, Any]:  # fmt: skip
    """The request after ``verb``, as JSON, taken as :func:`run_step` does; with ``publish``,
    once the live config shows the switch when the step applied the request (an environment
    with ``apply = "on-approval"`` deploys on its last approval)."""
    view = run_step(state, token, number, role, verb)
    if publish:
        publish_if_applied(state, view.request)
    return view.to_json()


@router.post(
    "/envs/{env}/requests",
    status_code=201,
    summary="Open a change request proposing a recorded version for an environment",
)
def open_request(env: str, body: OpenBody, state: State, token: Caller) -> dict[str, Any]:
    from lastgood.operations import requests as verbs

    allowed(token, "deployer", known_env(state, env))
    if body.version is None:
        raise UsageError(
            'a change request through the server needs "version": the server has no folder '
            "to propose",
            hint="upload the files first (POST /api/v1/versions) and name the version it "
            "answers, or name one already recorded (v12, staging:last-good); "
            f"'lastgood --server URL request {env} -m WHY' does both",
        )
    view = verbs.open_request(state.acting(token), env, reason=body.message, ref=body.version,
                              apply_at=body.apply_at, emergency=body.emergency,
                              via="server")  # fmt: skip
    publish_if_applied(state, view.request)
    return view.to_json()


@router.get("/requests", summary="Change requests, newest first, of the environments it may see")
def list_requests(
    state: State,
    token: Caller,
    env: Annotated[str | None, Query(max_length=200, description="Only this environment")] = None,
    request_state: Annotated[
        str | None,
        Query(
            alias="state", pattern=f"^({'|'.join(REQUEST_STATES)})$", description="Only this state"
        ),
    ] = None,
    limit: Limit = 50,
) -> list[dict[str, Any]]:
    from lastgood.operations import requests as verbs

    if env is not None:
        allowed(token, "viewer", known_env(state, env))
    else:
        allowed_somewhere(token, "viewer")
    project = state.acting(token)
    names = [env] if env is not None else _visible(state, token)
    if names is None:  # every environment: one query, newest first
        views = verbs.list_requests(project, None, status=request_state, limit=limit)
    else:  # each environment's newest, merged: the newest `limit` of them all are among them
        views = []
        for name in names:
            views += verbs.list_requests(project, name, status=request_state, limit=limit)
        views.sort(key=lambda view: view.request.number, reverse=True)
    return [view.to_json() for view in views[:limit]]


def _visible(state: ServerState, token: ApiToken) -> list[str] | None:
    """The environments a scoped token may see; None for a token of every environment."""
    if not token.env_list:
        return None
    return [name for name in state.project.config.environments if name in token.env_list]


@router.get("/requests/{number}", summary="One change request: review, timeline and diff")
def show_request(number: Number, state: State, token: Caller) -> dict[str, Any]:
    from lastgood.operations import requests as verbs

    request_scope(state, token, number, "viewer")
    project = state.acting(token)
    data = verbs.show_request(project, number).to_json()
    data["diff"] = verbs.request_diff(project, number)
    return data


@router.post("/requests/{number}/approve", summary="Approve a request as it stands now")
def approve_request(
    number: Number, body: ReviewBody, state: State, token: Caller
) -> dict[str, Any]:
    return _review(state, token, number, body, approve=True)


@router.post("/requests/{number}/reject", summary="Reject a request as it stands now")
def reject_request(number: Number, body: RejectBody, state: State, token: Caller) -> dict[str, Any]:
    return _review(state, token, number, body, approve=False)


def _review(
    state: ServerState, token: ApiToken, number: int, body: ReviewBody | RejectBody, *,
    approve: bool,
) -> dict[str, Any]:  # fmt: skip
    from lastgood.operations import requests as verbs

    verb = partial(verbs.review_request, approve=approve, comment=body.message,
                   content=body.content_hash, via="server")  # fmt: skip
    return _step(state, token, number, "approver", verb)


@router.post(
    "/requests/{number}/update",
    summary="Propose another recorded version, based on what is live now (the requester only)",
)
def update_request(number: Number, body: UpdateBody, state: State, token: Caller) -> dict[str, Any]:
    from lastgood.operations import requests as verbs

    verb = partial(verbs.update_request, ref=body.version, reason=body.message, via="server")
    return _step(state, token, number, "deployer", verb)


@router.post(
    "/requests/{number}/withdraw", summary="Close a request unapplied (the requester only)"
)
def withdraw_request(
    number: Number, state: State, token: Caller, body: WithdrawBody | None = None
) -> dict[str, Any]:
    from lastgood.operations import requests as verbs

    reason = body.message if body is not None else ""
    verb = partial(verbs.withdraw_request, reason=reason, via="server")
    return _step(state, token, number, "deployer", verb, publish=False)


@router.post(
    "/requests/{number}/signoff",
    summary="Sign off an emergency's review (anyone but the person who made it)",
)
def sign_off_request(
    number: Number, state: State, token: Caller, body: SignOffBody | None = None
) -> dict[str, Any]:
    from lastgood.operations import requests as verbs

    comment = body.message if body is not None else ""
    verb = partial(verbs.sign_off_request, comment=comment, via="server")
    return _step(state, token, number, "approver", verb, publish=False)


@router.post(
    "/requests/{number}/apply",
    summary="Deploy an approved request: validate, preflight, activate, bake (as deploy answers)",
)
def apply_request(number: Number, state: State, token: Caller) -> dict[str, Any]:
    from lastgood.operations import requests as verbs

    outcome = run_step(state, token, number, "deployer", partial(verbs.apply_request, via="server"))
    state.feeds.publish_now(outcome.env)
    return with_fleet(state, outcome.env, outcome.to_json())
