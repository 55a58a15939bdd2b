"""Proposing a change: open a request, give it new content, withdraw it."""

from __future__ import annotations

import json

from lastgood.errors import RequestError, UsageError
from lastgood.events import EventKind
from lastgood.operations.gate import request_command
from lastgood.operations.place import Place
from lastgood.operations.requests.apply import apply_if_ready
from lastgood.operations.requests.standing import unfinished
from lastgood.operations.requests.view import (
    RequestView,
    announce,
    announce_moved,
    build_view,
    entry_of,
    hash_of,
    live_version,
    moved_on,
    plain_text,
    policy_of,
    proposed_version,
    refuse_past,
    refuse_unproven,
    route_change,
    version_label,
)
from lastgood.project import Project
from lastgood.rows import (
    MOVABLE_REQUESTS,
    REQUEST_OPEN,
    REQUEST_WITHDRAWN,
)
from lastgood.units import plural


def open_request(
    project: Project,
    env: str,
    *,
    reason: str,
    ref: str | None = None,
    apply_at: float | None = None,
    emergency: bool = False,
    via: str = "cli",
) -> RequestView:
    """Open change request ``#N`` proposing ``ref`` (default: the folder, recorded as a new
    version) for ``env`` (writes the store). Applies it at once when it needs no approval and
    the environment applies on approval.

    An ``emergency`` is applied at once with the reduced approval the environment allows
    (``emergency_approvals``, none by default), past a freeze; it is marked as such in the
    ledger, its events and every view, and its review stays open until someone other than the
    requester signs it off (:func:`~lastgood.operations.requests.review.sign_off_request`)."""
    place = Place(project, env)
    check_opening(place, reason, via)
    if apply_at is not None:
        refuse_past("the time to apply", apply_at)
    if emergency and not policy_of(place).emergency:
        raise RequestError(
            f"{env} allows no emergency changes ([env.{env}.approval] emergency = false)",
            hint=f"open a normal request, or roll back: 'lastgood rollback {env}' needs nobody",
        )
    if emergency and apply_at is not None:
        raise RequestError(
            "an emergency is applied at once; it cannot be scheduled",
            hint="drop --at, or drop --emergency to schedule a normal request",
        )
    version = proposed_version(place, ref, reason)
    base = live_version(place)
    if base is not None and base.content_hash == version.content_hash:
        raise RequestError(
            f"{version.label} is what {env} serves now: there is nothing to change",
            hint="change the folder (or name another version with --version) first",
        )
    routing, changed = route_change(place, version, base)
    request = place.store.open_request(
        entry_of(project, "opened", version.content_hash, hash_of(base), reason, via),
        env=env, version=version.number, content_hash=version.content_hash,
        base_version=base.number if base else None, base_hash=hash_of(base),
        requester=project.actor, reason=reason, status=REQUEST_OPEN, risk=routing.risk,
        routing=json.dumps(routing.to_json()), apply_at=apply_at, emergency=emergency,
    )  # fmt: skip
    view = build_view(place, request, changed)
    who = "; ".join(view.tally.missing) or (
        f"no approval (standard change: {routing.standard})" if routing.standard else "no approval"
    )
    kind = "EMERGENCY change" if emergency else "change request"
    announce(
        place,
        EventKind.REQUEST_OPENED,
        view,
        f"{kind} {request.label} for {env}: {version.label} by {project.actor}"
        f" ({reason}); risk {routing.risk}; needs {who}",
    )
    return apply_if_ready(place, view, via)


def check_opening(place: Place, reason: str, via: str) -> None:
    """Refuse to open a request for ``place`` with this reason, from ``via``: no reason, one
    that is not plain text, or — where approvals count only through the server — from anywhere
    else (the requester is whom approvals are checked against). Reads only: a verb that
    records something before it opens a request (a revert's new version) asks first."""
    env = place.name
    if not reason.strip():
        raise UsageError(
            f"a change request for {env} needs a reason",
            hint="say why with -m, e.g. " + request_command(env, "-m 'raise the lead threshold'"),
        )
    plain_text("the reason", reason)
    opening = request_command(env).removeprefix("lastgood ")
    refuse_unproven(policy_of(place), env, via, "requests", opening)


def update_request(
    project: Project, number: int, *, ref: str | None = None, reason: str = "", via: str = "cli"
) -> RequestView:
    """Give request ``number`` new content (``ref``, default the folder) and base it on what its
    environment serves now (writes). Approvals of other content stop counting; approvals of
    exactly this content and base count again. Only the requester may update a request."""
    request = unfinished(project, number)
    place = Place(project, request.env)
    refuse_unproven(policy_of(place), request.env, via, "updates", f"request update {number}")
    plain_text("the reason", reason)
    if project.actor != request.requester:
        raise RequestError(
            f"{request.label} was opened by {request.requester}; only they can update it",
            hint=f"open your own request with '{request_command(request.env)}'",
        )
    version = proposed_version(place, ref, reason or request.reason)
    base = live_version(place)
    routing, changed = route_change(place, version, base)
    updated = place.store.update_request(
        number,
        entry_of(project, "updated", version.content_hash, hash_of(base), reason, via),
        by=project.actor,
        version=version.number,
        content_hash=version.content_hash,
        base_version=base.number if base else None,
        base_hash=hash_of(base),
        status=REQUEST_OPEN,
        risk=routing.risk,
        routing=json.dumps(routing.to_json()),
        detail="",
        when_status=MOVABLE_REQUESTS,
    )
    moved_on(updated, (REQUEST_OPEN,))
    view = build_view(place, updated, changed)
    dismissed = (
        f"; {plural(view.tally.dismissed, 'approval')} of other content no longer count"
        if view.tally.dismissed else ""
    )  # fmt: skip
    announce(
        place,
        EventKind.REQUEST_UPDATED,
        view,
        f"change request {updated.label} for {updated.env} now proposes {version.label} "
        f"against {version_label(base)}{dismissed}",
    )
    return apply_if_ready(place, view, via)


def withdraw_request(
    project: Project, number: int, *, reason: str, via: str = "cli"
) -> RequestView:
    """Close request ``number`` without applying it (the requester only; writes)."""
    request = unfinished(project, number)
    if project.actor != request.requester:
        raise RequestError(
            f"{request.label} was opened by {request.requester}; only they can withdraw it",
            hint="reject it instead: 'lastgood request reject N -m WHY'",
        )
    place = Place(project, request.env)
    plain_text("the reason", reason)
    closed = place.store.update_request(
        number,
        entry_of(project, "withdrawn", request.content_hash, request.base_hash, reason, via),
        by=project.actor,
        status=REQUEST_WITHDRAWN,
        detail=f"withdrawn by {project.actor}",
        when_status=MOVABLE_REQUESTS,
    )
    return announce_moved(
        place, closed, REQUEST_WITHDRAWN, EventKind.REQUEST_WITHDRAWN,
        f"change request {closed.label} for {closed.env} withdrawn by {project.actor}",
    )  # fmt: skip
