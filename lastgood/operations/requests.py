"""Change requests: propose a version for an environment, route it to its approvers, approve or
reject it, and apply it through the normal deploy.

A request names one exact version, bound to its content hash, and the version the environment
served when it was opened (its *base*). Approvals name both hashes (see
:mod:`lastgood.approval`), so they cover exactly what the approvers saw: content that changes
dismisses them, content that comes back to what was approved brings them back. Applying re-checks
everything right before the deploy: the content, the base (an environment that moved on makes
the request *stale*: it needs a fresh look) and the approvals; then the normal deploy runs —
validate, preflight, bake, automatic rollback — and the request records how it ended.

Rollback never passes through here: rolling back to a version that was good stays one command,
whatever an environment requires for new changes.
"""

from __future__ import annotations

import json
import time
from typing import Any

from lastgood.approval import (
    OPTIONAL_REVIEW,
    ApprovalPolicy,
    Change,
    Routing,
    Tally,
    emergency_tally,
    latest_votes,
    may_review,
    route,
    tally,
)
from lastgood.errors import LastgoodError, RequestError, StaleBaseError, UsageError
from lastgood.events import Event, EventKind
from lastgood.operations.gate import request_command
from lastgood.operations.place import Place
from lastgood.operations.resolve import resolve
from lastgood.operations.snapshot import read_workspace, snapshot
from lastgood.operations.status import change_standing
from lastgood.operations.versions import Side, changes, unified
from lastgood.outcome import OK, Outcome
from lastgood.project import Project
from lastgood.record import Record, replace
from lastgood.rows import (
    MOVABLE_REQUESTS,
    REQUEST_APPLIED,
    REQUEST_APPLYING,
    REQUEST_EXPIRED,
    REQUEST_FAILED,
    REQUEST_OPEN,
    REQUEST_STALE,
    REQUEST_WITHDRAWN,
    UNFINISHED_REQUESTS,
    ChangeRequest,
    RequestEntry,
    VersionInfo,
)
from lastgood.units import plural
from lastgood.validate import validate_bundle

SIGNED_OFF = "signed-off"
PROVEN = ("server", "web")
"""Where a step comes through a token that proves who takes it: the API and the web page."""
REMINDED = "reminded"


class RequestView(Record):
    """A request as people see it: the row, its timeline, its routing and where its review
    stands for the content it holds now."""

    request: ChangeRequest
    entries: tuple[RequestEntry, ...]
    routing: Routing
    tally: Tally
    changes: dict[str, list[str]]
    moved: bool = False
    """The environment serves something else than the request's base now: it is stale (the
    store says so too once an apply finds it), whatever its approvals."""
    freeze: dict[str, Any] | None = None
    """A freeze (or the end of a change window) in force on the request's environment now, or
    one starting within a day, as ``status`` says it (:func:`change_standing`); None when
    there is neither."""
    notice: str = ""
    """What the step that answered with this view did not do, and why (an approval given
    again: nothing recorded); empty otherwise."""

    @property
    def state(self) -> str:
        """``waiting``, ``approved`` or ``rejected`` while open (``stale`` when its environment
        moved on); otherwise the stored status."""
        if self.request.status == REQUEST_OPEN:
            return REQUEST_STALE if self.moved else self.tally.state
        return self.request.status

    @property
    def review_open(self) -> bool:
        """An emergency's review: open until someone other than the requester signs it off."""
        return self.request.emergency and not any(
            entry.action == SIGNED_OFF and entry.actor != self.request.requester
            for entry in self.entries
        )

    @property
    def summary(self) -> str:
        request = self.request
        kind = "emergency change" if request.emergency else "change request"
        head = f"{kind} {request.label} for {request.env}: v{request.version}"
        if self.state == "waiting":
            return f"{head}, waiting for {'; '.join(self.tally.missing)}"
        if self.state == "approved":
            how = (
                f"standard change ({self.routing.standard})"
                if self.routing.standard
                else (
                    "approved by " + ", ".join(self.tally.approved_by)
                    if self.tally.approved_by
                    else "needs no approval"
                )
            )
            return f"{head}, {how}: ready to apply"
        if self.state == "rejected":
            return f"{head}, rejected by {', '.join(self.tally.rejected_by)}"
        review = ", review open" if self.review_open else ""
        return f"{head}, {self.state}{review}" + (f": {request.detail}" if request.detail else "")

    def to_json(self) -> dict[str, Any]:
        return {
            **self.request.to_json(),
            "state": self.state,
            "review_open": self.review_open,
            "summary": self.summary,
            "approved_by": list(self.tally.approved_by),
            "rejected_by": list(self.tally.rejected_by),
            "missing": list(self.tally.missing),
            "dismissed": self.tally.dismissed,
            "changes": self.changes,
            "timeline": [entry.to_json() for entry in self.entries],
            "freeze": self.freeze,
            **({"notice": self.notice} if self.notice else {}),
        }


