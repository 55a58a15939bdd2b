"""The JSON API under ``/api/v1``: everything the CLI can do, with the same shapes as ``--json``.

Reading needs a ``viewer`` token, changing what is live a ``deployer`` token for that
environment, managing tokens an ``admin``; change requests, and the ``approver`` role that
reviews them, are in :mod:`lastgood.server.requests_api`. Every action is recorded with the
token's name as the actor. Deploys and rollbacks answer when they are done, with the outcome
the CLI prints and its ``exit_code``; on a served environment the answer also says how far the
fleet followed.
"""

from __future__ import annotations

import contextlib
import time
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel, Field, StrictBool

from lastgood.errors import LastgoodError, NotFoundError, ServerError, UsageError
from lastgood.operations.fleet import read_fleet, wait_for_fleet
from lastgood.record import as_dict
from lastgood.refs import LARGEST_VERSION
from lastgood.server.app import ServerState
from lastgood.server.deps import Caller, State, allowed, allowed_somewhere, known_env
from lastgood.units import parse_since

router = APIRouter(prefix="/api/v1", tags=["operations"])

Limit = Annotated[int, Query(ge=1, le=1000, description="How many records")]
Ref = Annotated[str, Field(min_length=1, max_length=200, description="A version reference")]
# PostgreSQL keeps ids as INTEGER: a larger one can name nothing, so say 422 early
TokenId = Annotated[int, Path(ge=1, le=LARGEST_VERSION, description="The token's id (token list)")]
MAX_DATE = 253_402_300_799.0  # 9999-12-31T23:59:59Z: any later time names no commit


class DeployRequest(BaseModel):
    version: Ref = Field(description="What to deploy: v12, a hash prefix, staging:last-good …")
    message: str = Field("", max_length=2000, description="Why (recorded)")
    force: StrictBool = Field(False, description="Deploy a version that failed here before")
    dry_run: StrictBool = Field(False, description="Return the plan; change nothing")
    ignore_baseline: StrictBool = Field(
        False, description="Deploy even though the checks already fail on what is live (recorded)"
    )
    wait_fleet: float = Field(
        5.0, ge=0, le=60, description="Served environments: seconds to wait for every consumer "
        "once the version is live (as a rollback does)",
    )  # fmt: skip


class RollbackRequest(BaseModel):
    to: Ref | None = Field(None, description="Restore this version instead of last known good")
    message: str = Field("", max_length=2000, description="Why (recorded)")
    force: StrictBool = Field(
        False, description="Break a stuck lock; allow a bad or never-run --to"
    )
    wait_fleet: float = Field(
        5.0, ge=0, le=60, description="Served environments: seconds to wait for every consumer"
    )


class RevertRequest(BaseModel):
    paths: list[Annotated[str, Field(min_length=1, max_length=1000)]] = Field(
        min_length=1, max_length=1000, description="Files or folders to take back"
    )
    source: Ref | None = Field(
        None, alias="from", description="Take them from this version (default: per path, the "
        "last known good before the change that touched it)",
    )  # fmt: skip
    message: str = Field(max_length=2000, description="Why (required; recorded)")
    wait_fleet: float = Field(
        5.0, ge=0, le=60, description="Served environments: seconds to wait for every consumer "
        "once the revert is live (as a rollback does)",
    )  # fmt: skip


class DrillRequest(BaseModel):
    message: str = Field("", max_length=2000)
    override_protection: StrictBool = Field(
        False, description="Drill a protected environment (admin)"
    )


class FileUpload(BaseModel):
    encoding: str = Field("utf-8", pattern="^(utf-8|base64)$")
    content: str


class VersionUpload(BaseModel):
    files: dict[str, FileUpload] = Field(description="Path → content, as the config endpoint")
    message: str = Field("", max_length=2000)
    git_commit: str | None = Field(
        None, pattern="^([0-9a-f]{40}|[0-9a-f]{64})$",
        description="The git commit the files were taken from (as the uploader claims)",
    )  # fmt: skip
    git_dirty: StrictBool | None = Field(None, description="The folder differed from git_commit")
    from_commit: StrictBool = Field(
        False, description="The files are what git_commit holds (deploy --commit), not a "
        "folder: recorded as that commit's version, once per commit, even when the newest "
        "version holds the same files",
    )  # fmt: skip
    git_author: str | None = Field(
        None, min_length=1, max_length=200,
        description="With from_commit: the commit's author, 'Name <email>', recorded as the "
        "version's author (default: the token's name)",
    )  # fmt: skip
    git_author_date: float | None = Field(
        None, ge=0, le=MAX_DATE, allow_inf_nan=False,
        description="With from_commit: the commit's author date, seconds since the epoch, "
        "recorded as the version's time (default: now)",
    )  # fmt: skip


