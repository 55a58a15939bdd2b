"""Tracking: read a document, compare it with its newest stored version, keep and alert changes.

The rules users rely on (docs/documents.md):

- a change is decided on the **normalized** content's hash, never on timestamps, so there is
  never an alert with an empty diff;
- the first observation stores version 1 as the baseline and alerts nobody;
- an unchanged document writes nothing;
- a change is stored with its diff (secrets masked, ``[secrets]``: the diff goes out in
  alerts; the content is kept as read), retention (``keep``, ``max_age``) is applied, and one
  ``document-changed`` event is emitted with a dedupe key unique to that version;
- a document that cannot be read raises :class:`DocumentError` and changes nothing: the last
  stored version stays the one the next reading is compared with.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lastgood.bundle import file_hash
from lastgood.config import DocumentSpec
from lastgood.documents.diff import diff
from lastgood.documents.normalize import normalize
from lastgood.documents.query import known_names, no_documents_error, quoted, unknown_name_error
from lastgood.documents.source import Files, describe, read
from lastgood.errors import DocumentError
from lastgood.events import Event, EventKind
from lastgood.record import Record

if TYPE_CHECKING:
    from lastgood.project import Project
    from lastgood.rows import DocumentVersion
    from lastgood.secrets.policy import SecretPolicy
    from lastgood.store.core import Store

EVENT_DIFF_LIMIT = 8 * 1024
"""Characters of diff carried in an event: enough for a message, small enough for any chat."""
_BINARY_SNIFF = 8192
_NO_NEWLINE = b"\\ No newline at end of file\n"


class DocumentChange(Record):
    """A new version of a document: the baseline (first observation) or a change."""

    name: str
    source: str
    version: int
    previous: int | None
    added: int
    removed: int
    diff: str
    at: float
    baseline: bool = False
    binary: bool = False
    pruned: int = 0
    """Versions dropped by retention when this one was stored."""

    @property
    def status(self) -> str:
        return "baseline" if self.baseline else "changed"

    @property
    def summary(self) -> str:
        """``+3 -1 lines``, or how a binary document's size changed."""
        return self.diff.strip() if self.binary else f"+{self.added} -{self.removed} lines"

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, **{name: getattr(self, name) for name in self._fields}}


class DocumentResult(Record):
    """What one check of one document found: a change, nothing (``unchanged``) or an error."""

    name: str
    source: str
    change: DocumentChange | None = None
    error: DocumentError | None = None

    @property
    def status(self) -> str:
        """``changed``, ``baseline``, ``unchanged`` or ``error``."""
        if self.error is not None:
            return "error"
        return self.change.status if self.change is not None else "unchanged"

    def to_json(self) -> dict[str, Any]:
        error = None
        if self.error is not None:
            error = {"message": self.error.message, "hint": self.error.hint}
        change = self.change.to_json() if self.change is not None else None
        return {"name": self.name, "source": self.source, "status": self.status,
                "change": change, "error": error}  # fmt: skip


def content_of(spec: DocumentSpec, root: Path) -> bytes:
    """Read ``spec`` and normalize it: the bytes that are hashed, stored and diffed (reads)."""
    raw = read(spec, root)
    label = describe(spec)
    if isinstance(raw, bytes):
        return normalize(raw, spec.normalize, label=label)
    return folder_content(raw, spec.normalize, label=label)


def folder_content(files: Files, mode: str, *, label: str) -> bytes:
    """A folder as one document: each file under a ``=== path ===`` header, normalized on its
    own. A binary file shows as its size and hash: exact for detection, readable in a diff."""
    parts: list[bytes] = []
    for path, data in files:
        parts.append(f"=== {path} ===\n".encode())
        if b"\0" in data[:_BINARY_SNIFF]:
            parts.append(
                f"(binary file, {len(data)} bytes, sha256 {file_hash(data)[:16]})\n".encode()
            )
            continue
        body = normalize(data, mode, label=f"{label}, file {path!r},")
        parts.append(body)
        if body and not body.endswith(b"\n"):  # bytes mode: keep "a" and "a\n" apart
            parts.append(b"\n" + _NO_NEWLINE)
    return b"".join(parts)


