"""``lastgood request list`` and ``request show N``: reading change requests, from the store or
through a server."""

from __future__ import annotations

import click

from lastgood.cli import render as r
from lastgood.cli.app import AppContext
from lastgood.cli.commands import LIMIT, json_option, pass_app
from lastgood.cli.numbers import REQUEST_NUMBER
from lastgood.cli.request_view import print_view, view_of
from lastgood.rows import REQUEST_STATES


@click.command("list")
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


@click.command("show")
@click.argument("number", type=REQUEST_NUMBER)
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
    print_view(view, as_json=False)
    if diff and not no_diff:
        r.out("")
        r.colour_diff(diff)