# ---- proposing -------------------------------------------------------------------------------


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
    requester signs it off (:func:`sign_off_request`)."""
    place = Place(project, env)
    if not reason.strip():
        raise RequestError(
            f"a change request for {env} needs a reason",
            hint="say why with -m, e.g. " + request_command(env, "-m 'raise the lead threshold'"),
        )
    _plain_text("the reason", reason)
    if apply_at is not None:
        _future("the time to apply", apply_at)
    _refuse_unproven(_policy(place), env, via, "requests", f"request {env} -m WHY")
    if emergency and not _policy(place).emergency:
        raise RequestError(
            f"{env} allows no emergency changes ([env.{env}.approval] emergency = false)",
            hint=f"open a normal request, or roll back: 'lastgood rollback {env}' needs nobody",
        )
    if emergency and apply_at is not None:
        raise RequestError(
            "an emergency is applied at once; it cannot be scheduled",
            hint="drop --at, or drop --emergency to schedule a normal request",
        )
    version = _proposed(place, ref, reason)
    base = _live_version(place)
    if base is not None and base.content_hash == version.content_hash:
        raise RequestError(
            f"{version.label} is what {env} serves now: there is nothing to change",
            hint="change the folder (or name another version with --version) first",
        )
    routing, changed = _route(place, version, base)
    request = place.store.open_request(
        _entry(project, "opened", version.content_hash, _hash(base), reason, via),
        env=env, version=version.number, content_hash=version.content_hash,
        base_version=base.number if base else None, base_hash=_hash(base),
        requester=project.actor, reason=reason, status=REQUEST_OPEN, risk=routing.risk,
        routing=json.dumps(routing.to_json()), apply_at=apply_at, emergency=emergency,
    )  # fmt: skip
    view = _view(place, request, changed)
    who = "; ".join(view.tally.missing) or (
        f"no approval (standard change: {routing.standard})" if routing.standard else "no approval"
    )
    kind = "EMERGENCY change" if emergency else "change request"
    _announce(
        place,
        EventKind.REQUEST_OPENED,
        view,
        f"{kind} {request.label} for {env}: {version.label} by {project.actor}"
        f" ({reason}); risk {routing.risk}; needs {who}",
    )
    return _apply_if_ready(place, view, via)


def update_request(
    project: Project, number: int, *, ref: str | None = None, reason: str = "", via: str = "cli"
) -> RequestView:
    """Give request ``number`` new content (``ref``, default the folder) and base it on what its
    environment serves now (writes). Approvals of other content stop counting; approvals of
    exactly this content and base count again. Only the requester may update a request."""
    request = _unfinished(project, number)
    place = Place(project, request.env)
    _refuse_unproven(_policy(place), request.env, via, "updates", f"request update {number}")
    _plain_text("the reason", reason)
    if project.actor != request.requester:
        raise RequestError(
            f"{request.label} was opened by {request.requester}; only they can update it",
            hint=f"open your own request with '{request_command(request.env)}'",
        )
    version = _proposed(place, ref, reason or request.reason)
    base = _live_version(place)
    routing, changed = _route(place, version, base)
    updated = place.store.update_request(
        number,
        _entry(project, "updated", version.content_hash, _hash(base), reason, via),
        version=version.number,
        content_hash=version.content_hash,
        base_version=base.number if base else None,
        base_hash=_hash(base),
        status=REQUEST_OPEN,
        risk=routing.risk,
        routing=json.dumps(routing.to_json()),
        detail="",
        when_status=MOVABLE_REQUESTS,
    )
    _moved_on(updated, (REQUEST_OPEN,))
    view = _view(place, updated, changed)
    dismissed = (
        f"; {plural(view.tally.dismissed, 'approval')} of other content no longer count"
        if view.tally.dismissed else ""
    )  # fmt: skip
    _announce(
        place,
        EventKind.REQUEST_UPDATED,
        view,
        f"change request {updated.label} for {updated.env} now proposes {version.label} "
        f"against {_label(base)}{dismissed}",
    )
    return _apply_if_ready(place, view, via)


def withdraw_request(
    project: Project, number: int, *, reason: str, via: str = "cli"
) -> RequestView:
    """Close request ``number`` without applying it (the requester only; writes)."""
    request = _unfinished(project, number)
    if project.actor != request.requester:
        raise RequestError(
            f"{request.label} was opened by {request.requester}; only they can withdraw it",
            hint="reject it instead: 'lastgood request reject N -m WHY'",
        )
    place = Place(project, request.env)
    _plain_text("the reason", reason)
    closed = place.store.update_request(
        number,
        _entry(project, "withdrawn", request.content_hash, request.base_hash, reason, via),
        status=REQUEST_WITHDRAWN,
        detail=f"withdrawn by {project.actor}",
        when_status=MOVABLE_REQUESTS,
    )
    _moved_on(closed, (REQUEST_WITHDRAWN,))
    view = _view(place, closed)
    _announce(
        place,
        EventKind.REQUEST_WITHDRAWN,
        view,
        f"change request {closed.label} for {closed.env} withdrawn by {project.actor}",
    )
    return view


# ---- reviewing -------------------------------------------------------------------------------


def review_request(
    project: Project,
    number: int,
    *,
    approve: bool,
    comment: str = "",
    content: str | None = None,
    via: str = "cli",
) -> RequestView:
    """Approve or reject request ``number`` as ``project.actor`` (writes). The requester
    cannot approve their own request unless the environment allows it; only the approvers its
    routing names can approve or reject. An approval covers exactly the content and base the
    request holds now.

    ``content`` is the content hash the reviewer saw (``request show`` prints its first
    :data:`SHOWN_HASH` hex digits; those or more, up to the whole hash): the review is refused
    when the request holds other content. The entry is written only while the request is open
    and holds the content and base checked here — one conditional write — so an update that
    lands meanwhile is never approved unseen.

    Approving what the person already approved — the same content and base, and no other word
    from them since — records nothing: the view's ``notice`` says so, and no event is sent."""
    request = _unfinished(project, number)
    place = Place(project, request.env)
    _refuse_reviewer(place, request, approve=approve, comment=comment, via=via)
    if content is not None:
        _refuse_unseen(request, content)
    actor = project.actor
    if approve and _approved_already(place, request, actor):
        notice = f"{actor} already approved {request.label} as it stands: nothing recorded"
        return replace(_view(place, request), notice=notice)
    action = "approved" if approve else "rejected"
    reviewed = place.store.add_request_entry_when(
        number,
        _entry(project, action, request.content_hash, request.base_hash, comment, via),
        when_status=(REQUEST_OPEN,),
        when={"content_hash": request.content_hash, "base_hash": request.base_hash},
    )
    if reviewed is None:
        _refuse_moved(place.store.change_request(number), request, content)
        raise RequestError(  # moved and came back between two reads: rare; look again
            f"{request.label} changed while your review was being recorded; nothing was",
            hint=f"'lastgood request show {number}' shows what it holds now",
        )
    view = _view(place, reviewed)
    said = f": {comment}" if comment else ""
    if approve:
        ready = " — ready to apply" if view.state == "approved" else (
            f" — still needs {'; '.join(view.tally.missing)}" if view.tally.missing else ""
        )  # fmt: skip
        _announce(
            place,
            EventKind.REQUEST_APPROVED,
            view,
            f"{actor} approved change request {request.label} for {request.env}{said}{ready}",
        )
        return _apply_if_ready(place, view, via)
    _announce(
        place,
        EventKind.REQUEST_REJECTED,
        view,
        f"{actor} rejected change request {request.label} for {request.env}{said}",
    )
    return view


