"""The change-request pages: what waits for the signed-in person, every open and recent
request, and one request with its diff, review and timeline, with the buttons its reader may use.

The pages take the same steps as ``lastgood request`` and the API, through the same verbs, and
the token's name is the person, exactly as through the API: the verbs refuse self-approval and
reviewers the routing does not name, whatever the page shows. The page shows a button only to
a token whose role allows the step on the request's environment (``approver`` approves,
rejects and signs off; ``deployer`` applies), and every POST checks the CSRF code and the role
again before any verb runs (the role and the verb through :mod:`lastgood.server.request_steps`,
as the API takes them).

A form also carries the content it was shown (the request's content and base hashes): an
approval covers exact content, so a request updated while its page was open is refused with
409 and shown again, never approved unseen; a form without them is refused with 400. The verb
gets the content hash too and writes the review only while the request still holds it, so an
update landing between that check and the write cannot slip in either. A verb's refusal
(self-approval, stale, not approved, a freeze) is shown on the request's page with its status;
a step that worked redirects to the request's page with a notice (post, redirect, get).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from lastgood.approval import OPTIONAL_REVIEW, may_review
from lastgood.errors import NotFoundError, RefusedError, UsageError
from lastgood.operations.fleet import FleetStanding
from lastgood.operations.requests import RequestView
from lastgood.project import Project
from lastgood.record import Record
from lastgood.refs import LARGEST_VERSION
from lastgood.rows import REQUEST_OPEN, ChangeRequest
from lastgood.server.app import ServerState
from lastgood.server.deps import State
from lastgood.server.request_steps import publish_if_applied, request_scope, run_step
from lastgood.server.web import (
    Visitor,
    check_csrf,
    file_diffs,
    message_text,
    page,
    render,
    resolved,
    side_of,
    visitor,
)

router = APIRouter(include_in_schema=False)

RECENT = 30
"""How many closed requests (applied, failed, withdrawn, expired, stale) the list shows."""
OPEN_LIMIT = 200
DONE = ("opened", "approved", "rejected", "applied", "signed-off")
"""The steps a notice may report after the redirect: anything else in ``?done=`` is ignored."""


# ---- reading ---------------------------------------------------------------------------------


def request_number(text: str) -> int:
    """``3`` or ``#3`` from the address; NotFoundError for anything that names no request
    (ASCII digits only: ``٣``, an Arabic-Indic three, names none)."""
    digits = text.strip().removeprefix("#")
    if not (digits.isascii() and digits.isdigit()) or not 1 <= int(digits) <= LARGEST_VERSION:
        raise NotFoundError(
            f"no change request {text[:40]!r}: requests are numbered #1, #2, …",
            hint="see /requests for the requests you may see",
        )
    return int(digits)


def requests_of(
    project: Project, who: Visitor, *, status: str | None, limit: int
) -> list[RequestView]:
    """Requests of the environments the visitor may see, newest first (may expire some)."""
    from lastgood.operations.requests import list_requests

    if not who.token.env_list:  # every environment: one query
        return list_requests(project, None, status=status, limit=limit)
    names = [name for name in project.config.environments if who.may("viewer", name)]
    views = [view for name in names for view in list_requests(project, name, status=status,
                                                              limit=limit)]  # fmt: skip
    views.sort(key=lambda view: view.request.number, reverse=True)
    return views[:limit]


class Buttons(Record):
    """What the visitor may do to one request on its page, and why review is not offered."""

    approve: bool = False
    reject: bool = False
    apply: bool = False
    sign_off: bool = False
    why_not: str = ""


def buttons_for(project: Project, who: Visitor, view: RequestView) -> Buttons:
    """The buttons to show: those whose step the verb would take from this person now."""
    request, person = view.request, who.token.name
    policy = project.config.environment(request.env).approval or OPTIONAL_REVIEW
    approver = who.may("approver", request.env)
    is_open = request.status == REQUEST_OPEN and not view.moved  # stale: a review is refused
    named = not view.routing.requirements or may_review(person, view.routing, project.config.groups)
    own = person == request.requester and not policy.self_approval
    why_not = ""
    if approver and is_open and not named:
        why_not = f"{person} is not among the approvers this request needs"
    elif approver and is_open and own:
        why_not = f"{person} opened this request: someone else approves it"
    return Buttons(
        approve=approver and is_open and named and not own,
        reject=approver and is_open and named,
        apply=who.may("deployer", request.env) and is_open and view.state == "approved",
        sign_off=approver and view.review_open and person != request.requester,
        why_not=why_not,
    )


def waits_for(project: Project, who: Visitor, view: RequestView) -> bool:
    """Whether ``view`` waits for the visitor: an open request they may approve and have not
    yet approved, or an emergency whose review they may sign off."""
    buttons = buttons_for(project, who, view)
    if buttons.sign_off:
        return True
    return (
        view.state == "waiting" and buttons.approve and who.token.name not in view.tally.approved_by
    )


@router.get("/requests")
@page
def request_list(state: State, request: Request) -> Response:
    who = visitor(state, request)
    project = state.acting(who.token)
    opened = requests_of(project, who, status=REQUEST_OPEN, limit=OPEN_LIMIT)
    recent = [v for v in requests_of(project, who, status=None, limit=RECENT + len(opened))
              if v.request.status != REQUEST_OPEN][:RECENT]  # fmt: skip
    emergencies = [v for v in requests_of(project, who, status="review", limit=OPEN_LIMIT)
                   if v.request.status != REQUEST_OPEN]  # fmt: skip
    mine = [view for view in opened + emergencies if waits_for(project, who, view)]
    return render("requests.html", who, mine=mine, opened=opened, recent=recent)


def request_page(
    state: ServerState, who: Visitor, number: int, *, done: str = "",
    problem: Exception | None = None, status: int = 200,
) -> Response:  # fmt: skip
    """Request ``number``'s page, with a notice of the step just done or the refusal of one."""
    from lastgood.operations.requests import show_request

    project = state.acting(who.token)
    view = show_request(project, number)
    request = view.request
    before = side_of(project, request.base_version)
    proposed, after = resolved(project, f"v{request.version}")
    return render("request.html", who, status, view=view, done=done if done in DONE else "",
                  problem=problem, buttons=buttons_for(project, who, view), proposed=proposed,
                  diffs=file_diffs(before, after), freeze=view.freeze,
                  fleet=fleet_of(state, view),
                  shown=content_of(view))  # fmt: skip


