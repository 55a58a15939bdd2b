"""Store v2: versions point at shared, delta-compressed trees; blobs are compressed.

Every version's per-file manifest rows (``version_files``) become trees, written by the same
code the store uses for new versions. Each version's content hash is checked against its old
manifest before conversion and against its new trees after; a mismatch stops the migration with
the version named, and nothing changes. The whole migration is one transaction (PostgreSQL and
SQLite both roll DDL back), so a store interrupted mid-way is left exactly as it was: readable,
and migrated again by the next command.

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Iterator

import sqlalchemy as sa
from alembic import op

from lastgood.bundle import manifest_hash
from lastgood.errors import StoreError
from lastgood.failpoint import hit
from lastgood.store import objects
from lastgood.store.database import AlchemySession
from lastgood.store.trees import Trees, key

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "trees",
        sa.Column("hash", sa.LargeBinary(32), primary_key=True),
        sa.Column("base", sa.LargeBinary(32), nullable=True),
        sa.Column("depth", sa.Integer, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sqlite_with_rowid=False,
    )
    op.add_column("versions", sa.Column("tree", sa.LargeBinary(32), nullable=True))
    add_blob_columns()
    session = AlchemySession(op.get_bind())
    convert_versions(session)
    session.run(ONLY_DOCUMENTS[op.get_bind().dialect.name == "sqlite"], {"no": False})
    op.drop_table("version_files")
    compress_blobs(session)
    check_versions(session)


ONLY_DOCUMENTS = (
    "UPDATE blobs SET in_versions = :no WHERE NOT EXISTS "
    "(SELECT 1 FROM version_files WHERE version_files.blob = blobs.hash)",  # PostgreSQL: anti-join
    "UPDATE blobs SET in_versions = :no "
    "WHERE hash NOT IN (SELECT DISTINCT blob FROM version_files)",  # SQLite: one pass, no index
)
"""Mark the blobs only documents use, in the form each database runs in one pass."""


def add_blob_columns() -> None:
    """``codec`` and ``in_versions`` on ``blobs``. SQLite rebuilds the table without a rowid:
    keyed by its hash alone, it no longer keeps every hash twice (table and index)."""
    codec = sa.Column("codec", sa.String(10), nullable=False, server_default="none")
    in_versions = sa.Column("in_versions", sa.Boolean, nullable=False, server_default=sa.true())
    if op.get_bind().dialect.name != "sqlite":
        op.add_column("blobs", codec)
        op.add_column("blobs", in_versions)
        return
    op.create_table(
        "blobs_v2",
        sa.Column("hash", sa.String(64), primary_key=True),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        codec,
        in_versions,
        sqlite_with_rowid=False,
    )
    op.execute("INSERT INTO blobs_v2 (hash, size, data) SELECT hash, size, data FROM blobs")
    op.drop_table("blobs")
    op.rename_table("blobs_v2", "blobs")


def convert_versions(session: AlchemySession) -> None:
    """Give every version its trees, oldest first, each folder a delta on the one before."""
    trees, parent = Trees(), None
    for number, content_hash, manifest in old_manifests(session):
        if manifest_hash(manifest.items()) != content_hash:
            raise damaged(number, "its stored manifest does not match its content hash")
        folders = objects.Folders(manifest)
        trees.store(session, folders, parent)
        session.run(
            "UPDATE versions SET tree = :tree WHERE number = :number",
            {"tree": key(folders.root), "number": number},
        )
        parent = folders.root
        hit("migration.mid-trees")


def old_manifests(session: AlchemySession) -> Iterator[tuple[int, str, dict[str, str]]]:
    """(number, content hash, path → blob) of every version, from ``version_files``."""
    versions = session.rows("SELECT number, content_hash FROM versions ORDER BY number")
    for number, content_hash in versions:
        rows = session.rows(
            "SELECT path, blob FROM version_files WHERE version = :number", {"number": number}
        )
        yield number, content_hash, {path: blob for path, blob in rows}


def compress_blobs(session: AlchemySession) -> None:
    """Store every blob compressed where that saves space, a batch at a time."""
    after = ""
    while True:
        rows = session.rows(
            "SELECT hash, data FROM blobs WHERE hash > :after ORDER BY hash LIMIT 200",
            {"after": after},
        )
        if not rows:
            return
        packed = [(digest, *objects.pack(bytes(data))) for digest, data in rows]
        session.run_many(
            "UPDATE blobs SET codec = :codec, data = :data WHERE hash = :hash",
            [{"hash": h, "codec": c, "data": d} for h, c, d in packed if c != objects.RAW],
        )
        after = rows[-1][0]


def check_versions(session: AlchemySession) -> None:
    """Read every version back through its trees, from the tables (a fresh cache), and check
    that its content hash recomputes."""
    trees = Trees()
    for number, content_hash, root in session.rows(
        "SELECT number, content_hash, tree FROM versions ORDER BY number"
    ):
        if (
            root is None
            or manifest_hash(trees.manifest(session, bytes(root).hex()).items()) != content_hash
        ):
            raise damaged(number, "its trees do not give back its content hash")


def damaged(number: int, why: str) -> StoreError:
    return StoreError(
        f"cannot upgrade the store: v{number} is damaged ({why}); nothing was changed",
        hint="restore the store from a backup, or ask for help with the damaged version; "
        "meanwhile 'lastgood rollback ENV --offline' works without the store",
    )


def downgrade() -> None:
    op.create_table(
        "version_files",
        sa.Column("version", sa.Integer, sa.ForeignKey("versions.number"), primary_key=True),
        sa.Column("path", sa.String(1000), primary_key=True),
        sa.Column("blob", sa.String(64), sa.ForeignKey("blobs.hash"), nullable=False),
    )
    session, trees = AlchemySession(op.get_bind()), Trees()
    for number, root in session.rows("SELECT number, tree FROM versions ORDER BY number"):
        session.run_many(
            "INSERT INTO version_files (version, path, blob) VALUES (:version, :path, :blob)",
            [
                {"version": number, "path": path, "blob": blob}
                for path, blob in trees.manifest(session, bytes(root).hex()).items()
            ],
        )
    for digest, codec, data in session.rows(
        "SELECT hash, codec, data FROM blobs WHERE codec != :raw", {"raw": objects.RAW}
    ):
        session.run(
            "UPDATE blobs SET data = :data WHERE hash = :hash",
            {"hash": digest, "data": objects.unpack(codec, bytes(data))},
        )
    with op.batch_alter_table("blobs") as batch:
        batch.drop_column("in_versions")
        batch.drop_column("codec")
    with op.batch_alter_table("versions") as batch:
        batch.drop_column("tree")
    op.drop_table("trees")
