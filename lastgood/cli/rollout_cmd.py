"""``lastgood rollout status|promote|abort ENV``: a gradual rollout, watched and steered.

With ``--server`` each runs on the server (``GET``/``POST /api/v1/envs/{env}/rollout``) as the
token's name, and prints as the local command does.
"""

from __future__ import annotations

from typing import Any

import click

from lastgood.cli import render as r
from lastgood.cli.app import AppContext
from lastgood.cli.commands import finish_remote, json_option, pass_app
from lastgood.cli.group import cli


@cli.group()
def rollout() -> None:
    """Watch and steer a gradual rollout ([env.NAME.rollout]; a served environment).

    A deploy on such an environment gives the new version to a growing share of the
    consumers, step by step, each step baked with the checks; a failed step puts every
    consumer back on last known good at once.

    \b
    Example:
      lastgood rollout status production
    """


@rollout.command("status")
@click.argument("env")
@json_option
@pass_app
def status(app: AppContext, env: str, as_json: bool) -> None:
    """Show the step, the percentage, both versions, the time in this step and the fleet per
    cohort.

    \b
    Example:
      lastgood rollout status production --json
    """
    if app.server:
        data: dict[str, Any] = app.remote().rollout(env)
    else:
        from lastgood.operations.rollout_control import rollout_status

        data = rollout_status(app.project(), env).to_json()
    if as_json:
        r.emit_json(data)
    else:
        r.out(data["summary"])


@rollout.command("promote")
@click.argument("env")
@json_option
@pass_app
def promote(app: AppContext, env: str, as_json: bool) -> None:
    """Move the rollout on to its next step after the next green round, without waiting out
    the step's bake. The running deploy does the move (it reads the request between rounds).

    \b
    Example:
      lastgood rollout promote production
    """
    _act(app, env, "promote", "", as_json)


@rollout.command("abort")
@click.argument("env")
@click.option("-m", "--message", "reason", default="", help="Why (recorded in the ledger).")
@json_option
@pass_app
def abort(app: AppContext, env: str, reason: str, as_json: bool) -> None:
    """Stop the rollout now: every consumer back on the stable version in one step, no step or
    bake replayed. The same as 'lastgood rollback ENV' during a rollout.

    \b
    Example:
      lastgood rollout abort production -m "checkout errors in the 5% cohort"
    """
    _act(app, env, "abort", reason, as_json)


def _act(app: AppContext, env: str, action: str, reason: str, as_json: bool) -> None:
    if app.server:
        finish_remote(app.remote().steer_rollout(env, action, reason), as_json)
        return
    from lastgood.operations import rollout_control

    project = app.project()
    if action == "promote":
        outcome = rollout_control.promote_rollout(project, env)
    else:
        outcome = rollout_control.abort_rollout(project, env, reason=reason)
    click.get_current_context().exit(r.finish(outcome, as_json))