def _refuse_reviewer(
    place: Place, request: ChangeRequest, *, approve: bool, comment: str, via: str
) -> None:
    """Refuse a review of a stale request, or by someone who may not give it (the requester
    approving their own, someone the routing does not name), or a rejection without a reason."""
    number, project = request.number, place.project
    if request.status == REQUEST_STALE:
        raise RequestError(
            f"{request.label} is stale: {request.env} no longer serves what it was based on",
            hint=f"the requester refreshes it with 'lastgood request update {number}'",
        )
    policy = _policy(place)
    _refuse_unproven(policy, request.env, via, "approvals", f"request approve {number}")
    routing = Routing.from_json(request.routing_data)
    actor = project.actor
    if approve and actor == request.requester and not policy.self_approval:
        raise RequestError(
            f"{actor} opened {request.label} and cannot approve it too",
            hint=f"ask one of its approvers; [env.{request.env}.approval] self_approval = true "
            "allows it",
        )
    if routing.requirements and not may_review(actor, routing, project.config.groups):
        wanted = "; ".join(r.describe() for r in routing.requirements)
        raise RequestError(
            f"{actor} is not an approver of {request.label}: it needs {wanted}",
            hint="[groups] in lastgood.toml says who is in each group",
        )
    _plain_text("the comment", comment)
    if not approve and not comment.strip():
        raise RequestError(
            f"rejecting {request.label} needs a reason",
            hint=f"say why with -m: lastgood request reject {number} -m WHY",
        )