class TokenRequest(BaseModel):
    name: str = Field(
        min_length=1,
        max_length=200,
        description="Who uses it, recorded as the actor: visible characters, no spaces at "
        "either end, not 'lastgood'",
    )
    role: str = Field(pattern="^(viewer|deployer|approver|admin)$")
    envs: list[str] = Field(default_factory=list, description="Empty: every environment")


# ---- environments ----------------------------------------------------------------------------


def with_fleet(state: ServerState, env: str, data: dict[str, Any]) -> dict[str, Any]:
    """Replace the store's view of the fleet with the server's own, fresher one; and say when
    the server runs on an older lastgood.toml than the one on disk."""
    fleet = read_fleet(state.project, env, state.consumers)
    if fleet is not None:
        data["fleet"] = fleet.to_json()
    if data.get("rollout"):  # the cohorts as this server counts them too
        from lastgood.operations.rollout_control import rollout_status

        with contextlib.suppress(LastgoodError):
            found = rollout_status(state.project, env, state.consumers.of(env))
            data["rollout"] = found.to_json() if found.rolling else None
    stale = state.stale_config()
    if stale is not None and "warnings" in data:
        data["warnings"] = [stale, *data["warnings"]]
    return data


@router.get("/envs", summary="Status of every environment the token may see")
def list_envs(state: State, token: Caller) -> list[dict[str, Any]]:
    from lastgood.operations.status import status
    from lastgood.tokens import allows

    project = state.acting(token)
    names = [name for name in project.config.environments if allows(token, "viewer", name)]
    found = [status(project, name, repair=False)[0] for name in names]  # a read: writes nothing
    return [with_fleet(state, one.env, one.to_json()) for one in found]


@router.get("/envs/{env}", summary="Status of one environment")
def env_status(env: str, state: State, token: Caller) -> dict[str, Any]:
    from lastgood.operations.status import status

    allowed(token, "viewer", known_env(state, env))
    found = status(state.acting(token), env, repair=False)[0]  # a read: writes nothing
    return with_fleet(state, env, found.to_json())


@router.get("/envs/{env}/history", summary="The timeline: deployments and events")
def env_history(env: str, state: State, token: Caller, limit: Limit = 30) -> dict[str, Any]:
    from lastgood.operations.status import history

    allowed(token, "viewer", known_env(state, env))
    timeline = history(state.acting(token), env, limit=limit)
    return {"deployments": [d.to_json() for d in timeline.deployments],
            "events": [e.to_json() for e in timeline.events]}  # fmt: skip


@router.get("/envs/{env}/consumers", summary="The fleet: which consumer serves which version")
def env_consumers(env: str, state: State, token: Caller) -> dict[str, Any]:
    allowed(token, "viewer", known_env(state, env))
    fleet = read_fleet(state.project, env, state.consumers)
    if fleet is None:
        raise NotFoundError(f"{env} is not a served environment, so it has no consumers",
                            hint='set target = { type = "served" } to serve it')  # fmt: skip
    consumers = sorted(state.consumers.of(env), key=lambda c: c.name)
    return {"fleet": fleet.to_json(), "consumers": [c.to_json() for c in consumers]}


@router.post(
    "/envs/{env}/deploy", summary="Deploy a recorded version, bake it, roll back on failure"
)
def deploy(env: str, body: DeployRequest, state: State, token: Caller) -> dict[str, Any]:
    from lastgood.operations import deploy as verbs

    allowed(token, "deployer", known_env(state, env))
    state.require_current_config("deploy")
    project = state.acting(token)
    if body.dry_run:
        return verbs.plan_deploy(project, env, ref=body.version).to_json()
    try:
        outcome = verbs.deploy(project, env, message=body.message, ref=body.version,
                               force=body.force, source="server",
                               ignore_baseline=body.ignore_baseline)  # fmt: skip
    except KeyboardInterrupt:  # the server is stopping (lastgood.termination.request_stop)
        raise ServerError(
            f"the server stopped during this deploy on {env}: the deploy was stopped and its "
            "record closed interrupted (a gradual rollout under way was ended: every consumer "
            "is back on the stable version)",
            hint=f"see 'lastgood status {env}' and 'lastgood history {env}', then deploy "
            "again when the server is back",
        ) from None
    state.feeds.publish_now(env)
    data = outcome.to_json()
    fleet = wait_for_fleet(state.project, env, state.consumers, body.wait_fleet)
    if fleet is not None:  # how far the new version reached, once it did (or the wait is over)
        data["fleet"] = fleet.to_json()
    return data


