"""The commands. Each one parses its options, calls one verb, and renders the result.

With ``--server`` the verb runs on the server (:mod:`lastgood.cli.remote`). Its answer has the
shape of the local ``--json``, and each command renders both from that shape, so the text, the
JSON and the exit code are the same whichever way the command went.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from lastgood.cli import render as r
from lastgood.cli.app import AppContext
from lastgood.cli.group import cli
from lastgood.cli.numbers import Digits
from lastgood.errors import UsageError
from lastgood.outcome import Outcome
from lastgood.record import Record, fields_of
from lastgood.units import format_duration, plural

if TYPE_CHECKING:
    from lastgood.operations.status import EnvStatus

R = TypeVar("R", bound=Record)

pass_app = click.make_pass_decorator(AppContext)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON to stdout.")
LIMIT = Digits(1, 10_000, what="a count")  # -n: at least one, and never a number no store can take


def named_version(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """``--version REF``: a version named, never an empty one — which would otherwise read as
    no option at all (the folder) wherever the command falls back to it."""
    if value is not None and not value.strip():
        raise click.BadParameter(
            "names no version: give one (12, v12, a hash prefix, staging:last-good), or leave "
            "--version out to use the folder"
        )
    return value


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

    app.require_store()  # before writing anything
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
    from lastgood.rows import VersionInfo

    if app.server:
        uploading, message, git = local_files(app, None, message)
        data = app.remote().upload(uploading, message, git=git)
        for warning in data.pop("warnings", []):  # the server's own, as the local ones print
            r.info(warning)
    else:
        from lastgood.operations.snapshot import snapshot as do_snapshot

        result = do_snapshot(app.project(), message)
        data = {"created": result.created, "version": result.version.__dict__}
    version = rebuild(VersionInfo, data["version"])
    if as_json:
        r.emit_json(data)
    elif data["created"]:
        files = plural(version.file_count, "file")
        r.out(f"{version.label} {version.short_hash} {files}: {version.message}")
    else:
        r.info(f"unchanged: the folder matches {version.label} ({version.short_hash})")


def local_files(
    app: AppContext, commit: str | None, message: str
) -> tuple[dict[str, bytes], str, dict[str, Any]]:
    """What to upload to a server, read here with the workspace's own [versioning] rules: the
    folder, or what git ``commit`` holds for it (its message unless ``message`` is given); the
    message, and the commit the files came from (whether the folder differed from it; for a
    commit, ``from_commit`` with its author and author date: the server, which has no
    repository, records the commit's own version with them, as ``deploy --commit`` does
    here)."""
    from lastgood import config, workspace
    from lastgood.gitfiles import commit_files, folder_commit
    from lastgood.gitrepo import Repo

    root = app.root()
    versioning = config.load(root).versioning
    if commit is None:
        bundle = workspace.collect(root, versioning)
        sha, dirty = folder_commit(root, versioning, bundle)
        return dict(bundle.files), message, {"git_commit": sha, "git_dirty": dirty}
    repo = Repo.require(root)
    found = commit_files(repo, repo.resolve(commit), versioning)
    made = found.commit
    git = {"git_commit": made.sha, "git_dirty": False, "from_commit": True,
           "git_author": made.author, "git_author_date": made.time}  # fmt: skip
    return dict(found.bundle.files), message or made.message, git


def rebuild(kind: type[R], data: dict[str, Any]) -> R:
    """A record from its JSON (as ``--json`` or the server wrote it); computed keys are dropped."""
    return kind(**{name: data[name] for name in fields_of(kind) if name in data})


@cli.command()
@click.argument("path", required=False)
@click.option("-n", "--limit", default=20, show_default=True, type=LIMIT, help="How many versions.")
@json_option
@pass_app
def log(app: AppContext, path: str | None, limit: int, as_json: bool) -> None:
    """List versions, newest first.

    With PATH (a file or folder of the workspace), only the versions that changed it (added,
    changed, removed), each with where and when it was live, from the ledger.

    \b
    Example:
      lastgood log -n 5
      lastgood log scoring/thresholds.yaml
    """
    from lastgood.rows import VersionInfo

    if path is not None:
        from lastgood.cli.file_log import print_file_log

        print_file_log(app, path, limit, as_json=as_json)
        return
    if app.server:
        found = app.remote().versions(limit)
    else:
        from lastgood.operations.versions import log as do_log

        found = [v.__dict__ for v in do_log(app.project(), limit=limit)]
    if as_json:
        r.emit_json(found)
        return
    versions = [rebuild(VersionInfo, v) for v in found]
    rows = [
        [v.label, v.short_hash, r.when(v.created_at), v.author, str(v.file_count), v.message]
        for v in versions
    ]
    headers = ["version", "hash", "when", "author", "files", "message"]
    if any(v.git_commit for v in versions):  # a git workspace: which commit each came from
        headers.insert(2, "commit")
        for row, v in zip(rows, versions, strict=True):
            row.insert(2, r.commit(v.git_commit, v.git_dirty))
    r.out(r.table(headers, rows))


REVEAL = click.option(
    "--reveal",
    is_flag=True,
    help="Print secrets as they are stored instead of masked ([secrets]); needs the store "
    "itself, never through a server.",
)


def _refuse_remote_reveal(app: AppContext, reveal: bool) -> None:
    if reveal and app.server:
        raise UsageError(
            "--reveal works on the store only: a server never sends a secret",
            hint="run it where the store is, without --server (and LASTGOOD_SERVER unset)",
        )


@cli.command()
@click.argument("ref")
@click.argument("path", required=False)
@REVEAL
@json_option
@pass_app
def show(app: AppContext, ref: str, path: str | None, reveal: bool, as_json: bool) -> None:
    """Show a version's files, or print one file of it.

    With PATH, the file goes to stdout with nothing added (binary files included), so it can
    be redirected to a file. Secrets are masked ([secrets] in lastgood.toml); --reveal prints
    the exact bytes as stored.

    \b
    Example:
      lastgood show v12 scoring/thresholds.yaml
      lastgood show v12 assets/logo.png > logo.png
      lastgood show v12 integrations/crm.env --reveal > crm.env
    """
    from lastgood.rows import VersionInfo

    _refuse_remote_reveal(app, reveal)
    if app.server:
        found, files = app.remote().show(ref, path)
        version = rebuild(VersionInfo, found)
    else:
        from lastgood.operations.versions import view

        version, files = view(app.project(), ref, path, reveal=reveal)
    if as_json:
        r.emit_json(
            {
                "version": version.__dict__,
                "files": {p: d.decode("utf-8", "replace") for p, d in files.items()},
            }
        )
    elif path is not None:
        r.out_bytes(files[path])  # exact bytes, binary or not: 'show v3 logo.png > logo.png'
    else:
        commit = f" (commit {r.commit(version.git_commit, version.git_dirty, 12)})"
        r.info(
            f"{version.label} {version.short_hash}{commit if version.git_commit else ''} "
            f"by {version.author} at {r.when(version.created_at)}: {version.message}"
        )
        for name, data in sorted(files.items()):
            r.out(f"{len(data):>9}  {r.printable(name)}")


@cli.command()
@click.argument("old", required=False)
@click.argument("new", required=False)
@REVEAL
@json_option
@pass_app
def diff(app: AppContext, old: str | None, new: str | None, reveal: bool, as_json: bool) -> None:
    """Unified diff between versions (default: live on the default environment vs the folder).

    OLD and NEW are version references; NEW defaults to the folder ('workspace'). Secret
    values show as markers that say when they changed; --reveal shows them.

    \b
    Example:
      lastgood diff production:live staging:live
    """
    _refuse_remote_reveal(app, reveal)
    if app.server:
        data = app.remote().diff(*_both_refs(old, new))
    else:
        from lastgood.operations import versions

        project = app.project()
        if old is None and not as_json:
            r.info(versions.default_old(project)[1])
        before, after = versions.sides(project, old, new)
        data = {"old": before.label, "new": after.label, "files": versions.changes(before, after),
                "diff": versions.unified(before, after, reveal=reveal)}  # fmt: skip
    if as_json:
        r.emit_json(data)
    elif data["diff"]:
        r.colour_diff(data["diff"])
    else:
        r.info("no differences")


def _both_refs(old: str | None, new: str | None) -> tuple[str, str]:
    if old is None or new is None:
        raise UsageError(
            "diff through a server needs OLD and NEW: the server compares recorded versions, "
            "not the folder",
            hint="name both, like 'lastgood diff production:live v12'; to compare the folder, "
            "record it first with 'lastgood snapshot'",
        )
    return old, new


def _finish(outcome: Outcome, as_json: bool) -> None:
    click.get_current_context().exit(r.finish(outcome, as_json))


def finish_remote(data: dict[str, Any], as_json: bool) -> None:
    """Print a server's outcome as the local one prints, plus how far the fleet followed."""
    if as_json:
        r.emit_json(data)
    else:
        r.finish(outcome_of(data), as_json=False)
        if data.get("fleet"):
            r.out(data["fleet"]["summary"])
    click.get_current_context().exit(int(data["exit_code"]))