SHOWN_HASH = 12
"""Hex digits of a request's content hash that ``request show`` and the web page print: the
fewest a reviewer may pass to say which content they saw."""


def _refuse_unseen(request: ChangeRequest, content: str) -> None:
    """Refuse a review naming content the request does not hold (or no content hash at all)."""
    seen = content.strip().lower()
    digits = len(request.content_hash)
    if not SHOWN_HASH <= len(seen) <= digits or seen.strip("0123456789abcdef"):
        raise UsageError(
            f"{content[:80]!r} is not the content hash of a request: give at least "
            f"{SHOWN_HASH} of its {digits} hex digits",
            hint=f"'lastgood request show {request.number}' prints it on its 'content' line",
        )
    if not request.content_hash.startswith(seen):
        _refuse_changed(request, seen)


def _refuse_moved(now: ChangeRequest, seen: ChangeRequest, content: str | None) -> None:
    """Refuse a review whose write found the request moved on since it was read: other
    content or base (an update landed in between), or no longer open."""
    if (now.content_hash, now.base_hash) != (seen.content_hash, seen.base_hash):
        _refuse_changed(now, (content or seen.content_hash).strip().lower())
    _moved_on(now, (REQUEST_OPEN,))


def _refuse_changed(request: ChangeRequest, seen: str) -> None:
    now = request.content_hash[:SHOWN_HASH]
    what = f"v{request.version}, based on {_label_of(request)}"
    raise RequestError(
        f"{request.label} holds other content than you saw: you saw {seen[:SHOWN_HASH]}, it "
        f"holds {now} now ({what}); nothing was recorded",
        hint=f"look at what it holds now with 'lastgood request show {request.number}', and "
        "review that, passing the content hash it prints",
    )


def _approved_already(place: Place, request: ChangeRequest, person: str) -> bool:
    """Whether ``person``'s latest word on the request's present content and base is an
    approval: giving it again would only repeat it in the timeline and the audit chain."""
    votes, _ = latest_votes(
        place.store.request_entries(request.number),
        content_hash=request.content_hash,
        base_hash=request.base_hash,
    )
    return any(vote.person == person and vote.verdict == "approved" for vote in votes)


# ---- applying --------------------------------------------------------------------------------


