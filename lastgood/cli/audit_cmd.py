"""``lastgood audit verify|export``: prove the audit chain whole, or hand it on as JSON lines."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from lastgood.cli import render as r
from lastgood.cli.app import AppContext
from lastgood.cli.commands import json_option, pass_app
from lastgood.cli.group import cli
from lastgood.cli.numbers import Digits
from lastgood.errors import UsageError
from lastgood.refs import LARGEST_SEQ

if TYPE_CHECKING:
    from lastgood.operations.audit import AuditReport

EXIT_BROKEN = 4
"""``audit verify`` found a broken link: a person is needed (as for a damaged store)."""


@cli.group()
def audit() -> None:
    """Check the tamper-evident audit chain, or export it.

    Every ledger record, change request, request entry (approvals), token change and override
    is chained in the store, each link hashing the one before. See docs/audit.md.

    \b
    Example:
      lastgood audit verify
      lastgood audit export -o audit-2025-06.jsonl
    """


@audit.command()
@click.option("--head", "head_files", multiple=True, metavar="FILE",
              type=click.Path(dir_okay=False, path_type=Path),
              help="An earlier export (or a target's meta/audit-head.json) the chain must still "
                   "agree with; repeatable.")  # fmt: skip
@json_option
@pass_app
def verify(app: AppContext, head_files: tuple[Path, ...], as_json: bool) -> None:
    """Rehash the audit chain and hold the tables against it; name what is broken.

    A link is broken when a row was edited, deleted (missing) or moved (out of order). The
    chain is also held against the newest heads kept outside the table, on every environment's
    target and in each --head FILE: a head past the table's end means its tail was truncated,
    a head the table disagrees with means it was rewritten. Every row of the chained tables
    (ledger records, requests, their entries, tokens, override events) is held against the
    newest link that records it: a row not in the audit chain, changed after it was chained
    or deleted after it was chained is named with its table and key. Exit 0 when the chain is
    sound and every row agrees with it, 4 otherwise.

    \b
    Example:
      lastgood audit verify --head audit-2025-06.jsonl
    """
    from lastgood.operations.audit import verify_audit

    report = verify_audit(app.project(), head_files=head_files)
    if as_json:
        r.emit_json(report.to_json())
    else:
        _print_report(report)
    click.get_current_context().exit(0 if report.sound else EXIT_BROKEN)


def _print_report(report: AuditReport) -> None:
    """The verdict and each broken link and disagreeing row to stdout; hints and notes to
    stderr."""
    first = report.first_break
    if first is None:
        newest = "empty" if report.head is None else f"head seq {report.head.seq}"
        r.out(f"audit chain is sound: {report.entries} entries, {newest}, "
              f"agreeing with {len(report.witnesses)} head(s) kept outside the store")  # fmt: skip
    else:
        r.out(f"audit chain broken at seq {first.seq}: {first.problem}: {first.detail}")
        for problem in report.problems[1:]:
            r.info(f"also at seq {problem.seq}: {problem.problem}: {problem.detail}")
    disagreeing = len(report.rows) + report.rows_unshown
    if disagreeing:
        r.out(f"{disagreeing} of {report.rows_checked} rows of the chained tables disagree "
              "with the audit chain:")  # fmt: skip
        for row in report.rows:
            r.out(f"  {row.describe()}")
        if report.rows_unshown:
            r.out(f"  … and {report.rows_unshown} more")
    else:
        r.out(f"{report.rows_checked} rows of the chained tables agree with the audit chain")
    if not report.sound:
        r.info("hint: restore the store from a backup and compare; docs/audit.md says what "
               "each problem means")  # fmt: skip
    for note in report.notes:
        r.info(f"note: {note}")


@audit.command()
@click.option("--since", type=Digits(1, LARGEST_SEQ, what="a link number"), default=1,
              metavar="SEQ", help="Start at this seq (default: the first).")  # fmt: skip
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Write to FILE (replaced whole when done) instead of stdout.")  # fmt: skip
@pass_app
def export(app: AppContext, since: int, output: Path | None) -> None:
    """Write the audit chain as JSON lines, the chain's head last.

    One link per line, oldest first (seq, at, kind, subject, actor, data, hash), then
    {"head": {"hash": …, "seq": …}}. Keep exports somewhere the store's users cannot write:
    'lastgood audit verify --head FILE' later proves the chain still holds every exported link.

    \b
    Example:
      lastgood audit export --since 1200 -o audit.jsonl
    """
    from lastgood.operations.audit import export_audit

    project = app.project()
    if output is None:
        exported = export_audit(project, sys.stdout, since=since)
    else:
        partial = output.with_name(f".{output.name}.partial-{os.getpid()}")
        try:
            with partial.open("w", encoding="utf-8") as out:
                exported = export_audit(project, out, since=since)
            partial.replace(output)
        except OSError as exc:
            raise UsageError(f"cannot write {output}: {exc.strerror or exc}",
                             hint="give -o a file in a folder you can write") from exc  # fmt: skip
        finally:
            partial.unlink(missing_ok=True)
    head = "an empty chain" if exported.head is None else f"head seq {exported.head.seq}"
    r.info(f"exported {exported.entries} audit entries ({head})")
