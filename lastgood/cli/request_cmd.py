"""``lastgood request``: propose a change, review it, apply it (see docs/change-requests.md).

``lastgood request ENV -m WHY`` opens a request (the same as ``lastgood request open ENV``);
``list``, ``show``, ``approve``, ``reject``, ``update``, ``withdraw`` and ``apply`` act on one.
With ``--server`` each runs on the server (:mod:`lastgood.server.requests_api`), as the token's
name; the folder a request proposes is uploaded as a version first, as ``deploy`` does there.
The server answers with the shape of ``--json``, which is rebuilt into a :class:`RequestView`
(:func:`view_of`) and printed by the same code as a local one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from functools import reduce
from typing import TYPE_CHECKING, Any

import click

from lastgood.cli import render as r
from lastgood.cli.app import AppContext
from lastgood.cli.commands import (
    LIMIT,
    finish_remote,
    freeze_label,
    json_option,
    named_version,
    pass_app,
    upload_folder,
)
from lastgood.cli.group import cli
from lastgood.cli.numbers import Digits
from lastgood.errors import UsageError
from lastgood.operations.requests import (
    SHOWN_HASH,
    RequestView,
    review_request,
    sign_off_request,
    withdraw_request,
)
from lastgood.refs import LARGEST_VERSION
from lastgood.rows import REQUEST_STATES
from lastgood.units import plural

if TYPE_CHECKING:
    from lastgood.cli.remote import Remote
    from lastgood.project import Project

    LocalStep = Callable[[Project, int, str, str | None], RequestView]
    """A step's verb on the store: (project, number, message, content hash) -> the request."""
    RemoteStep = Callable[[Remote, int, str, str | None], dict[str, Any]]
    """The same step through a server: (client, number, message, content hash) -> its answer."""


NUMBER = Digits(1, LARGEST_VERSION, what="a request number")