@router.post("/envs/{env}/rollback", summary="Restore last known good (or a chosen version)")
def rollback(env: str, body: RollbackRequest, state: State, token: Caller) -> dict[str, Any]:
    from lastgood.operations.rollback import rollback as do_rollback

    allowed(token, "deployer", known_env(state, env))
    outcome = do_rollback(state.acting(token), env, to=body.to, reason=body.message,
                          force=body.force, source="server")  # fmt: skip
    state.feeds.publish_now(env)
    data = outcome.to_json()
    fleet = wait_for_fleet(state.project, env, state.consumers, body.wait_fleet)
    if fleet is not None:
        data["fleet"] = fleet.to_json()
    return data


@router.post(
    "/envs/{env}/revert",
    summary="Take some paths back to an earlier version as a new version, and deploy it (or "
    "open a change request where the environment requires approval)",
)
def revert(env: str, body: RevertRequest, state: State, token: Caller) -> dict[str, Any]:
    """As ``revert --json``: the new version, where each path came from, and the outcome (with
    ``fleet`` on a served environment) or, where approval is required, the change request.

    A revert is how one bad file is taken back in an incident, so, like a rollback, it answers
    once every consumer of a served environment serves what is live (or ``wait_fleet``
    seconds passed), and ``fleet`` says how far they followed."""
    from lastgood.operations.revert import revert as do_revert

    allowed(token, "deployer", known_env(state, env))
    done = do_revert(state.acting(token), env, body.paths, reason=body.message,
                     source_ref=body.source, via="server")  # fmt: skip
    applied = done.request is not None and done.request.request.deployment is not None
    if done.outcome is not None or applied:
        state.feeds.publish_now(env)
    data = done.to_json()
    if data["outcome"] is not None:
        fleet = wait_for_fleet(state.project, env, state.consumers, body.wait_fleet)
        if fleet is not None:
            data["outcome"]["fleet"] = fleet.to_json()
    return data


@router.post("/envs/{env}/check", summary="Run the health checks now")
def check(env: str, state: State, token: Caller) -> dict[str, Any]:
    from lastgood.comparison import measured
    from lastgood.operations.status import check_now

    allowed(token, "deployer", known_env(state, env))
    state.require_current_config("check")
    done = check_now(state.acting(token), env)
    return {"ok": done.ok, "results": [
        {"name": x.name, "ok": x.ok, "detail": x.detail, "duration": x.duration,
         "value": measured(x.data)}
        for x in done.results]}  # fmt: skip


@router.post("/envs/{env}/drill", summary="Rehearse a rollback: break, detect, restore, measure")
def drill(env: str, body: DrillRequest, state: State, token: Caller) -> dict[str, Any]:
    from lastgood.operations.drill import drill as do_drill

    allowed(token, "admin" if body.override_protection else "deployer", known_env(state, env))
    state.require_current_config("drill")
    result = do_drill(state.acting(token), env, override_protection=body.override_protection,
                      reason=body.message)  # fmt: skip
    state.feeds.publish_now(env)
    data = as_dict(result)
    data["exit_code"] = result.exit_code
    return data


# ---- versions --------------------------------------------------------------------------------


@router.get("/versions", summary="Versions, newest first")
def versions(state: State, token: Caller, limit: Limit = 20) -> list[dict[str, Any]]:
    from lastgood.operations.versions import log

    allowed_somewhere(token, "viewer")
    return [v.__dict__ for v in log(state.project, limit=limit)]


@router.post("/versions", summary="Record uploaded files as a new version (unless unchanged)")
def upload(body: VersionUpload, state: State, token: Caller) -> dict[str, Any]:
    from lastgood.operations.snapshot import snapshot_bundle
    from lastgood.server.uploads import bundle_of, commit_author

    allowed_somewhere(token, "deployer")
    project = state.acting(token)
    author = commit_author(body.from_commit, body.git_author, body.git_author_date)
    bundle = bundle_of(project, {p: f.model_dump() for p, f in body.files.items()})
    if body.from_commit:
        from lastgood.operations.commits import commit_version

        if body.git_commit is None:
            raise UsageError("from_commit needs git_commit: the commit the files were read from",
                             hint="send the commit's full id as git_commit")  # fmt: skip
        result = commit_version(project, bundle, body.git_commit, message=body.message,
                                author=author, at=body.git_author_date, source="git")  # fmt: skip
    else:
        result = snapshot_bundle(project, bundle, body.message, source="server",
                                 git_commit=body.git_commit,
                                 git_dirty=body.git_dirty if body.git_commit else None)  # fmt: skip
    from lastgood.secrets.scan import warning

    return {"created": result.created, "version": result.version.__dict__,
            "warnings": [warning(suspect) for suspect in result.suspects]}  # fmt: skip


