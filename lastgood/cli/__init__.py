"""The ``lastgood`` command: parse, call one verb, render. No SQL here, ever.

Errors are translated in one place, :func:`main`: a :class:`LastgoodError` prints its message
and hint and exits with its code; anything else prints one line (a traceback only with
``LASTGOOD_DEBUG=1``) and exits 1.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from lastgood import __version__, holder, settings
from lastgood.config import find_root
from lastgood.errors import ConfigError, LastgoodError
from lastgood.project import Project


class AppContext:
    """What every command gets: where the workspace is and how to open the project."""

    def __init__(self, workspace: str | None, store: str | None, author: str | None) -> None:
        self.workspace = workspace
        self.store = store
        self.author = author
        self._project: Project | None = None

    def root(self) -> Path:
        explicit = self.workspace or settings.WORKSPACE.read()
        if explicit:
            return Path(explicit).resolve()
        found = find_root(Path.cwd())
        if found is None:
            raise ConfigError(
                f"no lastgood.toml in {Path.cwd()} or any folder above it",
                hint="run 'lastgood init' here, or pass -C DIR",
            )
        return found

    def project(self) -> Project:
        if self._project is None:
            self._project = Project.open(
                self.root(), store_url=self.store, actor=holder.author(self.author)
            )
        return self._project

    def close(self) -> None:
        if self._project is not None:
            self._project.close()


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


def main() -> None:
    """Console entry point: run the CLI and translate errors into messages and exit codes."""
    from lastgood.cli import commands, demo  # noqa: F401  (registers the commands)

    try:
        code = cli.main(standalone_mode=False)
    except click.exceptions.Abort as exc:
        interrupted = isinstance(exc.__context__ or exc.__cause__, KeyboardInterrupt)
        click.echo("interrupted" if interrupted else "aborted", err=True)
        sys.exit(130 if interrupted else 1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2 if exc.exit_code == 2 else exc.exit_code)
    except LastgoodError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # the last line of defence: one sentence, never a traceback
        if os.environ.get("LASTGOOD_DEBUG"):
            raise
        click.echo(
            f"unexpected error: {type(exc).__name__}: {exc}\n"
            "  hint: run again with LASTGOOD_DEBUG=1 for details, and report it",
            err=True,
        )
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
