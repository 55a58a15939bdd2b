"""History tools: ``import-git`` and ``blame`` (``log PATH`` renders in
:mod:`lastgood.cli.file_log`).

They work on the store itself (``app.project()`` refuses while a server is set): a server has
neither the repository nor a reason to walk a file's history for a client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from lastgood.cli import render as r
from lastgood.cli.app import AppContext
from lastgood.cli.commands import json_option, pass_app
from lastgood.cli.group import cli

if TYPE_CHECKING:
    pass


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


@cli.command()
@click.argument("path")
@click.argument("ref", required=False)
@json_option
@pass_app
def blame(app: AppContext, path: str, ref: str | None, as_json: bool) -> None:
    """For each line of PATH, the version (and commit) that last changed it.

    REF is the version to read PATH from (default: live on the default environment, else the
    newest version). Secret values are masked as 'show' masks them.

    \b
    Example:
      lastgood blame scoring/thresholds.yaml
      lastgood blame prompts/score.txt staging:last-good --json
    """
    from lastgood.operations.blame import blame as do_blame

    found = do_blame(app.project(), path, ref)
    if as_json:
        r.emit_json(found.to_json())
        return
    version = found.version
    r.info(f"{found.path} in {version.label} ({version.short_hash})")
    origins = [line.version for line in found.lines]
    labels = max((len(v.label) for v in origins), default=0)
    authors = max((len(_name(v.author)) for v in origins), default=0)
    commits = {v.number: r.commit(v.git_commit, v.git_dirty) for v in origins if v.git_commit}
    width = max((len(commit) for commit in commits.values()), default=0)
    for line in found.lines:
        v = line.version
        commit = f" {commits.get(v.number, '-'):<{width}}" if commits else ""
        day = r.when(v.created_at)[:10]
        r.out(f"{v.label:<{labels}}{commit} {_name(v.author):<{authors}} {day} | {line.text}")


def _name(author: str) -> str:
    """``Ana Lee`` of ``Ana Lee <ana@example.com>``: the name, without the address."""
    return author.partition(" <")[0] or author