def outcome_of(data: dict[str, Any]) -> Outcome:
    """The :class:`Outcome` a server returned as JSON, to render it with ``render.finish``."""
    from lastgood.outcome import PlanStep
    from lastgood.rows import Deployment

    outcome = rebuild(Outcome, data)
    for name in ("deployment", "restore"):
        if data.get(name):
            setattr(outcome, name, rebuild(Deployment, data[name]))
    outcome.plan = [rebuild(PlanStep, step) for step in data.get("plan") or []]
    return outcome


@cli.command()
@click.argument("env")
@click.option("-m", "--message", default="", help="Why (recorded on the version and deployment).")
@click.option("--version", "ref", metavar="REF", callback=named_version,
              help="Deploy this version instead of the folder.")  # fmt: skip
@click.option(
    "--commit",
    metavar="REF",
    help="Deploy what this git commit holds for the folder (read from git, not the folder).",
)
@click.option("--dry-run", is_flag=True, help="Print the plan; change nothing.")
@click.option("--force", is_flag=True, help="Deploy a version that failed here before.")
@click.option(
    "--ignore-baseline",
    is_flag=True,
    help="Deploy even though the checks already fail against what is live now (recorded).",
)
@click.option(
    "--wait",
    is_flag=True,
    help="Wait for the bake and exit with its verdict. Always so, here and through a server; "
    "accepted so that CI scripts can say it.",
)
@json_option
@pass_app
def deploy(
    app: AppContext,
    env: str,
    message: str,
    ref: str | None,
    commit: str | None,
    dry_run: bool,
    force: bool,
    ignore_baseline: bool,
    wait: bool,
    as_json: bool,
) -> None:
    """Deploy the folder (or --version REF) to ENV: validate, preflight, activate, bake.

    Before switching, one round of ENV's checks runs against what is live now (the baseline):
    when it already fails, nothing is switched and no version is blamed (exit 5) unless
    --ignore-baseline. When the checks fail during the bake, the last known good version is
    restored and verified by itself (exit 3). Exit 4 means the restore could not be verified:
    a person is needed.

    From CI, through a server: exit 0 means live and healthy, 3 that it failed its checks
    and last known good is back (see docs/ci.md).

    \b
    Example:
      lastgood deploy staging -m "new routing rules"
      lastgood deploy production --version staging:last-good
      lastgood deploy staging --commit main
      lastgood --server "$LASTGOOD_SERVER" deploy staging --commit "$GITHUB_SHA" --wait
    """
    del wait  # a deploy always waits for its verdict: the flag only says so
    if commit is not None:
        if ref is not None:
            raise UsageError(
                "--commit and --version exclude each other", hint="--commit X is --version git:X"
            )
        ref = f"git:{commit}"
    if app.server:
        _deploy_remote(
            app, env, message, ref, dry_run=dry_run, force=force,
            ignore_baseline=ignore_baseline, as_json=as_json,
        )  # fmt: skip
        return
    from lastgood.operations import deploy as verbs

    project = app.project()
    if dry_run:
        _finish(verbs.plan_deploy(project, env, ref=ref), as_json)
        return
    if not as_json:
        project.events.subscribe(r.ProgressPrinter())
    outcome = verbs.deploy(
        project, env, message=message, ref=ref, force=force, ignore_baseline=ignore_baseline
    )
    _finish(outcome, as_json)


