"""History tools: ``import-git``, ``blame``, and the rendering of ``log PATH``.

They work on the store itself: a server has neither the repository nor a reason to walk a
file's history for a client, so with ``--server`` they are refused, saying so.
"""

from __future__ import annotations

import click

from lastgood.cli import render as r
from lastgood.cli.app import AppContext
from lastgood.cli.commands import json_option, pass_app
from lastgood.cli.group import cli
from lastgood.errors import UsageError


def refuse_remote(app: AppContext, command: str) -> None:
    """History tools read the store and the repository here, never through a server."""
    if app.server:
        raise UsageError(
            f"'lastgood {command}' works on the store, not through a server",
            hint="run it where the store is, without --server (and LASTGOOD_SERVER unset)",
        )


@cli.command("import-git")
@click.option("--since", metavar="REF", help="Only the commits after this one (any git ref).")
@json_option
@pass_app
def import_git(app: AppContext, since: str | None, as_json: bool) -> None:
    """Record the workspace's git history as versions, oldest first.

    Every commit reachable from HEAD (first parent) that touched the workspace's folder
    becomes a version with its author, time and message. Running it again adds only what is
    new. Files that cannot be versioned (raw data, too large) are left out of the version
    and named.

    \b
    Example:
      lastgood import-git
      lastgood import-git --since v2.3 --json
    """
    refuse_remote(app, "import-git")
    from lastgood.operations.importing import IMPORTED
    from lastgood.operations.importing import import_git as do_import

    result = do_import(app.project(), since=since)
    if as_json:
        r.emit_json(result.to_json())
        return
    for commit in result.commits:
        if commit.status == IMPORTED:
            r.out(f"v{commit.version}  {commit.commit[:10]}  {commit.subject}")
        for left in commit.left_out:
            r.info(f"{commit.commit[:10]}: left out: {left.why}")
    r.info(result.summary if result.commits else "nothing to import: no commit touched the "
           "workspace's folder")  # fmt: skip
