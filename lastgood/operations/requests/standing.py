"""Where a request stands before a step: a killed apply settled from the ledger, an old request
expired, one that can no longer move refused.
"""

from __future__ import annotations

import time
from typing import Any

from lastgood.errors import RequestError
from lastgood.events import EventKind
from lastgood.operations.gate import opening_command
from lastgood.operations.place import Place
from lastgood.operations.requests.view import announce, build_view, policy_of
from lastgood.project import Project
from lastgood.rows import (
    MOVABLE_REQUESTS,
    REQUEST_APPLIED,
    REQUEST_APPLYING,
    REQUEST_EXPIRED,
    REQUEST_FAILED,
    REQUEST_OPEN,
    ChangeRequest,
)


def unfinished(project: Project, number: int) -> ChangeRequest:
    """Request ``number``, settled and expired as due (writes then), once a person may still
    move it (open or stale); refused while an apply holds it, or once it is closed."""
    request = project.store.change_request(number)
    place = Place(project, request.env)
    request = expire_if_due(place, settled(place, request))
    if request.status == REQUEST_APPLYING:
        raise RequestError(
            f"{request.label} is being applied right now",
            hint=f"'lastgood history {request.env}' shows the deploy; try again when it is done",
        )
    if request.status not in MOVABLE_REQUESTS:
        raise RequestError(
            f"{request.label} is {request.status}"
            + (f": {request.detail}" if request.detail else ""),
            hint=f"open a new request with '{opening_command(place)}'",
        )
    return request


def settled(place: Place, request: ChangeRequest) -> ChangeRequest:
    """A request left ``applying`` by a process that is gone, settled from the ledger: the
    deploy it started ended as the ledger says (applied or failed), or it never started one
    (open again). One still running is left alone."""
    if request.status != REQUEST_APPLYING:
        return request
    started = [
        record for record in place.store.deployments(place.name, limit=20)
        if record.to_version == request.version and record.source in ("request", "emergency")
        and record.requested_at >= request.updated_at - 1
    ]  # fmt: skip
    if started and started[0].status == "running":
        return request
    if not started:
        status, detail, record = REQUEST_OPEN, "the apply stopped before its deploy began", None
    else:
        record = started[0].id
        good = started[0].status in ("succeeded", "verified")
        status = REQUEST_APPLIED if good else REQUEST_FAILED
        detail = f"settled from ledger record #{record} ({started[0].status})"
    values: dict[str, Any] = {"status": status, "detail": detail}
    if record is not None:
        values["deployment"] = record
    return place.store.update_request(
        request.number,
        {"actor": "lastgood", "action": "settled" if record is None else status,
         "content_hash": request.content_hash, "base_hash": request.base_hash,
         "comment": detail, "via": "reconcile"},
        by="lastgood", when_status=(REQUEST_APPLYING,), **values,
    )  # fmt: skip


def expire_if_due(place: Place, request: ChangeRequest, now: float | None = None) -> ChangeRequest:
    """``request`` expired (writes) when it has waited longer than its environment's
    ``expire`` since it was opened, or since its scheduled time; otherwise as it is."""
    policy = policy_of(place)
    if request.status not in MOVABLE_REQUESTS:
        return request
    now = time.time() if now is None else now
    if now < (request.apply_at or request.created_at) + policy.expire:
        return request
    from lastgood.units import format_duration

    waited = f"waited longer than {format_duration(policy.expire)} without being applied"
    expired = place.store.update_request(
        request.number,
        {"actor": "lastgood", "action": REQUEST_EXPIRED, "content_hash": request.content_hash,
         "base_hash": request.base_hash, "comment": waited},
        by="lastgood", status=REQUEST_EXPIRED, detail=waited, when_status=MOVABLE_REQUESTS,
    )  # fmt: skip
    if expired.status != REQUEST_EXPIRED:
        return expired  # another process applied or closed it meanwhile
    announce(
        place,
        EventKind.REQUEST_EXPIRED,
        build_view(place, expired),
        f"change request {request.label} for {request.env} expired: {waited}",
    )
    return expired
