"""``lastgood bisect``: find the first bad version, by binary search."""

from __future__ import annotations

import click

from lastgood.cli import render as r
from lastgood.cli.app import AppContext
from lastgood.cli.commands import json_option, pass_app
from lastgood.cli.group import cli
from lastgood.units import parse_duration, plural


@cli.command()
@click.argument("env")
@click.option("--good", required=True, metavar="REF", help="A version known to be good.")
@click.option("--bad", required=True, metavar="REF", help="A later version known to be bad.")
@click.option(
    "--live",
    is_flag=True,
    help="Deploy each candidate with ENV's checks, then put back what was live (not on "
    "protected environments or ones that need approval).",
)
@click.option(
    "--run",
    "command",
    metavar="CMD",
    help="Judge by this command: exit 0 good, 125 skip, 1-127 bad (LASTGOOD_PATH: the files).",
)
@click.option(
    "--timeout", default="5m", show_default=True, help="How long --run may take per candidate."
)
@json_option
@pass_app
def bisect(
    app: AppContext,
    env: str,
    good: str,
    bad: str,
    live: bool,
    command: str | None,
    timeout: str,
    as_json: bool,
) -> None:
    """Find the first bad version between --good and --bad, by binary search.

    By default ENV's preflight checks judge each candidate's files in a temporary folder:
    nothing live changes. --run CMD judges by a command instead, like 'git bisect run'.
    --live deploys each candidate with ENV's checks and puts back what was live at the end,
    whatever happens (Ctrl-C included). Prints the first bad version, its author, commit and
    the diff that broke it; the answer is recorded as a bisect-finished event.

    \b
    Example:
      lastgood bisect staging --good v40 --bad v52
      lastgood bisect staging --good git:v2.3 --bad live --run './score-sample.sh'
      lastgood bisect staging --good v40 --bad v52 --live
    """
    from lastgood.operations.bisect import Judgement
    from lastgood.operations.bisect import bisect as do_bisect

    seconds = parse_duration(timeout, name="--timeout")

    def heard(judged: Judgement, left: int) -> None:
        r.info(f"v{judged.version}: {judged.verdict} ({judged.detail}); {left} left to look at")

    result = do_bisect(
        app.project(), env, good=good, bad=bad, live=live, run=command, timeout=seconds,
        on_round=None if as_json else heard,
    )  # fmt: skip
    if as_json:
        r.emit_json(result.to_json())
        return
    first = result.first_bad
    assert first is not None
    commit = (
        f", commit {r.commit(first.git_commit, first.git_dirty, 12)}" if first.git_commit else ""
    )
    r.out(f"{first.label} is the first bad version (after v{result.last_good})")
    if result.undecided:
        skipped = ", ".join(f"v{n}" for n in result.undecided)
        r.out(f"  or one of {skipped}: skipped, so they could not be judged")
    r.out(f"  by {first.author} at {r.when(first.created_at)}{commit}")
    r.out(f"  {first.message}")
    what = "commit" if result.over == "commits" else "version"
    how = {"preflight": "the preflight checks", "run": "--run", "live": "live deploys"}
    r.out(
        f"  {plural(len(result.rounds), 'round')} over the {plural(result.candidates, what)} "
        f"between, judged by {how[result.mode]}"
    )
    if result.restored:
        r.out(f"  put back: {result.restored} is live again")
    if result.diff:
        r.out("")
        r.colour_diff(result.diff)
