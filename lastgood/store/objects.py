"""How content lies in the store: packed blobs, and trees shared between versions, as git does.

A version points at a root **tree**. A tree is one folder: its names, each with the hash of a
blob (a file's bytes) or of another tree (a subfolder). A tree's hash covers its canonical
encoding, so a folder that did not change between two versions is the same tree, stored once;
only the trees on the path to a changed file are new. The store therefore grows with what
changed, not with the size of the folder.

A changed folder of 200 names would still cost a new 200-entry tree per version. So a tree may
be stored as a **delta** against its predecessor (the tree at the same folder in the version
before): only the entries that differ. The hash is always that of the full encoding, so how a
tree is stored never changes what it is. A chain of deltas is at most :data:`MAX_DEPTH` long,
which bounds the reads needed to rebuild any tree.

Blobs are compressed with zlib when that saves space (it rarely does for tiny files, which are
kept as they are); their hash is always that of the original bytes. Nothing here touches a
database: the store calls these functions on rows it reads and writes.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable, Mapping

from lastgood.errors import StoreError

BLOB = "b"
TREE = "t"
_REMOVED = "-"
_HASH_BYTES = 32

MAX_DEPTH = 250
"""The longest chain of deltas before a tree is stored whole again."""

RAW = "none"
ZLIB = "zlib"

Entries = dict[str, tuple[str, str]]
"""A tree's contents: name → (kind, hex hash), kind :data:`BLOB` or :data:`TREE`."""


def pack(data: bytes) -> tuple[str, bytes]:
    """``(codec, stored bytes)`` for a blob: zlib when it is smaller by a few bytes, else raw."""
    packed = zlib.compress(data, 9)
    if len(packed) + 8 < len(data):
        return ZLIB, packed
    return RAW, data


def unpack(codec: str, stored: bytes) -> bytes:
    """The original bytes of a stored blob; StoreError for a codec this release cannot read."""
    if codec == RAW:
        return stored
    if codec == ZLIB:
        try:
            return zlib.decompress(stored)
        except zlib.error as exc:
            raise StoreError("a stored file's compressed bytes are damaged") from exc
    raise StoreError(
        f"a stored blob uses compression {codec!r}, which this release cannot read",
        hint="upgrade lastgood to the release that wrote this store",
    )


def encode(entries: Mapping[str, tuple[str, str]]) -> bytes:
    """The canonical encoding of a tree: entries in name order, each ``kind, hash, name, NUL``."""
    out = bytearray()
    for name in sorted(entries):
        kind, digest = entries[name]
        out += kind.encode("ascii") + bytes.fromhex(digest) + name.encode("utf-8") + b"\0"
    return bytes(out)


def tree_hash(encoded: bytes) -> str:
    """A tree's identity: SHA-256 over a type prefix and its canonical encoding (so a tree can
    never be mistaken for a file whose bytes happen to match)."""
    return hashlib.sha256(b"tree\0" + encoded).hexdigest()


def decode(data: bytes) -> Entries:
    """Entries from an encoding (whole, or a delta with removals marked ``-`` and no hash)."""
    entries: Entries = {}
    at = 0
    try:
        while at < len(data):
            kind = chr(data[at])
            if kind == _REMOVED:
                end = data.index(b"\0", at + 1)
                entries[data[at + 1 : end].decode("utf-8")] = (_REMOVED, "")
            else:
                digest = data[at + 1 : at + 1 + _HASH_BYTES].hex()
                end = data.index(b"\0", at + 1 + _HASH_BYTES)
                entries[data[at + 1 + _HASH_BYTES : end].decode("utf-8")] = (kind, digest)
            at = end + 1
    except (ValueError, UnicodeDecodeError) as exc:
        raise StoreError("a stored tree is malformed (its entries cannot be read)") from exc
    return entries


def delta(base: Entries, entries: Entries) -> bytes:
    """What turns ``base`` into ``entries``: changed and new entries, and removed names."""
    out = bytearray()
    for name in sorted(set(base) | set(entries)):
        if name not in entries:
            out += _REMOVED.encode("ascii") + name.encode("utf-8") + b"\0"
        elif base.get(name) != entries[name]:
            kind, digest = entries[name]
            out += kind.encode("ascii") + bytes.fromhex(digest) + name.encode("utf-8") + b"\0"
    return bytes(out)


def apply_delta(base: Entries, changes: Entries) -> Entries:
    """``base`` with a decoded delta applied."""
    result = dict(base)
    for name, entry in changes.items():
        if entry[0] == _REMOVED:
            result.pop(name, None)
        else:
            result[name] = entry
    return result


_ZLIB_FIRST_BYTE = 0x78
"""Every zlib stream starts with this byte; no encoded tree does (they start with a kind)."""


def pack_tree(encoded: bytes) -> bytes:
    """A tree's (or delta's) encoding as stored: zlib when that is smaller, else as it is.
    The first byte tells them apart, so no column is spent on it."""
    packed = zlib.compress(encoded, 9)
    return packed if len(packed) < len(encoded) else encoded


def unpack_tree(stored: bytes) -> bytes:
    """The encoding a stored tree holds."""
    if not stored or stored[0] != _ZLIB_FIRST_BYTE:
        return stored
    try:
        return zlib.decompress(stored)
    except zlib.error as exc:
        raise StoreError("a stored tree's compressed bytes are damaged") from exc


class Folders:
    """The trees of one manifest, built bottom-up: folder path ('' is the root) → entries and
    hash. Paths are POSIX and relative, as in a bundle's manifest."""

    def __init__(self, manifest: Mapping[str, str]) -> None:
        children: dict[str, Entries] = {"": {}}
        for path, blob in manifest.items():
            folder, _, name = path.rpartition("/")
            children.setdefault(folder, {})[name] = (BLOB, blob)
            while folder:  # make sure every ancestor lists this folder
                parent, _, name = folder.rpartition("/")
                children.setdefault(parent, {})
                if name in children[parent]:
                    break
                children[parent][name] = (TREE, "")
                folder = parent
        self.entries: dict[str, Entries] = {}
        self.hashes: dict[str, str] = {}
        self.sizes: dict[str, int] = {}  # of each tree's encoding
        for folder in sorted(children, key=lambda f: f.count("/") + bool(f), reverse=True):
            entries = {
                name: (kind, self.hashes[_join(folder, name)] if kind == TREE else digest)
                for name, (kind, digest) in children[folder].items()
            }
            encoded = encode(entries)
            self.entries[folder] = entries
            self.hashes[folder] = tree_hash(encoded)
            self.sizes[folder] = len(encoded)

    @property
    def root(self) -> str:
        return self.hashes[""]


def walk(root: str, read: Callable[[str], Entries]) -> dict[str, str]:
    """The manifest (path → blob hash) under tree ``root``; ``read`` gives a tree's entries."""
    manifest: dict[str, str] = {}
    pending = [("", root)]
    while pending:
        folder, digest = pending.pop()
        for name, (kind, child) in read(digest).items():
            path = _join(folder, name)
            if kind == TREE:
                pending.append((path, child))
            else:
                manifest[path] = child
    return manifest


def folder_trees(root: str, read: Callable[[str], Entries]) -> dict[str, str]:
    """Folder path → tree hash for every folder under ``root`` (the root is '')."""
    found = {"": root}
    pending = [("", root)]
    while pending:
        folder, digest = pending.pop()
        for name, (kind, child) in read(digest).items():
            if kind == TREE:
                path = _join(folder, name)
                found[path] = child
                pending.append((path, child))
    return found


def _join(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder else name
