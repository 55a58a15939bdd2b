"""Consumers keep the business metrics they report: ``metrics``, JSON text holding the latest
value of each metric with the version the consumer served when it reported it and the time the
report arrived (``fleet`` checks compare a rollout's new cohort with the rest of the fleet).

Empty on consumers recorded before, and on consumers that report no metric.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("consumers", sa.Column("metrics", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("consumers") as batch:
        batch.drop_column("metrics")
