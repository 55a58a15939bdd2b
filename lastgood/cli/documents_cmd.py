"""``lastgood documents``: tracked documents, their versions and diffs."""

from __future__ import annotations

import base64
import sys
from typing import TYPE_CHECKING

import click

from lastgood.cli import render as r
from lastgood.cli.app import AppContext
from lastgood.cli.commands import LIMIT, json_option, pass_app
from lastgood.cli.group import cli

if TYPE_CHECKING:
    from lastgood.documents import DocumentResult


@cli.group()
def documents() -> None:
    """Track files, folders and URLs that matter ([[watch.document]]) and alert on changes.

    Changes are decided on normalized content, so a touched file or a re-saved page with the
    same text is not a change. The watcher checks every document each cycle; 'check' does it
    now (from a terminal or cron).

    \b
    Example:
      lastgood documents check && lastgood documents log "pricing sheet"
    """


@documents.command()
@click.argument("names", nargs=-1, metavar="[NAME]...")
@json_option
@pass_app
def check(app: AppContext, names: tuple[str, ...], as_json: bool) -> None:
    """Check documents now (all, or those named): store and alert what changed.

    Prints changed, unchanged, baseline (the first version, stored without an alert) or error
    for each document. Exit 0 when every document was read, 1 when any could not be (the
    others are still checked), 2 when a name is unknown or no document is configured.

    \b
    Example:
      lastgood documents check
      */15 * * * * cd /srv/ops-config && lastgood documents check   # crontab
    """
    from lastgood.documents import track_all

    results = track_all(app.project(), list(names))
    if as_json:
        r.emit_json([result.to_json() for result in results])
    else:
        rows = [_check_row(result) for result in results]
        r.out(r.table(["status", "document", "version", "detail"], rows))
        for result in results:
            if result.error is not None and result.error.hint:
                r.info(f"{result.name}: hint: {result.error.hint}")
    failed = sum(1 for result in results if result.error is not None)
    if failed and not as_json:
        r.info(f"{failed} of {len(results)} documents could not be read")
    click.get_current_context().exit(1 if failed else 0)


def _check_row(result: DocumentResult) -> list[str]:
    change = result.change
    if result.error is not None:
        return [result.status, result.name, "-", result.error.message]
    if change is None:
        return [result.status, result.name, "-", "no change"]
    if change.baseline:
        return [result.status, result.name, f"v{change.version}", "stored as the baseline"]
    return [result.status, result.name, f"v{change.version}", change.summary]


@documents.command()
@click.argument("name")
@click.option("-n", "--limit", default=20, show_default=True, type=LIMIT, help="How many versions.")
@json_option
@pass_app
def log(app: AppContext, name: str, limit: int, as_json: bool) -> None:
    """List a document's stored versions, newest first: when, and lines added and removed.

    \b
    Example:
      lastgood documents log "pricing sheet" -n 5
    """
    from lastgood.documents import query

    project = app.project()
    versions = query.versions(project, name, limit=limit)
    if as_json:
        r.emit_json([{**v.to_json(), "diff": query.shown_diff(project, v)} for v in versions])
        return
    if not versions:
        r.info(f"no versions of {name!r} yet: run 'lastgood documents check {query.quoted(name)}'")
        return
    rows = [
        [f"v{v.version}", r.when(v.at), _lines(v.version, v.diff, v.added, v.removed),
         f"{v.size} B", v.source]
        for v in versions
    ]  # fmt: skip
    r.out(r.table(["version", "when", "lines", "size", "source"], rows))


def _lines(version: int, diff: str, added: int, removed: int) -> str:
    if version == 1 and not diff:
        return "baseline"
    if diff.startswith("binary content changed"):
        return "binary"
    return f"+{added} -{removed}"


@documents.command()
@click.argument("name")
@click.argument("version", required=False)
@click.option("--diff", "as_diff", is_flag=True, help="Print the diff against the version before.")
@json_option
@pass_app
def show(app: AppContext, name: str, version: str | None, as_diff: bool, as_json: bool) -> None:
    """Print a stored version of a document (default: the newest), as normalized.

    VERSION is a number, as in 3 or v3. With --diff, print what changed from the version
    before it instead.

    \b
    Example:
      lastgood documents show "pricing sheet" v3 --diff
    """
    from lastgood.documents import query
    from lastgood.documents.diff import is_text

    project = app.project()
    number = None if version is None else query.parse_version(version)
    record = query.version_of(project, name, number)
    if as_diff:
        shown = query.shown_diff(project, record)
        if as_json:
            r.emit_json({"version": {**record.to_json(), "diff": shown}, "diff": shown})
        elif shown:
            r.colour_diff(shown)
        else:
            r.info(f"v{record.version} of {name!r} is the baseline: no earlier version to compare")
        return
    content = query.shown_content(project, record)
    if as_json:
        meta = {k: v for k, v in record.to_json().items() if k != "diff"}
        if is_text(content):
            r.emit_json({"version": meta, "encoding": "utf-8", "content": content.decode()})
        else:
            encoded = base64.b64encode(content).decode()
            r.emit_json({"version": meta, "encoding": "base64", "content": encoded})
        return
    sys.stdout.buffer.write(content)
    sys.stdout.flush()
