"""``lastgood request open ENV`` (also ``request ENV``) and ``request update N``: what a change
request proposes, the folder or ``--version REF``.

Through a server the folder (or what a ``git:`` commit holds) is uploaded as a version first,
as ``deploy`` does there: the server has neither the folder nor the repository.
"""

from __future__ import annotations

from datetime import datetime

import click

from lastgood.cli import render as r
from lastgood.cli.app import AppContext
from lastgood.cli.commands import json_option, named_version, pass_app, upload_folder
from lastgood.cli.numbers import REQUEST_NUMBER
from lastgood.cli.request_view import print_remote, print_view
from lastgood.errors import UsageError


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


@click.command("open")
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
        print_remote(answer, as_json, opened=True)
        return
    from lastgood.operations.requests import open_request

    project = app.project()
    if emergency and not as_json:
        project.events.subscribe(r.ProgressPrinter())
    view = open_request(
        project, env, reason=reason, ref=ref, apply_at=_when(at), emergency=emergency
    )
    print_view(view, as_json, opened=True)


@click.command("update")
@click.argument("number", type=REQUEST_NUMBER)
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
        print_remote(app.remote().update_request(number, version, reason), as_json)
        return
    from lastgood.operations.requests import update_request

    view = update_request(app.project(), number, ref=ref, reason=reason)
    print_view(view, as_json)
