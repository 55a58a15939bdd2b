"""The steps taken on one change request by its number: ``approve``, ``reject``,
``withdraw`` and ``signoff`` (each with a message, made by :func:`step_command`), and ``apply``.

Each runs one verb on the store, or the same step through a server, and prints the request as
it stands after (:mod:`lastgood.cli.request_view`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import reduce
from typing import TYPE_CHECKING, Any

import click

from lastgood.cli import render as r
from lastgood.cli.app import AppContext
from lastgood.cli.commands import finish_remote, json_option, pass_app
from lastgood.cli.numbers import REQUEST_NUMBER
from lastgood.cli.request_view import print_remote, print_view
from lastgood.operations.requests import (
    RequestView,
    review_request,
    sign_off_request,
    withdraw_request,
)

if TYPE_CHECKING:
    from lastgood.cli.remote import Remote
    from lastgood.project import Project

    LocalStep = Callable[[Project, int, str, str | None], RequestView]
    """A step's verb on the store: (project, number, message, content hash) -> the request."""
    RemoteStep = Callable[[Remote, int, str, str | None], dict[str, Any]]
    """The same step through a server: (client, number, message, content hash) -> its answer."""


content_option = click.option(
    "--content", metavar="HASH",
    help="The content hash you reviewed, as 'request show' prints it (12 hex digits or more): "
    "refused if the request holds other content now. Scripts should always pass it.",
)  # fmt: skip


def step_command(
    name: str, message: str, step: tuple[LocalStep, RemoteStep], *, required: bool = False,
    with_content: bool = False,
) -> Callable[[Callable[[], None]], click.Command]:  # fmt: skip
    """Make ``request NAME NUMBER -m MESSAGE [--content HASH] [--json]``, its help the
    decorated function's docstring: approve, reject, withdraw and signoff parse the same, run
    one verb on the store or through the server, and print the request as it stands after."""
    local, remote = step

    def command(
        app: AppContext, number: int, comment: str, as_json: bool, content: str | None = None
    ) -> None:
        if app.server:
            print_remote(remote(app.remote(), number, comment, content), as_json)
        else:
            print_view(local(app.project(), number, comment, content), as_json)

    options = [
        click.argument("number", type=REQUEST_NUMBER),
        click.option("-m", "--message", "comment", required=required,
                     default=None if required else "", help=message),
        *([content_option] if with_content else []),
        json_option,
    ]  # fmt: skip

    def make(described: Callable[[], None]) -> click.Command:
        command.__doc__ = described.__doc__  # the help: one docstring per command, as elsewhere
        return click.command(name)(pass_app(reduce(lambda f, add: add(f), options[::-1], command)))

    return make


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


@click.command("apply")
@click.argument("number", type=REQUEST_NUMBER)
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
