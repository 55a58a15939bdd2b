"""Tracked documents in the store (``[[watch.document]]``): numbered per document, their
content kept in ``blobs`` beside the versions' files."""

from __future__ import annotations

import time

from lastgood.bundle import file_hash
from lastgood.rows import DocumentVersion
from lastgood.store import common, objects, statements
from lastgood.store.base import StoreBase
from lastgood.store.connection import Session
from lastgood.store.versions import INSERT_BLOB, blob_row

DOCUMENT_COLUMNS = statements.columns_of(DocumentVersion)

ORPHAN_BLOBS_SQL = (
    "DELETE FROM blobs WHERE NOT in_versions AND NOT EXISTS "
    "(SELECT 1 FROM document_versions WHERE document_versions.content_hash = blobs.hash)"
)
"""Blobs that no version ever used and no document version uses any more."""


class DocumentStore(StoreBase):
    """Versions of tracked documents, with retention."""

    def add_document_version(
        self,
        name: str,
        content: bytes,
        *,
        source: str,
        diff: str,
        added: int,
        removed: int,
        at: float | None = None,
    ) -> DocumentVersion:
        """Record ``content`` (already normalized) as the next version of ``name`` (writes); a
        concurrent writer of the same document makes the loser retry with the next number."""
        digest = file_hash(content)

        def write(session: Session) -> DocumentVersion:
            session.run(INSERT_BLOB, blob_row(digest, content, in_versions=False))
            sql = "SELECT max(version) FROM document_versions WHERE name = :name"
            head = session.value(sql, {"name": name})
            record = DocumentVersion(
                name, (head or 0) + 1, digest, len(content), source, diff, added, removed,
                at or time.time(),
            )  # fmt: skip
            row = statements.row_of(record, DOCUMENT_COLUMNS)
            session.run(statements.insert("document_versions", row), row)
            return record

        return self._retrying("record a document version", write,
                              gave_up=f"could not record a version of document {name!r}: "
                              "too many writers")  # fmt: skip

    def document_versions(
        self, name: str | None = None, *, limit: int | None = 100, since: float | None = None
    ) -> list[DocumentVersion]:
        """Document versions newest first, of one document or all."""
        return self._records("read document versions", DocumentVersion, "document_versions",
                             {"name": name}, order="at DESC, version DESC", limit=limit,
                             since=("at", since))  # fmt: skip

    def document_content(self, name: str, version: int) -> bytes:
        """The stored content of one document version; NotFoundError when pruned or unknown."""
        sql = (
            "SELECT blobs.hash, blobs.codec, blobs.data FROM document_versions JOIN blobs "
            "ON blobs.hash = document_versions.content_hash "
            "WHERE document_versions.name = :name AND document_versions.version = :version"
        )
        with self.db.transaction("read a document") as session:
            row = session.one(sql, {"name": name, "version": version})
        if row is None:
            raise common.document_not_found(name, version)
        content = objects.unpack(row[1], bytes(row[2]))
        return common.verified_blob(content, row[0], path=name, number=version)

    def prune_documents(self, name: str, *, keep: int, older_than: float) -> int:
        """Apply retention to ``name``: drop versions beyond the newest ``keep`` or older than
        ``older_than``, never the newest (the next change is compared with it), and the blobs
        nothing uses any more; returns how many versions went (writes)."""
        with self.db.transaction("prune document versions") as session:
            rows = session.rows(
                "SELECT version, at FROM document_versions WHERE name = :name "
                "ORDER BY version DESC",
                {"name": name},
            )
            doomed = common.doomed_document_versions(rows, keep=keep, older_than=older_than)
            session.run_many(
                "DELETE FROM document_versions WHERE name = :name AND version = :version",
                [{"name": name, "version": version} for version in doomed],
            )
            if doomed:
                session.run(ORPHAN_BLOBS_SQL)
        return len(doomed)