def track(
    project: Project, spec: DocumentSpec, *, now: float | None = None
) -> DocumentChange | None:
    """Check one document now (writes on a change): None when unchanged, else the new version.

    The first observation is stored as the baseline (``change.baseline``) without an event;
    later changes are stored with their diff, pruned to ``keep`` and ``max_age``, and emitted
    as ``document-changed``. Raises DocumentError when the document cannot be read or parsed.
    """
    at = time.time() if now is None else now
    content = content_of(spec, project.root)
    store = project.store
    newest = newest_version(store, spec.name)
    if newest is None:
        first = store.add_document_version(
            spec.name, content, source=spec.source, diff="", added=0, removed=0, at=at
        )
        return DocumentChange(spec.name, spec.source, first.version, None, 0, 0, "", at,
                              baseline=True)  # fmt: skip
    if newest.content_hash == file_hash(content):
        return None
    change = _store_change(store, spec, newest, content, at, project.config.secrets)
    project.emit(change_event(change))
    return change


def _store_change(
    store: Store,
    spec: DocumentSpec,
    newest: DocumentVersion,
    content: bytes,
    at: float,
    secrets: SecretPolicy | None,
) -> DocumentChange:
    """Keep ``content`` as the version after ``newest``, with its diff (secrets masked; the
    line counts are the real ones), then apply retention."""
    from lastgood.secrets.mask import Masker

    before = store.document_content(spec.name, newest.version)
    labels = {"old_label": f"{spec.name} v{newest.version}",
              "new_label": f"{spec.name} v{newest.version + 1}"}  # fmt: skip
    found = diff(before, content, **labels)
    shown_before, shown_after = Masker(secrets).pair(spec.source, before, content)
    shown = diff(shown_before or b"", shown_after or b"", **labels)
    stored = store.add_document_version(
        spec.name, content, source=spec.source, diff=shown.text,
        added=found.added, removed=found.removed, at=at,
    )  # fmt: skip
    pruned = store.prune_documents(spec.name, keep=spec.keep, older_than=at - spec.max_age)
    return DocumentChange(
        spec.name, spec.source, stored.version, newest.version, found.added, found.removed,
        shown.text, at, binary=found.binary, pruned=pruned,
    )  # fmt: skip


def change_event(change: DocumentChange) -> Event:
    """The ``document-changed`` event; its key makes each version one notification."""
    key = f"document-changed:{change.name}:{change.version}"
    data = {
        "name": change.name,
        "source": change.source,
        "version": change.version,
        "previous": change.previous,
        "added": change.added,
        "removed": change.removed,
        "diff": truncated_diff(change.diff, change.name, change.version),
        "key": key,
    }
    message = f"document {change.name!r} changed: {change.summary}"
    return Event(EventKind.DOCUMENT_CHANGED, message, data=data, key=key)


def truncated_diff(text: str, name: str, version: int, limit: int = EVENT_DIFF_LIMIT) -> str:
    """``text`` cut at a line end within ``limit`` characters, with a note saying where the
    rest is; the store always keeps the whole diff."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    cut = cut[: cut.rfind("\n") + 1] or cut
    rest = len(text) - len(cut)
    return (
        f"{cut}… diff truncated: {rest} more characters; see "
        f"'lastgood documents show {quoted(name)} {version} --diff'\n"
    )


def track_all(
    project: Project, names: list[str] | None = None, *, now: float | None = None
) -> list[DocumentResult]:
    """Check every configured document (or those in ``names``), in config order (writes).

    A document that cannot be read is reported in its result and never stops the others."""
    results: list[DocumentResult] = []
    for spec in select(project, names):
        try:
            change = track(project, spec, now=now)
        except DocumentError as exc:
            results.append(DocumentResult(spec.name, spec.source, error=exc))
        else:
            results.append(DocumentResult(spec.name, spec.source, change=change))
    return results


def apply_retention(project: Project, spec: DocumentSpec, *, now: float | None = None) -> int:
    """Drop versions of ``spec`` beyond ``keep`` or older than ``max_age`` (writes); returns
    how many went. :func:`track` does this whenever it stores a change; call it on a schedule
    to expire old versions of a document that no longer changes."""
    at = time.time() if now is None else now
    return project.store.prune_documents(spec.name, keep=spec.keep, older_than=at - spec.max_age)


def newest_version(store: Store, name: str) -> DocumentVersion | None:
    """The newest stored version of ``name``, or None before the first observation."""
    versions = store.document_versions(name, limit=1)
    return versions[0] if versions else None


def select(project: Project, names: list[str] | None = None) -> list[DocumentSpec]:
    """The configured documents named in ``names`` (all when empty), in config order."""
    documents = list(project.config.watch.documents)
    if not documents:
        raise no_documents_error(project)
    if not names:
        return documents
    by_name = {spec.name: spec for spec in documents}
    for name in names:
        if name not in by_name:
            raise unknown_name_error(name, known_names(project, stored=False))
    return [by_name[name] for name in dict.fromkeys(names)]
