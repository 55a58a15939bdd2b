"""Reviewing a change request: approve or reject exactly the content seen, and sign off an
emergency's review.
"""

from __future__ import annotations

from lastgood.approval import Routing, latest_votes, may_review
from lastgood.errors import LastgoodError, RequestError, UsageError
from lastgood.events import EventKind
from lastgood.operations.place import Place
from lastgood.operations.requests.apply import apply_if_ready, refuse_stale
from lastgood.operations.requests.standing import unfinished
from lastgood.operations.requests.view import (
    SIGNED_OFF,
    RequestView,
    announce,
    base_label,
    build_view,
    entry_of,
    hash_of,
    live_version,
    moved_on,
    plain_text,
    policy_of,
    refuse_unproven,
)
from lastgood.project import Project
from lastgood.record import replace
from lastgood.rows import (
    REQUEST_OPEN,
    REQUEST_STALE,
    ChangeRequest,
)

SHOWN_HASH = 12
"""Hex digits of a request's content hash that ``request show`` and the web page print: the
fewest a reviewer may pass to say which content they saw."""


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
    request = unfinished(project, number)
    place = Place(project, request.env)
    _refuse_reviewer(place, request, approve=approve, comment=comment, via=via)
    if content is not None:
        _refuse_unseen(request, content)
    actor = project.actor
    if approve and _approved_already(place, request, actor):
        notice = f"{actor} already approved {request.label} as it stands: nothing recorded"
        return replace(build_view(place, request), notice=notice)
    action = "approved" if approve else "rejected"
    reviewed = place.store.add_request_entry_when(
        number,
        entry_of(project, action, request.content_hash, request.base_hash, comment, via),
        when_status=(REQUEST_OPEN,),
        when={"content_hash": request.content_hash, "base_hash": request.base_hash},
    )
    if reviewed is None:
        _refuse_moved(place.store.change_request(number), request, content)
        raise RequestError(  # moved and came back between two reads: rare; look again
            f"{request.label} changed while your review was being recorded; nothing was",
            hint=f"'lastgood request show {number}' shows what it holds now",
        )
    view = build_view(place, reviewed)
    said = f": {comment}" if comment else ""
    if approve:
        ready = " — ready to apply" if view.state == "approved" else (
            f" — still needs {'; '.join(view.tally.missing)}" if view.tally.missing else ""
        )  # fmt: skip
        announce(
            place,
            EventKind.REQUEST_APPROVED,
            view,
            f"{actor} approved change request {request.label} for {request.env}{said}{ready}",
        )
        return apply_if_ready(place, view, via)
    announce(
        place,
        EventKind.REQUEST_REJECTED,
        view,
        f"{actor} rejected change request {request.label} for {request.env}{said}",
    )
    return view


def _refuse_reviewer(
    place: Place, request: ChangeRequest, *, approve: bool, comment: str, via: str
) -> None:
    """Refuse a review by someone who may not give it (the requester approving their own,
    someone the routing does not name), a rejection without a reason, or a review of a stale
    request (marking it stale when its environment just moved on: writes)."""
    number, project = request.number, place.project
    policy = policy_of(place)
    refuse_unproven(policy, request.env, via, "approvals", f"request approve {number}")
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
    plain_text("the comment", comment)
    if not approve and not comment.strip():
        raise UsageError(
            f"rejecting {request.label} needs a reason",
            hint=f"say why with -m: lastgood request reject {number} -m WHY",
        )
    _refuse_stale(place, request, via)


def _refuse_stale(place: Place, request: ChangeRequest, via: str) -> None:
    """Refuse a review of a stale request — marked so, or whose environment serves something
    else than its base now (marked stale here): an approval of it could never be applied, and
    its approvers should look at it again once its requester updated it. A target that cannot
    say what it serves refuses nothing here: the apply checks again."""
    if request.status == REQUEST_STALE:
        refuse_stale(place, request, None, via)
    try:
        live = live_version(place)
    except LastgoodError:
        return
    if hash_of(live) not in (request.base_hash, request.content_hash):
        refuse_stale(place, request, live, via)


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
    moved_on(now, (REQUEST_OPEN,))


def _refuse_changed(request: ChangeRequest, seen: str) -> None:
    now = request.content_hash[:SHOWN_HASH]
    what = f"v{request.version}, based on {base_label(request)}"
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
    refuse_unproven(policy_of(place), request.env, via, "sign-offs", f"request signoff {number}")
    plain_text("the comment", comment)
    if not build_view(place, request).review_open:
        raise RequestError(f"the review of emergency {request.label} is already signed off")
    signed = place.store.add_request_entry(
        number, entry_of(project, SIGNED_OFF, request.content_hash, request.base_hash, comment, via)
    )
    view = build_view(place, signed)
    said = f": {comment}" if comment else ""
    announce(
        place,
        EventKind.REQUEST_SIGNED_OFF,
        view,
        f"{project.actor} signed off emergency {request.label} for {request.env}{said}",
    )
    return view
