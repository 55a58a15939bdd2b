"""Consumers keep when a server first heard from them: ``first_seen``. A consumer that first
spoke after a switch never served the version it replaced, so the fleet's time to all leaves it
out (it is shown as "joined since" instead of stretching the time to the moment it started).

Empty on consumers recorded before: they count as known from before any switch, as they did.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("consumers", sa.Column("first_seen", sa.Float, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("consumers") as batch:
        batch.drop_column("first_seen")