def apply_request(project: Project, number: int, *, via: str = "cli") -> Outcome:
    """Put request ``number`` live through the normal deploy, after checking right before it
    that its content is unchanged, its environment still serves its base, and it is approved
    (writes the store and the target). The request records the outcome.

    The request is claimed first (status ``applying``, only from ``open`` and only while it
    holds the content and base just checked), so no second apply, update or withdraw can take
    it meanwhile; the deploy checks the claim and the base again under the environment's
    lease. A process killed meanwhile leaves the claim, and the next read settles it from the
    ledger (:func:`_settled`)."""
    request = _unfinished(project, number)
    place = Place(project, request.env)
    view = _view(place, request)
    _refuse_unready(place, view)
    if request.emergency:
        _record_freeze_passed(place, request, via)
    claimed = place.store.update_request(
        number,
        _entry(project, REQUEST_APPLYING, request.content_hash, request.base_hash, "", via),
        status=REQUEST_APPLYING, when_status=(REQUEST_OPEN,),
        when={"content_hash": request.content_hash, "base_hash": request.base_hash},
    )  # fmt: skip
    _moved_on(claimed, (REQUEST_APPLYING,))
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
    _announce(
        place, kind, _view(place, done),
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
        _entry(place.project, action, request.content_hash, request.base_hash, detail, via),
        when_status=(REQUEST_APPLYING,), **values,
    )  # fmt: skip


def _settled(place: Place, request: ChangeRequest) -> ChangeRequest:
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
        when_status=(REQUEST_APPLYING,), **values,
    )  # fmt: skip


def _refuse_unready(place: Place, view: RequestView) -> None:
    request = view.request
    version = place.store.version(request.version)
    if version.content_hash != request.content_hash:  # the store is content-addressed: damage
        raise RequestError(
            f"{request.label} proposes v{request.version}, whose content is no longer what was "
            "requested",
            hint="run 'lastgood store verify'; open a new request for the content you want",
        )
    live = _live_version(place)
    if live is not None and live.content_hash == request.content_hash:
        raise RequestError(
            f"what {request.label} proposes is live on {request.env} already ({live.label})",
            hint=f"'lastgood history {request.env}' shows which deploy put it there; withdraw "
            f"the request with 'lastgood request withdraw {request.number}'",
        )
    if _hash(live) != request.base_hash:
        marked = place.store.update_request(
            request.number,
            _entry(place.project, REQUEST_STALE, request.content_hash, request.base_hash,
                   f"{request.env} serves {_label(live)} now", "cli"),
            status=REQUEST_STALE,
            detail=f"{request.env} serves {_label(live)}, not {_label_of(request)} it was based on",
            when_status=(REQUEST_OPEN,),
        )  # fmt: skip
        _moved_on(marked, (REQUEST_STALE,))
        stale = _view(place, marked)
        _announce(
            place,
            EventKind.REQUEST_STALE,
            stale,
            f"change request {request.label} for {request.env} is stale: {stale.request.detail}",
        )
        raise RequestError(
            f"{request.label} is stale: {stale.request.detail}",
            hint=f"it needs a fresh look: 'lastgood request update {request.number}' bases it "
            "on what is live now, and its approvers approve that",
        )
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


def _apply_if_ready(place: Place, view: RequestView, via: str) -> RequestView:
    """Apply at once when the environment applies on approval and the request is ready and not
    scheduled for later; the view as it stands afterwards."""
    request = view.request
    policy = _policy(place)
    on_approval = request.emergency or (policy.apply == "on-approval" and not request.apply_at)
    if view.state != "approved" or not on_approval:
        return view
    apply_request(place.project, request.number, via=via)
    return _view(place, place.store.change_request(request.number))


def _record_freeze_passed(place: Place, request: ChangeRequest, via: str) -> None:
    """An emergency passes a freeze, and the request's timeline says which one."""
    calendar = place.settings.calendar
    closure = calendar.closed_at(time.time())
    if closure is not None:
        place.store.add_request_entry(
            request.number,
            _entry(place.project, "passed-freeze", request.content_hash, request.base_hash,
                   calendar.describe(closure), via),
        )  # fmt: skip


