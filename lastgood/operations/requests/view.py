"""How a change request is seen (:class:`RequestView`), and the helpers every step shares:
who may take a step from where, plain text, the events a step sends.
"""

from __future__ import annotations

import difflib
import time
from typing import Any

from lastgood.approval import (
    OPTIONAL_REVIEW,
    ApprovalPolicy,
    Change,
    Routing,
    Tally,
    emergency_tally,
    latest_votes,
    route,
    tally,
)
from lastgood.errors import LastgoodError, RequestError, UsageError
from lastgood.events import Event, EventKind
from lastgood.operations.commits import version_to_change
from lastgood.operations.place import Place
from lastgood.operations.snapshot import read_workspace, snapshot
from lastgood.operations.status import change_standing
from lastgood.operations.versions import Side, changes, unified
from lastgood.project import Project
from lastgood.record import Record
from lastgood.rows import (
    REQUEST_OPEN,
    REQUEST_STALE,
    ChangeRequest,
    RequestEntry,
    VersionInfo,
)
from lastgood.validate import validate_bundle

SIGNED_OFF = "signed-off"
REMINDED = "reminded"
PROVEN = ("server", "web")
"""Where a step comes through a token that proves who takes it: the API and the web page."""


class RequestView(Record):
    """A request as people see it: the row, its timeline, its routing and where its review
    stands for the content it holds now."""

    request: ChangeRequest
    entries: tuple[RequestEntry, ...]
    routing: Routing
    tally: Tally
    changes: dict[str, list[str]]
    moved: bool = False
    """The environment serves something else than the request's base now: it is stale (the
    store says so too once an apply finds it), whatever its approvals."""
    freeze: dict[str, Any] | None = None
    """A freeze (or the end of a change window) in force on the request's environment now, or
    one starting within a day, as ``status`` says it (:func:`change_standing`); None when
    there is neither."""
    notice: str = ""
    """What the step that answered with this view did not do, and why (an approval given
    again: nothing recorded); empty otherwise."""
    exit_code: int | None = None
    """The exit code of the apply the step that answered with this view started itself (an
    approval on an environment that applies on approval, an emergency, a change that needed
    nobody): 0 applied and healthy, 3 or 4 failed as ``deploy`` exits, 5 refused (a freeze);
    None when the step started no apply."""

    @property
    def state(self) -> str:
        """``waiting``, ``approved`` or ``rejected`` while open (``stale`` when its environment
        moved on); otherwise the stored status."""
        if self.request.status == REQUEST_OPEN:
            return REQUEST_STALE if self.moved else self.tally.state
        return self.request.status

    @property
    def detail(self) -> str:
        """Why the request stands where it does: what its environment serves when that made it
        stale (not what an earlier step left, such as a freeze that held an apply and has
        ended since); otherwise what its last step recorded."""
        request = self.request
        if request.status == REQUEST_OPEN and self.moved:
            return f"{request.env} no longer serves {base_label(request)} it was based on"
        return request.detail

    @property
    def review_open(self) -> bool:
        """An emergency's review: open until someone other than the requester signs it off."""
        return self.request.emergency and not any(
            entry.action == SIGNED_OFF and entry.actor != self.request.requester
            for entry in self.entries
        )

    @property
    def summary(self) -> str:
        request = self.request
        kind = "emergency change" if request.emergency else "change request"
        head = f"{kind} {request.label} for {request.env}: v{request.version}"
        if self.state == "waiting":
            return f"{head}, waiting for {'; '.join(self.tally.missing)}"
        if self.state == "approved":
            how = (
                f"standard change ({self.routing.standard})"
                if self.routing.standard
                else (
                    "approved by " + ", ".join(self.tally.approved_by)
                    if self.tally.approved_by
                    else "needs no approval"
                )
            )
            return f"{head}, {how}: ready to apply"
        if self.state == "rejected":
            return f"{head}, rejected by {', '.join(self.tally.rejected_by)}"
        review = ", review open" if self.review_open else ""
        return f"{head}, {self.state}{review}" + (f": {self.detail}" if self.detail else "")

    def to_json(self) -> dict[str, Any]:
        return {
            **self.request.to_json(),
            "detail": self.detail,
            "state": self.state,
            "review_open": self.review_open,
            "summary": self.summary,
            "approved_by": list(self.tally.approved_by),
            "rejected_by": list(self.tally.rejected_by),
            "missing": list(self.tally.missing),
            "dismissed": self.tally.dismissed,
            "changes": self.changes,
            "timeline": [entry.to_json() for entry in self.entries],
            "freeze": self.freeze,
            **({"notice": self.notice} if self.notice else {}),
            **({"exit_code": self.exit_code} if self.exit_code is not None else {}),
        }


