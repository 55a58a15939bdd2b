"""Versions know their git commit: ``git_commit`` (the commit a version was taken from) and
``git_dirty`` (whether the folder differed from that commit when it was recorded).

Both are empty on versions recorded before, and on any version recorded outside a repository.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("versions", sa.Column("git_commit", sa.String(64), nullable=True))
    op.add_column("versions", sa.Column("git_dirty", sa.Boolean, nullable=True))
    op.create_index("ix_versions_git_commit", "versions", ["git_commit"])


def downgrade() -> None:
    op.drop_index("ix_versions_git_commit", "versions")
    with op.batch_alter_table("versions") as batch:
        batch.drop_column("git_dirty")
        batch.drop_column("git_commit")