def sign_off_request(
    project: Project, number: int, *, comment: str = "", via: str = "cli"
) -> RequestView:
    """Close the review an emergency left open: someone other than the requester looked at
    what went live (writes)."""
    request = project.store.change_request(number)
    place = Place(project, request.env)
    if not request.emergency:
        raise RequestError(
            f"{request.label} was no emergency: there is no review to sign off",
            hint=f"approve it instead: 'lastgood request approve {number}'",
        )
    if project.actor == request.requester:
        raise RequestError(
            f"{project.actor} made emergency {request.label} and cannot sign off its review",
            hint="someone other than the requester signs it off",
        )
    _refuse_unproven(_policy(place), request.env, via, "sign-offs", f"request signoff {number}")
    _plain_text("the comment", comment)
    if not _view(place, request).review_open:
        raise RequestError(f"the review of emergency {request.label} is already signed off")
    signed = place.store.add_request_entry(
        number, _entry(project, SIGNED_OFF, request.content_hash, request.base_hash, comment, via)
    )
    view = _view(place, signed)
    said = f": {comment}" if comment else ""
    _announce(
        place,
        EventKind.REQUEST_SIGNED_OFF,
        view,
        f"{project.actor} signed off emergency {request.label} for {request.env}{said}",
    )
    return view


# ---- the watcher's part ------------------------------------------------------------------------


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
    request = _expire_if_due(place, _settled(place, request), now)
    if request.status == REQUEST_EXPIRED:
        return REQUEST_EXPIRED
    if request.apply_at is None or request.apply_at > now or request.status != REQUEST_OPEN:
        return ""
    view = _view(place, request)
    if view.state != "approved":
        return f"due, but {view.state}"
    closure = place.settings.calendar.closed_at(now)
    if closure is not None:
        held = f"held: {place.settings.calendar.describe(closure)}"
        _note_held(place, view, held)
        return held
    outcome = apply_request(project.acting_as(request.requester), request.number, via="watch")
    return outcome.summary


def _note_held(place: Place, view: RequestView, why: str) -> None:
    """Say once in the timeline that a due request waits for a freeze to end."""
    if view.entries and view.entries[-1].action == "held":
        return
    request = view.request
    place.store.add_request_entry(
        request.number,
        {"actor": "lastgood", "action": "held", "content_hash": request.content_hash,
         "base_hash": request.base_hash, "comment": why, "via": "watch"},
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
        every = _policy(place).remind
        view = _view(place, request)
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
        _announce(
            place,
            EventKind.REQUEST_REMINDER,
            _view(place, after),
            f"change request {request.label} for {request.env} has waited {waited}: "
            f"it needs {'; '.join(view.tally.missing)}",
        )
        reminded.append(request.label)
    return reminded


# ---- reading ---------------------------------------------------------------------------------


def show_request(project: Project, number: int) -> RequestView:
    """Request ``number`` with its timeline and review, expiring it first if its time is up."""
    request = project.store.change_request(number)
    place = Place(project, request.env)
    return _view(place, _expire_if_due(place, _settled(place, request)))


def request_env(project: Project, number: int) -> str:
    """The environment request ``number`` is for; NotFoundError when there is none. Reads
    only (nothing expires): the server judges a token's scope by it before any verb runs."""
    return project.store.change_request(number).env


def list_requests(
    project: Project, env: str | None = None, *, status: str | None = None, limit: int = 50
) -> list[RequestView]:
    """Requests newest first (expiring those whose time is up); ``status`` filters by the
    stored status, by the review state (``waiting``, ``approved``, ``rejected``),
    ``review`` for emergencies whose review is still open, or ``for-me``: waiting for
    ``project.actor`` to approve."""
    if env is not None:
        Place(project, env)  # the name is checked
    reviewed = {"waiting": REQUEST_OPEN, "approved": REQUEST_OPEN, "rejected": REQUEST_OPEN,
                "for-me": REQUEST_OPEN, "review": None}  # fmt: skip
    stored = reviewed.get(status, status) if status is not None else None
    views = []
    for request in project.store.change_requests(env, status=stored, limit=limit):
        if request.env not in project.config.environments:
            continue  # an environment since removed from lastgood.toml
        place = Place(project, request.env)
        views.append(_view(place, _expire_if_due(place, _settled(place, request))))
    if status == "review":
        return [v for v in views if v.review_open]
    if status == "for-me":
        return [v for v in views if _waits_for(project, v)]
    return [v for v in views if status is None or status in (v.state, v.request.status)]


def _waits_for(project: Project, view: RequestView) -> bool:
    """Whether ``view`` waits for ``project.actor`` to approve it: it needs approvals, they are
    one of its approvers, did not open it (or their environment lets a requester approve
    their own request, and it is no emergency, whose review never counts the requester) and
    have not approved this content yet."""
    person, request = project.actor, view.request
    policy = project.config.environment(request.env).approval or OPTIONAL_REVIEW
    own_counts = policy.self_approval and not request.emergency
    return (
        view.state == "waiting"
        and (person != request.requester or own_counts)
        and person not in view.tally.approved_by
        and may_review(person, view.routing, project.config.groups)
    )


def request_diff(project: Project, number: int) -> str:
    """The unified diff a request proposes: its base against its version, secrets masked
    (it goes to approvers by mail and chat, and onto the request's page)."""
    request = project.store.change_request(number)
    secrets = project.config.secrets
    before = (
        Side(f"v{request.base_version}", project.store.files(request.base_version), secrets)
        if request.base_version is not None
        else Side("empty", {}, secrets)
    )
    after = Side(f"v{request.version}", project.store.files(request.version), secrets)
    return unified(before, after)


def _expire_if_due(place: Place, request: ChangeRequest, now: float | None = None) -> ChangeRequest:
    """``request`` expired (writes) when it has waited longer than its environment's
    ``expire`` since it was opened, or since its scheduled time; otherwise as it is."""
    policy = _policy(place)
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
        status=REQUEST_EXPIRED, detail=waited, when_status=MOVABLE_REQUESTS,
    )  # fmt: skip
    if expired.status != REQUEST_EXPIRED:
        return expired  # another process applied or closed it meanwhile
    _announce(
        place,
        EventKind.REQUEST_EXPIRED,
        _view(place, expired),
        f"change request {request.label} for {request.env} expired: {waited}",
    )
    return expired


