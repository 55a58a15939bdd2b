"""``lastgood watch``: the long-running watcher."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from lastgood.cli import render as r
from lastgood.cli.app import AppContext
from lastgood.cli.group import cli
from lastgood.cli.numbers import Digits
from lastgood.events import Event, EventKind
from lastgood.record import as_dict
from lastgood.units import format_duration, parse_duration

if TYPE_CHECKING:
    from lastgood.watch import CycleReport

pass_app = click.make_pass_decorator(AppContext)


@cli.command()
@click.option(
    "--interval", metavar="DURATION", help="Time between cycles (default: [watch] interval)."
)
@click.option("--once", is_flag=True, help="Run one cycle and exit (for cron and checks).")
@click.option("--cycles", type=Digits(1, what="a count"), metavar="N", help="Stop after N cycles.")
@click.option("--wait", is_flag=True, help="Wait for a running watcher to stop, then take over.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON line per cycle to stdout.")
@pass_app
def watch(
    app: AppContext,
    interval: str | None,
    once: bool,
    cycles: int | None,
    wait: bool,
    as_json: bool,
) -> None:
    """Watch every environment: health, drift, documents, scheduled drills and digests.

    Each cycle runs every environment's checks. A failure within the guard window after a deploy
    rolls back to last known good by itself; outside it, on_failure decides (alert or rollback).
    It compares what each target serves with the ledger (on_drift: alert or restore), tracks
    [[watch.document]] entries, runs drills on their drill_schedule and sends the digest. What
    the watcher cannot do (checks that cannot run, a store it cannot reach, a stalled cycle) is
    alerted every alert_every until resolved. One watcher per store; SIGTERM or Ctrl-C ends it
    after the step in progress. Events go to the notification routes and to stderr.

    \b
    Exit codes: 0 stopped cleanly; 1 the watcher lost its lease or hit an error;
    5 another watcher runs on this store (use --wait to stand by).

    \b
    Example:
      lastgood watch
      lastgood watch --once --json
    """
    from lastgood.watch import Watcher

    seconds = parse_duration(interval, name="--interval") if interval else None
    if seconds is not None and seconds <= 0:
        raise click.BadParameter("must be more than 0", param_hint="--interval")
    project = app.project()
    printer = r.ProgressPrinter()

    def print_event(event: Event) -> None:
        if event.kind is EventKind.CHECK_ROUND and event.data.get("phase") == "watch":
            return  # a round every few seconds: failures are printed as check-failed
        printer(event)

    project.events.subscribe(print_event)

    def show(report: CycleReport) -> None:
        if as_json:
            data = as_dict(report)
            data["duration"] = report.duration
            click.echo(json.dumps(data), nl=True)
        elif once or cycles:  # a bounded run is read by a person or a cron mail: say what it saw
            r.out(_cycle_text(report))

    watcher = Watcher(
        project, interval=seconds, cycles=1 if once else cycles, wait=wait, on_cycle=show
    )
    click.get_current_context().exit(watcher.run())


def _cycle_text(report: CycleReport) -> str:
    """One cycle's results as lines: per environment, what each step found."""
    lines = [f"cycle {report.number} ({format_duration(report.duration)})"]
    envs = sorted({*report.health, *report.drift, *report.drills})
    for env in envs:
        steps = ", ".join(
            f"{step} {found[env]}"
            for step, found in (
                ("health", report.health), ("drift", report.drift), ("drills", report.drills)
            )
            if env in found
        )  # fmt: skip
        lines.append(f"  {env}: {steps}")
    lines.extend(f"  document {name}: {found}" for name, found in sorted(report.documents.items()))
    for label, what in sorted(report.requests.items()):
        lines.append(f"  request {label}: {what}")
    if report.digest:
        lines.append(f"  digest: {report.digest}")
    lines.extend(f"  ! {problem}" for problem in report.problems)
    return "\n".join(lines)
