"""Applying a change request: the checks right before the deploy, the claim, the deploy, and
the outcome recorded.
"""

from __future__ import annotations

import time
from typing import Any, NoReturn

from lastgood.errors import LastgoodError, RefusedError, RequestError, StaleBaseError
from lastgood.events import EventKind
from lastgood.operations.place import Place
from lastgood.operations.requests.standing import unfinished
from lastgood.operations.requests.view import (
    RequestView,
    announce,
    announce_moved,
    base_label,
    build_view,
    entry_of,
    hash_of,
    live_version,
    moved_on,
    policy_of,
    version_label,
)
from lastgood.outcome import OK, Outcome
from lastgood.project import Project
from lastgood.record import replace
from lastgood.rows import (
    REQUEST_APPLIED,
    REQUEST_APPLYING,
    REQUEST_FAILED,
    REQUEST_OPEN,
    REQUEST_STALE,
    ChangeRequest,
    VersionInfo,
)


def apply_request(project: Project, number: int, *, via: str = "cli") -> Outcome:
    """Put request ``number`` live through the normal deploy, after checking right before it
    that its content is unchanged, its environment still serves its base, and it is approved
    (writes the store and the target). The request records the outcome.

    The request is claimed first (status ``applying``, only from ``open`` and only while it
    holds the content and base just checked), so no second apply, update or withdraw can take
    it meanwhile; the deploy checks the claim and the base again under the environment's
    lease. A process killed meanwhile leaves the claim, and the next read settles it from the
    ledger (:func:`~lastgood.operations.requests.standing.settled`)."""
    request = unfinished(project, number)
    place = Place(project, request.env)
    view = build_view(place, request)
    _refuse_unready(place, view, via)
    if request.emergency:
        _record_freeze_passed(place, request, via)
    claimed = place.store.update_request(
        number,
        entry_of(project, REQUEST_APPLYING, request.content_hash, request.base_hash, "", via),
        by=project.actor, status=REQUEST_APPLYING, when_status=(REQUEST_OPEN,),
        when={"content_hash": request.content_hash, "base_hash": request.base_hash},
    )  # fmt: skip
    moved_on(claimed, (REQUEST_APPLYING,))
    from lastgood.operations.deploy import deploy

    try:
        outcome = deploy(
            project, request.env, ref=str(request.version), message=request.reason,
            source="emergency" if request.emergency else "request", request=claimed,
        )  # fmt: skip
    except LastgoodError as exc:  # refused before anything went live: it may be tried again
        stale = isinstance(exc, StaleBaseError)
        _finish(place, claimed, REQUEST_STALE if stale else REQUEST_OPEN, exc.message, via)
        raise
    except BaseException as exc:  # interrupted: the deploy's own guard closed its record
        _finish(place, claimed, REQUEST_FAILED, f"interrupted: {type(exc).__name__}", via)
        raise
    applied = outcome.exit_code == OK
    status = REQUEST_APPLIED if applied else REQUEST_FAILED
    record = outcome.deployment.id if outcome.deployment else None
    done = _finish(place, claimed, status, outcome.summary, via, deployment=record)
    kind = EventKind.REQUEST_APPLIED if applied else EventKind.REQUEST_FAILED
    announce(
        place, kind, build_view(place, done),
        f"change request {done.label} for {done.env} {status}: {outcome.summary}",
    )  # fmt: skip
    return outcome


def _finish(
    place: Place,
    request: ChangeRequest,
    status: str,
    detail: str,
    via: str,
    *,
    deployment: int | None = None,
) -> ChangeRequest:
    """End an apply's claim on ``request`` with ``status`` (only from ``applying``)."""
    action = {REQUEST_OPEN: "apply-refused"}.get(status, status)
    values: dict[str, Any] = {"status": status, "detail": detail}
    if deployment is not None:
        values["deployment"] = deployment
    return place.store.update_request(
        request.number,
        entry_of(place.project, action, request.content_hash, request.base_hash, detail, via),
        by=place.project.actor, when_status=(REQUEST_APPLYING,), **values,
    )  # fmt: skip


