"""``lastgood revert ENV PATH…``: take some paths back, keep the rest of what is live."""

from __future__ import annotations

import click

from lastgood.cli import render as r
from lastgood.cli.app import AppContext
from lastgood.cli.commands import json_option, pass_app
from lastgood.cli.group import cli
from lastgood.record import as_dict
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
    differently from what is live now.

    \b
    Example:
      lastgood revert production prompts/score.txt -m "the new wording drops every lead"
      lastgood revert production scoring/ --from v12 -m "thresholds as last week"
    """
    app.require_store()
    from lastgood.operations.revert import revert as revert_paths

    project = app.project()
    if not as_json:
        project.events.subscribe(r.ProgressPrinter())
    done = revert_paths(project, env, list(paths), reason=reason, source_ref=source)
    if as_json:
        data = {"version": as_dict(done.version), "taken": done.taken, "changed": done.changed,
                "outcome": done.outcome.to_json() if done.outcome else None,
                "request": done.request.to_json() if done.request else None}  # fmt: skip
        r.emit_json(data)
        code = done.outcome.exit_code if done.outcome else 0
        click.get_current_context().exit(code)
    for path, where in done.taken.items():
        r.info(f"{path}: from {where}")
    differ = "differs" if len(done.changed) == 1 else "differ"
    r.info(f"recorded {done.version.label}: {plural(len(done.changed), 'file')} {differ} from "
           "what is live")  # fmt: skip
    if done.request is not None:
        r.out(done.request.summary)
        r.info(f"{env} requires approval: next, its approvers review {done.request.request.label}")
        return
    assert done.outcome is not None
    click.get_current_context().exit(r.finish(done.outcome, as_json=False))
