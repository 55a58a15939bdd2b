"""Proposing a change from the web page: the form on an environment's page opens change request
#N, exactly as ``lastgood request ENV --version REF -m WHY`` does, as the signed-in token's person.

The form is for a ``deployer`` (or more) of the environment: a recorded version (chosen from the
recent ones, or typed as a reference: ``v12``, ``staging:last-good``), a reason, and optionally
a time to apply it once approved, or the emergency box. The server has no folder to propose, so
the page, like the API, names recorded versions only.

The CSRF code and the role are checked before anything else, as for every form. A refusal (an
empty reason, a reference that names nothing, what is live already, an emergency where the
environment allows none) comes back on the environment's page with its message, hint and status,
and the form as it was filled in; a request that opened redirects to its page (post, redirect,
get). An emergency applies at once, past approvals and a freeze, so it is never one click away:
its first POST answers with a confirmation showing what will change, whose form names the exact
version and the version live when it was shown, and only that second POST opens it.

A proposal that went live at once (an emergency, or a change that needs nobody where the
environment applies on approval) waits for a served environment's consumers before the
redirect, as the page's deploy and rollback do, and the request's page says how far they
followed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from lastgood.errors import RefusedError, UsageError
from lastgood.operations.requests import RequestView
from lastgood.record import Record
from lastgood.server.deps import State
from lastgood.server.web import (
    Visitor,
    check_unchanged,
    deployer_form,
    environment_page,
    file_diffs,
    live_now,
    message_text,
    page,
    render,
    resolved,
    side_of,
)
from lastgood.server.web_requests import wait_for_consumers

router = APIRouter(include_in_schema=False)

MAX_REFERENCE = 200
Text = Annotated[str, Form()]


class Proposal(Record):
    """What the propose form holds: empty on a fresh page, what the person typed when the page
    comes back with a refusal, so nothing has to be typed twice."""

    version: str = ""  # chosen in the list of recent versions
    reference: str = ""  # typed: v12, staging:last-good …; wins over the list
    message: str = ""
    apply_at: str = ""  # as the datetime-local field sends it, in the server's time zone
    emergency: bool = False

    @property
    def ref(self) -> str:
        return self.reference.strip() or self.version.strip()


def server_zone() -> str:
    """The server's time zone as a person reads it, ``UTC+01:00 (CET)``: the schedule field has
    no zone of its own, so the page says which one it is read in."""
    now = datetime.now().astimezone()
    offset = now.strftime("%z")
    return f"UTC{offset[:3]}:{offset[3:]} ({now.tzname()})"


def scheduled_at(text: str) -> float | None:
    """The form's ``2026-12-07T09:30`` in the server's time zone, as UNIX seconds; None when
    left empty."""
    if not text.strip():
        return None
    try:
        return datetime.fromisoformat(text.strip()[:40]).timestamp()
    except (ValueError, OverflowError, OSError):
        raise UsageError(
            f"'Apply at' {text[:40]!r} is not a date and time",
            hint=f"pick a day and a time, in the server's time zone ({server_zone()}), or leave "
            "it empty to apply once approved",
        ) from None


def checked(env: str, form: Proposal) -> tuple[str, str]:
    """The reference and the reason, once the form names a version and says why."""
    if not form.ref or len(form.ref) > MAX_REFERENCE:
        raise UsageError(
            f"choose the version to propose for {env}",
            hint="pick one in the list, or type a reference: v12, a hash prefix, staging:last-good",
        )
    reason = message_text(form.message)
    if not reason:
        raise UsageError(
            f"write why you propose this change to {env}: its approvers read it",
            hint="fill in 'Why' and press Propose again",
        )
    if form.emergency and form.apply_at.strip():
        raise UsageError(
            "an emergency is applied at once: it cannot also be scheduled",
            hint="clear 'Apply at', or untick 'Emergency'",
        )
    return form.ref, reason


def confirmation(state: State, who: Visitor, env: str, form: Proposal) -> Response:
    """The emergency's confirmation: what goes live at once, and the form that does it."""
    policy = state.project.config.environment(env).approval
    if policy is not None and not policy.emergency:
        raise RefusedError(
            f"{env} allows no emergency changes ([env.{env}.approval] emergency = false)",
            hint="untick 'Emergency' to open a normal request, or roll back: a rollback "
            "needs nobody",
        )
    live = live_now(state.project, env)
    target, after = resolved(state.project, form.ref, env)
    return render("emergency.html", who, env=env, live=live, target=target, form=form,
                  diffs=file_diffs(side_of(state.project, live), after))  # fmt: skip


def opened(state: State, who: Visitor, env: str, form: Proposal, seen: str) -> RequestView:
    """Open the request as the visitor (writes); an emergency only if what is live is still
    what its confirmation showed."""
    from lastgood.operations.requests import open_request

    ref, reason = checked(env, form)
    if form.emergency:
        check_unchanged(env, seen, live_now(state.project, env), f"/envs/{env}#propose")
    return open_request(state.acting(who.token), env, reason=reason, ref=ref,
                        apply_at=scheduled_at(form.apply_at), emergency=form.emergency,
                        via="web")  # fmt: skip


@router.post("/envs/{env}/requests")
@page
def propose(
    env: str, state: State, request: Request, csrf: Text = "", version: Text = "",
    reference: Text = "", message: Text = "", apply_at: Text = "", emergency: Text = "",
    confirmed: Text = "", live: Text = "",
) -> Response:  # fmt: skip
    who = deployer_form(state, request, env, csrf)
    form = Proposal(version[:MAX_REFERENCE + 1], reference[:MAX_REFERENCE + 1], message,
                    apply_at[:40], emergency == "on")  # fmt: skip
    try:
        if form.emergency and confirmed != "yes":
            checked(env, form)
            return confirmation(state, who, env, form)
        view = opened(state, who, env, form, live)
    except (RefusedError, UsageError) as refused:
        return environment_page(state, who, env, problem=refused, proposal=form,
                                status=refused.http_status)  # fmt: skip
    wait_for_consumers(state, view.request)  # an emergency, or a change that needs nobody
    return RedirectResponse(f"/requests/{view.request.number}?done=opened", status_code=303)
