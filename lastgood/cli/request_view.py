"""How ``lastgood request`` prints a change request, the same whether it was read from the
store or from a server.

A server answers with the shape of ``--json`` (``RequestView.to_json``), which :func:`view_of`
rebuilds into a :class:`RequestView`; :func:`print_view` then prints it as a local one, and exits
as the apply the step started did, when it started one.
"""

from __future__ import annotations

import json
from typing import Any

import click

from lastgood.cli import render as r
from lastgood.cli.commands import freeze_label
from lastgood.operations.requests import SHOWN_HASH, RequestView
from lastgood.units import plural


def view_of(data: dict[str, Any]) -> RequestView:
    """The :class:`RequestView` a server answered as JSON (``RequestView.to_json``), to print
    it with the same code as a local one."""
    from lastgood.approval import Routing, Tally
    from lastgood.cli.commands import rebuild
    from lastgood.rows import ChangeRequest, RequestEntry

    request = rebuild(ChangeRequest, {**data, "routing": json.dumps(data["routing"])})
    tally = Tally(
        approved=not data["missing"] and not data["rejected_by"],
        rejected_by=tuple(data["rejected_by"]),
        approved_by=tuple(data["approved_by"]),
        missing=tuple(data["missing"]),
        dismissed=int(data["dismissed"]),
    )
    entries = tuple(rebuild(RequestEntry, entry) for entry in data["timeline"])
    return RequestView(request, entries, Routing.from_json(data["routing"]), tally,
                       data["changes"], moved=data["state"] == "stale" and data["status"] == "open",
                       freeze=data.get("freeze"), notice=str(data.get("notice", "")),
                       exit_code=data.get("exit_code"))  # fmt: skip


def print_remote(data: dict[str, Any], as_json: bool, *, opened: bool = False) -> None:
    """A server's answer: as it came with --json, as a local view prints otherwise; then exit
    as the apply the step started did, if it started one."""
    if as_json:
        r.emit_json(data)
        _exit_as_applied(data.get("exit_code"))
    else:
        print_view(view_of(data), as_json=False, opened=opened)


def print_view(view: RequestView, as_json: bool, *, opened: bool = False) -> None:
    """Print ``view``, then exit as the apply its step started did (a failed apply on
    approval exits 3 or 4, as 'request apply' would), if it started one."""
    if as_json:
        r.emit_json(view.to_json())
    else:
        _print_text(view, opened=opened)
    _exit_as_applied(view.exit_code)


def _exit_as_applied(code: Any) -> None:
    if isinstance(code, int) and code:
        click.get_current_context().exit(code)


def _print_text(view: RequestView, *, opened: bool) -> None:
    request = view.request
    if view.notice:
        r.info(view.notice)
    if opened:
        kind = "EMERGENCY change" if request.emergency else "change request"
        r.info(f"opened {kind} {request.label} for {request.env}")
    r.out("\n".join([*_facts(view), *_review(view), *_timeline(view)]))
    if view.exit_code and request.status == "failed":
        r.info(f"{request.label} was applied and failed: {request.detail}")
    if view.state == "approved" and request.status == "open":
        held = view.freeze is not None and view.freeze["state"] == "active"
        once = f", once {request.env} is open to changes again" if held else ""
        r.info(f"next: lastgood request apply {request.number}{once}")


def _facts(view: RequestView) -> list[str]:
    """What the request proposes, where it stands, who asked and how risky it is."""
    request = view.request
    return [
        f"request   {request.label}  {request.env}  v{request.version} (based on {_base(view)})",
        f"content   {request.content_hash[:SHOWN_HASH]}",
        f"state     {view.state}" + (f" ({view.detail})" if view.detail else ""),
        f"by        {request.requester}, {r.when(request.created_at)}: {request.reason}",
        f"risk      {request.risk} ({plural(view.routing.files, 'file')}, "
        f"{plural(view.routing.lines, 'line')})",
    ]


def _review(view: RequestView) -> list[str]:
    """The rules that matched, the approvals so far and what still holds the request back."""
    request, tally = view.request, view.tally
    lines = []
    if view.routing.standard:
        lines.append(f"routing   standard change: rule {view.routing.standard}, no approval")
    lines.extend(f"needs     {need.describe()}" for need in view.routing.requirements)
    if tally.approved_by:
        lines.append(f"approved  {', '.join(tally.approved_by)}")
    if tally.rejected_by:
        lines.append(f"rejected  {', '.join(tally.rejected_by)}")
    if tally.missing and request.status == "open":
        lines.append(f"missing   {'; '.join(tally.missing)}")
    if tally.dismissed:
        dismissed = plural(tally.dismissed, "approval")
        lines.append(f"dismissed {dismissed} of other content (they no longer count)")
    if request.apply_at:
        lines.append(f"applies   at {r.when(request.apply_at)}")
    if view.freeze:
        lines.append(f"{freeze_label(view.freeze):<9} {request.env}: {view.freeze['text']}")
    if request.emergency:
        review = "open: someone other than the requester signs it off" if view.review_open else (
            "signed off"
        )  # fmt: skip
        lines.append(f"emergency review {review}")
    return lines


def _timeline(view: RequestView) -> list[str]:
    """What the request changes, and every step taken on it."""
    changed = ", ".join(f"{len(paths)} {kind}" for kind, paths in view.changes.items() if paths)
    lines = [f"changes   {changed or 'none'}", "timeline"]
    width = max([9, *(len(entry.action) for entry in view.entries)])  # one column for actors
    for entry in view.entries:
        said = f": {entry.comment}" if entry.comment else ""
        lines.append(f"  {r.when(entry.at)}  {entry.action:<{width}} {entry.actor}{said}")
    return lines


def _base(view: RequestView) -> str:
    base = view.request.base_version
    return f"v{base}" if base is not None else "nothing live"
