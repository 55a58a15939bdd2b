"""Record the workspace as a new version (a no-op when nothing changed since the newest one)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lastgood import workspace
from lastgood.bundle import Bundle
from lastgood.events import Event, EventKind
from lastgood.project import Project
from lastgood.record import Record
from lastgood.rows import VersionInfo
from lastgood.units import plural

if TYPE_CHECKING:
    from lastgood.secrets.scan import Suspect


class SnapshotResult(Record):
    version: VersionInfo
    created: bool
    suspects: tuple[Suspect, ...] = ()
    """What looks like a live credential outside a marked key, in the files this version
    added or changed (see :mod:`lastgood.secrets.scan`)."""


def read_workspace(project: Project) -> Bundle:
    """The workspace's versioned files as they are now (raises RawDataError on data files)."""
    return workspace.collect(project.root, project.config.versioning)


def newest_recorded(project: Project) -> VersionInfo | None:
    """The newest version recorded from the folder: drill variants (source ``drill``) are
    skipped, since they are never the folder's content and must not make the next snapshot of
    an unchanged folder a duplicate. Reads only."""
    version = project.store.head()
    while version is not None and version.source == "drill":
        version = None if version.parent is None else project.store.version(version.parent)
    return version


def snapshot(
    project: Project,
    message: str,
    *,
    source: str = "cli",
    bundle: Bundle | None = None,
) -> SnapshotResult:
    """Record the folder (``bundle``: the folder, already read) as a version unless it equals
    the newest. In a git repository the version records HEAD's commit and whether the folder
    differed from it (an upload to a server goes through :func:`snapshot_bundle`). Writes the
    store."""
    from lastgood.gitfiles import folder_commit

    bundle = bundle or read_workspace(project)
    commit, dirty = folder_commit(project.root, project.config.versioning, bundle)
    return snapshot_bundle(
        project, bundle, message, source=source, git_commit=commit, git_dirty=dirty
    )


def snapshot_bundle(
    project: Project,
    bundle: Bundle,
    message: str,
    *,
    source: str,
    author: str | None = None,
    at: float | None = None,
    git_commit: str | None = None,
    git_dirty: bool | None = None,
) -> SnapshotResult:
    """Record ``bundle`` as a version unless it equals the newest; by ``author`` (default:
    who runs this) at time ``at`` (default: now), taken from ``git_commit``. Writes the store."""
    head = newest_recorded(project)
    if head is not None and head.content_hash == bundle.content_hash:
        return SnapshotResult(head, created=False)
    version = project.store.add_version(
        bundle,
        author=author or project.actor,
        message=message or "(no message)",
        source=source,
        at=at,
        unless_head=True,
        git_commit=git_commit,
        git_dirty=git_dirty,
    )
    if head is not None and version.number <= head.number:
        return SnapshotResult(version, created=False)  # another process recorded it first
    return announced(project, bundle, version, head)


def announced(
    project: Project, bundle: Bundle, version: VersionInfo, head: VersionInfo | None
) -> SnapshotResult:
    """A version just recorded from ``bundle`` after ``head``: the files it added or changed
    are scanned for credentials, and ``snapshot-created`` says who recorded what (writes the
    event)."""
    suspects = suspected_credentials(project, bundle, head)
    data: dict[str, object] = {"hash": version.content_hash, "message": version.message}
    if version.git_commit is not None:
        data["commit"] = version.git_commit
    if suspects:  # where, what kind and under which key; never the value
        data["suspected"] = [suspect.to_json() for suspect in suspects]
    project.emit(
        Event(
            EventKind.SNAPSHOT_CREATED,
            f"recorded {version.label} ({plural(version.file_count, 'file')}) by {version.author}",
            version=version.number,
            data=data,
        )
    )
    return SnapshotResult(version, created=True, suspects=tuple(suspects))


def suspected_credentials(
    project: Project, bundle: Bundle, head: VersionInfo | None
) -> list[Suspect]:
    """What looks like a live credential outside a marked key, in the files of ``bundle``
    that are new or changed since ``head`` (an unchanged file was reported when it came).
    Reads only; the values are never in the result."""
    from lastgood.secrets.scan import scan

    before = project.store.manifest(head.number) if head is not None else {}
    found: list[Suspect] = []
    for path, blob in sorted(bundle.manifest.items()):
        if before.get(path) != blob:
            found.extend(scan(path, bundle.files[path], project.config.secrets))
    return found
