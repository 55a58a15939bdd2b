"""``lastgood revert ENV PATH…``: take some paths back, keep the rest of what is live.

With ``--server`` the revert runs on the server (``POST /api/v1/envs/{env}/revert``) as the
token's name; its answer has the shape of ``--json`` and prints as a local revert does.
"""

from __future__ import annotations

from typing import Any

import click

from lastgood.cli import render as r
from lastgood.cli.app import AppContext
from lastgood.cli.commands import finish_remote, json_option, pass_app
from lastgood.cli.group import cli
from lastgood.units import plural


@cli.command()
@click.argument("env")
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.option("--from", "source", metavar="REF",
              help="Take the paths from this version (default: per path, the last known good "
              "before the change that touched it).")  # fmt: skip
@click.option("-m", "--message", "reason", required=True, help="Why (required).")
@json_option
@pass_app
def revert(
    app: AppContext, env: str, paths: tuple[str, ...], source: str | None, reason: str,
    as_json: bool,
) -> None:  # fmt: skip
    """Make a new version equal to what ENV serves with PATH… taken from an earlier version,
    and deploy it — or open a change request where ENV requires approval.

    The rest of what is live stays. A PATH may be a file or a folder. Without --from, each
    path comes from the newest version that was last known good on ENV and held it
    differently from what is live now. With --server it runs on the server, as the token's
    name.

    \b
    Example:
      lastgood revert production prompts/score.txt -m "the new wording drops every lead"
      lastgood revert production scoring/ --from v12 -m "thresholds as last week"
    """
    if app.server:
        _revert_remote(app, env, list(paths), source, reason, as_json=as_json)
        return
    from lastgood.operations.revert import revert as revert_paths

    project = app.project()
    if not as_json:
        project.events.subscribe(r.ProgressPrinter())
    done = revert_paths(project, env, list(paths), reason=reason, source_ref=source)
    if as_json:
        r.emit_json(done.to_json())
        click.get_current_context().exit(done.exit_code)
    _print_made(done.version.label, done.taken, done.changed)
    if done.request is not None:
        _print_request(env, done.request.summary, done.request.request.label)
        return
    assert done.outcome is not None
    click.get_current_context().exit(r.finish(done.outcome, as_json=False))


def _revert_remote(
    app: AppContext, env: str, paths: list[str], source: str | None, reason: str, *,
    as_json: bool,
) -> None:  # fmt: skip
    """Revert through the server; print its answer as a local revert prints."""
    from lastgood.cli.request_view import view_of

    remote = app.remote()
    if not as_json:
        r.info(f"reverting {', '.join(paths)} on {env} through {remote.shown}; it answers "
               "after the bake")  # fmt: skip
    data: dict[str, Any] = remote.revert(env, paths, reason, source)
    if as_json:
        r.emit_json(data)
        click.get_current_context().exit(int(data["exit_code"]))
    _print_made(f"v{data['version']['number']}", data["taken"], data["changed"])
    if data.get("request") is not None:
        view = view_of(data["request"])
        _print_request(env, view.summary, view.request.label)
        return
    finish_remote(data["outcome"], as_json=False)


def _print_made(label: str, taken: dict[str, str], changed: list[str]) -> None:
    for path, where in taken.items():
        r.info(f"{path}: from {where}")
    differ = "differs" if len(changed) == 1 else "differ"
    r.info(f"recorded {label}: {plural(len(changed), 'file')} {differ} from what is live")


def _print_request(env: str, summary: str, label: str) -> None:
    r.out(summary)
    r.info(f"{env} requires approval: next, its approvers review {label}")
