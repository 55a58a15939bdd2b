"""The watcher's part: scheduled applies, expiry and reminders, each cycle."""

from __future__ import annotations

import time

from lastgood.errors import LastgoodError
from lastgood.events import EventKind
from lastgood.operations.place import Place
from lastgood.operations.requests.apply import apply_request
from lastgood.operations.requests.standing import expire_if_due, settled
from lastgood.operations.requests.view import REMINDED, RequestView, announce, build_view, policy_of
from lastgood.project import Project
from lastgood.rows import (
    REQUEST_EXPIRED,
    REQUEST_OPEN,
    UNFINISHED_REQUESTS,
    ChangeRequest,
)


def apply_due_requests(project: Project, now: float | None = None) -> dict[str, str]:
    """Expire the requests whose time is up, and apply every approved request whose scheduled
    time has come, unless its environment is frozen (then it waits, and applies when the freeze
    ends); what happened to each, by ``#N``. Called by the watcher each cycle, so a restart
    loses nothing: the schedule is in the store."""
    now = time.time() if now is None else now
    done: dict[str, str] = {}
    for request in project.store.change_requests(limit=None):
        if request.status not in UNFINISHED_REQUESTS:
            continue
        if request.env not in project.config.environments:
            continue
        try:  # one request that cannot be applied never holds up the others
            said = _due(project, Place(project, request.env), request, now)
        except LastgoodError as exc:
            said = f"not applied: {exc.message}"
        if said:
            done[request.label] = said
    return done


def _due(project: Project, place: Place, request: ChangeRequest, now: float) -> str:
    """What the watcher does about one unfinished request now, in words ("" for nothing)."""
    request = expire_if_due(place, settled(place, request), now)
    if request.status == REQUEST_EXPIRED:
        return REQUEST_EXPIRED
    if request.apply_at is None or request.apply_at > now or request.status != REQUEST_OPEN:
        return ""
    view = build_view(place, request)
    if view.state != "approved":
        return f"due, but {view.state}"
    closure = place.settings.calendar.closed_at(now)
    if closure is not None:
        held = f"held: {place.settings.calendar.describe(closure)}"
        _note_held(place, view, held)
        return held
    requester = project.acting_as(request.requester, echo=True)  # the watcher's log shows it
    outcome = apply_request(requester, request.number, via="watch")
    return outcome.summary


def _note_held(place: Place, view: RequestView, why: str) -> None:
    """Say once, in the timeline and as ``request-held``, that a due request waits for a
    freeze to end (writes the first time)."""
    if view.entries and view.entries[-1].action == "held":
        return
    request = view.request
    held = place.store.add_request_entry(
        request.number,
        {"actor": "lastgood", "action": "held", "content_hash": request.content_hash,
         "base_hash": request.base_hash, "comment": why, "via": "watch"},
    )  # fmt: skip
    announce(
        place, EventKind.REQUEST_HELD, build_view(place, held),
        f"change request {request.label} for {request.env} is due but held until the "
        f"environment opens again: {why.removeprefix('held: ')}",
    )  # fmt: skip


def remind_waiting(project: Project, now: float | None = None) -> list[str]:
    """Remind the approvers of every request that has waited longer than its environment's
    ``remind`` since it was opened or last reminded (recorded in its timeline, so a restarted
    watcher does not remind twice); the requests reminded."""
    now = time.time() if now is None else now
    reminded = []
    for request in project.store.change_requests(status=REQUEST_OPEN, limit=None):
        if request.env not in project.config.environments:
            continue
        place = Place(project, request.env)
        every = policy_of(place).remind
        view = build_view(place, request)
        if every is None or view.state != "waiting":
            continue
        last = max((e.at for e in view.entries if e.action in ("opened", "updated", REMINDED)),
                   default=request.created_at)  # fmt: skip
        if now - last < every:
            continue
        from lastgood.units import format_duration

        waited = format_duration(now - request.created_at)
        after = place.store.add_request_entry(
            request.number,
            {"actor": "lastgood", "action": REMINDED, "content_hash": request.content_hash,
             "base_hash": request.base_hash, "comment": f"waiting for {waited}", "via": "watch",
             "at": now},
        )  # fmt: skip
        announce(
            place,
            EventKind.REQUEST_REMINDER,
            build_view(place, after),
            f"change request {request.label} for {request.env} has waited {waited}: "
            f"it needs {'; '.join(view.tally.missing)}",
        )
        reminded.append(request.label)
    return reminded