MAX_TEXT = 2000
"""Characters in a reason or comment (the API's limit too): enough for a paragraph."""


def refuse_unproven(policy: ApprovalPolicy, env: str, via: str, what: str, how: str) -> None:
    """Where approvals must come through the server, refuse them — and requests, updates and
    emergencies, whose requester the approvals are checked against — from anywhere else:
    only a server's API token proves who someone is."""
    if policy.approve_via == "server" and via not in PROVEN:
        raise RequestError(
            f"{what} for {env} count only through the server, where a token proves who gives them",
            hint=f"lastgood --server URL {how} (with your own token), or the web page",
        )


BIDI_CONTROLS = frozenset(map(chr, [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]))
"""Embeddings, overrides and isolates: they reorder the text around them on screen, so a reason
could read to an approver otherwise than it is stored."""


def plain_text(what: str, text: str) -> None:
    """Refuse (a usage error: the input is wrong) text that would be shown to approvers with
    control characters — escape sequences, carriage returns that overwrite a line, bidi
    overrides that reorder what they read — or that runs to pages."""
    if len(text) > MAX_TEXT:
        raise UsageError(
            f"{what} is {len(text)} characters long; at most {MAX_TEXT} are kept",
            hint="say it in a paragraph and link to the rest",
        )
    for position, character in enumerate(text, 1):
        if _control(character):
            raise UsageError(
                f"{what} holds a control character (U+{ord(character):04X}, character "
                f"{position}), which would reach approvers' screens as it is",
                hint="write plain text (new lines and tabs are fine)",
            )


def _control(character: str) -> bool:
    code = ord(character)
    return (
        (code < 32 and character not in "\n\t") or 127 <= code < 160
        or character in BIDI_CONTROLS
    )  # fmt: skip


def refuse_past(what: str, at: float) -> None:
    """Refuse a schedule in the past (it would apply at once and expire counted from then) or
    beyond what the API takes."""
    if at < time.time() - 60:
        raise RequestError(
            f"{what} is in the past", hint="give a time to come, or apply it now once approved"
        )
    if at > 1e11:
        raise RequestError(f"{what} is too far in the future", hint="give a time within years")


def moved_on(request: ChangeRequest, expected: tuple[str, ...]) -> None:
    """Refuse when another process moved ``request`` first (the conditional write did not
    happen): say where it stands now."""
    if request.status not in expected:
        detail = f": {request.detail}" if request.detail else ""
        raise RequestError(
            f"{request.label} was {request.status} meanwhile{detail}",
            hint=f"'lastgood request show {request.number}' shows its timeline",
        )


def policy_of(place: Place) -> ApprovalPolicy:
    return place.settings.approval or OPTIONAL_REVIEW


def proposed_version(place: Place, ref: str | None, reason: str) -> VersionInfo:
    """The version a request proposes: ``ref``, or the folder recorded as a version now."""
    project = place.project
    if ref is not None:
        version = version_to_change(project, ref, env=place.name)
        validate_bundle(place.store.files(version.number), project.config.schemas, project.root)
        return version
    bundle = read_workspace(project)
    validate_bundle(bundle.files, project.config.schemas, project.root)
    return snapshot(project, reason, source="request", bundle=bundle).version


def live_version(place: Place) -> VersionInfo | None:
    live = place.target.live()
    return place.store.version(live.version) if live is not None else None


def hash_of(version: VersionInfo | None) -> str:
    return version.content_hash if version is not None else ""


def version_label(version: VersionInfo | None) -> str:
    return version.label if version is not None else "nothing"


def base_label(request: ChangeRequest) -> str:
    return f"v{request.base_version}" if request.base_version is not None else "nothing"


def route_change(
    place: Place, version: VersionInfo, base: VersionInfo | None
) -> tuple[Routing, dict[str, list[str]]]:
    store = place.store
    before = Side(version_label(base), store.files(base.number) if base else {})
    after = Side(version.label, store.files(version.number))
    changed = changes(before, after)
    text = unified(before, after, reveal=True)  # counted here, never shown
    lines = sum(
        1 for line in text.splitlines()
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    )  # fmt: skip
    paths = tuple(sorted({p for group in changed.values() for p in group}))
    change = Change(paths=paths, lines=lines, removed=len(changed["removed"]))
    return route(policy_of(place), change), changed


