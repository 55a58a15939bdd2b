"""Checking a whole store: every blob and tree hashes right, every version's content hash
recomputes from its trees, every reference resolves. Reads only.

Versions are walked oldest first with one tree cache, so the tree a version's tree is a delta
against was rebuilt a moment before and is still cached: the check reads each tree about once.
Blobs are read in batches, never all at once.
"""

from __future__ import annotations

from lastgood.bundle import file_hash, manifest_hash
from lastgood.errors import StoreError
from lastgood.record import Record, field
from lastgood.store import objects
from lastgood.store.base import StoreBase
from lastgood.store.connection import Session
from lastgood.store.trees import Trees

_BATCH = 200


class Damage(Record):
    """One thing found wrong: what kind of object, which one, and what is wrong with it."""

    kind: str  # blob, tree, version, document or environment
    name: str
    problem: str


class Integrity(Record, frozen=False):
    """What a check looked at, and what it found wrong (nothing, in a healthy store)."""

    blobs: int = 0
    trees: int = 0
    versions: int = 0
    documents: int = 0
    damage: list[Damage] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.damage


def check_integrity(store: StoreBase) -> Integrity:
    """Read every blob, tree, version and document version, and report what is damaged."""
    report = Integrity()
    with store.db.transaction("check the store", snapshot=True) as session:
        blobs = _check_blobs(session, report)
        reached = _check_versions(session, report, blobs)
        _check_loose_trees(session, report, reached)
        _check_documents(session, report, blobs)
        _check_environments(session, report)
    return report


def _check_blobs(session: Session, report: Integrity) -> set[str]:
    """Every blob unpacks and hashes to its key; returns the keys of the sound ones."""
    sound: set[str] = set()
    after = ""
    while rows := session.rows(
        "SELECT hash, codec, data, size FROM blobs WHERE hash > :after ORDER BY hash LIMIT :n",
        {"after": after, "n": _BATCH},
    ):
        for digest, codec, data, size in rows:
            report.blobs += 1
            try:
                content = objects.unpack(codec, _as_bytes(data))
            except StoreError as exc:
                report.damage.append(Damage("blob", digest, exc.message))
                continue
            if file_hash(content) != digest or len(content) != size:
                report.damage.append(Damage("blob", digest, "its bytes no longer hash to its name"))
            else:
                sound.add(digest)
        after = rows[-1][0]
    return sound


def _as_bytes(data: object) -> bytes:
    """A stored value as bytes; text (a hand edit gone wrong) is damage, not a crash."""
    if isinstance(data, str):
        raise StoreError("its bytes were replaced by text")
    if not isinstance(data, (bytes, memoryview)):
        raise StoreError(f"its bytes are stored as {type(data).__name__}")
    return bytes(data)


def _unflagged(session: Session) -> set[str]:
    """Blobs marked as used by tracked documents only."""
    rows = session.rows("SELECT hash FROM blobs WHERE in_versions = :no", {"no": False})
    return {digest for (digest,) in rows}


def _check_versions(session: Session, report: Integrity, blobs: set[str]) -> set[str]:
    """Every version's trees rebuild and hash right, name only stored blobs, and give back
    the version's content hash; returns every tree reached (chains included)."""
    trees, reached, unflagged = Trees(), set[str](), _unflagged(session)
    for number, content_hash, root in session.rows(
        "SELECT number, content_hash, tree FROM versions ORDER BY number"
    ):
        report.versions += 1
        label = f"v{number}"
        if root is None:
            report.damage.append(Damage("version", label, "it points at no tree"))
            continue
        try:
            folders = trees.folders(session, bytes(root).hex())
            manifest = trees.manifest(session, bytes(root).hex())
        except StoreError as exc:
            report.damage.append(Damage("version", label, exc.message))
            continue
        reached.update(folders.values())
        missing = sorted(path for path, blob in manifest.items() if blob not in blobs)
        if missing:
            report.damage.append(Damage("version", label, _missing_files(missing)))
        for blob in sorted({blob for blob in manifest.values() if blob in unflagged}):
            unflagged.discard(blob)
            problem = f"{label} holds it, but it is marked as a document's only"
            report.damage.append(Damage("blob", blob, problem))
        if manifest_hash(manifest.items()) != content_hash:
            report.damage.append(Damage("version", label, "its trees no longer give back its "
                                        "content hash"))  # fmt: skip
    return reached


def _check_loose_trees(session: Session, report: Integrity, reached: set[str]) -> None:
    """Count every tree, and rebuild those no version reached (delta bases of pruned ones)."""
    trees = Trees()
    for (key,) in session.rows("SELECT hash FROM trees"):
        report.trees += 1
        digest = bytes(key).hex()
        if digest in reached:
            continue
        try:
            trees.read(session, digest)
        except StoreError as exc:
            report.damage.append(Damage("tree", digest, exc.message))


def _check_documents(session: Session, report: Integrity, blobs: set[str]) -> None:
    for name, version, content_hash in session.rows(
        "SELECT name, version, content_hash FROM document_versions ORDER BY name, version"
    ):
        report.documents += 1
        if content_hash not in blobs:
            report.damage.append(Damage("document", f"{name} v{version}",
                                        "its content is missing or damaged"))  # fmt: skip


def _check_environments(session: Session, report: Integrity) -> None:
    """Every version an environment names as live or last known good is in the store."""
    numbers = {row[0] for row in session.rows("SELECT number FROM versions")}
    for name, live, last_good in session.rows(
        "SELECT name, live_version, last_good FROM environments ORDER BY name"
    ):
        for role, number in (("live", live), ("last known good", last_good)):
            if number is not None and number not in numbers:
                problem = f"its {role} version v{number} is not in the store"
                report.damage.append(Damage("environment", name, problem))


def _missing_files(paths: list[str]) -> str:
    shown = ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")
    return f"the content of {shown} is missing or damaged"