# ---- helpers ---------------------------------------------------------------------------------


def _unfinished(project: Project, number: int) -> ChangeRequest:
    request = project.store.change_request(number)
    place = Place(project, request.env)
    request = _expire_if_due(place, _settled(place, request))
    if request.status == REQUEST_APPLYING:
        raise RequestError(
            f"{request.label} is being applied right now",
            hint=f"'lastgood history {request.env}' shows the deploy; try again when it is done",
        )
    if request.status not in MOVABLE_REQUESTS:
        raise RequestError(
            f"{request.label} is {request.status}"
            + (f": {request.detail}" if request.detail else ""),
            hint=f"open a new request with '{request_command(request.env)}'",
        )
    return request


def _refuse_unproven(policy: ApprovalPolicy, env: str, via: str, what: str, how: str) -> None:
    """Where approvals must come through the server, refuse them — and requests, updates and
    emergencies, whose requester the approvals are checked against — from anywhere else:
    only a server's API token proves who someone is."""
    if policy.approve_via == "server" and via not in PROVEN:
        raise RequestError(
            f"{what} for {env} count only through the server, where a token proves who gives them",
            hint=f"lastgood --server URL {how} (with your own token), or the web page",
        )


MAX_TEXT = 2000
"""Characters in a reason or comment (the API's limit too): enough for a paragraph."""


def _plain_text(what: str, text: str) -> None:
    """Refuse text that would be shown to approvers with control characters (escape
    sequences, carriage returns that overwrite a line) or that runs to pages."""
    if len(text) > MAX_TEXT:
        raise RequestError(
            f"{what} is {len(text)} characters long; at most {MAX_TEXT} are kept",
            hint="say it in a paragraph and link to the rest",
        )
    if any((ord(c) < 32 and c not in "\n\t") or ord(c) == 127 for c in text):
        raise RequestError(
            f"{what} holds control characters, which would reach approvers' terminals as they are",
            hint="write plain text (new lines and tabs are fine)",
        )


def _future(what: str, at: float) -> None:
    """Refuse a schedule in the past (it would apply at once and expire counted from then) or
    beyond what the API takes."""
    if at < time.time() - 60:
        raise RequestError(
            f"{what} is in the past", hint="give a time to come, or apply it now once approved"
        )
    if at > 1e11:
        raise RequestError(f"{what} is too far in the future", hint="give a time within years")


