"""The click group and its entry point. Commands register on :data:`cli` when imported."""

from __future__ import annotations

import sys

import click

from lastgood import __version__
from lastgood.cli.app import AppContext, guarded


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="lastgood")
@click.option(
    "-C", "--workspace", metavar="DIR", help="Workspace folder (default: nearest lastgood.toml)."
)
@click.option(
    "--store", metavar="URL", help="Store URL, e.g. postgresql://host/db (default: .lastgood/)."
)
@click.option(
    "--author", metavar="NAME", help="Who is acting (default: LASTGOOD_AUTHOR, git, OS user)."
)
@click.pass_context
def cli(ctx: click.Context, workspace: str | None, store: str | None, author: str | None) -> None:
    """lastgood: the undo button for business operations.

    Version a folder of configuration, deploy it with health checks, and get back to the last
    known good version by itself, or with one command.

    \b
    Example:
      lastgood init && lastgood deploy staging -m "raise lead threshold"
    """
    app = AppContext(workspace, store, author)
    ctx.obj = app
    ctx.call_on_close(app.close)


def _run_click() -> int:
    try:
        code = cli.main(standalone_mode=False)
    except click.exceptions.Abort as exc:
        if isinstance(exc.__context__ or exc.__cause__, KeyboardInterrupt):
            raise KeyboardInterrupt from exc
        click.echo("aborted", err=True)
        return 1
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    return code if isinstance(code, int) else 0


def main() -> None:
    """Run the full CLI: every command, help and usage errors."""
    from lastgood.cli import (  # noqa: F401  (registers the commands)
        commands,
        demo,
        documents_cmd,
        notify_cmd,
        report_cmd,
        server_cmd,
        watch_cmd,
    )

    sys.exit(guarded(_run_click))