def _refuse_unready(place: Place, view: RequestView, via: str) -> None:
    request = view.request
    version = place.store.version(request.version)
    if version.content_hash != request.content_hash:  # the store is content-addressed: damage
        raise RequestError(
            f"{request.label} proposes v{request.version}, whose content is no longer what was "
            "requested",
            hint="run 'lastgood store verify'; open a new request for the content you want",
        )
    live = live_version(place)
    if live is not None and live.content_hash == request.content_hash:
        raise RequestError(
            f"what {request.label} proposes is live on {request.env} already ({live.label})",
            hint=f"'lastgood history {request.env}' shows which deploy put it there; withdraw "
            f"the request with 'lastgood request withdraw {request.number}'",
        )
    if hash_of(live) != request.base_hash:
        refuse_stale(place, request, live, via)
    if view.state != "approved":
        missing = "; ".join(view.tally.missing)
        why = (
            f"rejected by {', '.join(view.tally.rejected_by)}"
            if view.tally.rejected_by
            else f"it still needs {missing}"
        )
        raise RequestError(
            f"{request.label} is not approved: {why}",
            hint=f"'lastgood request show {request.number}' shows its review",
        )


def refuse_stale(
    place: Place, request: ChangeRequest, live: VersionInfo | None, via: str
) -> NoReturn:
    """Refuse a step on ``request`` because its environment serves ``live``, not its base: it
    needs a fresh look first. An open request is marked stale first (writes, and announces it:
    only the step that moves it from open does)."""
    if request.status == REQUEST_OPEN:
        served = f"{request.env} serves {version_label(live)}"
        request = place.store.update_request(
            request.number,
            entry_of(place.project, REQUEST_STALE, request.content_hash, request.base_hash,
                     f"{served} now", via),
            by=place.project.actor, status=REQUEST_STALE,
            detail=f"{served}, not {base_label(request)} it was based on",
            when_status=(REQUEST_OPEN,),
        )  # fmt: skip
        announce_moved(
            place, request, REQUEST_STALE, EventKind.REQUEST_STALE,
            f"change request {request.label} for {request.env} is stale: {request.detail}",
        )  # fmt: skip
    raise RequestError(
        f"{request.label} is stale: {request.detail or f'{request.env} moved on'}",
        hint=f"it needs a fresh look: its requester runs 'lastgood request update "
        f"{request.number}', which bases it on what is live now, and its approvers approve that",
    )


def apply_if_ready(place: Place, view: RequestView, via: str) -> RequestView:
    """Apply at once when the environment applies on approval and the request is ready and not
    scheduled for later (an emergency always); the view as it stands afterwards, with the
    apply's exit code, so the step that started it can exit as ``request apply`` would. An
    apply refused before anything went live (a freeze, a lock) leaves the step recorded and
    the request open: the view says why in its notice."""
    request = view.request
    policy = policy_of(place)
    on_approval = request.emergency or (policy.apply == "on-approval" and not request.apply_at)
    if view.state != "approved" or not on_approval:
        return view
    try:
        outcome = apply_request(place.project, request.number, via=via)
    except RefusedError as refused:  # the step itself was recorded: say so, and why not applied
        after = build_view(place, place.store.change_request(request.number))
        notice = f"{request.label} was not applied: {refused.message}"
        return replace(after, exit_code=refused.exit_code, notice=notice)
    after = build_view(place, place.store.change_request(request.number))
    return replace(after, exit_code=outcome.exit_code)


def _record_freeze_passed(place: Place, request: ChangeRequest, via: str) -> None:
    """An emergency passes a freeze, and the request's timeline says which one."""
    calendar = place.settings.calendar
    closure = calendar.closed_at(time.time())
    if closure is not None:
        place.store.add_request_entry(
            request.number,
            entry_of(place.project, "passed-freeze", request.content_hash, request.base_hash,
                   calendar.describe(closure), via),
        )  # fmt: skip
