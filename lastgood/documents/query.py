"""Reading what tracking stored: a document's versions, one version's content and its diff.

Documents removed from ``lastgood.toml`` keep their history, so these accept any name that is
configured or stored. Reads only.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from lastgood.errors import ConfigError, NotFoundError, UsageError

if TYPE_CHECKING:
    from lastgood.project import Project
    from lastgood.rows import DocumentVersion

EXAMPLE = """add one to lastgood.toml, for example:

      [[watch.document]]
      name = "pricing sheet"
      path = "shared/pricing.csv"

    then run 'lastgood documents check' (see docs/documents.md)"""

_VERSION = re.compile(r"v?(\d+)")


def no_documents_error(project: Project) -> ConfigError:
    return ConfigError(
        f"no documents are tracked: {project.root / 'lastgood.toml'} has no [[watch.document]]",
        hint=EXAMPLE,
    )


def unknown_name_error(name: str, known: list[str]) -> NotFoundError:
    listed = ", ".join(repr(n) for n in known) or "none"
    return NotFoundError(
        f"no document named {name!r}; known documents: {listed}",
        hint="names are the name (or else the path or url) of each [[watch.document]] entry; "
        "quote names with spaces: lastgood documents log 'pricing sheet'",
    )


def known_names(project: Project, *, stored: bool = True) -> list[str]:
    """Configured document names in config order, then names only the store still knows."""
    names = [spec.name for spec in project.config.watch.documents]
    if stored:
        for version in project.store.document_versions(limit=None):
            if version.name not in names:
                names.append(version.name)
    return names


def versions(project: Project, name: str, *, limit: int | None = 20) -> list[DocumentVersion]:
    """The stored versions of ``name``, newest first; NotFoundError for a name nobody knows."""
    found = project.store.document_versions(name, limit=limit)
    if found or name in known_names(project, stored=False):
        return found
    known = known_names(project)
    if not known:
        raise no_documents_error(project)
    raise unknown_name_error(name, known)


def parse_version(text: str) -> int:
    """``3`` or ``v3`` → 3."""
    match = _VERSION.fullmatch(text.strip())
    if match is None or int(match.group(1)) < 1:
        raise UsageError(
            f"{text!r} is not a document version", hint="write a number, as in 3 or v3"
        )
    return int(match.group(1))


def version_of(project: Project, name: str, version: int | None = None) -> DocumentVersion:
    """One stored version of ``name`` (the newest when ``version`` is None)."""
    stored = versions(project, name, limit=None)
    if not stored:
        raise NotFoundError(
            f"document {name!r} has no stored version yet",
            hint=f"run 'lastgood documents check {quoted(name)}' to store its baseline",
        )
    if version is None:
        return stored[0]
    for record in stored:
        if record.version == version:
            return record
    numbers = ", ".join(f"v{r.version}" for r in reversed(stored))
    raise NotFoundError(
        f"document {name!r} has no version v{version} (kept: {numbers})",
        hint=f"older versions are dropped by keep and max_age; "
        f"'lastgood documents log {quoted(name)}' lists what is kept",
    )


def content(project: Project, record: DocumentVersion) -> bytes:
    """The stored normalized content of one version (the real bytes; to show it, use
    :func:`shown_content`)."""
    return project.store.document_content(record.name, record.version)


def shown_content(project: Project, record: DocumentVersion) -> bytes:
    """One version's content as people read it: secrets masked (``[secrets]``; the document
    is matched by its path or URL). The real content is where the document lives."""
    data = content(project, record)
    from lastgood.secrets.mask import Masker

    return Masker(project.config.secrets).content(record.source, data)


def shown_diff(project: Project, record: DocumentVersion) -> str:
    """One version's stored diff as people read it. Diffs are masked when stored; this masks
    again, line by line, for diffs stored before ``[secrets]`` listed what they hold."""
    if not record.diff:
        return record.diff
    from lastgood.secrets.mask import Masker

    return Masker(project.config.secrets).diff(record.diff)


def quoted(name: str) -> str:
    """``name`` as it must be typed in a shell command."""
    import shlex

    return shlex.quote(name)
