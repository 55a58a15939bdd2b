"""``lastgood agent``: put the versions a server serves live on this host."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from lastgood.cli.app import AppContext
from lastgood.cli.group import cli
from lastgood.errors import AuthError, ConfigError
from lastgood.units import parse_duration

if TYPE_CHECKING:
    from lastgood.agent import Agent

pass_app = click.make_pass_decorator(AppContext)


def _seconds(value: str | None, option: str) -> float | None:
    if value is None:
        return None
    seconds = parse_duration(value, name=option)
    if seconds <= 0:
        raise click.BadParameter("must be more than 0", param_hint=option)
    return seconds


@cli.command()
@click.option(
    "-C",
    "--workspace",
    "workspace",
    metavar="DIR",
    help="The host workspace with an [agent] table (as 'lastgood -C DIR agent').",
)
@click.option(
    "--server",
    "servers",
    multiple=True,
    metavar="URL",
    help="The lastgood server to follow (default: [agent] server, LASTGOOD_SERVER).",
)
@click.option("--env", metavar="ENV", help="The served environment to follow.")
@click.option(
    "--target",
    metavar="TYPE:PATH",
    help="Where versions go live here: directory:PATH or files:PATH.",
)
@click.option(
    "--state",
    metavar="DIR",
    type=click.Path(file_okay=False, path_type=Path),
    help="Host workspace for --target (default: see docs/agents.md).",
)
@click.option(
    "--keep",
    type=click.IntRange(min=1),
    metavar="N",
    help="Releases kept on the host with --target (default 10).",
)
@click.option(
    "--name", metavar="NAME", help="This agent in the fleet view (default: HOST:TARGET-PATH)."
)
@click.option(
    "--check-every",
    metavar="DURATION",
    help="Time between host checks (default: [agent] check_every, 30s).",
)
@click.option(
    "--retry-max",
    metavar="DURATION",
    default="5s",
    show_default=True,
    help="Longest wait between attempts while the server is unreachable.",
)
@click.option(
    "--take-withdrawn",
    is_flag=True,
    help="Put served versions live even if an offline rollback withdrew them here.",
)
@click.option("-v", "--verbose", is_flag=True, help="Say more about each exchange.")
@pass_app
def agent(
    app: AppContext,
    workspace: str | None,
    servers: tuple[str, ...],
    env: str | None,
    target: str | None,
    state: Path | None,
    keep: int | None,
    name: str | None,
    check_every: str | None,
    retry_max: str,
    take_withdrawn: bool,
    verbose: bool,
) -> None:
    """Follow a served environment and put each version live on this host.

    Every version the server serves is verified against its content hash, staged on the local
    target as a release, switched live atomically and read back; old releases are pruned to
    keep. A version the host retains (a rollback) is a pointer switch. The agent reports the
    version its target really serves, and the environment's host checks, to the fleet view.

    With --target, the host workspace (--state DIR) gets a lastgood.toml for ENV, so
    'lastgood -C DIR rollback ENV --offline' works here with the server away; a release withdrawn
    that way is not put back until the server serves another version (or --take-withdrawn
    is given). Without --target, the workspace (-C DIR) names them in its [agent] table. The
    token comes from LASTGOOD_TOKEN (a viewer token). SIGTERM or Ctrl-C stops it; what is live
    stays live.

    \b
    Example:
      lastgood agent --server https://lastgood.internal --env production \\
        --target directory:/srv/app/config
      lastgood -C /etc/lastgood-agent agent
    """
    from lastgood.agent import Agent, plan_agent
    from lastgood.agent.hostspace import AgentRequest
    from lastgood.agent.runner import configure_logging

    if workspace is not None:
        app.workspace = workspace
    listed = tuple(url.strip() for each in servers for url in each.split(",") if url.strip())
    request = AgentRequest(
        root=None if target is not None else _host_root(app), target=target, state=state,
        env=env, servers=listed, fallback=app.server, name=name, keep=keep,
        check_every=_seconds(check_every, "--check-every"),
    )  # fmt: skip
    plan = plan_agent(request)
    configure_logging(verbose)
    seconds = _seconds(retry_max, "--retry-max") or 5.0
    agent = Agent(plan, token=app.token, retry_max=seconds, take_withdrawn=take_withdrawn)
    click.get_current_context().exit(_run(agent, app.token))


def _run(agent: Agent, token: str | None) -> int:
    """Run ``agent`` to its end; a refusal for want of a token says which variable to set."""
    try:
        return agent.run()
    except AuthError as exc:
        if token:
            raise
        raise AuthError(f"{exc.message} (no token was sent)",
                        hint="set LASTGOOD_TOKEN to a viewer token: 'lastgood token create "
                        "--name agents --role viewer' on the server") from exc  # fmt: skip


def _host_root(app: AppContext) -> Path | None:
    """-C DIR (or LASTGOOD_WORKSPACE, or the nearest lastgood.toml); None when none is found,
    so the agent's own hint (--target or -C DIR) is shown, not 'lastgood init'."""
    try:
        return app.root()
    except ConfigError:
        return None
