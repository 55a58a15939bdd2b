"""Change requests and their timelines (approvals, rejections, updates, outcomes).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "change_requests",
        sa.Column("number", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("env", sa.String(100), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("base_version", sa.Integer, nullable=True),
        sa.Column("base_hash", sa.String(64), nullable=False),
        sa.Column("requester", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("risk", sa.String(10), nullable=False),
        sa.Column("routing", sa.Text, nullable=False),
        sa.Column("apply_at", sa.Float, nullable=True),
        sa.Column("emergency", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("deployment", sa.Integer, nullable=True),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("ix_change_requests_env_status", "change_requests", ["env", "status"])
    op.create_table(
        "request_entries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("request", sa.Integer, sa.ForeignKey("change_requests.number"), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("base_hash", sa.String(64), nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("via", sa.String(20), nullable=False),
    )
    op.create_index("ix_request_entries_request", "request_entries", ["request", "id"])


def downgrade() -> None:
    op.drop_index("ix_request_entries_request", "request_entries")
    op.drop_table("request_entries")
    op.drop_index("ix_change_requests_env_status", "change_requests")
    op.drop_table("change_requests")
