"""The click group and its entry point. Commands register on :data:`cli` when imported.

The everyday commands (``lastgood.cli.commands``) are imported with the group; every other module
of commands is imported only when one of its commands is run or listed (:class:`LazyGroup`), so
``lastgood log`` does not pay for the server, the change requests or the store tools: tens of
milliseconds on every command.
"""

from __future__ import annotations

import importlib
import sys

import click

from lastgood import __version__, settings
from lastgood.cli.app import AppContext, guarded
from lastgood.errors import UsageError

LAZY_COMMANDS = {
    "agent": "agent_cmd",
    "audit": "audit_cmd",
    "bisect": "bisect_cmd",
    "demo": "demo",
    "blame": "history_cmd",
    "documents": "documents_cmd",
    "import-git": "history_cmd",
    "notify": "notify_cmd",
    "prune": "store_cmd",
    "report": "report_cmd",
    "request": "request_cmd",
    "revert": "revert_cmd",
    "rollout": "rollout_cmd",
    "serve": "server_cmd",
    "store": "store_cmd",
    "token": "server_cmd",
    "watch": "watch_cmd",
}
"""Command name -> the module under ``lastgood.cli`` that registers it when imported.
``tests/test_cli.py`` checks that importing every module registers exactly these."""


class LazyGroup(click.Group):
    """A group that imports a command's module the first time the command is asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in LAZY_COMMANDS:
            importlib.import_module(f"lastgood.cli.{LAZY_COMMANDS[cmd_name]}")
        return super().get_command(ctx, cmd_name)


def _remember(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    """Keep --server and --token in ``ctx.meta``, out of ``ctx.params``: the group's params stay
    the ones the click-free rollback lane reads (tests/test_cli_fast.py compares the two), and a
    line with either option never takes that lane anyway."""
    ctx.meta[f"lastgood.{param.name}"] = value


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
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
@click.option(
    "--server",
    metavar="URL",
    expose_value=False,
    callback=_remember,
    help="Act through this lastgood server instead of the store (default: LASTGOOD_SERVER).",
)
@click.option(
    "--token",
    metavar="TOKEN",
    expose_value=False,
    callback=_remember,
    help="API token for --server (default: LASTGOOD_TOKEN, which keeps it out of ps).",
)
@click.pass_context
def cli(ctx: click.Context, workspace: str | None, store: str | None, author: str | None) -> None:
    """lastgood: the undo button for business operations.

    Version a folder of configuration, deploy it with health checks, and get back to the last
    known good version by itself, or with one command.

    With --server URL (or LASTGOOD_SERVER) status, history, log, show, diff, snapshot, deploy,
    rollback, check, drill, report and token act through that server's API, as its token allows.

    \b
    Example:
      lastgood init && lastgood deploy staging -m "raise lead threshold"
      lastgood --server https://lastgood.internal rollback production
    """
    app = AppContext(
        workspace,
        store,
        author,
        server=_server(ctx.meta.get("lastgood.server"), store),
        token=ctx.meta.get("lastgood.token") or settings.TOKEN.read(),
        command=ctx.invoked_subcommand,
    )
    ctx.obj = app
    ctx.call_on_close(app.close)


def _server(option: str | None, store: str | None) -> str | None:
    """The server to act through: --server, else LASTGOOD_SERVER unless --store names a store
    (the command line beats the environment); both options at once make no sense."""
    if option is not None and store is not None:
        raise UsageError(
            "--server and --store exclude each other: act through a server or on a store",
            hint="drop one of them",
        )
    if option is not None:
        return option or None
    return None if store is not None else settings.SERVER.read()


def _run_click() -> int:
    try:
        code = cli.main(standalone_mode=False)
    except click.exceptions.Abort as exc:
        interrupt = exc.__context__ or exc.__cause__
        if isinstance(interrupt, KeyboardInterrupt):
            raise interrupt from exc  # Ctrl-C, or SIGTERM (termination.Terminated)
        click.echo("aborted", err=True)
        return 1
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    return code if isinstance(code, int) else 0


def main() -> None:
    """Run the full CLI: every command, help and usage errors."""
    from lastgood.cli import commands  # noqa: F401  (registers the everyday commands)

    sys.exit(guarded(_run_click))
