"""``lastgood report``: the status digest for stakeholders."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import click

from lastgood.cli import render as r
from lastgood.cli.app import AppContext
from lastgood.cli.commands import pass_app
from lastgood.cli.group import cli
from lastgood.errors import UsageError
from lastgood.units import parse_since


@cli.command()
@click.argument("envs", nargs=-1, metavar="[ENV]...")
@click.option(
    "--since",
    default="7d",
    show_default=True,
    metavar="7d|DATE",
    help="Start of the period: how far back (7d, 24h) or a date (2024-05-01[T09:00]).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "markdown", "html", "json"]),
    default="text",
    show_default=True,
    help="text for the terminal, markdown for chat, html for email, json for scripts.",
)
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to FILE."
)
@click.option(
    "--send", is_flag=True, help="Also send it through the [[notify.route]]s that take digests."
)
@pass_app
def report(
    app: AppContext,
    envs: tuple[str, ...],
    since: str,
    fmt: str,
    as_json: bool,
    output: Path | None,
    send: bool,
) -> None:
    """The status digest: changes, who made them, incidents, rollbacks and restore times
    against the budget, drills, drift and tracked documents, per environment (default: all).

    Only reads. With --send the digest also goes out as a 'digest' event through every route
    that takes digests (its events list 'digest' or '*', or it has none: the default set), each
    in the route's own format. See docs/reports.md.

    Exit codes: 0 done (emitted, with --send); 1 unexpected error (the store cannot be read);
    2 bad input: an unknown environment, a bad --since, an unwritable --output, or --send
    without a route that takes digests.

    \b
    Example:
      lastgood report staging --since 7d --format markdown
      lastgood report --format html -o digest.html
      lastgood report production --send
    """
    fmt = "json" if as_json else fmt
    if app.server:
        if send:
            raise UsageError(
                "--send works on a store only: the routes are in the store's lastgood.toml",
                hint="drop --server to send from where the store is, or drop --send",
            )
        parse_since(since, time.time())  # a bad --since stops here, as it does locally
        _emit(app.remote().report(since, list(envs), fmt), fmt, output)
        return
    from lastgood.operations import report as verbs
    from lastgood.report import render, title

    project = app.project()
    for env in envs:
        project.config.environment(env)  # unknown: an error listing the known ones
    now = time.time()
    digest = verbs.build(project, since=parse_since(since, now), until=now, envs=list(envs))
    routes = verbs.digest_routes(project, digest) if send else []
    _emit(render(digest, fmt), fmt, output)
    if send:
        verbs.send(project, digest)
        r.info(f"sent '{title(digest)}' to {', '.join(routes)}")


def _emit(text: str, fmt: str, output: Path | None) -> None:
    """Write the digest to ``output``, or print it (in colour for a person at a terminal)."""
    if output is not None:
        _write(output, text)
        r.info(f"wrote the digest ({fmt}) to {output}")
    elif fmt == "text" and sys.stdout.isatty() and "NO_COLOR" not in os.environ:
        _print_rich(text)
    else:
        r.out(text)


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(
            f"cannot write the digest to {str(path)!r}: {exc.strerror}",
            hint="choose a file in a folder that exists and that you can write to",
        ) from exc


def _print_rich(text: str) -> None:
    """Headlines in bold, warnings in red: the same words as the plain text."""
    from rich.console import Console

    console = Console(highlight=False)
    for number, line in enumerate(text.splitlines()):
        bold = number == 0 or (line and not line.startswith(" ") and ": " in line)
        style = "red" if line.lstrip().startswith("!") else "bold" if bold else None
        console.print(line, style=style, markup=False)
