"""``lastgood store verify|copy`` and ``lastgood prune``: looking after the store."""

from __future__ import annotations

import sys

import click

from lastgood.cli import render as r
from lastgood.cli.app import AppContext
from lastgood.cli.commands import json_option, pass_app
from lastgood.cli.group import cli
from lastgood.cli.numbers import Digits
from lastgood.errors import UsageError
from lastgood.units import parse_duration

EXIT_DAMAGED = 4
"""``store verify`` found damage: a person is needed (the same code as a restore that could not
be verified)."""


@cli.group()
def store() -> None:
    """Check the store, or move it to another database.

    \b
    Example:
      lastgood store verify
      lastgood store copy --to postgresql://lastgood@db.internal/lastgood
    """


@store.command()
@json_option
@pass_app
def verify(app: AppContext, as_json: bool) -> None:
    """Check every blob, tree, version and document in the store; name what is damaged.

    Every stored file's bytes must hash to their name, every tree must rebuild and hash right,
    every version's content hash must recompute from its trees, and every version an
    environment has live or as last known good must be there. Exit 0 when all is well, 4 when
    anything is damaged (a person is needed: restore the store from a backup; meanwhile
    'lastgood rollback ENV --offline' works without it).

    \b
    Example:
      lastgood store verify --json
    """
    from lastgood.operations.maintenance import verify as verify_store

    report = verify_store(app.project())
    if as_json:
        r.emit_json({
            "healthy": report.healthy, "blobs": report.blobs, "trees": report.trees,
            "versions": report.versions, "documents": report.documents,
            "damage": [{"kind": d.kind, "name": d.name, "problem": d.problem}
                       for d in report.damage],
        })  # fmt: skip
    else:
        checked = (f"{report.versions} versions, {report.trees} trees, {report.blobs} blobs, "
                   f"{report.documents} document versions")  # fmt: skip
        if report.healthy:
            r.out(f"store is sound: checked {checked}")
        else:
            rows = [[d.kind, d.name, d.problem] for d in report.damage]
            r.out(r.table(["damaged", "which", "problem"], rows))
            r.info(f"{len(report.damage)} damaged, checked {checked}")
            r.info("hint: restore the store from a backup; meanwhile "
                   "'lastgood rollback ENV --offline' works without it")  # fmt: skip
    click.get_current_context().exit(0 if report.healthy else EXIT_DAMAGED)


@store.command("copy")
@click.option("--to", "destination", required=True, metavar="URL",
              help="The empty database to copy into (an SQLAlchemy URL).")  # fmt: skip
@json_option
@pass_app
def copy_command(app: AppContext, destination: str, as_json: bool) -> None:
    """Copy the whole store into an empty database, then check the copy.

    Versions, the ledger, events, documents, tokens, sessions, consumers: everything. The copy
    is one moment of the store (on SQLite, commands wait while it runs) and one transaction on
    the destination, so an interrupted copy leaves the destination empty. A destination that
    holds anything is refused. Then point lastgood at it: store = "URL" in lastgood.toml, or
    LASTGOOD_STORE.

    \b
    Example:
      lastgood store copy --to postgresql://lastgood@db.internal/lastgood
    """
    from lastgood.operations.maintenance import copy

    result = copy(app.project(), destination)
    if as_json:
        r.emit_json(result.to_json())
        return
    rows = [[table, str(count)] for table, count in result.rows.items() if count]
    r.out(r.table(["table", "rows"], rows))
    r.info(f"copied {result.source} to {result.destination} and verified "
           f"{result.integrity.versions} versions")  # fmt: skip
    secret = (
        "" if destination.startswith("sqlite") else " (with its password, or set LASTGOOD_STORE)"
    )
    r.info(f'next: set store = "{result.destination}" in lastgood.toml{secret}')


@cli.command()
@click.option("--keep", type=Digits(0, 2**31 - 1, what="a count"), metavar="N",
              help="The newest N versions stay.")  # fmt: skip
@click.option("--older-than", "older_than", metavar="AGE",
              help="Only versions created longer ago than AGE (30d, 12h) may go.")  # fmt: skip
@click.option("--dry-run", is_flag=True, help="Show what would go; change nothing.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
@pass_app
def prune(
    app: AppContext,
    keep: int | None,
    older_than: str | None,
    dry_run: bool,
    yes: bool,
    as_json: bool,
) -> None:
    """Drop old versions and free the space only they used.

    A version goes when it is outside the newest --keep and older than --older-than (both
    rules, when both are given). Never dropped: a version live or last known good in any
    environment, one retained on any target (a rollback's way back), one being deployed, and
    the newest. The ledger keeps its records of dropped versions; 'lastgood show' says they
    are gone.

    \b
    Example:
      lastgood prune --keep 500 --older-than 90d --dry-run
      lastgood prune --keep 500 --older-than 90d --yes
    """
    from lastgood.operations.maintenance import prune as prune_versions

    age = None if older_than is None else _age(older_than)
    project = app.project()
    plan = None
    if not dry_run and not yes:
        plan = prune_versions(project, keep=keep, older_than=age, dry_run=True)
        if not plan.pruned.versions:
            dry_run = True  # nothing to ask about
        elif not sys.stdin.isatty():
            raise UsageError(
                f"prune would drop {_versions(len(plan.pruned.versions))}: add --yes to go ahead",
                hint="'lastgood prune … --dry-run' lists them",
            )
        elif not click.confirm(f"drop {_versions(len(plan.pruned.versions))}?", err=True):
            r.info("nothing pruned")
            return
    agreed = None if plan is None or dry_run else plan.pruned.versions  # what they were shown
    result = prune_versions(project, keep=keep, older_than=age, dry_run=dry_run, only=agreed)
    if as_json:
        r.emit_json(result.to_json())
        return
    versions = result.pruned.versions
    if not versions:
        r.out("nothing to prune: no version is both old enough to go and unprotected")
    else:
        shown = ", ".join(f"v{n}" for n in versions[:10]) + (" …" if len(versions) > 10 else "")
        r.out(f"{'would drop' if dry_run else 'dropped'} {_versions(len(versions))}: {shown}; "
              f"{result.pruned.trees} trees and {result.pruned.blobs} blobs, "
              f"{_size(result.pruned.freed_bytes)}")  # fmt: skip
    for number, why in sorted(result.kept.items()):
        r.info(f"kept v{number}: {why}")


def _age(text: str) -> float:
    """An age with its unit: on a command that deletes, a bare ``90`` (seconds? days?) is
    refused rather than guessed."""
    if not text.strip() or text.strip()[-1].isdigit():
        raise UsageError(
            f"--older-than {text!r} needs a unit",
            hint="write the age with a unit: 90d, 12h, 30m",
        )
    seconds = parse_duration(text, name="--older-than")
    if seconds <= 0:
        raise UsageError(f"--older-than {text!r} must be longer than zero", hint="e.g. 90d")
    return seconds


def _versions(count: int) -> str:
    return f"{count} version" if count == 1 else f"{count} versions"


def _size(count: int) -> str:
    if count < 1024:
        return f"{count} B"
    if count < 1024 * 1024:
        return f"{count / 1024:.1f} KB"
    return f"{count / 1024 / 1024:.1f} MB"
