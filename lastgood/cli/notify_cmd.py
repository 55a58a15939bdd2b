"""``lastgood notify``: test the routes and read the delivery log."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from lastgood.cli import render as r
from lastgood.cli.app import AppContext
from lastgood.cli.commands import LIMIT
from lastgood.cli.group import cli
from lastgood.units import plural

if TYPE_CHECKING:
    from lastgood.rows import Delivery

pass_app = click.make_pass_decorator(AppContext)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON to stdout.")
STATUSES = ("sent", "failed", "suppressed", "abandoned")


@cli.group()
def notify() -> None:
    """Check where notifications go: send a test message, read the delivery log.

    Routes are [[notify.route]] tables in lastgood.toml; see docs/notifications.md.

    \b
    Example:
      lastgood notify test --route ops-email
    """


@notify.command("test")
@click.option("--route", "route", metavar="NAME", help="Only this route (default: every route).")
@json_option
@pass_app
def notify_test(app: AppContext, route: str | None, as_json: bool) -> None:
    """Send a test message to every destination of every route, and report each one.

    The message goes to each route whatever its events and envs filters say, and waits (at most
    as long as every attempt timing out would take) for each destination to be sent or to fail.
    Each line shows the destination with its secrets masked and, on failure, apprise's reason.

    \b
    Exit codes:
      0  every destination was sent the message
      1  at least one failed (or was still being tried when the wait ended)
      2  no routes in lastgood.toml, or no route with that name

    \b
    Example:
      lastgood notify test --route team-chat
    """
    from lastgood.operations.notify import test

    results = test(app.project(), route=route)
    ok = all(result.status == "sent" for result in results)
    if as_json:
        r.emit_json({"ok": ok, "results": [result.to_json() for result in results]})
    else:
        for result in results:
            attempts = f"{result.attempts} attempt{'s' if result.attempts != 1 else ''}"
            r.out(f"{result.status:<7} {result.route}  {result.destination}  ({attempts})")
            if result.status != "sent":
                r.out(f"        {result.detail}")
        failed = sum(result.status != "sent" for result in results)
        r.info(
            (f"all {len(results)} destinations" if len(results) > 1 else "the destination")
            + " got the test message"
            if ok
            else f"{failed} of {plural(len(results), 'destination')} did not get the test message; "
            "see 'lastgood notify log'"
        )
    click.get_current_context().exit(0 if ok else 1)


@notify.command("log")
@click.option("-n", "--limit", default=50, show_default=True, type=LIMIT, help="How many attempts.")
@click.option("--route", "route", metavar="NAME", help="Only this route.")
@click.option("--status", type=click.Choice(STATUSES), help="Only attempts with this status.")
@json_option
@pass_app
def notify_log(
    app: AppContext, limit: int, route: str | None, status: str | None, as_json: bool
) -> None:
    """Show delivery attempts, newest first: when, route, event, destination, status, why.

    Every attempt is kept: sent, failed (with the reason and whether it will be retried),
    suppressed (its dedupe key was sent to that destination before) and abandoned (the process
    ended before it could be delivered). Destinations are shown with their secrets masked.

    \b
    Example:
      lastgood notify log --route ops-email --status failed -n 20
    """
    from lastgood.operations.notify import delivery_log

    entries = delivery_log(app.project(), limit=limit, route=route, status=status)
    if as_json:
        r.emit_json([entry.to_json() for entry in entries])
        return
    if not entries:
        r.info("no delivery attempts recorded yet; try 'lastgood notify test'")
        return
    headers = ["when", "route", "event", "env", "destination", "try", "status", "detail"]
    rows = [_row(entry) for entry in entries]
    r.out(r.table(headers, rows))


def _row(entry: Delivery) -> list[str]:
    return [
        r.when(entry.at),
        entry.route,
        entry.event,
        entry.env or "-",
        entry.destination,
        str(entry.attempt),
        entry.status,
        entry.detail,
    ]
