"""Consumers carry the number of the flush that last wrote them: ``written``, taken from the
``counters`` row ``consumers`` in the flush's own transaction. A server reads back only the rows
other servers wrote since the newest number it has seen, instead of every consumer heard from
in the last 90 seconds, every second (10,000 rows a second for a fleet of 10,000).

The counter is a row of its own, never deleted, so its numbers only grow (a ``max(written)``
would go back when the newest rows are forgotten); incrementing it locks the row until the
flush commits, so numbers are committed in the order they are taken, on PostgreSQL too.

Rows recorded before carry 0: a server's first read takes every consumer heard from recently,
whatever its number, and counts from there. A server of an earlier release still running on
the store writes without a number, so the others stop seeing its reports: upgrade the servers
of one store together (docs/operations.md).

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "consumers", sa.Column("written", sa.BigInteger, nullable=False, server_default="0")
    )
    op.create_index("ix_consumers_written", "consumers", ["written"])
    op.create_table(
        "counters",
        sa.Column("name", sa.String(40), primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("counters")
    op.drop_index("ix_consumers_written", "consumers")
    with op.batch_alter_table("consumers") as batch:
        batch.drop_column("written")