@router.get("/versions/{ref}", summary="One version and its files, secrets masked")
def version(ref: str, state: State, token: Caller) -> dict[str, Any]:
    from lastgood.operations.versions import view
    from lastgood.server.live import encode_file

    allowed_somewhere(token, "viewer")
    info, files = view(state.project, ref)
    return {"version": info.__dict__,
            "files": {p: encode_file(d) for p, d in sorted(files.items())}}  # fmt: skip


@router.get("/versions/{ref}/files/{path:path}", summary="One file of a version, secrets masked",
            response_class=PlainTextResponse)  # fmt: skip
def version_file(ref: str, path: str, state: State, token: Caller) -> Response:
    """A file whose whole content is secret is refused (403); any other comes with its secret
    values masked, and ``X-Lastgood-Masked: yes`` when any was (see ``versions.shown_file``)."""
    from lastgood.operations.versions import shown_file

    allowed_somewhere(token, "viewer")
    data, masked = shown_file(state.project, ref, path)
    headers = {"X-Lastgood-Masked": "yes"} if masked else {}
    return Response(data, media_type="application/octet-stream", headers=headers)


@router.get("/diff", summary="Unified diff between two versions")
def diff(
    state: State,
    token: Caller,
    old: Annotated[str, Query(min_length=1, max_length=200)],
    new: Annotated[str, Query(min_length=1, max_length=200)],
) -> dict[str, Any]:
    from lastgood.operations import versions as verbs

    allowed_somewhere(token, "viewer")
    if "workspace" in (old, new):
        raise UsageError(
            "the server compares recorded versions only, not a folder",
            hint="upload the folder as a version first (POST /api/v1/versions)",
        )
    before, after = verbs.sides(state.project, old, new)
    return {"old": before.label, "new": after.label, "files": verbs.changes(before, after),
            "diff": verbs.unified(before, after)}  # fmt: skip


# ---- reports ---------------------------------------------------------------------------------


@router.get("/report", summary="The stakeholder digest", response_model=None)
def report(
    state: State,
    token: Caller,
    since: Annotated[str, Query(max_length=40, description="A duration (7d) or a date")] = "7d",
    env: Annotated[list[str] | None, Query(description="Environments (default: all)")] = None,
    format: Annotated[str, Query(pattern="^(json|text|markdown|html)$")] = "json",
) -> Any:
    from lastgood.operations import report as verbs
    from lastgood.report import render

    names = env or list(state.project.config.environments)
    for name in names:
        allowed(token, "viewer", known_env(state, name))
    now = time.time()
    digest = verbs.build(state.project, since=parse_since(since, now), until=now, envs=names)
    if format == "json":
        return digest.to_json()
    media = {"text": "text/plain", "markdown": "text/markdown", "html": "text/html"}[format]
    return Response(render(digest, format), media_type=f"{media}; charset=utf-8")


# ---- tokens ----------------------------------------------------------------------------------


@router.get("/tokens", summary="API tokens (never their secrets)")
def list_tokens(state: State, token: Caller) -> list[dict[str, Any]]:
    from lastgood.operations import tokens as verbs

    allowed(token, "admin")
    return [t.to_json() for t in verbs.list_tokens(state.project)]


@router.post("/tokens", summary="Create a token; its secret is in this answer and nowhere else")
def create_token(body: TokenRequest, state: State, token: Caller) -> dict[str, Any]:
    from lastgood.operations import tokens as verbs

    allowed(token, "admin")
    for name in body.envs:
        known_env(state, name)
    record, secret = verbs.create_token(state.acting(token), name=body.name, role=body.role,
                                        envs=body.envs)  # fmt: skip
    return {**record.to_json(), "token": secret}


@router.delete("/tokens/{token_id}", summary="Revoke a token")
def revoke_token(token_id: TokenId, state: State, token: Caller) -> dict[str, Any]:
    from lastgood.operations import tokens as verbs

    allowed(token, "admin")
    return verbs.revoke_token(state.acting(token), token_id).to_json()