def build_view(
    place: Place, request: ChangeRequest, changed: dict[str, list[str]] | None = None
) -> RequestView:
    entries = place.store.request_entries(request.number)
    routing = Routing.from_json(request.routing_data)
    votes, dismissed = latest_votes(
        entries, content_hash=request.content_hash, base_hash=request.base_hash
    )
    policy, groups = policy_of(place), place.project.config.groups
    if request.emergency:
        counted = emergency_tally(routing, groups, votes, requester=request.requester,
                                  needed=policy.emergency_approvals)  # fmt: skip
    else:
        counted = tally(routing, groups, votes, requester=request.requester,
                        self_approval=policy.self_approval, dismissed=dismissed)  # fmt: skip
    if changed is None:
        store = place.store
        before = store.files(request.base_version) if request.base_version is not None else {}
        changed = changes(Side("", before), Side("", store.files(request.version)))
    served = served_hash(place) if request.status == REQUEST_OPEN else request.base_hash
    moved = served not in (request.base_hash, request.content_hash)  # its content: live already
    freeze = change_standing(place.settings.calendar, time.time())
    return RequestView(request, tuple(entries), routing, counted, changed, moved, freeze)


def served_hash(place: Place) -> str:
    """The content hash of what the environment serves ("" for nothing, or when the target
    cannot say: a view is never refused for that)."""
    try:
        return hash_of(live_version(place))
    except LastgoodError:
        return ""


def entry_of(
    project: Project, action: str, content_hash: str, base_hash: str, comment: str, via: str
) -> dict[str, Any]:
    return {"actor": project.actor, "action": action, "content_hash": content_hash,
            "base_hash": base_hash, "comment": comment, "via": via}  # fmt: skip


def announce_moved(
    place: Place, request: ChangeRequest, status: str, kind: EventKind, message: str
) -> RequestView:
    """The view of ``request`` as a conditional write moved it to ``status``, announced as
    ``kind`` with ``message`` (emits); RequestError when another process moved it first."""
    moved_on(request, (status,))
    view = build_view(place, request)
    announce(place, kind, view, message)
    return view


def announce(place: Place, kind: EventKind, view: RequestView, message: str) -> None:
    """Send ``kind`` about the request (emits): who, its state and review, and what it
    changes — base and version, and each changed file with the lines it adds and removes, so
    an approver reading the message sees what they are asked to approve (never a value: the
    diff itself stays on ``request show`` and the page, where secrets are masked)."""
    request = view.request
    place.emit(
        Event(
            kind,
            message,
            env=request.env,
            version=request.version,
            data={
                "request": request.number,
                "state": view.state,
                "requester": request.requester,
                "risk": request.risk,
                "missing": list(view.tally.missing),
                "approved_by": list(view.tally.approved_by),
                "from": request.base_version,
                "to": request.version,
                "files_changed": changed_files(place, request),
            },
            key=f"{kind.value}:{request.number}:{len(view.entries)}",
        )
    )


def changed_files(place: Place, request: ChangeRequest) -> list[dict[str, Any]]:
    """Each file the request changes against its base: path, ``added``, ``modified`` or
    ``removed``, and the lines it adds and removes (text files only; counts, no content)."""
    store = place.store
    before = store.files(request.base_version) if request.base_version is not None else {}
    after = store.files(request.version)
    rows: list[dict[str, Any]] = []
    for path in sorted(set(before) | set(after)):
        old, new = before.get(path), after.get(path)
        if old == new:
            continue
        change = "added" if old is None else "removed" if new is None else "modified"
        rows.append({"path": path, "change": change, **_line_counts(old or b"", new or b"")})
    return rows


def _line_counts(old: bytes, new: bytes) -> dict[str, int]:
    """``{"added": N, "removed": M}`` lines from ``old`` to ``new``; nothing for binary files."""
    try:
        old_lines, new_lines = old.decode().splitlines(), new.decode().splitlines()
    except UnicodeDecodeError:
        return {}
    added = removed = 0
    matcher = difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False)
    for tag, start, end, new_start, new_end in matcher.get_opcodes():
        if tag != "equal":
            removed += end - start
            added += new_end - new_start
    return {"added": added, "removed": removed}
