"""The commands. Each one parses its options, calls one verb, and renders the result."""

from __future__ import annotations

from pathlib import Path

import click

from lastgood.cli import AppContext, cli
from lastgood.cli import render as r
from lastgood.outcome import Outcome
from lastgood.units import format_duration

pass_app = click.make_pass_decorator(AppContext)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON to stdout.")


@cli.command()
@click.option("--force", is_flag=True, help="Overwrite an existing lastgood.toml.")
@pass_app
def init(app: AppContext, force: bool) -> None:
    """Create a commented lastgood.toml and the store in this folder.

    \b
    Example:
      cd ops-config && lastgood init
    """
    from lastgood.operations.init import init as do_init

    root = Path(app.workspace).resolve() if app.workspace else Path.cwd()
    for path in do_init(root, force=force):
        r.info(f"wrote {path}")
    app.workspace = str(root)
    project = app.project()
    project.store  # noqa: B018  (creates and migrates the store)
    from lastgood.settings import mask_url

    r.info(f"store ready: {mask_url(project.store_url)}")
    r.info("next: edit lastgood.toml, then 'lastgood snapshot -m \"first version\"'")


@cli.command()
@click.option("-m", "--message", default="", help="Why this change (recorded with the version).")
@json_option
@pass_app
def snapshot(app: AppContext, message: str, as_json: bool) -> None:
    """Record the folder as a new version (nothing happens when it is unchanged).

    \b
    Example:
      lastgood snapshot -m "lower the lead threshold to 0.4"
    """
    from lastgood.operations.snapshot import snapshot as do_snapshot

    result = do_snapshot(app.project(), message)
    version = result.version
    if as_json:
        r.emit_json({"created": result.created, "version": version.__dict__})
    elif result.created:
        r.out(f"{version.label} {version.short_hash} {version.file_count} files: {version.message}")
    else:
        r.info(f"unchanged: the folder matches {version.label} ({version.short_hash})")


@cli.command()
@click.option("-n", "--limit", default=20, show_default=True, help="How many versions.")
@json_option
@pass_app
def log(app: AppContext, limit: int, as_json: bool) -> None:
    """List versions, newest first.

    \b
    Example:
      lastgood log -n 5
    """
    from lastgood.operations.versions import log as do_log

    versions = do_log(app.project(), limit=limit)
    if as_json:
        r.emit_json([v.__dict__ for v in versions])
        return
    rows = [
        [v.label, v.short_hash, r.when(v.created_at), v.author, str(v.file_count), v.message]
        for v in versions
    ]
    r.out(r.table(["version", "hash", "when", "author", "files", "message"], rows))


@cli.command()
@click.argument("ref")
@click.argument("path", required=False)
@json_option
@pass_app
def show(app: AppContext, ref: str, path: str | None, as_json: bool) -> None:
    """Show a version's files, or print one file of it.

    \b
    Example:
      lastgood show v12 scoring/thresholds.yaml
    """
    from lastgood.operations.versions import show as do_show

    version, files = do_show(app.project(), ref, path)
    if as_json:
        r.emit_json(
            {
                "version": version.__dict__,
                "files": {p: d.decode("utf-8", "replace") for p, d in files.items()},
            }
        )
    elif path is not None:
        r.out(files[path].decode("utf-8", "replace"))
    else:
        r.info(
            f"{version.label} {version.short_hash} by {version.author} "
            f"at {r.when(version.created_at)}: {version.message}"
        )
        for name, data in sorted(files.items()):
            r.out(f"{len(data):>9}  {name}")


@cli.command()
@click.argument("old", required=False)
@click.argument("new", required=False)
@json_option
@pass_app
def diff(app: AppContext, old: str | None, new: str | None, as_json: bool) -> None:
    """Unified diff between versions (default: live on the default environment vs the folder).

    OLD and NEW are version references; NEW defaults to the folder ('workspace').

    \b
    Example:
      lastgood diff production:live staging:live
    """
    from lastgood.operations import versions

    before, after = versions.sides(app.project(), old, new)
    text = versions.unified(before, after)
    if as_json:
        r.emit_json({"old": before.label, "new": after.label,
                     "files": versions.changes(before, after), "diff": text})  # fmt: skip
        return
    if text:
        r.colour_diff(text)
    else:
        r.info("no differences")