def upload_folder(app: AppContext, message: str, *, as_json: bool, ref: str | None = None) -> str:
    """Record the folder (or, for ``ref`` ``git:X``, what commit X holds) as a version on the
    server (writes there); its reference, ``vN``. The server has neither the folder nor the
    repository, so what goes live through it is uploaded first. Any other ``ref`` names a
    version the server has: it is returned as it is."""
    from lastgood.refs import GIT

    if ref is not None and not ref.startswith(f"{GIT}:"):
        return ref
    remote = app.remote()
    commit = None if ref is None else ref[len(GIT) + 1 :]
    files, message, git = local_files(app, commit, message)
    uploaded = remote.upload(files, message, git=git)
    number = f"v{uploaded['version']['number']}"
    if not as_json:
        what = "the folder" if ref is None else ref
        done = f"uploaded {what} as" if uploaded["created"] else f"{what} is already"
        r.info(f"{done} {number} on {remote.shown}")
    return number


def _deploy_remote(
    app: AppContext, env: str, message: str, ref: str | None, *, dry_run: bool, force: bool,
    ignore_baseline: bool, as_json: bool,
) -> None:  # fmt: skip
    """Deploy through the server; without --version, upload the folder as a version first."""
    remote = app.remote()
    if ref is None or ref.startswith("git:"):
        if dry_run:
            raise UsageError(
                "a dry run through a server needs --version: uploading the folder records a "
                "version, and a dry run changes nothing",
                hint="run 'lastgood snapshot' (with --server) first, then deploy --version vN "
                "--dry-run",
            )
        ref = upload_folder(app, message, as_json=as_json, ref=ref)
    if not as_json and not dry_run:
        r.info(f"deploying {ref} to {env} through {remote.shown}; it answers after the bake")
    body = {"version": ref, "message": message, "force": force, "dry_run": dry_run}
    if ignore_baseline:
        body["ignore_baseline"] = True
    finish_remote(remote.deploy(env, body), as_json)


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

    When last known good is already live, goes to the good version before it; but when its
    files were edited by hand on the target (drift), rewrites its exact bytes instead and
    withdraws nothing. Never lands on a version that failed on ENV. A pointer switch when the
    target still holds the release.

    \b
    Example:
      lastgood rollback production -m "scores dropped to zero"
    """
    if offline and click.get_current_context().meta.get("lastgood.server"):
        raise UsageError(
            "--offline works on the target directly, not through a server",
            hint="drop --server to switch the target here, or drop --offline",
        )
    if app.server and not offline:  # offline with LASTGOOD_SERVER set: the target, here
        body = {"to": to, "message": reason, "force": force}
        finish_remote(app.remote().rollback(env, body), as_json)
        return
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
    from lastgood.operations.status import EnvStatus

    if app.server:
        found = app.remote().status(env)
    else:
        from lastgood.operations.status import status as do_status

        found = [report.to_json() for report in do_status(app.project(), env)]
    if as_json:
        r.emit_json(found)
        return
    for data in found:
        _print_status(rebuild(EnvStatus, data))


def _label(version: int | None) -> str:
    return "-" if version is None else f"v{version}"


def _restores_text(s: EnvStatus) -> str:
    """The restore figures, labelled as docs/concepts.md defines them; a miss says OVER."""
    budget = format_duration(s.budget)
    verdict = "within" if s.within_budget else "OVER"
    missed = (
        f", {plural(s.unverified_restores, 'restore')} never verified"
        if (s.unverified_restores)
        else ""
    )
    if not s.restores:
        if s.unverified_restores:
            return f"none verified{missed}: OVER budget {budget}"
        return f"none yet (budget {budget})"
    restored = (
        f"restored in p50 {format_duration(s.restore_p50)} (max {format_duration(s.restore_max)})"
    )
    if not s.checked:
        return f"{len(s.restores)}: {restored}; not verified (no checks configured)"
    return (
        f"{len(s.restores)}: {restored}, verified in p50 {format_duration(s.verified_p50)} "
        f"(max {format_duration(s.verified_max)}){missed}; {verdict} budget {budget}"
    )


def _print_status(s: EnvStatus) -> None:
    commit = f", commit {r.commit(s.live_commit, s.live_dirty)}" if s.live_commit else ""
    short = (s.live_hash or "")[:8] or "not kept on this machine"
    live = f"{_label(s.live_version)} ({short}{commit})" if s.live_version else "nothing"
    r.out(f"{s.env}  [{s.target}]")
    if s.live_unknown:
        live = f"unknown (lastgood put {live} there last)"
    if s.unreachable:
        live = f"unknown (the target could not be read: {s.unreachable})"
    r.out(f"  live          {live}{'  DRIFTED' if s.drifted else ''}")
    r.out(f"  last good     {_label(s.last_good)}")
    r.out(f"  health        {s.health}" + (f" at {r.when(s.health_at)}" if s.health_at else ""))
    if s.last_change:
        c = s.last_change
        r.out(
            f"  last change   {c['kind']} {_label(c['from_version'])} → {_label(c['to_version'])}"
            f" {c['status']} by {c['actor']} at {r.when(c['requested_at'])}"
        )
    r.out(f"  restores      {_restores_text(s)}")
    if s.last_drill:
        d = s.last_drill
        r.out(f"  last drill    #{d['id']} {d['status']} {format_duration(d['age'])} ago")
    if s.rollout is not None:
        r.out(f"  rollout       {rollout_line(s.rollout)}")
    if s.fleet is not None:
        r.out(f"  consumers     {s.fleet['summary']}")
    if s.lock:
        r.out(f"  locked        {s.lock}")
    if s.freeze:
        r.out(f"  {freeze_label(s.freeze):<14}{s.freeze['text']}")
    for warning in s.warnings:
        r.out(f"  ! {warning}")


def rollout_line(rollout: dict[str, Any]) -> str:
    """``v3 to 25% of consumers at step 2/3 since …`` with the cohorts, from the JSON of a
    :class:`lastgood.operations.rollout_control.RolloutStatus` (local, or the server's)."""
    pointer = rollout["pointer"]
    stable = _label(pointer["stable_version"])
    text = (
        f"v{pointer['version']} to {pointer['percent']:g}% of consumers at step "
        f"{pointer['step']}/{len(pointer['steps'])} since {r.when(pointer['step_started_at'])} "
        f"(rollout began {r.when(pointer['started_at'])}); the others get {stable}"
    )
    new, old = rollout.get("new"), rollout.get("stable")
    if new and old:
        text += (
            f"; {_label(new['version'])} on {new['following']}/{new['total']} of its cohort, "
            f"{_label(old['version'])} on {old['following']}/{old['total']} of its cohort"
        )
    if rollout.get("orphaned"):
        abort = f"lastgood rollout abort {rollout['env']}"
        text += f"; INTERRUPTED: its deploy is no longer running ('{abort}' ends it)"
    return text


def freeze_label(standing: dict[str, Any]) -> str:
    """``frozen`` (a freeze in force), ``closed`` (outside every change window) or
    ``upcoming`` (either, starting within a day)."""
    if standing["state"] != "active":
        return "upcoming"
    return "frozen" if standing["kind"] == "freeze" else "closed"


@cli.command()
@click.argument("env")
@click.option(
    "-n", "--limit", default=30, show_default=True, type=LIMIT, help="How many ledger records."
)
@json_option
@pass_app
def history(app: AppContext, env: str, limit: int, as_json: bool) -> None:
    """The timeline of ENV: deploys, rollbacks, automatic rollbacks, with timings.

    \b
    Example:
      lastgood history production -n 10
    """
    from lastgood.rows import Deployment

    if app.server:
        data = app.remote().history(env, limit)
    else:
        from lastgood.operations.status import history as do_history

        timeline = do_history(app.project(), env, limit=limit)
        data = {"deployments": [d.to_json() for d in timeline.deployments],
                "events": [e.to_json() for e in timeline.events]}  # fmt: skip
    if as_json:
        r.emit_json(data)
        return
    rows = []
    for d in (rebuild(Deployment, item) for item in data["deployments"]):
        restored = format_duration(d.time_to_active) if d.is_rollback else ""
        verified = format_duration(d.time_to_verified) if d.is_rollback else ""
        rows.append(
            [
                f"#{d.id}",
                r.when(d.requested_at),
                d.kind,
                f"{_label(d.from_version)} → {_label(d.to_version)}",
                d.status,
                restored,
                verified,
                d.actor,
                _shorten(d.reason, 60),
            ]
        )
    headers = ["id", "when", "what", "versions", "outcome", "restored in", "verified in", "who",
               "why"]  # fmt: skip
    r.out(r.table(headers, rows))


def _shorten(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters, with "…" where something was cut."""
    return text if len(text) <= width else text[: width - 1] + "…"


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
    if app.server:
        data = app.remote().check(env)
    else:
        from lastgood.comparison import measured
        from lastgood.operations.status import check_now

        done = check_now(app.project(), env)
        data = {"ok": done.ok, "results": [
            {"name": x.name, "ok": x.ok, "detail": x.detail, "duration": x.duration,
         "value": measured(x.data)}
            for x in done.results]}  # fmt: skip
    if as_json:
        r.emit_json(data)
    else:
        for x in data["results"]:
            mark = "ok  " if x["ok"] else "FAIL"
            r.out(f"{mark} {x['name']:<24} {format_duration(x['duration']):>8}  {x['detail']}")
        if not data["results"]:
            r.out(f"no checks configured for {env}")
    click.get_current_context().exit(0 if data["ok"] else 1)


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
    if app.server:
        body = {"message": reason, "override_protection": override_protection}
        data = app.remote().drill(env, body)
        if as_json:
            r.emit_json(data)
        else:
            r.out(data["summary"])
        click.get_current_context().exit(int(data["exit_code"]))
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
