"""Consumers know what they are: ``kind`` (``sdk`` for an application reading through the SDK,
``agent`` for ``lastgood agent`` putting versions live on a host), and an agent's host-local
checks: ``health`` (``ok``, ``failing``, or empty when nothing was checked) and ``detail``
(which check failed and why, in a sentence).

Consumers recorded before are SDK consumers with no health.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "consumers", sa.Column("kind", sa.String(20), nullable=False, server_default="sdk")
    )
    op.add_column("consumers", sa.Column("health", sa.String(20), nullable=True))
    op.add_column("consumers", sa.Column("detail", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("consumers") as batch:
        batch.drop_column("detail")
        batch.drop_column("health")
        batch.drop_column("kind")