def _finish(outcome: Outcome, as_json: bool) -> None:
    click.get_current_context().exit(r.finish(outcome, as_json))


@cli.command()
@click.argument("env")
@click.option("-m", "--message", default="", help="Why (recorded on the version and deployment).")
@click.option("--version", "ref", metavar="REF", help="Deploy this version instead of the folder.")
@click.option("--dry-run", is_flag=True, help="Print the plan; change nothing.")
@click.option("--force", is_flag=True, help="Deploy a version that failed here before.")
@json_option
@pass_app
def deploy(
    app: AppContext,
    env: str,
    message: str,
    ref: str | None,
    dry_run: bool,
    force: bool,
    as_json: bool,
) -> None:
    """Deploy the folder (or --version REF) to ENV: validate, preflight, activate, bake.

    When the checks fail during the bake, the last known good version is restored and verified
    by itself (exit 3). Exit 4 means the restore could not be verified: a person is needed.

    \b
    Example:
      lastgood deploy staging -m "new routing rules"
      lastgood deploy production --version staging:last-good
    """
    from lastgood.operations import deploy as verbs

    project = app.project()
    if dry_run:
        _finish(verbs.plan_deploy(project, env, ref=ref), as_json)
        return
    if not as_json:
        project.events.subscribe(r.ProgressPrinter())
    _finish(verbs.deploy(project, env, message=message, ref=ref, force=force), as_json)


@cli.command()
@click.argument("env")
@click.option(
    "--to", "to", metavar="REF", help="Restore this version instead (one that ran on ENV)."
)
@click.option("-m", "--message", "reason", default="", help="Why (recorded in the ledger).")
@click.option(
    "--force",
    is_flag=True,
    help="Break a live lock held by a stuck deploy; allow --to a bad or never-run version.",
)
@click.option("--offline", is_flag=True, help="Use only what the target holds (store down).")
@json_option
@pass_app
def rollback(
    app: AppContext,
    env: str,
    to: str | None,
    reason: str,
    force: bool,
    offline: bool,
    as_json: bool,
) -> None:
    """Put the last known good version back on ENV and verify it.

    When last known good is already live, goes to the good version before it. Never lands on a
    version that failed on ENV. A pointer switch when the target still holds the release.

    \b
    Example:
      lastgood rollback production -m "scores dropped to zero"
    """
    from lastgood.cli.fast import run_rollback

    code = run_rollback(
        app, env, to=to, reason=reason, force=force, offline=offline, as_json=as_json
    )
    click.get_current_context().exit(code)


@cli.command()
@click.argument("env", required=False)
@json_option
@pass_app
def status(app: AppContext, env: str | None, as_json: bool) -> None:
    """Show what is live (read back from each target), last known good, health and restore times.

    \b
    Example:
      lastgood status production
    """
    from lastgood.operations.status import status as do_status

    reports = do_status(app.project(), env)
    if as_json:
        r.emit_json([report.to_json() for report in reports])
        return
    for report in reports:
        _print_status(report)


def _label(version: int | None) -> str:
    return "-" if version is None else f"v{version}"


def _print_status(s: object) -> None:
    from lastgood.operations.status import EnvStatus

    assert isinstance(s, EnvStatus)
    live = f"{_label(s.live_version)} ({(s.live_hash or '')[:8]})" if s.live_version else "nothing"
    r.out(f"{s.env}  [{s.target}]")
    r.out(f"  live          {live}{'  DRIFTED' if s.drifted else ''}")
    r.out(f"  last good     {_label(s.last_good)}")
    r.out(f"  health        {s.health}" + (f" at {r.when(s.health_at)}" if s.health_at else ""))
    if s.last_change:
        c = s.last_change
        r.out(
            f"  last change   {c['kind']} {_label(c['from_version'])} → {_label(c['to_version'])}"
            f" {c['status']} by {c['actor']} at {r.when(c['requested_at'])}"
        )
    if s.restores:
        verdict = "within" if s.within_budget else "OVER"
        r.out(
            f"  restores      {len(s.restores)}: p50 {format_duration(s.restore_p50)}, max "
            f"{format_duration(s.restore_max)} ({verdict} budget {format_duration(s.budget)})"
        )
    else:
        r.out(f"  restores      none yet (budget {format_duration(s.budget)})")
    if s.last_drill:
        d = s.last_drill
        r.out(f"  last drill    #{d['id']} {d['status']} {format_duration(d['age'])} ago")
    if s.fleet is not None:
        r.out(f"  consumers     {s.fleet['summary']}")
    if s.lock:
        r.out(f"  locked        {s.lock}")
    for warning in s.warnings:
        r.out(f"  ! {warning}")