def _moved_on(request: ChangeRequest, expected: tuple[str, ...]) -> None:
    """Refuse when another process moved ``request`` first (the conditional write did not
    happen): say where it stands now."""
    if request.status not in expected:
        detail = f": {request.detail}" if request.detail else ""
        raise RequestError(
            f"{request.label} was {request.status} meanwhile{detail}",
            hint=f"'lastgood request show {request.number}' shows its timeline",
        )


def _policy(place: Place) -> ApprovalPolicy:
    return place.settings.approval or OPTIONAL_REVIEW


def _proposed(place: Place, ref: str | None, reason: str) -> VersionInfo:
    """The version a request proposes: ``ref``, or the folder recorded as a version now."""
    project = place.project
    if ref is not None:
        version = resolve(project, ref, env=place.name)
        validate_bundle(place.store.files(version.number), project.config.schemas, project.root)
        return version
    bundle = read_workspace(project)
    validate_bundle(bundle.files, project.config.schemas, project.root)
    return snapshot(project, reason, source="request", bundle=bundle).version


def _live_version(place: Place) -> VersionInfo | None:
    live = place.target.live()
    return place.store.version(live.version) if live is not None else None


def _hash(version: VersionInfo | None) -> str:
    return version.content_hash if version is not None else ""


def _label(version: VersionInfo | None) -> str:
    return version.label if version is not None else "nothing"


def _label_of(request: ChangeRequest) -> str:
    return f"v{request.base_version}" if request.base_version is not None else "nothing"


def _route(
    place: Place, version: VersionInfo, base: VersionInfo | None
) -> tuple[Routing, dict[str, list[str]]]:
    store = place.store
    before = Side(_label(base), store.files(base.number) if base else {})
    after = Side(version.label, store.files(version.number))
    changed = changes(before, after)
    text = unified(before, after, reveal=True)  # counted here, never shown
    lines = sum(
        1 for line in text.splitlines()
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    )  # fmt: skip
    paths = tuple(sorted({p for group in changed.values() for p in group}))
    change = Change(paths=paths, lines=lines, removed=len(changed["removed"]))
    return route(_policy(place), change), changed


def _view(
    place: Place, request: ChangeRequest, changed: dict[str, list[str]] | None = None
) -> RequestView:
    entries = place.store.request_entries(request.number)
    routing = Routing.from_json(request.routing_data)
    votes, dismissed = latest_votes(
        entries, content_hash=request.content_hash, base_hash=request.base_hash
    )
    policy, groups = _policy(place), place.project.config.groups
    if request.emergency:
        counted = emergency_tally(routing, groups, votes, requester=request.requester,
                                  needed=policy.emergency_approvals)  # fmt: skip
    else:
        counted = tally(routing, groups, votes, requester=request.requester,
                        self_approval=policy.self_approval, dismissed=dismissed)  # fmt: skip
    if changed is None:
        store = place.store
        before = store.files(request.base_version) if request.base_version is not None else {}
        changed = changes(Side("", before), Side("", store.files(request.version)))
    served = _serves(place) if request.status == REQUEST_OPEN else request.base_hash
    moved = served not in (request.base_hash, request.content_hash)  # its content: live already
    freeze = change_standing(place.settings.calendar, time.time())
    return RequestView(request, tuple(entries), routing, counted, changed, moved, freeze)


def _serves(place: Place) -> str:
    """The content hash of what the environment serves ("" for nothing, or when the target
    cannot say: a view is never refused for that)."""
    try:
        return _hash(_live_version(place))
    except LastgoodError:
        return ""


def _entry(
    project: Project, action: str, content_hash: str, base_hash: str, comment: str, via: str
) -> dict[str, Any]:
    return {"actor": project.actor, "action": action, "content_hash": content_hash,
            "base_hash": base_hash, "comment": comment, "via": via}  # fmt: skip


def _announce(place: Place, kind: EventKind, view: RequestView, message: str) -> None:
    request = view.request
    place.emit(
        Event(
            kind,
            message,
            env=request.env,
            version=request.version,
            data={
                "request": request.number,
                "state": view.state,
                "requester": request.requester,
                "risk": request.risk,
                "missing": list(view.tally.missing),
                "approved_by": list(view.tally.approved_by),
            },
            key=f"{kind.value}:{request.number}:{len(view.entries)}",
        )
    )
