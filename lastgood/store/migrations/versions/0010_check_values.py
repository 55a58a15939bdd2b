"""Check results keep the number a check measured and the baseline it was compared with:
``value`` and ``baseline`` (comparative checks, ``max_drop`` / ``max_rise``).

Both are empty on results recorded before, and on checks that measure no number.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("check_results", sa.Column("value", sa.Float, nullable=True))
    op.add_column("check_results", sa.Column("baseline", sa.Float, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("check_results") as batch:
        batch.drop_column("baseline")
        batch.drop_column("value")