class RequestGroup(click.Group):
    """``request ENV …`` is ``request open ENV …``: the everyday form stays short, and the
    subcommands keep their names (an environment called ``list`` is ``request open list``)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            args = ["open", *args]
        return super().parse_args(ctx, args)


@cli.group(cls=RequestGroup)
def request() -> None:
    """Propose a change for review, approve or reject it, apply it.

    An environment with [env.NAME.approval] in lastgood.toml takes new versions only through
    an approved request ('lastgood deploy' there exits 5 and says so); any other environment
    takes requests too, for a second pair of eyes. Rolling back never needs one.

    \b
    Example:
      lastgood request production -m "raise the lead threshold"
      lastgood request list --state waiting
      lastgood request approve 3 -m "checked against last week's leads"
      lastgood request apply 3
    """


def _when(text: str | None) -> float | None:
    """``--at``: an ISO 8601 time, local unless it names an offset."""
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise UsageError(
            f"--at {text!r} is not a date and time",
            hint="write ISO 8601: --at 2026-12-07T09:30 (this machine's time zone) or "
            "--at 2026-12-07T09:30+01:00",
        ) from None


@request.command("open")
@click.argument("env")
@click.option("-m", "--message", "reason", required=True, help="Why this change (required).")
@click.option("--version", "ref", metavar="REF", callback=named_version,
              help="Propose this version instead of the folder.")  # fmt: skip
@click.option(
    "--at", "at", metavar="WHEN",
    help="Apply it then, once approved (ISO 8601); 'lastgood watch' carries it out.",
)  # fmt: skip
@click.option(
    "--emergency", is_flag=True,
    help="Apply at once with the reduced approval ENV allows, past a freeze (marked).",
)  # fmt: skip
@json_option
@pass_app
def open_command(
    app: AppContext,
    env: str,
    reason: str,
    ref: str | None,
    at: str | None,
    emergency: bool,
    as_json: bool,
) -> None:
    """Open a change request proposing the folder (or --version REF) for ENV.

    The folder is recorded as a version (or REF is resolved) and bound to its content hash;
    the request shows the diff against what ENV serves now, its risk, the rules that matched
    and the approvals it needs, and the approvers are notified. A standard change (a rule with
    standard = true covers it) needs no approval. With --at, an approved request is applied
    at that time by 'lastgood watch' (a freeze holds it until the freeze ends). --emergency
    applies at once with the reduced approval the environment allows (emergency_approvals,
    none by default), past a freeze, and leaves a review open until someone other than you
    signs it off ('lastgood request signoff N').

    \b
    Example:
      lastgood request production -m "raise the lead threshold"
      lastgood request production --version staging:last-good -m "promote"
      lastgood request production -m "scorer fix" --at 2026-12-07T06:00
      lastgood request production --emergency -m "leads all score zero"
    """
    if app.server:
        version = upload_folder(app, reason, as_json=as_json, ref=ref)
        answer = app.remote().open_request(
            env, version, reason, apply_at=_when(at), emergency=emergency
        )
        _print_remote(answer, as_json, opened=True)
        return
    from lastgood.operations.requests import open_request

    project = app.project()
    if emergency and not as_json:
        project.events.subscribe(r.ProgressPrinter())
    view = open_request(
        project, env, reason=reason, ref=ref, apply_at=_when(at), emergency=emergency
    )
    _print_view(view, as_json, opened=True)


@request.command("list")
@click.option("--env", metavar="ENV", help="Only this environment's requests.")
@click.option("--state", type=click.Choice(REQUEST_STATES), help="Only requests in this state.")
@click.option("-n", "--limit", default=50, show_default=True, type=LIMIT,
              help="How many requests.")  # fmt: skip
@json_option
@pass_app
def list_command(
    app: AppContext, env: str | None, state: str | None, limit: int, as_json: bool
) -> None:
    """List change requests, newest first.

    \b
    Example:
      lastgood request list --state waiting
      lastgood request list --state for-me
    """
    if app.server:
        found = app.remote().requests(env, state, limit)
        if as_json:
            r.emit_json(found)
            return
        views = [view_of(data) for data in found]
    else:
        from lastgood.operations.requests import list_requests

        views = list_requests(app.project(), env, status=state, limit=limit)
        if as_json:
            r.emit_json([view.to_json() for view in views])
            return
    if not views:
        r.info("no change requests" + (f" in state {state}" if state else ""))
        return
    rows = [
        [view.request.label, view.request.env, f"v{view.request.version}", view.state,
         view.request.risk, view.request.requester, r.when(view.request.created_at),
         view.request.reason]
        for view in views
    ]  # fmt: skip
    r.out(r.table(["request", "env", "version", "state", "risk", "by", "opened", "why"], rows))


@request.command("show")
@click.argument("number", type=NUMBER)
@click.option("--no-diff", is_flag=True, help="Leave out the diff.")
@json_option
@pass_app
def show_command(app: AppContext, number: int, no_diff: bool, as_json: bool) -> None:
    """Show one request: what it proposes, its diff, its review and its timeline.

    \b
    Example:
      lastgood request show 3
    """
    if app.server:
        data = app.remote().request(number)
        view, diff = view_of(data), str(data.pop("diff", ""))
    else:
        from lastgood.operations.requests import request_diff, show_request

        project = app.project()
        view = show_request(project, number)
        data, diff = view.to_json(), "" if no_diff else request_diff(project, number)
    if as_json:
        r.emit_json(data if no_diff else {**data, "diff": diff})
        return
    _print_view(view, as_json=False)
    if diff and not no_diff:
        r.out("")
        r.colour_diff(diff)


content_option = click.option(
    "--content", metavar="HASH",
    help="The content hash you reviewed, as 'request show' prints it (12 hex digits or more): "
    "refused if the request holds other content now. Scripts should always pass it.",
)  # fmt: skip


def step_command(
    name: str, message: str, step: tuple[LocalStep, RemoteStep], *, required: bool = False,
    with_content: bool = False,
) -> Callable[[Callable[[], None]], click.Command]:  # fmt: skip
    """Register ``request NAME NUMBER -m MESSAGE [--content HASH] [--json]``, its help the
    decorated function's docstring: approve, reject, withdraw and signoff parse the same, run
    one verb on the store or through the server, and print the request as it stands after."""
    local, remote = step

    def command(
        app: AppContext, number: int, comment: str, as_json: bool, content: str | None = None
    ) -> None:
        if app.server:
            _print_remote(remote(app.remote(), number, comment, content), as_json)
        else:
            _print_view(local(app.project(), number, comment, content), as_json)

    options = [
        click.argument("number", type=NUMBER),
        click.option("-m", "--message", "comment", required=required,
                     default=None if required else "", help=message),
        *([content_option] if with_content else []),
        json_option,
    ]  # fmt: skip

    def register(described: Callable[[], None]) -> click.Command:
        command.__doc__ = described.__doc__  # the help: one docstring per command, as elsewhere
        return request.command(name)(
            pass_app(reduce(lambda f, add: add(f), options[::-1], command))
        )

    return register


def review(*, approve: bool) -> tuple[LocalStep, RemoteStep]:
    """Approve or reject, on the store and through a server."""
    return (
        lambda project, number, comment, content: review_request(
            project, number, approve=approve, comment=comment, content=content
        ),
        lambda client, number, comment, content: client.review_request(
            number, approve=approve, comment=comment, content=content
        ),
    )


@step_command("approve", "What you checked.", review(approve=True), with_content=True)
def approve_command() -> None:
    """Approve request NUMBER as it stands now (its exact content and base).

    With --content HASH (from 'request show'), the approval is recorded only if the request
    still holds the content you saw; without it, it covers whatever the request holds when
    the approval is written. The requester cannot approve their own request unless the
    environment allows it. If the content changes later, this approval stops counting; if it
    comes back, it counts again. Approving again what you already approved records nothing.

    \b
    Example:
      lastgood request approve 3 --content 3f2a9c1d4e5b -m "looks right"
    """


@step_command("reject", "Why (required).", review(approve=False), required=True, with_content=True)
def reject_command() -> None:
    """Reject request NUMBER as it stands now; the requester may update it and ask again.

    \b
    Example:
      lastgood request reject 3 --content 3f2a9c1d4e5b -m "the threshold would drop every lead"
    """


@request.command("update")
@click.argument("number", type=NUMBER)
@click.option("--version", "ref", metavar="REF", callback=named_version,
              help="Propose this version instead of the folder.")  # fmt: skip
@click.option("-m", "--message", "reason", default="", help="What changed.")
@json_option
@pass_app
def update_command(
    app: AppContext, number: int, ref: str | None, reason: str, as_json: bool
) -> None:
    """Give request NUMBER the folder's content (or REF) and base it on what is live now.

    Approvals of other content stop counting; approvals of exactly this content and base
    count again. This is also how a stale request gets its fresh look.

    \b
    Example:
      lastgood request update 3 -m "threshold 0.7, not 0.9"
    """
    if app.server:
        version = upload_folder(app, reason, as_json=as_json, ref=ref)
        _print_remote(app.remote().update_request(number, version, reason), as_json)
        return
    from lastgood.operations.requests import update_request

    view = update_request(app.project(), number, ref=ref, reason=reason)
    _print_view(view, as_json)


WITHDRAW: tuple[LocalStep, RemoteStep] = (
    lambda project, number, comment, _: withdraw_request(project, number, reason=comment),
    lambda client, number, comment, _: client.withdraw_request(number, comment),
)
SIGN_OFF: tuple[LocalStep, RemoteStep] = (
    lambda project, number, comment, _: sign_off_request(project, number, comment=comment),
    lambda client, number, comment, _: client.sign_off_request(number, comment),
)


@step_command("withdraw", "Why.", WITHDRAW)
def withdraw_command() -> None:
    """Close your request NUMBER without applying it.

    \b
    Example:
      lastgood request withdraw 3 -m "superseded by #4"
    """


@step_command("signoff", "What you checked.", SIGN_OFF)
def signoff_command() -> None:
    """Sign off the review of emergency NUMBER (anyone but the person who made it).

    \b
    Example:
      lastgood request signoff 7 -m "the fix was right; follow-up in #8"
    """


@request.command("apply")
@click.argument("number", type=NUMBER)
@json_option
@pass_app
def apply_command(app: AppContext, number: int, as_json: bool) -> None:
    """Deploy approved request NUMBER: validate, preflight, activate, bake.

    Right before, lastgood checks that the content is what was approved and that the
    environment still serves the version the request was based on (if not, the request is
    marked stale and needs 'lastgood request update'). Exit codes are deploy's.

    \b
    Example:
      lastgood request apply 3
    """
    if app.server:
        remote = app.remote()
        if not as_json:
            r.info(f"applying request #{number} through {remote.shown}; it answers after the bake")
        finish_remote(remote.apply_request(number), as_json)
        return
    from lastgood.operations.requests import apply_request

    project = app.project()
    if not as_json:
        project.events.subscribe(r.ProgressPrinter())
    click.get_current_context().exit(r.finish(apply_request(project, number), as_json))


def view_of(data: dict[str, Any]) -> RequestView:
    """The :class:`RequestView` a server answered as JSON (``RequestView.to_json``), to print
    it with the same code as a local one."""
    from lastgood.approval import Routing, Tally
    from lastgood.cli.commands import rebuild
    from lastgood.rows import ChangeRequest, RequestEntry

    request = rebuild(ChangeRequest, {**data, "routing": json.dumps(data["routing"])})
    tally = Tally(
        approved=not data["missing"] and not data["rejected_by"],
        rejected_by=tuple(data["rejected_by"]),
        approved_by=tuple(data["approved_by"]),
        missing=tuple(data["missing"]),
        dismissed=int(data["dismissed"]),
    )
    entries = tuple(rebuild(RequestEntry, entry) for entry in data["timeline"])
    return RequestView(request, entries, Routing.from_json(data["routing"]), tally,
                       data["changes"], moved=data["state"] == "stale" and data["status"] == "open",
                       freeze=data.get("freeze"), notice=str(data.get("notice", "")),
                       exit_code=data.get("exit_code"))  # fmt: skip


def _print_remote(data: dict[str, Any], as_json: bool, *, opened: bool = False) -> None:
    """A server's answer: as it came with --json, as a local view prints otherwise; then exit
    as the apply the step started did, if it started one."""
    if as_json:
        r.emit_json(data)
        _exit_as_applied(data.get("exit_code"))
    else:
        _print_view(view_of(data), as_json=False, opened=opened)


def _print_view(view: RequestView, as_json: bool, *, opened: bool = False) -> None:
    """Print ``view``, then exit as the apply its step started did (a failed apply on
    approval exits 3 or 4, as 'request apply' would), if it started one."""
    if as_json:
        r.emit_json(view.to_json())
    else:
        _print_text(view, opened=opened)
    _exit_as_applied(view.exit_code)


def _exit_as_applied(code: Any) -> None:
    if isinstance(code, int) and code:
        click.get_current_context().exit(code)


def _print_text(view: RequestView, *, opened: bool) -> None:
    request = view.request
    if view.notice:
        r.info(view.notice)
    if opened:
        kind = "EMERGENCY change" if request.emergency else "change request"
        r.info(f"opened {kind} {request.label} for {request.env}")
    lines = [
        f"request   {request.label}  {request.env}  v{request.version} (based on {_base(view)})",
        f"content   {request.content_hash[:SHOWN_HASH]}",
        f"state     {view.state}" + (f" ({view.detail})" if view.detail else ""),
        f"by        {request.requester}, {r.when(request.created_at)}: {request.reason}",
        f"risk      {request.risk} ({plural(view.routing.files, 'file')}, "
        f"{plural(view.routing.lines, 'line')})",
    ]
    if view.routing.standard:
        lines.append(f"routing   standard change: rule {view.routing.standard}, no approval")
    for requirement in view.routing.requirements:
        lines.append(f"needs     {requirement.describe()}")
    if view.tally.approved_by:
        lines.append(f"approved  {', '.join(view.tally.approved_by)}")
    if view.tally.rejected_by:
        lines.append(f"rejected  {', '.join(view.tally.rejected_by)}")
    if view.tally.missing and request.status == "open":
        lines.append(f"missing   {'; '.join(view.tally.missing)}")
    if view.tally.dismissed:
        dismissed = plural(view.tally.dismissed, "approval")
        lines.append(f"dismissed {dismissed} of other content (they no longer count)")
    if request.apply_at:
        lines.append(f"applies   at {r.when(request.apply_at)}")
    if view.freeze:
        lines.append(f"{freeze_label(view.freeze):<9} {request.env}: {view.freeze['text']}")
    if request.emergency:
        review = "open: someone other than the requester signs it off" if view.review_open else (
            "signed off"
        )  # fmt: skip
        lines.append(f"emergency review {review}")
    changed = ", ".join(f"{len(paths)} {kind}" for kind, paths in view.changes.items() if paths)
    lines.append(f"changes   {changed or 'none'}")
    lines.append("timeline")
    width = max([9, *(len(entry.action) for entry in view.entries)])  # one column for actors
    for entry in view.entries:
        said = f": {entry.comment}" if entry.comment else ""
        lines.append(f"  {r.when(entry.at)}  {entry.action:<{width}} {entry.actor}{said}")
    r.out("\n".join(lines))
    if view.exit_code and request.status == "failed":
        r.info(f"{request.label} was applied and failed: {request.detail}")
    if view.state == "approved" and request.status == "open":
        held = view.freeze is not None and view.freeze["state"] == "active"
        once = f", once {request.env} is open to changes again" if held else ""
        r.info(f"next: lastgood request apply {request.number}{once}")


def _base(view: RequestView) -> str:
    base = view.request.base_version
    return f"v{base}" if base is not None else "nothing live"