def content_of(view: RequestView) -> str:
    """What a form says it was shown: the request's content and base, by hash."""
    return f"{view.request.content_hash}:{view.request.base_hash}"


@router.get("/requests/{number}")
@page
def one_request(number: str, state: State, request: Request, done: str = "") -> Response:
    who = visitor(state, request)
    found = request_number(number)
    request_scope(state, who.token, found, "viewer")
    return request_page(state, who, found, done=done[:20])


# ---- steps -----------------------------------------------------------------------------------


def check_shown(project: Project, number: int, shown: str) -> None:
    """Refuse a step on a request whose content changed since the form was shown, or from a
    form that does not say what it showed (every form on the page does: one without it was
    made elsewhere, and would approve whatever the request holds by then)."""
    from lastgood.operations.requests import show_request

    content, colon, _ = shown.partition(":")  # the base is empty when nothing was live
    if not content or not colon:
        raise UsageError(
            f"the form for #{number} does not say which content it showed you (its 'shown' "
            "field is missing or empty), so nothing was recorded",
            hint="use the buttons on the request's page, which always send it; scripts use "
            "the API with content_hash",
        )
    view = show_request(project, number)
    if shown != content_of(view):
        base = f"v{view.request.base_version}" if view.request.base_version else "nothing"
        raise RefusedError(
            f"{view.request.label} changed since you opened it: it proposes "
            f"v{view.request.version} (based on {base}) now, so nothing was recorded",
            hint="look at what it holds now, below, and decide again",
        )


