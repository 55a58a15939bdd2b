"""A bundle: the exact set of files that make up one version, and its content hash.

The content hash depends only on paths and bytes (never on timestamps or modes), so the same
folder always hashes the same on every machine, and a target can prove what it serves by hashing
its files again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

from lastgood.record import Record


def file_hash(data: bytes) -> str:
    """SHA-256 of one file's bytes, hex."""
    return hashlib.sha256(data).hexdigest()


def manifest_hash(manifest: Iterable[tuple[str, str]]) -> str:
    """Content hash of a bundle from its ``(path, file hash)`` pairs, in path order."""
    digest = hashlib.sha256()
    for path, blob in sorted(manifest):
        digest.update(path.encode("utf-8"))
        digest.update(b"\0")
        digest.update(blob.encode("ascii"))
        digest.update(b"\n")
    return digest.hexdigest()


class Bundle(Record):
    """Files of one version: relative POSIX path → bytes."""

    files: Mapping[str, bytes]

    @property
    def manifest(self) -> dict[str, str]:
        """Path → file hash."""
        return {path: file_hash(data) for path, data in self.files.items()}

    @property
    def content_hash(self) -> str:
        return manifest_hash(self.manifest.items())

    @property
    def size(self) -> int:
        return sum(len(data) for data in self.files.values())


def release_name(number: int, content_hash: str) -> str:
    """The name a release carries on a target: ``v12-3f2a9c1d``."""
    return f"v{number}-{content_hash[:8]}"
