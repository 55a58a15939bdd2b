"""``log PATH``: the versions that changed a file or folder, each with where it was live.

Apart from the other history tools (:mod:`lastgood.cli.history_cmd`) because plain ``log`` in
:mod:`lastgood.cli.commands` hands over to it: kept free of the command modules, the call runs
one way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lastgood.cli import render as r
from lastgood.errors import UsageError

if TYPE_CHECKING:
    from lastgood.cli.app import AppContext
    from lastgood.operations.file_history import LiveSpan


def print_file_log(app: AppContext, path: str, limit: int, *, as_json: bool) -> None:
    """``log PATH``: the versions that changed PATH, each with where it was live."""
    if app.server:  # plain 'log' works through a server, 'log PATH' does not: say which
        from lastgood.settings import mask_url

        raise UsageError(
            f"'lastgood log PATH' works on a store only, not through a server "
            f"({mask_url(app.server)})",
            hint="drop --server (and unset LASTGOOD_SERVER) to run it where the store is",
        )
    from lastgood.operations.file_history import file_log

    changes = file_log(app.project(), path, limit=limit)
    if as_json:
        r.emit_json([change.to_json() for change in changes])
        return
    headers = ["version", "hash", "commit", "when", "author", "change", "message"]
    rows = [
        [c.version.label, c.version.short_hash, r.commit(c.version.git_commit, c.version.git_dirty),
         r.when(c.version.created_at), c.version.author, c.change,
         c.version.message.partition("\n")[0]]
        for c in changes
    ]  # fmt: skip
    if not any(c.version.git_commit for c in changes):
        headers.pop(2)
        for row in rows:
            row.pop(2)
    lines = r.table(headers, rows).splitlines()
    r.out(lines[0])
    for line, change in zip(lines[1:], changes, strict=True):
        r.out(line)
        width = max((len(span.env) for span in change.live), default=0)
        for span in change.live:
            r.out(f"    {span.env:<{width}}  {_span_text(span)}")
        if not change.live:
            r.out("    never live")


def _span_text(span: LiveSpan) -> str:
    until = "now" if span.until is None else r.when(span.until)
    started = span.started_by
    how = "to" if started.is_rollback else "of"
    text = f"{r.when(span.since)} → {until:<19}  {started.kind} #{started.id} {how} v{span.version}"
    text += f" by {started.actor}" + (
        "" if started.status == "succeeded" else f", {started.status}"
    )
    ended = span.ended_by
    if ended is not None:
        verb, how = ("rolled back by", "to") if ended.is_rollback else ("replaced by", "of")
        text += f"; {verb} {ended.kind} #{ended.id} {how} v{ended.to_version}"
    return text