@cli.command()
@click.argument("env")
@click.option("-n", "--limit", default=30, show_default=True, help="How many ledger records.")
@json_option
@pass_app
def history(app: AppContext, env: str, limit: int, as_json: bool) -> None:
    """The timeline of ENV: deploys, rollbacks, automatic rollbacks, with timings.

    \b
    Example:
      lastgood history production -n 10
    """
    from lastgood.operations.status import history as do_history

    timeline = do_history(app.project(), env, limit=limit)
    if as_json:
        r.emit_json(
            {
                "deployments": [d.to_json() for d in timeline.deployments],
                "events": [e.to_json() for e in timeline.events],
            }
        )
        return
    rows = []
    for d in timeline.deployments:
        took = format_duration(d.time_to_active) if d.is_rollback else ""
        rows.append(
            [
                f"#{d.id}",
                r.when(d.requested_at),
                d.kind,
                f"{_label(d.from_version)} → {_label(d.to_version)}",
                d.status,
                took,
                d.actor,
                d.reason[:60],
            ]
        )
    r.out(r.table(["id", "when", "what", "versions", "outcome", "restore", "who", "why"], rows))


@cli.command()
@click.argument("env")
@json_option
@pass_app
def check(app: AppContext, env: str, as_json: bool) -> None:
    """Run ENV's health checks now against what is live (exit 1 when any fails).

    \b
    Example:
      lastgood check production
    """
    from lastgood.operations.status import check_now

    done = check_now(app.project(), env)
    if as_json:
        r.emit_json(
            {
                "ok": done.ok,
                "results": [
                    {"name": x.name, "ok": x.ok, "detail": x.detail, "duration": x.duration}
                    for x in done.results
                ],
            }
        )
    else:
        for result in done.results:
            mark = "ok  " if result.ok else "FAIL"
            r.out(
                f"{mark} {result.name:<24} {format_duration(result.duration):>8}  {result.detail}"
            )
        if not done.results:
            r.out(f"no checks configured for {env}")
    click.get_current_context().exit(0 if done.ok else 1)


@cli.command()
@click.argument("env")
@click.option(
    "--override-protection", is_flag=True, help="Drill a protected environment (recorded)."
)
@click.option("-m", "--message", "reason", default="", help="Why (recorded in the ledger).")
@json_option
@pass_app
def drill(app: AppContext, env: str, override_protection: bool, reason: str, as_json: bool) -> None:
    """Rehearse a rollback on ENV: break it on purpose, let the checks catch it, measure.

    Deploys a broken variant of the live version (the files in [env.ENV.drill] files), lets the
    real checks detect it and the automatic rollback restore the live version, then verifies the
    bytes and compares the restore time with the budget. Without a configured variant it injects
    a failing check round instead (the weaker drill). Exit 0 passed, 4 failed or over budget,
    5 refused (protected, unhealthy, not at last known good).

    \b
    Example:
      lastgood drill staging
    """
    from lastgood.operations.drill import drill as do_drill

    project = app.project()
    if not as_json:
        project.events.subscribe(r.ProgressPrinter())
    result = do_drill(project, env, override_protection=override_protection, reason=reason)
    if as_json:
        from lastgood.record import as_dict

        r.emit_json(as_dict(result))
    else:
        r.out(result.summary)
    click.get_current_context().exit(result.exit_code)
