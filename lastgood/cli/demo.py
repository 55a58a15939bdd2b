"""``lastgood demo``: replay the lead-scoring incident, then show the timeline and restore time.

The story is narrated on stderr as it happens; the timeline and the measured figures are data,
so they go to stdout (as JSON with ``--json``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from lastgood import holder
from lastgood.cli import render as r
from lastgood.cli.app import AppContext
from lastgood.cli.group import cli
from lastgood.units import format_duration

if TYPE_CHECKING:
    from lastgood.demo.runner import DemoResult

pass_app = click.make_pass_decorator(AppContext)


@cli.command()
@click.option("--keep", is_flag=True, help="Keep the temporary folder and print its path.")
@click.option(
    "--json", "as_json", is_flag=True, help="Print the measured figures as JSON to stdout."
)
@click.option("--drill", "rehearse", is_flag=True, help="Then rehearse it: run a drill as well.")
@click.option(
    "--requests", "requests", is_flag=True,
    help="Then review the next change: a change request routed, approved and applied.",
)  # fmt: skip
@pass_app
def demo(app: AppContext, keep: bool, as_json: bool, rehearse: bool, requests: bool) -> None:
    """Replay the lead-scoring incident in a temporary folder, with a real rollback (~10 s).

    A tiny scoring service reads its rules from a directory target. v1 goes live and stays
    healthy; v2 changes one number and every lead scores zero; the SQL check sees it; lastgood
    restores v1 by itself and verifies it. Prints the timeline and the measured time to
    restore. Touches nothing outside the temporary folder, which is removed unless --keep.
    With --drill a sixth step rehearses the same breakage with 'lastgood drill' and shows its
    figures. With --requests the team then requires approval: the next change goes through a
    change request (routed, approved by dana, applied) and a rollback needs nobody. Exit 0
    when the story played out as described, 1 when it did not.

    \b
    Example:
      lastgood demo
      lastgood demo --keep --json
      lastgood demo --drill
      lastgood demo --requests
    """
    from lastgood.demo.runner import run_demo

    result = run_demo(
        keep=keep, author=holder.author(app.author), rehearse=rehearse, requests=requests
    )
    if as_json:
        r.emit_json(result.to_json())
    else:
        r.out(report(result))
    for problem in result.problems:
        r.info(f"demo: the story did not go as expected: {problem}")
    if result.ok:
        r.info(
            "\nTry it on your own configuration folder: 'lastgood init', add a check, then "
            "'lastgood deploy staging'. A preflight that scores sample leads would have stopped "
            "v2 before it went live at all."
        )
    click.get_current_context().exit(result.exit_code)


def report(result: DemoResult) -> str:
    """The timeline (as ``lastgood history`` shows it) and the measured restore times."""
    lines = ["", "Timeline (lastgood history demo):", _timeline(result), ""]
    restore = result.restore
    if restore is not None:
        lines += [
            "From the failed check round that tripped the rollback:",
            f"  v2 caught after    {format_duration(result.detected_after)} live",
            f"  restored in        {format_duration(restore.time_to_active)}  (v1 active again)",
            f"  verified in        {format_duration(restore.time_to_verified)}  (v1 healthy)",
        ]
    codes = ", ".join(str(code) for code in result.exit_codes)
    lines.append(f"Deploy exit codes: {codes} (3: failed its checks, last known good restored)")
    lines.append(f"The whole demo took {format_duration(result.seconds)}.")
    return "\n".join(lines)


def _timeline(result: DemoResult) -> str:
    start = result.deployments[0].requested_at if result.deployments else 0.0
    rows = []
    for d in result.deployments:
        restored = format_duration(d.time_to_active) if d.is_rollback else ""
        verified = format_duration(d.time_to_verified) if d.is_rollback else ""
        versions = f"{_label(d.from_version)} → {_label(d.to_version)}"
        offset = f"+{d.requested_at - start:.1f} s"
        why = d.reason if len(d.reason) <= 60 else d.reason[:59] + "…"
        rows.append([f"#{d.id}", offset, d.kind, versions, d.status, restored, verified, why])
    headers = ["id", "at", "what", "versions", "outcome", "restored in", "verified in", "why"]
    return r.table(headers, rows)


def _label(version: int | None) -> str:
    return "-" if version is None else f"v{version}"
