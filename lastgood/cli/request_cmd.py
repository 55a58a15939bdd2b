"""``lastgood request``: propose a change, review it, apply it (see docs/change-requests.md).

``lastgood request ENV -m WHY`` opens a request (the same as ``lastgood request open ENV``);
``list``, ``show``, ``approve``, ``reject``, ``update``, ``withdraw`` and ``apply`` act on one.
With ``--server`` each runs on the server (:mod:`lastgood.server.requests_api`), as the token's
name. This module is the group; each subcommand lives with the ones like it:

- :mod:`lastgood.cli.request_proposal`: ``open`` and ``update``, what a request proposes;
- :mod:`lastgood.cli.request_listing`: ``list`` and ``show``;
- :mod:`lastgood.cli.request_step`: ``approve``, ``reject``, ``withdraw``, ``signoff``, ``apply``;
- :mod:`lastgood.cli.request_view`: how a request is printed, read from the store or a server.
"""

from __future__ import annotations

import click

from lastgood.cli.group import cli
from lastgood.cli.request_listing import list_command, show_command
from lastgood.cli.request_proposal import open_command, update_command
from lastgood.cli.request_step import (
    apply_command,
    approve_command,
    reject_command,
    signoff_command,
    withdraw_command,
)


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


for subcommand in (open_command, list_command, show_command, approve_command, reject_command,
                   update_command, withdraw_command, signoff_command, apply_command):  # fmt: skip
    request.add_command(subcommand)
