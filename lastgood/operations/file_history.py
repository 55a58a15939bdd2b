"""``log PATH``: the versions that changed one file (or folder), and where each went live.

A version changed PATH when what it holds there differs from the version before it: added,
changed or removed. The store answers that without reading any file: versions share trees, so
the entry at PATH (a file's blob hash, a folder's tree hash) is found by reading only the trees
on the way to it, each distinct one once (``VersionStore.path_history``).

Where and when: a change is live in an environment while the ledger says a version holding it
was active there, from the record that put it live (its ``activated_at``) to the next record
that put something else there. A later version that left PATH alone carries the same change, so
the span goes on through it; a rollback to a version from before the change ends it. Drill
variants (source ``drill``) are rehearsals, never the history of the folder: they are not
changes, and a drill's broken file ends a span, which its automatic rollback then resumes.

Reads only.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from lastgood.errors import NotFoundError, UsageError
from lastgood.project import Project
from lastgood.record import Record, as_dict, field
from lastgood.rows import Deployment, VersionInfo

ADDED = "added"
CHANGED = "changed"
REMOVED = "removed"
DRILL = "drill"

Entry = tuple[str, str] | None
"""What a version holds at a path: ``(kind, hash)``, kind ``b`` (a file) or ``t`` (a folder)."""


class LiveSpan(Record, frozen=False):
    """A stretch of time during which a change of the path was live in one environment."""

    env: str
    version: int  # the version that put it live
    since: float
    started_by: Deployment
    until: float | None = None  # None: live still, as far as the ledger knows
    ended_by: Deployment | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "env": self.env,
            "version": self.version,
            "since": self.since,
            "until": self.until,
            "started_by": _record_json(self.started_by),
            "ended_by": None if self.ended_by is None else _record_json(self.ended_by),
        }


class FileChange(Record):
    """One version that changed the path: how, and where it went live."""

    version: VersionInfo
    change: str  # ADDED, CHANGED or REMOVED
    entry: Entry  # what it holds at the path from then on (None: nothing)
    live: list[LiveSpan] = field(default_factory=list)

    @property
    def is_folder(self) -> bool:
        return self.entry is not None and self.entry[0] == "t"

    def to_json(self) -> dict[str, object]:
        return {
            "version": as_dict(self.version),
            "change": self.change,
            "kind": None if self.entry is None else ("folder" if self.is_folder else "file"),
            "live": [span.to_json() for span in self.live],
        }


def _record_json(record: Deployment) -> dict[str, object]:
    names = ("id", "kind", "status", "from_version", "to_version", "actor", "reason")
    return {name: getattr(record, name) for name in names}


def clean_path(path: str) -> str:
    """PATH as versions name it: relative to the workspace, ``/``-separated, no ``./`` or
    trailing ``/``; UsageError for one that leaves the workspace."""
    parts = [part for part in path.replace("\\", "/").split("/") if part not in ("", ".")]
    if not parts or path.startswith("/") or ".." in parts:
        raise UsageError(
            f"{path!r} is not a path inside the workspace",
            hint="name it relative to the workspace folder, as 'lastgood show vN' lists it",
        )
    return "/".join(parts)


def path_changes(project: Project, path: str) -> tuple[list[FileChange], dict[int, int]]:
    """The changes of ``path`` oldest first, and for every version the index of the change
    it holds there (versions holding what no change made, drill variants, are absent).
    NotFoundError when no version ever held ``path``."""
    history = project.store.path_history(path)
    changes: list[FileChange] = []
    holds: dict[int, int] = {}
    current: Entry = None
    for version, entry in history:
        if version.source == DRILL:  # a rehearsal carries a change only if it left it alone
            if changes and entry == current:
                holds[version.number] = len(changes) - 1
            continue
        if entry != current:
            kind = ADDED if current is None else REMOVED if entry is None else CHANGED
            changes.append(FileChange(version, kind, entry))
            current = entry
        if changes:
            holds[version.number] = len(changes) - 1
    if not changes:
        raise _never_held(project, path, [version for version, _entry in history])
    return changes, holds


def _never_held(project: Project, path: str, versions: Sequence[VersionInfo]) -> NotFoundError:
    if not versions:
        return NotFoundError("no version is recorded yet", hint="lastgood snapshot -m MESSAGE")
    newest = versions[-1]
    near = difflib.get_close_matches(path, list(project.store.manifest(newest.number)), n=1)
    guess = f"; did you mean {near[0]}?" if near else ""
    return NotFoundError(
        f"no version holds {path!r}{guess}",
        hint=f"'lastgood show {newest.label}' lists the files of the newest version",
    )


def file_log(project: Project, path: str, *, limit: int | None = None) -> list[FileChange]:
    """The versions that changed ``path`` (a file or a folder), newest first, each with the
    spans during which it was live in each environment (reads only)."""
    path = clean_path(path)
    changes, holds = path_changes(project, path)
    for span in live_spans(project.store.deployments(), holds):
        changes[holds[span.version]].live.append(span)
    newest_first = changes[::-1]
    return newest_first if limit is None else newest_first[:limit]


def live_spans(records: Sequence[Deployment], holds: dict[int, int]) -> list[LiveSpan]:
    """When each change was live, per environment, from the ledger's switches: a span starts
    with the record that put a version holding the change live, and ends with the next one
    that put a version holding another (or none) there."""
    activations = sorted(
        (record for record in records if record.activated_at is not None and record.to_version),
        key=lambda record: (record.env, record.activated_at or 0.0, record.id),
    )
    spans: list[LiveSpan] = []
    open_span: dict[str, LiveSpan] = {}
    for record in activations:
        change = holds.get(record.to_version or 0)
        running = open_span.get(record.env)
        if running is not None and holds[running.version] == change:
            continue  # a version holding the same change: still live
        if running is not None:
            running.until, running.ended_by = record.activated_at, record
            del open_span[record.env]
        if change is not None and record.to_version is not None:
            started = LiveSpan(record.env, record.to_version, record.activated_at or 0.0, record)
            open_span[record.env] = started
            spans.append(started)
    return spans