def wait_for_consumers(state: ServerState, request: ChangeRequest) -> None:
    """After a step that put ``request`` live (an apply, an emergency, a change that needed
    nobody): publish it at once and wait, as the page's deploy and rollback do, until every
    consumer of a served environment serves it or ``fleet_wait`` seconds pass, so the
    request's page the browser goes to next says how far they followed (reads only). Nothing
    for a request that was not put live."""
    from lastgood.operations.fleet import wait_for_fleet

    if publish_if_applied(state, request):
        wait_for_fleet(state.project, request.env, state.consumers, state.fleet_wait)


def fleet_of(state: ServerState, view: RequestView) -> FleetStanding | None:
    """How far the consumers of a served environment followed the version its applied
    request put live; None elsewhere, and once the environment serves something else."""
    from lastgood.operations.fleet import read_fleet

    if view.request.deployment is None:
        return None
    fleet = read_fleet(state.project, view.request.env, state.consumers)
    return fleet if fleet is not None and fleet.version == view.request.version else None


def take_step(
    number: str, state: ServerState, request: Request, csrf: str, shown: str, *, role: str,
    done: str, verb: Callable[[Project, int], object],
) -> Response:  # fmt: skip
    """A form's step on request ``number``: its CSRF code and the visitor's ``role`` on the
    request's environment first, then ``verb`` as the visitor on the content the form showed;
    back to the request's page with a notice, or with the verb's refusal and its status."""
    from lastgood.operations.requests import show_request

    who = visitor(state, request)
    check_csrf(who, csrf)

    def step(project: Project, found: int) -> Response:
        try:
            check_shown(project, found, shown)
            verb(project, found)
        except (RefusedError, UsageError) as refused:
            return request_page(state, who, found, problem=refused, status=refused.http_status)
        wait_for_consumers(state, show_request(project, found).request)
        return RedirectResponse(f"/requests/{found}?done={done}", status_code=303)

    return run_step(state, who.token, request_number(number), role, step)


Csrf = Annotated[str, Form()]
Text = Annotated[str, Form()]


def review(
    number: str, state: ServerState, request: Request, csrf: str, message: str, shown: str,
    *, approve: bool,
) -> Response:  # fmt: skip
    from lastgood.operations.requests import review_request

    def verb(project: Project, found: int) -> object:
        comment = message_text(message, "the comment")
        if not approve and not comment:
            raise UsageError(
                f"write why you reject #{found}: the requester reads it",
                hint="fill in the comment and press Reject again",
            )
        content = shown.partition(":")[0]  # recorded only while it holds that
        return review_request(project, found, approve=approve, comment=comment,
                              content=content, via="web")  # fmt: skip

    done = "approved" if approve else "rejected"
    return take_step(number, state, request, csrf, shown, role="approver", done=done, verb=verb)


@router.post("/requests/{number}/approve")
@page
def approve(
    number: str, state: State, request: Request, csrf: Csrf = "", message: Text = "",
    shown: Text = "",
) -> Response:  # fmt: skip
    return review(number, state, request, csrf, message, shown, approve=True)


@router.post("/requests/{number}/reject")
@page
def reject(
    number: str, state: State, request: Request, csrf: Csrf = "", message: Text = "",
    shown: Text = "",
) -> Response:  # fmt: skip
    return review(number, state, request, csrf, message, shown, approve=False)


@router.post("/requests/{number}/apply")
@page
def apply(number: str, state: State, request: Request, csrf: Csrf = "",
          shown: Text = "") -> Response:  # fmt: skip
    from lastgood.operations.requests import apply_request

    return take_step(number, state, request, csrf, shown, role="deployer", done="applied",
                     verb=partial(apply_request, via="web"))  # fmt: skip


@router.post("/requests/{number}/signoff")
@page
def sign_off(
    number: str, state: State, request: Request, csrf: Csrf = "", message: Text = "",
    shown: Text = "",
) -> Response:  # fmt: skip
    from lastgood.operations.requests import sign_off_request

    def verb(project: Project, found: int) -> object:
        comment = message_text(message, "the comment")
        return sign_off_request(project, found, comment=comment, via="web")

    return take_step(number, state, request, csrf, shown, role="approver", done="signed-off",
                     verb=verb)  # fmt: skip
